//! The zero-setup persistent store: one SQLite file, documents as JSON text, one table per
//! collection, filters translated to SQL with the reference semantics of `crm_core::engine`.
//!
//! Statements run on the calling task. A point read or write is ~5 µs of SQLite work and
//! `spawn_blocking` alone costs ~4 µs (measured on 2 cores), so point operations run inline.
//! Operations that may scan many rows go through [`scan`], which on a multi-threaded runtime
//! uses `block_in_place` (~0.02 µs) so the worker's other tasks move to another thread. The
//! writer is one connection behind a mutex (SQLite allows one writer anyway) and reads use a
//! small pool of WAL readers, so a read never waits for a write. WAL checkpoints (which copy the
//! log into the database and fsync it) run on a background thread, not in a request's commit.
//!
//! Writes are queued to one writer thread, which commits whatever is queued in one transaction
//! (group commit: a commit appends every page it touched to the WAL, and concurrent writes touch
//! the same index pages). Each write runs under its own SAVEPOINT, so a failing write is rolled
//! back alone and reported to its own caller; the others are answered once the commit is done.

mod functions;
mod legacy;
mod schema;
mod sql;

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use rusqlite::{params, params_from_iter};
use serde_json::Value;

use crm_core::engine::{
    Document, apply_update, cmp_values, matches, normalize_filter, upsert_seed, validate_update,
};
use crm_core::schema::ID_FIELD;
use crm_core::store::{AppliedMigration, WriteOp};
use crm_core::{
    DocumentStore, EntityDef, Error, Filter, FindOptions, GroupBy, GroupRow, ObjectId, Result,
    StoreAdmin, Tenant, Timestamp, Update, WorkspaceId,
};

use schema::{Coll, fts_body};
use sql::Builder;

const READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const STATEMENT_CACHE: usize = 256;
/// How often the background thread checkpoints the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Past this many WAL pages a commit checkpoints itself, should the background thread fall
/// behind (SQLite's default is 1,000 pages on every connection).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 100_000;
/// Most writes one group commit takes, so a long queue still gets answers in steps.
const GROUP_MAX: usize = 256;

/// Maps a SQLite error once: constraint → `Conflict` (naming the unique key), busy/locked →
/// `Unavailable`, anything else → `Internal`.
pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let msg = msg.as_deref().unwrap_or_default();
        match f.code {
            ErrorCode::ConstraintViolation if msg.contains("UNIQUE") => {
                // Unique keys are indexes named `<collection>__uq__<key>__on...`; else `_id`.
                let index = msg.trim_end_matches('\'');
                return Error::conflict(schema::unique_key_of(index).unwrap_or(ID_FIELD));
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen => {
                return Error::Unavailable(e.to_string());
            }
            _ => {}
        }
    }
    Error::Internal(format!("sqlite: {e}"))
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Internal(format!("stored document does not decode: {e}"))
}

fn parse_doc(text: &str) -> Result<Document> {
    serde_json::from_str(text).map_err(json_err)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn ws_key(ws: Option<WorkspaceId>) -> String {
    ws.map(|w| w.to_string()).unwrap_or_default()
}

/// Runs work that may scan many rows without stalling the runtime's other tasks.
fn scan<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// One statement and its parameters.
struct Query {
    sql: String,
    params: Vec<Sql>,
}

/// Keeps or makes the `_id` and stamps the tenant, refusing a document of another tenant.
fn prepare_new(
    def: &EntityDef,
    ws: Option<WorkspaceId>,
    mut doc: Document,
) -> Result<(ObjectId, Document)> {
    let bad_id = || Error::invalid(ID_FIELD, "must be 24 hexadecimal characters");
    let id = match doc.get(ID_FIELD) {
        None => ObjectId::new(),
        Some(Value::String(s)) => ObjectId::parse_str(s).map_err(|_| bad_id())?,
        Some(_) => return Err(bad_id()),
    };
    doc.insert(ID_FIELD.into(), Value::String(id.to_hex()));
    if let (Some(field), Some(ws)) = (def.tenant_field(), ws) {
        let same = match doc.get(field) {
            None => true,
            Some(Value::String(s)) => ObjectId::parse_str(s).is_ok_and(|v| v == ws.object_id()),
            Some(_) => false,
        };
        if !same {
            return Err(Error::invalid(field, "belongs to another workspace"));
        }
        doc.insert(field.into(), Value::String(ws.to_string()));
    }
    Ok((id, doc))
}

/// A `DocumentStore` + `StoreAdmin` on SQLite. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// A queued write. Given the writer inside the batch's transaction (`None`: the batch failed
/// before it ran), it runs and says whether it succeeded and how to answer its caller once the
/// commit's outcome is known.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;
type Reply = Box<dyn FnOnce(Result<()>) + Send>;

struct Inner {
    location: String,
    /// Shared with the writer thread, which holds it for one batch at a time.
    writer: Arc<Mutex<Connection>>,
    jobs: mpsc::Sender<Job>,
    /// Empty for an in-memory database, whose one connection serves reads too.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    colls: RwLock<HashMap<&'static str, Arc<Coll>>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.location)
            .field("readers", &self.inner.readers.len())
            .finish()
    }
}

fn configure(conn: &Connection, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
    if writer {
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    } else {
        conn.pragma_update(None, "query_only", "ON")?;
    }
    functions::register(conn)
}

impl SqliteStore {
    /// Opens (creating the file and its directories if needed) a database file.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let writer = Connection::open(path).map_err(map_err)?;
        configure(&writer, true).map_err(map_err)?;
        writer.execute_batch(schema::BOOTSTRAP).map_err(map_err)?;
        let readers = (0..READERS)
            .map(|_| {
                let c = Connection::open(path)?;
                configure(&c, false)?;
                Ok(Mutex::new(c))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(map_err)?;
        let store = Self::from_parts(path.to_path_buf(), writer, readers)?;
        let checkpointer = Connection::open(path).map_err(map_err)?;
        checkpointer.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
        let inner = Arc::downgrade(&store.inner);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &inner))
            .map_err(|e| Error::Unavailable(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(store)
    }

    /// A private database in memory: one connection for reads and writes, so reads see writes.
    pub fn open_in_memory() -> Result<SqliteStore> {
        let conn = Connection::open_in_memory().map_err(map_err)?;
        configure(&conn, true).map_err(map_err)?;
        conn.execute_batch(schema::BOOTSTRAP).map_err(map_err)?;
        Self::from_parts(PathBuf::from(":memory:"), conn, Vec::new())
    }

    fn from_parts(
        path: PathBuf,
        writer: Connection,
        readers: Vec<Mutex<Connection>>,
    ) -> Result<Self> {
        let writer = Arc::new(Mutex::new(writer));
        let (jobs, queue) = mpsc::channel::<Job>();
        let conn = Arc::downgrade(&writer);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(&conn, &queue))
            .map_err(|e| Error::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                location: path.display().to_string(),
                writer,
                jobs,
                readers,
                next_reader: AtomicUsize::new(0),
                colls: RwLock::new(HashMap::new()),
            }),
        })
    }
}

/// Takes what is queued (up to [`GROUP_MAX`]) and commits it together, until the store is gone
/// (its sender dropped).
fn writer_loop(conn: &Weak<Mutex<Connection>>, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP_MAX {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let Some(conn) = conn.upgrade() else {
            return;
        };
        commit_batch(&mut conn.lock(), batch);
    }
}

fn run_sql(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(map_err)
}

/// One IMMEDIATE transaction for the batch, a savepoint per write. If the transaction itself
/// fails (cannot begin, lost to an error SQLite rolls back whole, or the commit fails), every
/// write of the batch is answered with that error and none is applied.
fn commit_batch(conn: &mut Connection, batch: Vec<Job>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = map_err(e);
            for job in batch {
                job(None).1(Err(e.clone()));
            }
            return;
        }
    };
    let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
    let mut failed: Option<Error> = None;
    for job in batch {
        if failed.is_some() {
            replies.push(job(None).1);
            continue;
        }
        if let Err(e) = run_sql(&tx, "SAVEPOINT crm_write") {
            failed = Some(e);
            replies.push(job(None).1);
            continue;
        }
        // A panicking write drops its reply (its caller hears the write was lost); the writer
        // thread lives on.
        let ran = catch_unwind(AssertUnwindSafe(|| job(Some(&tx))));
        let ok = matches!(ran, Ok((true, _)));
        if let Ok((_, reply)) = ran {
            replies.push(reply);
        }
        let end = if ok {
            run_sql(&tx, "RELEASE crm_write")
        } else {
            run_sql(&tx, "ROLLBACK TO crm_write").and_then(|()| run_sql(&tx, "RELEASE crm_write"))
        };
        if let Err(e) = end {
            failed = Some(e);
        } else if tx.is_autocommit() {
            failed = Some(Error::Unavailable(
                "sqlite rolled the batch's transaction back".into(),
            ));
        }
    }
    let outcome = match failed {
        Some(e) => Err(e),
        None => tx.commit().map_err(map_err),
    };
    for reply in replies {
        reply(outcome.clone());
    }
}

/// Checkpoints the WAL while the store is alive. PASSIVE never blocks readers or the writer; it
/// copies what no reader still needs, and the writer restarts the log once it has all been.
fn checkpoint_loop(conn: &Connection, store: &Weak<Inner>) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        if store.strong_count() == 0 {
            return;
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite checkpoint failed");
        }
    }
}

impl Inner {
    /// The collection's state, creating its schema on first use.
    fn coll(&self, def: &'static EntityDef) -> Result<Arc<Coll>> {
        if let Some(c) = self.colls.read().get(def.collection)
            && std::ptr::eq(c.def, def)
        {
            return Ok(c.clone());
        }
        let mut conn = self.writer.lock();
        if let Some(c) = self.colls.read().get(def.collection)
            && std::ptr::eq(c.def, def)
        {
            return Ok(c.clone());
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let coll = Arc::new(schema::ensure(&tx, def)?);
        tx.commit().map_err(map_err)?;
        self.colls.write().insert(def.collection, coll.clone());
        Ok(coll)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let n = self.readers.len();
        if n == 0 {
            return f(&self.writer.lock());
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Some(c) = self.readers[(start + i) % n].try_lock() {
                return f(&c);
            }
        }
        f(&self.readers[start % n].lock())
    }

    /// A read whose SQL depends on which paths are clean: planned again if a path became dirty
    /// while it ran (a writer marks the path before its commit, so this sees it).
    fn read_planned<T>(
        &self,
        coll: &Coll,
        plan: impl Fn(&Coll) -> Result<Query>,
        run: impl Fn(&Connection, &Query) -> Result<T>,
    ) -> Result<T> {
        scan(|| {
            loop {
                let epoch = coll.epoch.load(Ordering::SeqCst);
                let q = plan(coll)?;
                let out = self.read(|c| run(c, &q))?;
                if coll.epoch.load(Ordering::SeqCst) == epoch {
                    return Ok(out);
                }
            }
        })
    }

    /// Queues a write for the writer thread and waits for the commit of its batch; an error of
    /// `f` rolls back `f`'s changes only.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let out = match conn {
                Some(c) => f(c),
                None => Err(Error::Unavailable("the write's batch failed".into())),
            };
            let ok = out.is_ok();
            let reply: Reply = Box::new(move |commit| {
                let _ = tx.send(commit.and(out));
            });
            (ok, reply)
        });
        let lost = || Error::Unavailable("the sqlite writer did not answer this write".into());
        self.jobs.send(job).map_err(|_| lost())?;
        rx.await.map_err(|_| lost())?
    }
}

/// `SELECT <what> FROM <table> AS t WHERE [t.ws = ? AND] <filter> <tail>`.
fn plan_select(
    coll: &Coll,
    ws: Option<&str>,
    what: &dyn Fn(&mut Builder<'_>) -> Result<String>,
    filter: &Filter,
    tail: &dyn Fn(&mut Builder<'_>) -> Result<String>,
) -> Result<Query> {
    let clean = |p: &str| coll.is_clean(p);
    let mut b = Builder::new(coll.def, &clean, coll.fts.as_deref());
    let what = what(&mut b)?;
    let scope = match ws {
        Some(ws) => format!("t.ws = {} AND ", b.bind(Sql::Text(ws.to_owned()))),
        None => String::new(),
    };
    let cond = b.filter(filter)?;
    let tail = tail(&mut b)?;
    Ok(Query {
        sql: format!(
            "SELECT {what} FROM {} AS t WHERE {scope}{cond}{tail}",
            coll.table
        ),
        params: b.params,
    })
}

fn fixed(s: &'static str) -> impl Fn(&mut Builder<'_>) -> Result<String> {
    move |_| Ok(s.to_owned())
}

fn find_plan(coll: &Coll, ws: &str, filter: &Filter, opts: &FindOptions) -> Result<Query> {
    plan_select(coll, Some(ws), &fixed("t.doc"), filter, &|b| {
        let order = b.order_by(&opts.sort)?;
        let limit = b.bind(Sql::Integer(opts.limit.map_or(-1, to_i64)));
        let skip = b.bind(Sql::Integer(to_i64(opts.skip)));
        Ok(format!(" ORDER BY {order} LIMIT {limit} OFFSET {skip}"))
    })
}

fn collect_docs(conn: &Connection, q: &Query) -> Result<Vec<Document>> {
    let mut st = conn.prepare_cached(&q.sql).map_err(map_err)?;
    let mut rows = st.query(params_from_iter(&q.params)).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        let text = r
            .get_ref(0)
            .and_then(|v| Ok(v.as_str()?))
            .map_err(map_err)?;
        out.push(parse_doc(text)?);
    }
    Ok(out)
}

fn collect_rows(conn: &Connection, q: &Query) -> Result<Vec<(i64, Document)>> {
    let mut st = conn.prepare_cached(&q.sql).map_err(map_err)?;
    let mut rows = st.query(params_from_iter(&q.params)).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        let rid: i64 = r.get(0).map_err(map_err)?;
        let text = r
            .get_ref(1)
            .and_then(|v| Ok(v.as_str()?))
            .map_err(map_err)?;
        out.push((rid, parse_doc(text)?));
    }
    Ok(out)
}

fn insert_doc(tx: &Connection, coll: &Coll, ws: &str, id: &ObjectId, doc: &Document) -> Result<()> {
    coll.note_written(tx, doc)?;
    let text = serde_json::to_string(doc).map_err(Error::internal)?;
    tx.prepare_cached(&coll.stmts.insert)
        .and_then(|mut s| s.execute(params![id.to_hex(), ws, text]))
        .map_err(map_err)?;
    if let Some(sql) = &coll.stmts.fts_insert {
        let rid = tx.last_insert_rowid();
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute(params![rid, fts_body(coll.def, doc)]))
            .map_err(map_err)?;
    }
    Ok(())
}

fn update_doc(tx: &Connection, coll: &Coll, rid: i64, doc: &Document) -> Result<()> {
    coll.note_written(tx, doc)?;
    let text = serde_json::to_string(doc).map_err(Error::internal)?;
    tx.prepare_cached(&coll.stmts.update)
        .and_then(|mut s| s.execute(params![rid, text]))
        .map_err(map_err)?;
    if let Some(sql) = &coll.stmts.fts_update {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute(params![rid, fts_body(coll.def, doc)]))
            .map_err(map_err)?;
    }
    Ok(())
}

fn delete_rid(tx: &Connection, coll: &Coll, rid: i64) -> Result<()> {
    tx.prepare_cached(&coll.stmts.delete)
        .and_then(|mut s| s.execute([rid]))
        .map_err(map_err)?;
    if let Some(sql) = &coll.stmts.fts_delete {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute([rid]))
            .map_err(map_err)?;
    }
    Ok(())
}

/// Applies an update to every match (of one tenant, or of all when `ws` is `None`), all or
/// nothing; returns how many matched.
fn update_matching(
    tx: &Connection,
    coll: &Coll,
    ws: Option<&str>,
    filter: &Filter,
    update: &Update,
) -> Result<u64> {
    let q = plan_select(
        coll,
        ws,
        &fixed("t.rid, t.doc"),
        filter,
        &fixed(" ORDER BY t.id"),
    )?;
    let mut changed = collect_rows(tx, &q)?;
    for (_, doc) in &mut changed {
        apply_update(coll.def, doc, update, false)?;
    }
    let write_all = |changed: &[(i64, Document)]| -> Result<()> {
        for (rid, doc) in changed {
            update_doc(tx, coll, *rid, doc)?;
        }
        Ok(())
    };
    if changed.len() < 2 || coll.def.unique.is_empty() {
        write_all(&changed)?;
        return Ok(to_u64(changed.len()));
    }
    // Unique keys hold for the final state, as in the reference; row-by-row writes may clash
    // on the way (n → n+1 over consecutive values), so on a clash the changed rows are first
    // emptied out of the unique indexes, then written again.
    tx.execute_batch("SAVEPOINT crm_many").map_err(map_err)?;
    match write_all(&changed) {
        Ok(()) => {}
        Err(Error::Conflict { .. }) => {
            tx.execute_batch("ROLLBACK TO crm_many").map_err(map_err)?;
            let mut st = tx.prepare_cached(&coll.stmts.update).map_err(map_err)?;
            for (rid, _) in &changed {
                st.execute(params![rid, "{}"]).map_err(map_err)?;
            }
            write_all(&changed)?;
        }
        Err(e) => return Err(e),
    }
    tx.execute_batch("RELEASE crm_many").map_err(map_err)?;
    Ok(to_u64(changed.len()))
}

/// A batch op with its tenant checked, its document prepared, its guard normalised and its
/// collection's state at hand, ready for the writer thread.
enum Prepared {
    Insert {
        coll: Arc<Coll>,
        ws: String,
        id: ObjectId,
        doc: Document,
    },
    Update {
        coll: Arc<Coll>,
        ws: String,
        id: ObjectId,
        update: Update,
        guard: Filter,
    },
    Delete {
        coll: Arc<Coll>,
        ws: String,
        id: ObjectId,
        guard: Filter,
    },
}

impl Inner {
    fn prepare_op(&self, op: WriteOp) -> Result<Prepared> {
        Ok(match op {
            WriteOp::Insert { t, def, doc } => {
                let ws = t.check(def)?;
                let (id, doc) = prepare_new(def, ws, doc)?;
                Prepared::Insert {
                    coll: self.coll(def)?,
                    ws: ws_key(ws),
                    id,
                    doc,
                }
            }
            WriteOp::Update {
                t,
                def,
                id,
                update,
                guard,
            } => {
                let ws = ws_key(t.check(def)?);
                validate_update(def, &update)?;
                Prepared::Update {
                    coll: self.coll(def)?,
                    ws,
                    id,
                    update,
                    guard: normalize_filter(def, &guard)?,
                }
            }
            WriteOp::Delete { t, def, id, guard } => {
                let ws = ws_key(t.check(def)?);
                Prepared::Delete {
                    coll: self.coll(def)?,
                    ws,
                    id,
                    guard: normalize_filter(def, &guard)?,
                }
            }
        })
    }
}

/// The row an update or delete of a batch names, while it still matches its guard (decided by
/// the engine on the stored document, as in the reference).
fn guarded_row(
    tx: &Connection,
    coll: &Coll,
    ws: &str,
    id: &ObjectId,
    guard: &Filter,
) -> Result<(i64, Document)> {
    let row: Option<(i64, String)> = tx
        .prepare_cached(&coll.stmts.get_rid)
        .and_then(|mut s| {
            s.query_row(params![id.to_hex(), ws], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(map_err)?;
    let (rid, text) = row.ok_or(Error::NotFound)?;
    let doc = parse_doc(&text)?;
    if matches(coll.def, &doc, guard) {
        Ok((rid, doc))
    } else {
        Err(Error::Stale)
    }
}

/// Runs a batch's ops in order inside the writer's savepoint for this write: an error leaves
/// the savepoint to be rolled back, taking every earlier op of the batch with it.
fn run_batch(tx: &Connection, ops: &[Prepared]) -> Result<Vec<Option<Document>>> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match op {
            Prepared::Insert { coll, ws, id, doc } => {
                insert_doc(tx, coll, ws, id, doc)?;
                Some(doc.clone())
            }
            Prepared::Update {
                coll,
                ws,
                id,
                update,
                guard,
            } => {
                let (rid, mut doc) = guarded_row(tx, coll, ws, id, guard)?;
                apply_update(coll.def, &mut doc, update, false)?;
                update_doc(tx, coll, rid, &doc)?;
                Some(doc)
            }
            Prepared::Delete {
                coll,
                ws,
                id,
                guard,
            } => {
                let (rid, _) = guarded_row(tx, coll, ws, id, guard)?;
                delete_rid(tx, coll, rid)?;
                None
            }
        });
    }
    Ok(out)
}

/// Groups as `engine::group` does over the matches in `_id` order: same keys (values equal as
/// the engine compares them), first-seen representative, sums added in the same order.
fn group_rows(conn: &Connection, q: &Query, sums: usize) -> Result<Vec<GroupRow>> {
    let mut st = conn.prepare_cached(&q.sql).map_err(map_err)?;
    let mut rows = st.query(params_from_iter(&q.params)).map_err(map_err)?;
    let mut out: Vec<GroupRow> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut key_bytes = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        let key: Value = match r.get_ref(0).map_err(map_err)?.as_str_or_null() {
            Ok(Some(text)) => serde_json::from_str(text).map_err(json_err)?,
            Ok(None) => Value::Null,
            Err(e) => return Err(Error::internal(e)),
        };
        key_bytes.clear();
        functions::encode_key(&key, &mut key_bytes);
        let i = match index.get(&key_bytes) {
            Some(i) => *i,
            None => {
                out.push(GroupRow {
                    key,
                    count: 0,
                    sums: vec![0.0; sums],
                });
                index.insert(key_bytes.clone(), out.len() - 1);
                out.len() - 1
            }
        };
        let row = &mut out[i];
        row.count += 1;
        for (j, s) in row.sums.iter_mut().enumerate() {
            let v: Option<f64> = r.get(j + 1).map_err(map_err)?;
            if let Some(v) = v {
                *s += v;
            }
        }
    }
    out.sort_by(|a, b| cmp_values(&a.key, &b.key));
    Ok(out)
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn insert(&self, t: Tenant, def: &'static EntityDef, doc: Document) -> Result<Document> {
        let ws = t.check(def)?;
        let (id, doc) = prepare_new(def, ws, doc)?;
        let coll = self.inner.coll(def)?;
        let ws = ws_key(ws);
        self.inner
            .write(move |tx| {
                insert_doc(tx, &coll, &ws, &id, &doc)?;
                Ok(doc)
            })
            .await
    }

    async fn insert_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        docs: Vec<Document>,
    ) -> Result<u64> {
        let ws = t.check(def)?;
        let batch = docs
            .into_iter()
            .map(|d| prepare_new(def, ws, d))
            .collect::<Result<Vec<_>>>()?;
        let coll = self.inner.coll(def)?;
        let ws = ws_key(ws);
        self.inner
            .write(move |tx| {
                for (id, doc) in &batch {
                    insert_doc(tx, &coll, &ws, id, doc)?;
                }
                Ok(to_u64(batch.len()))
            })
            .await
    }

    async fn get(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<Document> {
        let ws = ws_key(t.check(def)?);
        let coll = self.inner.coll(def)?;
        let text: Option<String> = self.inner.read(|c| {
            c.prepare_cached(&coll.stmts.get)
                .and_then(|mut s| {
                    s.query_row(params![id.to_hex(), ws], |r| r.get(0))
                        .optional()
                })
                .map_err(map_err)
        })?;
        parse_doc(&text.ok_or(Error::NotFound)?)
    }

    async fn find(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        let ws = ws_key(t.check(def)?);
        let filter = normalize_filter(def, filter)?;
        let coll = self.inner.coll(def)?;
        self.inner
            .read_planned(&coll, |c| find_plan(c, &ws, &filter, opts), collect_docs)
    }

    async fn count(&self, t: Tenant, def: &'static EntityDef, filter: &Filter) -> Result<u64> {
        let ws = ws_key(t.check(def)?);
        let filter = normalize_filter(def, filter)?;
        let coll = self.inner.coll(def)?;
        self.inner.read_planned(
            &coll,
            |c| plan_select(c, Some(&ws), &fixed("count(*)"), &filter, &fixed("")),
            |conn, q| {
                let n: i64 = conn
                    .prepare_cached(&q.sql)
                    .and_then(|mut s| s.query_row(params_from_iter(&q.params), |r| r.get(0)))
                    .map_err(map_err)?;
                Ok(u64::try_from(n).unwrap_or_default())
            },
        )
    }

    async fn update_one(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        id: ObjectId,
        update: &Update,
    ) -> Result<Document> {
        let ws = ws_key(t.check(def)?);
        validate_update(def, update)?;
        let coll = self.inner.coll(def)?;
        let update = update.clone();
        self.inner
            .write(move |tx| {
                let row: Option<(i64, String)> = tx
                    .prepare_cached(&coll.stmts.get_rid)
                    .and_then(|mut s| {
                        s.query_row(params![id.to_hex(), ws], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()
                    })
                    .map_err(map_err)?;
                let (rid, text) = row.ok_or(Error::NotFound)?;
                let mut doc = parse_doc(&text)?;
                apply_update(def, &mut doc, &update, false)?;
                update_doc(tx, &coll, rid, &doc)?;
                Ok(doc)
            })
            .await
    }

    async fn update_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        let ws = ws_key(t.check(def)?);
        let filter = normalize_filter(def, filter)?;
        validate_update(def, update)?;
        let coll = self.inner.coll(def)?;
        let update = update.clone();
        self.inner
            .write(move |tx| update_matching(tx, &coll, Some(&ws), &filter, &update))
            .await
    }

    async fn find_one_and_update(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
        upsert: bool,
    ) -> Result<Option<Document>> {
        let tenant = t.check(def)?;
        let ws = ws_key(tenant);
        let filter = normalize_filter(def, filter)?;
        validate_update(def, update)?;
        let coll = self.inner.coll(def)?;
        let update = update.clone();
        self.inner
            .write(move |tx| {
                let q = plan_select(
                    &coll,
                    Some(&ws),
                    &fixed("t.rid, t.doc"),
                    &filter,
                    &fixed(" ORDER BY t.id LIMIT 1"),
                )?;
                match collect_rows(tx, &q)?.pop() {
                    Some((rid, mut doc)) => {
                        apply_update(def, &mut doc, &update, false)?;
                        update_doc(tx, &coll, rid, &doc)?;
                        Ok(Some(doc))
                    }
                    None if upsert => {
                        let mut seed = upsert_seed(&filter)?;
                        apply_update(def, &mut seed, &update, true)?;
                        let (id, doc) = prepare_new(def, tenant, seed)?;
                        insert_doc(tx, &coll, &ws, &id, &doc)?;
                        Ok(Some(doc))
                    }
                    None => Ok(None),
                }
            })
            .await
    }

    async fn delete_one(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<()> {
        let ws = ws_key(t.check(def)?);
        let coll = self.inner.coll(def)?;
        self.inner
            .write(move |tx| {
                let rid: Option<i64> = tx
                    .prepare_cached(&coll.stmts.delete_id)
                    .and_then(|mut s| {
                        s.query_row(params![id.to_hex(), ws], |r| r.get(0))
                            .optional()
                    })
                    .map_err(map_err)?;
                let rid = rid.ok_or(Error::NotFound)?;
                if let Some(sql) = &coll.stmts.fts_delete {
                    tx.prepare_cached(sql)
                        .and_then(|mut s| s.execute([rid]))
                        .map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn delete_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
    ) -> Result<u64> {
        let ws = ws_key(t.check(def)?);
        let filter = normalize_filter(def, filter)?;
        let coll = self.inner.coll(def)?;
        self.inner
            .write(move |tx| {
                let q = plan_select(&coll, Some(&ws), &fixed("t.rid"), &filter, &fixed(""))?;
                let rids: Vec<i64> = {
                    let mut st = tx.prepare_cached(&q.sql).map_err(map_err)?;
                    st.query_map(params_from_iter(&q.params), |r| r.get(0))
                        .and_then(|rows| rows.collect())
                        .map_err(map_err)?
                };
                for rid in &rids {
                    delete_rid(tx, &coll, *rid)?;
                }
                Ok(to_u64(rids.len()))
            })
            .await
    }

    /// One job for the writer thread: the whole batch runs under that job's savepoint inside
    /// the group commit, so it commits with its group or rolls back alone.
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<Option<Document>>> {
        let prepared = ops
            .into_iter()
            .map(|op| self.inner.prepare_op(op))
            .collect::<Result<Vec<_>>>()?;
        self.inner.write(move |tx| run_batch(tx, &prepared)).await
    }

    async fn aggregate(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        group: &GroupBy,
    ) -> Result<Vec<GroupRow>> {
        let ws = ws_key(t.check(def)?);
        let filter = normalize_filter(def, &group.filter)?;
        let coll = self.inner.coll(def)?;
        let what = |b: &mut Builder<'_>| -> Result<String> {
            let mut cols = vec![b.json_of(&group.key)?];
            for s in &group.sums {
                cols.push(b.number_of(s)?);
            }
            Ok(cols.join(", "))
        };
        self.inner.read_planned(
            &coll,
            |c| plan_select(c, Some(&ws), &what, &filter, &fixed(" ORDER BY t.id")),
            |conn, q| group_rows(conn, q, group.sums.len()),
        )
    }
}

#[async_trait]
impl StoreAdmin for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.inner.read(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
                .map_err(map_err)
        })
    }

    async fn ensure_schema(&self, defs: &[&'static EntityDef]) -> Result<()> {
        for def in defs {
            def.validate()?;
        }
        scan(|| {
            defs.iter()
                .try_for_each(|def| self.inner.coll(def).map(|_| ()))
        })
    }

    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        let rows: Vec<(i64, String, String)> = self.inner.read(|c| {
            let mut st = c
                .prepare_cached("SELECT version, name, applied_at FROM migrations ORDER BY version")
                .map_err(map_err)?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
                .map_err(map_err)
        })?;
        rows.into_iter()
            .map(|(version, name, at)| {
                Ok(AppliedMigration {
                    version: u32::try_from(version).map_err(Error::internal)?,
                    name,
                    applied_at: Timestamp::parse(&at)?,
                })
            })
            .collect()
    }

    async fn record_migration(&self, m: &AppliedMigration) -> Result<()> {
        let (version, name, at) = (m.version, m.name.clone(), m.applied_at.to_canonical());
        self.inner
            .write(move |tx| {
                tx.execute(
                    "INSERT OR REPLACE INTO migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                    params![version, name, at],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn forget_migration(&self, version: u32) -> Result<()> {
        self.inner
            .write(move |tx| {
                tx.execute("DELETE FROM migrations WHERE version = ?1", [version])
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn update_all_tenants(
        &self,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        let filter = normalize_filter(def, filter)?;
        validate_update(def, update)?;
        let coll = self.inner.coll(def)?;
        let update = update.clone();
        self.inner
            .write(move |tx| update_matching(tx, &coll, None, &filter, &update))
            .await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn legacy(&self) -> Option<&dyn crm_core::migrations::LegacyAdmin> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
