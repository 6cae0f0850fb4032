//! The one module that calls `mongodb::Collection` methods. Every call on behalf of a workspace
//! goes through [`Scoped`], which adds `{tenantField: ObjectId(ws)}` to each filter, makes it the
//! first `$match` of each pipeline, stamps it on each insert and runs `validate_update` on each
//! update; [`update_all_tenants`] is the one deliberate cross-tenant write (migrations).
// The workspace's clippy.toml forbids raw collection calls everywhere else; this is where they
// are wrapped, so they are allowed here and only here.
#![allow(clippy::disallowed_methods)]

use crm_core::engine::validate_update;
use crm_core::schema::UniqueKey;
use crm_core::{EntityDef, Error, Result, Tenant, Update};
use futures::TryStreamExt;
use mongodb::bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use mongodb::error::ErrorKind;
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};

use crate::convert::oid;
use crate::errors::{self, Ctx};
use crate::translate;

pub(crate) const MIGRATIONS: &str = "migrations";
const TEXT_PROBE: &str = "_clianta_text_probe";
/// MongoDB's CannotCreateIndex, SecantusDB's answer to a text index.
const CANNOT_CREATE_INDEX: i32 = 67;
const UNAUTHORIZED: i32 = 13;

/// The database and what the server can do.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pub client: Client,
    pub db: Database,
    /// Replica set or sharded cluster: multi-document writes run in a transaction.
    pub transactions: bool,
}

/// The name of a unique key's index, which duplicate-key errors quote back.
pub(crate) fn unique_index_name(def: &EntityDef, uk: &UniqueKey) -> String {
    format!("uniq_{}_{}", def.collection, uk.name)
}

/// Runs `$body` (which uses the session `$s`) in a transaction, retrying transient conflicts.
macro_rules! in_transaction {
    ($db:expr, $ctx:expr, |$s:ident| $body:expr) => {{
        let mut session = $db
            .client
            .start_session()
            .await
            .map_err(|e| errors::map(e, $ctx))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            session
                .start_transaction()
                .await
                .map_err(|e| errors::map(e, $ctx))?;
            let $s = &mut session;
            let r = match $body {
                Ok(v) => session.commit_transaction().await.map(|()| v),
                Err(e) => {
                    // The error that matters is the operation's; a failed abort changes nothing.
                    let _ = session.abort_transaction().await;
                    Err(e)
                }
            };
            match r {
                Err(e) if attempt < 3 && e.contains_label("TransientTransactionError") => continue,
                other => break other.map_err(|e| errors::map(e, $ctx)),
            }
        }
    }};
}

/// One entity's collection, seen from one tenant.
pub(crate) struct Scoped<'a> {
    db: &'a Db,
    def: &'static EntityDef,
    coll: Collection<Document>,
    tenant: Option<(&'static str, ObjectId)>,
}

impl<'a> Scoped<'a> {
    pub fn new(db: &'a Db, def: &'static EntityDef, t: Tenant) -> Result<Self> {
        let tenant = match (t.check(def)?, def.tenant_field()) {
            (Some(ws), Some(field)) => Some((field, oid(ws.object_id()))),
            _ => None,
        };
        Ok(Self {
            db,
            def,
            coll: db.db.collection(def.collection),
            tenant,
        })
    }

    fn ctx(&self) -> Ctx<'static> {
        Ctx::def(self.def)
    }

    /// The filter with the tenant added.
    fn scope(&self, filter: Document) -> Document {
        let Some((field, ws)) = self.tenant else {
            return filter;
        };
        if filter.is_empty() {
            return doc! { field: ws };
        }
        if filter.contains_key(field) {
            return doc! { "$and": [ filter, { field: ws } ] };
        }
        // Last: SecantusDB uses the `_id` index only when `_id` comes first (MongoDB does not
        // care about the order).
        let mut scoped = filter;
        scoped.insert(field, ws);
        scoped
    }

    /// Gives the document an `_id` if it has none and the tenant; refuses a malformed `_id` and
    /// another tenant's.
    fn stamp(&self, d: &mut Document) -> Result<()> {
        match d.get("_id") {
            None | Some(Bson::Null) => {
                d.insert("_id", ObjectId::new());
            }
            Some(Bson::ObjectId(_)) => {}
            // `convert` made an ObjectId of any text that parses; `get` could never reach this.
            Some(_) => return Err(Error::invalid("_id", "must be a 24-hex-digit id")),
        }
        if let Some((field, ws)) = self.tenant {
            match d.get(field) {
                None | Some(Bson::Null) => {
                    d.insert(field, ws);
                }
                Some(Bson::ObjectId(x)) if *x == ws => {}
                Some(_) => {
                    return Err(Error::invalid(
                        field,
                        "does not match the workspace of the request",
                    ));
                }
            }
        }
        Ok(())
    }

    pub async fn find(
        &self,
        filter: Document,
        sort: Document,
        skip: u64,
        limit: Option<u64>,
    ) -> Result<Vec<Document>> {
        if limit == Some(0) {
            // MongoDB reads a limit of 0 as "no limit".
            return Ok(Vec::new());
        }
        let mut find = self.coll.find(self.scope(filter)).sort(sort);
        if skip > 0 {
            find = find.skip(skip);
        }
        if let Some(l) = limit {
            find = find.limit(i64::try_from(l).unwrap_or(i64::MAX));
        }
        let cursor = find.await.map_err(|e| errors::map(e, self.ctx()))?;
        cursor
            .try_collect()
            .await
            .map_err(|e| errors::map(e, self.ctx()))
    }

    pub async fn find_by_id(&self, id: ObjectId) -> Result<Option<Document>> {
        self.coll
            .find_one(self.scope(doc! { "_id": id }))
            .await
            .map_err(|e| errors::map(e, self.ctx()))
    }

    pub async fn count(&self, filter: Document) -> Result<u64> {
        self.coll
            .count_documents(self.scope(filter))
            .await
            .map_err(|e| errors::map(e, self.ctx()))
    }

    /// Returns the document as stored (with `_id` and tenant).
    pub async fn insert_one(&self, mut d: Document) -> Result<Document> {
        self.stamp(&mut d)?;
        self.coll
            .insert_one(&d)
            .await
            .map_err(|e| errors::map(e, self.ctx()))?;
        Ok(d)
    }

    /// All or nothing: in a transaction where the server has them, else by deleting the
    /// documents written before the first failure.
    pub async fn insert_many(&self, mut docs: Vec<Document>) -> Result<u64> {
        if docs.is_empty() {
            return Ok(0);
        }
        for d in &mut docs {
            self.stamp(d)?;
        }
        let n = docs.len() as u64;
        if self.db.transactions {
            let coll = &self.coll;
            in_transaction!(self.db, self.ctx(), |s| coll
                .insert_many(&docs)
                .session(&mut *s)
                .await)?;
            return Ok(n);
        }
        match self.coll.insert_many(&docs).await {
            Ok(_) => Ok(n),
            Err(e) => {
                // Ordered inserts stop at the first failure: exactly the ones before it landed.
                if let ErrorKind::InsertMany(m) = e.kind.as_ref()
                    && let Some(first) = m
                        .write_errors
                        .as_ref()
                        .and_then(|ws| ws.iter().map(|w| w.index).min())
                {
                    let ids: Vec<Bson> = docs[..first.min(docs.len())]
                        .iter()
                        .filter_map(|d| d.get("_id").cloned())
                        .collect();
                    if !ids.is_empty() {
                        self.coll
                            .delete_many(self.scope(doc! { "_id": { "$in": ids } }))
                            .await
                            .map_err(|e| errors::map(e, self.ctx()))?;
                    }
                }
                Err(errors::map(e, self.ctx()))
            }
        }
    }

    /// The document after the update, or `None` when no document of this tenant has the id.
    pub async fn update_by_id(&self, id: ObjectId, update: &Update) -> Result<Option<Document>> {
        validate_update(self.def, update)?;
        self.coll
            .find_one_and_update(
                self.scope(doc! { "_id": id }),
                translate::update(self.def, update),
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(|e| errors::map(e, Ctx::update(self.def, update)))
    }

    /// Matched documents; atomic where the server has transactions.
    pub async fn update_many(&self, filter: Document, update: &Update) -> Result<u64> {
        validate_update(self.def, update)?;
        update_many_in(self.db, self.def, &self.coll, self.scope(filter), update).await
    }

    /// The first match by `_id`, after the update (no upsert: see `MongoStore`'s
    /// `find_one_and_update`).
    pub async fn find_one_and_update(
        &self,
        filter: Document,
        update: &Update,
    ) -> Result<Option<Document>> {
        validate_update(self.def, update)?;
        self.coll
            .find_one_and_update(self.scope(filter), translate::update(self.def, update))
            .sort(doc! { "_id": 1 })
            .return_document(ReturnDocument::After)
            .await
            .map_err(|e| errors::map(e, Ctx::update(self.def, update)))
    }

    pub async fn delete_by_id(&self, id: ObjectId) -> Result<bool> {
        let r = self
            .coll
            .delete_one(self.scope(doc! { "_id": id }))
            .await
            .map_err(|e| errors::map(e, self.ctx()))?;
        Ok(r.deleted_count > 0)
    }

    pub async fn delete_many(&self, filter: Document) -> Result<u64> {
        let r = self
            .coll
            .delete_many(self.scope(filter))
            .await
            .map_err(|e| errors::map(e, self.ctx()))?;
        Ok(r.deleted_count)
    }

    /// `$match` (tenant and filter, first so `$text` may be used) then the given stages.
    pub async fn aggregate(
        &self,
        filter: Document,
        stages: Vec<Document>,
    ) -> Result<Vec<Document>> {
        let mut pipeline = vec![doc! { "$match": self.scope(filter) }];
        pipeline.extend(stages);
        let cursor = self
            .coll
            .aggregate(pipeline)
            .await
            .map_err(|e| errors::map(e, self.ctx()))?;
        cursor
            .try_collect()
            .await
            .map_err(|e| errors::map(e, self.ctx()))
    }
}

async fn update_many_in(
    db: &Db,
    def: &'static EntityDef,
    coll: &Collection<Document>,
    filter: Document,
    update: &Update,
) -> Result<u64> {
    let u = translate::update(def, update);
    let ctx = Ctx::update(def, update);
    let r = if db.transactions {
        in_transaction!(db, ctx, |s| coll
            .update_many(filter.clone(), u.clone())
            .session(&mut *s)
            .await)?
    } else {
        coll.update_many(filter, u)
            .await
            .map_err(|e| errors::map(e, ctx))?
    };
    Ok(r.matched_count)
}

/// The one cross-tenant write: a migration step over every workspace's documents.
pub(crate) async fn update_all_tenants(
    db: &Db,
    def: &'static EntityDef,
    filter: Document,
    update: &Update,
) -> Result<u64> {
    validate_update(def, update)?;
    let coll = db.db.collection::<Document>(def.collection);
    if update.is_empty() {
        return coll
            .count_documents(filter)
            .await
            .map_err(|e| errors::map(e, Ctx::def(def)));
    }
    update_many_in(db, def, &coll, filter, update).await
}

fn admin_err(e: mongodb::error::Error) -> Error {
    errors::map(e, Ctx::default())
}

pub(crate) async fn applied_migrations(db: &Db) -> Result<Vec<Document>> {
    db.db
        .collection::<Document>(MIGRATIONS)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .map_err(admin_err)?
        .try_collect()
        .await
        .map_err(admin_err)
}

/// Idempotent: recording a version twice keeps one record.
pub(crate) async fn record_migration(
    db: &Db,
    version: i32,
    name: &str,
    at: DateTime,
) -> Result<()> {
    db.db
        .collection::<Document>(MIGRATIONS)
        .update_one(
            doc! { "_id": version },
            doc! { "$set": { "name": name, "appliedAt": at } },
        )
        .upsert(true)
        .await
        .map_err(admin_err)?;
    Ok(())
}

pub(crate) async fn forget_migration(db: &Db, version: i32) -> Result<()> {
    db.db
        .collection::<Document>(MIGRATIONS)
        .delete_one(doc! { "_id": version })
        .await
        .map_err(admin_err)?;
    Ok(())
}

async fn has_text_index(coll: &Collection<Document>) -> Result<bool> {
    let mut cursor = coll.list_indexes().await.map_err(admin_err)?;
    while let Some(ix) = cursor.try_next().await.map_err(admin_err)? {
        if ix.keys.contains_key("_fts") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Creates indexes; the same definitions again are a no-op. When some cannot be created (an
/// index of an older declaration, or of the original backend, holds the key pattern or name),
/// the error lists each. A text index that exists already under another definition is kept: a
/// collection has one text index and `$text` uses whichever it is.
pub(crate) async fn create_indexes(
    db: &Db,
    collection: &str,
    models: Vec<IndexModel>,
) -> Result<()> {
    if models.is_empty() {
        return Ok(());
    }
    let coll = db.db.collection::<Document>(collection);
    if coll.create_indexes(models.clone()).await.is_ok() {
        return Ok(());
    }
    let mut failures = Vec::new();
    for m in models {
        let is_text = m.keys.values().any(|v| v.as_str() == Some("text"));
        let keys = m.keys.clone();
        if let Err(e) = coll.create_index(m).await {
            if is_text && has_text_index(&coll).await? {
                tracing::warn!(collection, "keeping the existing text index: {e}");
                continue;
            }
            failures.push(format!("{keys}: {e}"));
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(Error::Internal(format!(
        "cannot create indexes on `{collection}` (drop the conflicting old index by hand): {}",
        failures.join("; ")
    )))
}

/// Whether the server builds text indexes: try one on a scratch collection.
pub(crate) async fn probe_text_index(db: &Db) -> Result<bool> {
    let coll = db.db.collection::<Document>(TEXT_PROBE);
    let model = IndexModel::builder().keys(doc! { "probe": "text" }).build();
    let supported = match coll.create_index(model).await {
        Ok(_) => true,
        Err(e) => match e.kind.as_ref() {
            ErrorKind::Command(c) if c.code == CANNOT_CREATE_INDEX => false,
            // A user without createIndex: the fallback has the reference semantics anyway.
            ErrorKind::Command(c) if c.code == UNAUTHORIZED => {
                tracing::warn!("cannot probe for text indexes ({e}); using the regex fallback");
                return Ok(false);
            }
            _ => return Err(admin_err(e)),
        },
    };
    // Another process may be probing too; a leftover scratch collection is harmless.
    let _ = coll.drop().await;
    Ok(supported)
}

pub(crate) fn text_index_model(def: &EntityDef) -> IndexModel {
    let keys: Document = def
        .text
        .iter()
        .map(|f| ((*f).to_owned(), Bson::String("text".into())))
        .collect();
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .name(format!("text_{}", def.collection))
                // No stemming or stop words (closer to substring search), and no per-document
                // language taken from a `language` field the CRM may hold for other reasons.
                .default_language("none".to_owned())
                .language_override("_textLanguage".to_owned())
                .build(),
        )
        .build()
}

/// One write of a batch, translated for the server (see [`write_batch`]).
pub(crate) enum BatchOp<'a> {
    Insert {
        s: Scoped<'a>,
        doc: Document,
    },
    /// `guard` is the translated guard filter (without `_id` or tenant).
    Update {
        s: Scoped<'a>,
        id: ObjectId,
        guard: Document,
        update: Update,
    },
    Delete {
        s: Scoped<'a>,
        id: ObjectId,
        guard: Document,
    },
}

/// A batch op's failure, and whether the server says the transaction may simply be run again.
struct Failed {
    error: Error,
    transient: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Self {
            error,
            transient: false,
        }
    }
}

fn failed(e: mongodb::error::Error, ctx: Ctx<'_>) -> Failed {
    Failed {
        transient: e.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR),
        error: errors::map(e, ctx),
    }
}

/// What a batch without a transaction did, to undo it when a later op fails.
enum Undo<'a> {
    Inserted(&'a Scoped<'a>, Bson),
    Updated(&'a Scoped<'a>, Document),
    Deleted(&'a Scoped<'a>, Document),
}

/// Attempts of a batch whose transaction the server aborted as transient (write conflicts).
const BATCH_ATTEMPTS: u32 = 3;

/// Runs the ops in order, all or nothing, and returns each op's document after it (`None` for
/// deletes). In one transaction where the server has them; on a standalone server in order
/// without one, undoing the earlier ops when one fails: readers may see part of such a batch
/// meanwhile, and a crash between an op and its undo leaves it (STORAGE.md, ADR 0018).
pub(crate) async fn write_batch(db: &Db, ops: &[BatchOp<'_>]) -> Result<Vec<Option<Document>>> {
    let mut session = db
        .client
        .start_session()
        .await
        .map_err(|e| errors::map(e, Ctx::default()))?;
    if !db.transactions {
        let mut undo = Vec::new();
        return match run_batch(ops, &mut session, Some(&mut undo)).await {
            Ok(out) => Ok(out),
            Err(f) => {
                undo_batch(undo, &mut session).await;
                Err(f.error)
            }
        };
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        session
            .start_transaction()
            .await
            .map_err(|e| errors::map(e, Ctx::default()))?;
        let f = match run_batch(ops, &mut session, None).await {
            Ok(out) => match session.commit_transaction().await {
                Ok(()) => return Ok(out),
                Err(e) => failed(e, Ctx::default()),
            },
            Err(f) => {
                // The error that matters is the op's; a failed abort changes nothing.
                let _ = session.abort_transaction().await;
                f
            }
        };
        if !(f.transient && attempt < BATCH_ATTEMPTS) {
            return Err(f.error);
        }
    }
}

async fn run_batch<'a>(
    ops: &'a [BatchOp<'a>],
    session: &mut ClientSession,
    mut undo: Option<&mut Vec<Undo<'a>>>,
) -> std::result::Result<Vec<Option<Document>>, Failed> {
    let mut out = Vec::with_capacity(ops.len());
    let mut i = 0;
    while i < ops.len() {
        // A run of inserts into one collection for one tenant (a bulk write's records, then
        // their audit entries, events, outbox entries) is one `insertMany`, not a round trip each.
        if let BatchOp::Insert { s, .. } = &ops[i] {
            let end = ops[i..]
                .iter()
                .position(|op| !matches!(op, BatchOp::Insert { s: o, .. } if same_target(s, o)))
                .map_or(ops.len(), |n| i + n);
            if end - i > 1 {
                out.extend(insert_run(s, &ops[i..end], session, undo.as_deref_mut()).await?);
                i = end;
                continue;
            }
        }
        out.push(run_op(&ops[i], session, undo.as_deref_mut()).await?);
        i += 1;
    }
    Ok(out)
}

fn same_target(a: &Scoped<'_>, b: &Scoped<'_>) -> bool {
    a.def.collection == b.def.collection && a.tenant == b.tenant
}

/// Inserts a run of [`BatchOp::Insert`]s of one target in order, as one `insertMany`.
async fn insert_run<'a>(
    s: &'a Scoped<'a>,
    run: &'a [BatchOp<'a>],
    session: &mut ClientSession,
    undo: Option<&mut Vec<Undo<'a>>>,
) -> std::result::Result<Vec<Option<Document>>, Failed> {
    let mut docs = Vec::with_capacity(run.len());
    for op in run {
        if let BatchOp::Insert { doc, .. } = op {
            let mut d = doc.clone();
            s.stamp(&mut d)?;
            docs.push(d);
        }
    }
    let written = s.coll.insert_many(&docs).session(&mut *session).await;
    if let Some(u) = undo {
        // Ordered inserts stop at the first failure: exactly the ones before it landed.
        let landed = match &written {
            Ok(_) => docs.len(),
            Err(e) => match e.kind.as_ref() {
                ErrorKind::InsertMany(m) => m
                    .write_errors
                    .as_ref()
                    .and_then(|ws| ws.iter().map(|w| w.index).min())
                    .unwrap_or(0),
                _ => 0,
            },
        };
        for d in &docs[..landed.min(docs.len())] {
            u.push(Undo::Inserted(
                s,
                d.get("_id").cloned().unwrap_or(Bson::Null),
            ));
        }
    }
    written.map_err(|e| failed(e, s.ctx()))?;
    Ok(docs.into_iter().map(Some).collect())
}

/// `{_id, ...guard}` with `_id` first (SecantusDB plans the `_id` index only then), or `$and`
/// when the guard names `_id` itself.
fn guarded_filter(id: ObjectId, guard: &Document) -> Document {
    if guard.contains_key("_id") {
        return doc! { "$and": [ { "_id": id }, guard.clone() ] };
    }
    let mut f = doc! { "_id": id };
    f.extend(guard.clone());
    f
}

/// Why a guarded op matched nothing: the record is gone (or another tenant's), or it changed.
async fn missing_or_stale(s: &Scoped<'_>, id: ObjectId, session: &mut ClientSession) -> Failed {
    match s
        .coll
        .find_one(s.scope(doc! { "_id": id }))
        .session(&mut *session)
        .await
    {
        Ok(Some(_)) => Error::Stale.into(),
        Ok(None) => Error::NotFound.into(),
        Err(e) => failed(e, s.ctx()),
    }
}

async fn run_op<'a>(
    op: &'a BatchOp<'a>,
    session: &mut ClientSession,
    undo: Option<&mut Vec<Undo<'a>>>,
) -> std::result::Result<Option<Document>, Failed> {
    match op {
        BatchOp::Insert { s, doc } => {
            let mut d = doc.clone();
            s.stamp(&mut d)?;
            s.coll
                .insert_one(&d)
                .session(&mut *session)
                .await
                .map_err(|e| failed(e, s.ctx()))?;
            if let Some(u) = undo {
                u.push(Undo::Inserted(
                    s,
                    d.get("_id").cloned().unwrap_or(Bson::Null),
                ));
            }
            Ok(Some(d))
        }
        BatchOp::Update {
            s,
            id,
            guard,
            update,
        } => {
            validate_update(s.def, update)?;
            let filter = s.scope(guarded_filter(*id, guard));
            if update.is_empty() {
                // MongoDB refuses an empty update document; nothing to change is a read.
                return match s
                    .coll
                    .find_one(filter)
                    .session(&mut *session)
                    .await
                    .map_err(|e| failed(e, s.ctx()))?
                {
                    Some(d) => Ok(Some(d)),
                    None => Err(missing_or_stale(s, *id, session).await),
                };
            }
            let ctx = Ctx::update(s.def, update);
            let u = translate::update(s.def, update);
            let Some(u_log) = undo else {
                return match s
                    .coll
                    .find_one_and_update(filter, u)
                    .return_document(ReturnDocument::After)
                    .session(&mut *session)
                    .await
                    .map_err(|e| failed(e, ctx))?
                {
                    Some(d) => Ok(Some(d)),
                    None => Err(missing_or_stale(s, *id, session).await),
                };
            };
            // Without a transaction the undo needs the record as it was, then the answer needs
            // it as it is.
            let Some(before) = s
                .coll
                .find_one_and_update(filter, u)
                .return_document(ReturnDocument::Before)
                .session(&mut *session)
                .await
                .map_err(|e| failed(e, ctx))?
            else {
                return Err(missing_or_stale(s, *id, session).await);
            };
            u_log.push(Undo::Updated(s, before));
            let after = s
                .coll
                .find_one(s.scope(doc! { "_id": *id }))
                .session(&mut *session)
                .await
                .map_err(|e| failed(e, s.ctx()))?;
            after.map(Some).ok_or_else(|| Error::NotFound.into())
        }
        BatchOp::Delete { s, id, guard } => {
            let gone = s
                .coll
                .find_one_and_delete(s.scope(guarded_filter(*id, guard)))
                .session(&mut *session)
                .await
                .map_err(|e| failed(e, s.ctx()))?;
            match gone {
                Some(d) => {
                    if let Some(u) = undo {
                        u.push(Undo::Deleted(s, d));
                    }
                    Ok(None)
                }
                None => Err(missing_or_stale(s, *id, session).await),
            }
        }
    }
}

/// Puts back, latest first, what a batch without a transaction did before it failed. Best
/// effort: an undo that fails is logged, and the batch's own error is what the caller gets.
async fn undo_batch(undo: Vec<Undo<'_>>, session: &mut ClientSession) {
    for u in undo.into_iter().rev() {
        let (collection, r) = match u {
            Undo::Inserted(s, id) => (
                s.def.collection,
                s.coll
                    .delete_one(s.scope(doc! { "_id": id }))
                    .session(&mut *session)
                    .await
                    .map(|_| ()),
            ),
            Undo::Updated(s, before) => {
                let id = before.get("_id").cloned().unwrap_or(Bson::Null);
                (
                    s.def.collection,
                    s.coll
                        .replace_one(s.scope(doc! { "_id": id }), before)
                        .session(&mut *session)
                        .await
                        .map(|_| ()),
                )
            }
            Undo::Deleted(s, doc) => (
                s.def.collection,
                s.coll
                    .insert_one(doc)
                    .session(&mut *session)
                    .await
                    .map(|_| ()),
            ),
        };
        if let Err(e) = r {
            tracing::error!(collection, error = %e, "could not undo part of a failed write batch");
        }
    }
}
