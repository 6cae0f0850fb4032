//! Tables, indexes and the per-collection facts queries rely on.
//!
//! One table per collection: `rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, ws TEXT NOT NULL,
//! doc TEXT NOT NULL`. The explicit `rid` is the table's rowid made stable (VACUUM may renumber an
//! implicit one), because the full-text table is keyed by it. Physically this is the same as
//! `id TEXT PRIMARY KEY` on a rowid table: a unique index on `id` pointing at the rowid.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crm_core::engine::{Document, resolve};
use crm_core::schema::{Dir, EntityDef, FieldKind, ID_FIELD, UniqueKey};
use crm_core::{Error, FieldPath, Result};

use crate::functions::text_values;
use crate::sql::{extract_expr, json_path, quote_ident};

/// Bookkeeping tables, created at open.
pub(crate) const BOOTSTRAP: &str = "
CREATE TABLE IF NOT EXISTS migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _crm_paths (
    coll TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    dirty INTEGER NOT NULL,
    PRIMARY KEY (coll, path)
);
CREATE TABLE IF NOT EXISTS _crm_text (
    coll TEXT PRIMARY KEY,
    fields TEXT NOT NULL
);
";

/// The fixed statements of a collection, built once.
#[derive(Debug)]
pub(crate) struct Stmts {
    pub get: String,
    pub get_rid: String,
    pub insert: String,
    pub update: String,
    pub delete: String,
    pub delete_id: String,
    pub fts_insert: Option<String>,
    pub fts_update: Option<String>,
    pub fts_delete: Option<String>,
}

impl Stmts {
    fn new(table: &str, fts: Option<&str>) -> Self {
        Self {
            get: format!("SELECT doc FROM {table} WHERE id = ?1 AND ws = ?2"),
            get_rid: format!("SELECT rid, doc FROM {table} WHERE id = ?1 AND ws = ?2"),
            insert: format!("INSERT INTO {table} (id, ws, doc) VALUES (?1, ?2, ?3)"),
            update: format!("UPDATE {table} SET doc = ?2 WHERE rid = ?1"),
            delete: format!("DELETE FROM {table} WHERE rid = ?1"),
            delete_id: format!("DELETE FROM {table} WHERE id = ?1 AND ws = ?2 RETURNING rid"),
            fts_insert: fts.map(|f| format!("INSERT INTO {f} (rowid, body) VALUES (?1, ?2)")),
            fts_update: fts.map(|f| format!("UPDATE {f} SET body = ?2 WHERE rowid = ?1")),
            fts_delete: fts.map(|f| format!("DELETE FROM {f} WHERE rowid = ?1")),
        }
    }
}

/// What the store knows about one collection once its schema is ensured.
#[derive(Debug)]
pub(crate) struct Coll {
    /// The declaration it was ensured for (two declarations may share a collection in tests).
    pub def: &'static EntityDef,
    /// Quoted table name.
    pub table: String,
    /// Quoted full-text table name, when the entity has text fields.
    pub fts: Option<String>,
    pub stmts: Stmts,
    /// Declared scalar paths and their kinds: checked on every write.
    pub scalars: Vec<(FieldPath, FieldKind)>,
    /// The scalar paths known to hold only missing, null or declared-kind values.
    pub clean: RwLock<HashSet<String>>,
    /// Bumped whenever a path stops being clean, so a read that planned with the old set can
    /// tell and plan again.
    pub epoch: AtomicU64,
}

fn kind_name(k: FieldKind) -> &'static str {
    match k {
        FieldKind::Id => "id",
        FieldKind::Text => "text",
        FieldKind::Date => "date",
        FieldKind::Number => "number",
        FieldKind::Bool => "bool",
        _ => "other",
    }
}

/// The JSON types a scalar kind allows (besides null).
fn allowed_types(k: FieldKind) -> &'static [&'static str] {
    match k {
        FieldKind::Id | FieldKind::Text | FieldKind::Date => &["text"],
        FieldKind::Number => &["integer", "real"],
        FieldKind::Bool => &["true", "false"],
        _ => &[],
    }
}

fn fits(k: FieldKind, v: &Value) -> bool {
    match k {
        FieldKind::Id | FieldKind::Text | FieldKind::Date => v.is_string(),
        FieldKind::Number => v.is_number(),
        FieldKind::Bool => v.is_boolean(),
        _ => false,
    }
}

fn is_scalar(k: FieldKind) -> bool {
    matches!(
        k,
        FieldKind::Id | FieldKind::Text | FieldKind::Date | FieldKind::Number | FieldKind::Bool
    )
}

/// Declared scalar paths: the fields, the tenant field and the timestamps.
fn scalar_paths(def: &EntityDef) -> Vec<(FieldPath, FieldKind)> {
    let mut paths: Vec<&'static str> = def.fields.iter().map(|f| f.path).collect();
    paths.extend(def.tenant_field());
    if def.timestamps {
        paths.extend([crm_core::schema::CREATED_AT, crm_core::schema::UPDATED_AT]);
    }
    let mut out: Vec<(FieldPath, FieldKind)> = Vec::new();
    for p in paths {
        let k = def.kind_of(p);
        if p != ID_FIELD
            && is_scalar(k)
            && json_path(p).is_ok()
            && !out.iter().any(|(q, _)| q.as_str() == p)
        {
            out.push((FieldPath::from_static(p), k));
        }
    }
    out
}

/// `<collection>__uq__<key>__on__<field>.<kind>...`: the key's name (for `Conflict`) and
/// everything its definition depends on, so a changed key gets a new index.
fn unique_index_name(def: &EntityDef, uk: &UniqueKey) -> String {
    let mut name = format!("{}__uq__{}__on", def.collection, uk.name);
    for f in uk.fields {
        name.push_str(&format!("__{f}.{}", kind_name(def.kind_of(f))));
    }
    name
}

/// The unique key named by an index name from [`unique_index_name`].
pub(crate) fn unique_key_of(index: &str) -> Option<&str> {
    let rest = index.split_once("__uq__")?.1;
    Some(rest.rsplit_once("__on__").map_or(rest, |(k, _)| k))
}

fn key_expr(def: &EntityDef, path: &str) -> Result<String> {
    if path == ID_FIELD {
        return Ok("id".into());
    }
    if Some(path) == def.tenant_field() {
        return Ok("ws".into());
    }
    let jp = json_path(path)
        .map_err(|_| Error::Internal(format!("{}: bad index path {path}", def.name)))?;
    Ok(extract_expr("", &jp))
}

/// The full-text body of a document: its text values, lower-cased (so the trigram index sees
/// what `icontains` compares), one per line; search words hold no whitespace, so no match
/// spans two values.
pub(crate) fn fts_body(def: &EntityDef, doc: &Document) -> String {
    let mut hay = Vec::new();
    for f in def.text {
        text_values(resolve(doc, &FieldPath::from_static(f)), &mut hay);
    }
    let mut body = String::new();
    for h in hay {
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(&h.to_lowercase());
    }
    body
}

/// Creates what is missing for `def` and returns its state. Runs in the caller's transaction.
pub(crate) fn ensure(conn: &Connection, def: &'static EntityDef) -> Result<Coll> {
    let table = quote_ident(def.collection);
    let ddl = |sql: &str| conn.execute_batch(sql).map_err(crate::map_err);
    ddl(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            rid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            ws TEXT NOT NULL,
            doc TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS {} ON {table} (ws, id);",
        quote_ident(&format!("{}__ws_id", def.collection))
    ))?;
    let mut wanted = Vec::new();
    for keys in def.effective_indexes() {
        // Tenant first (TTL indexes too: every query has `ws = ?`), `id` last, so a sort on
        // (keys..., _id) walks the index and a keyset page seeks into it.
        let mut exprs = vec!["ws".to_owned()];
        let mut cols = vec!["ws".to_owned()];
        let mut name = format!("{}__ix", def.collection);
        for (path, dir) in &keys {
            let expr = key_expr(def, path)?;
            let d = if *dir == Dir::Desc { "desc" } else { "asc" };
            name.push_str(&format!("__{path}_{d}"));
            if !exprs.contains(&expr) {
                cols.push(format!("{expr} {}", d.to_uppercase()));
                exprs.push(expr);
            }
        }
        if !exprs.iter().any(|c| c == "id") {
            cols.push("id".into());
        }
        wanted.push(name.clone());
        ddl(&format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} ({})",
            quote_ident(&name),
            cols.join(", ")
        ))?;
    }
    for uk in def.unique {
        let mut cols = vec!["ws".to_owned()];
        let mut conds = Vec::new();
        for f in uk.fields {
            cols.push(key_expr(def, f)?);
            let jp = json_path(f)
                .map_err(|_| Error::Internal(format!("{}: bad unique path {f}", def.name)))?;
            let types = allowed_types(def.kind_of(f))
                .iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ");
            conds.push(format!("json_type(doc, '{jp}') IN ({types})"));
        }
        let name = unique_index_name(def, uk);
        ddl(&format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {table} ({}) WHERE {}",
            quote_ident(&name),
            cols.join(", "),
            conds.join(" AND ")
        ))?;
        wanted.push(name);
    }
    drop_stale_indexes(conn, def, &wanted)?;
    let fts = ensure_fts(conn, def, &table)?;
    let scalars = scalar_paths(def);
    let clean = check_paths(conn, def, &table, &scalars)?;
    Ok(Coll {
        def,
        stmts: Stmts::new(&table, fts.as_deref()),
        table,
        fts,
        scalars,
        clean: RwLock::new(clean),
        epoch: AtomicU64::new(0),
    })
}

/// Drops the indexes of keys and unique keys the declaration no longer has: a stale unique
/// index would keep refusing writes the entity now allows.
fn drop_stale_indexes(conn: &Connection, def: &EntityDef, wanted: &[String]) -> Result<()> {
    let ours = [
        format!("{}__ix__", def.collection),
        format!("{}__uq__", def.collection),
    ];
    let existing: Vec<String> = {
        let mut st = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1")
            .map_err(crate::map_err)?;
        st.query_map([def.collection], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(crate::map_err)?
    };
    for name in existing {
        if ours.iter().any(|p| name.starts_with(p.as_str())) && !wanted.contains(&name) {
            tracing::info!(
                index = name.as_str(),
                "dropping an index no longer declared"
            );
            conn.execute_batch(&format!("DROP INDEX {}", quote_ident(&name)))
                .map_err(crate::map_err)?;
        }
    }
    Ok(())
}

fn ensure_fts(conn: &Connection, def: &EntityDef, table: &str) -> Result<Option<String>> {
    let fts = quote_ident(&format!("{}__fts", def.collection));
    let fields = def.text.join("\n");
    let known: Option<String> = conn
        .query_row(
            "SELECT fields FROM _crm_text WHERE coll = ?1",
            [def.collection],
            |r| r.get(0),
        )
        .optional()
        .map_err(crate::map_err)?;
    if def.text.is_empty() {
        if known.is_some() {
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {fts}"))
                .map_err(crate::map_err)?;
            conn.execute("DELETE FROM _crm_text WHERE coll = ?1", [def.collection])
                .map_err(crate::map_err)?;
        }
        return Ok(None);
    }
    if known.as_deref() == Some(fields.as_str()) {
        return Ok(Some(fts));
    }
    // New, or the text fields changed: (re)build the index from the stored documents.
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS {fts};
         CREATE VIRTUAL TABLE {fts} USING fts5(body, tokenize = 'trigram case_sensitive 0');"
    ))
    .map_err(crate::map_err)?;
    {
        let mut read = conn
            .prepare(&format!("SELECT rid, doc FROM {table}"))
            .map_err(crate::map_err)?;
        let mut write = conn
            .prepare(&format!("INSERT INTO {fts} (rowid, body) VALUES (?1, ?2)"))
            .map_err(crate::map_err)?;
        let mut rows = read.query([]).map_err(crate::map_err)?;
        while let Some(r) = rows.next().map_err(crate::map_err)? {
            let rid: i64 = r.get(0).map_err(crate::map_err)?;
            let text: String = r.get(1).map_err(crate::map_err)?;
            let doc: Document = serde_json::from_str(&text).map_err(Error::internal)?;
            write
                .execute(params![rid, fts_body(def, &doc)])
                .map_err(crate::map_err)?;
        }
    }
    conn.execute(
        "INSERT OR REPLACE INTO _crm_text (coll, fields) VALUES (?1, ?2)",
        params![def.collection, fields],
    )
    .map_err(crate::map_err)?;
    Ok(Some(fts))
}

/// Which declared scalar paths are clean. A path not yet checked for its kind is checked with
/// one scan (instant on a new table), then remembered.
fn check_paths(
    conn: &Connection,
    def: &EntityDef,
    table: &str,
    scalars: &[(FieldPath, FieldKind)],
) -> Result<HashSet<String>> {
    let mut clean = HashSet::new();
    for (path, kind) in scalars {
        let path = path.as_str();
        let known: Option<(String, bool)> = conn
            .query_row(
                "SELECT kind, dirty FROM _crm_paths WHERE coll = ?1 AND path = ?2",
                params![def.collection, path],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(crate::map_err)?;
        let dirty = match known {
            Some((k, dirty)) if k == kind_name(*kind) => dirty,
            _ => {
                let jp = json_path(path)?;
                let types = allowed_types(*kind)
                    .iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let dirty: bool = conn
                    .query_row(
                        &format!(
                            "SELECT EXISTS (SELECT 1 FROM {table} \
                             WHERE json_type(doc, '{jp}') NOT IN ('null', {types}))"
                        ),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(crate::map_err)?;
                conn.execute(
                    "INSERT OR REPLACE INTO _crm_paths (coll, path, kind, dirty) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![def.collection, path, kind_name(*kind), dirty],
                )
                .map_err(crate::map_err)?;
                dirty
            }
        };
        if !dirty {
            clean.insert(path.to_owned());
        }
    }
    Ok(clean)
}

impl Coll {
    pub(crate) fn is_clean(&self, path: &str) -> bool {
        self.clean.read().contains(path)
    }

    /// Before a document is written (in the write's transaction, before commit): records the
    /// clean paths where it holds a value of another kind. Memory is marked first, so a reader
    /// that can see the document also sees the new epoch.
    pub(crate) fn note_written(&self, conn: &Connection, doc: &Document) -> Result<()> {
        let dirtied: Vec<(&FieldPath, FieldKind)> = {
            let clean = self.clean.read();
            self.scalars
                .iter()
                .filter(|(p, k)| {
                    clean.contains(p.as_str())
                        && resolve(doc, p).is_some_and(|v| !v.is_null() && !fits(*k, v))
                })
                .map(|(p, k)| (p, *k))
                .collect()
        };
        for (path, kind) in dirtied {
            tracing::warn!(
                collection = self.def.collection,
                path = path.as_str(),
                "a value not of the declared kind was stored; queries on this path stop using indexes"
            );
            self.clean.write().remove(path.as_str());
            self.epoch.fetch_add(1, Ordering::SeqCst);
            conn.execute(
                "INSERT OR REPLACE INTO _crm_paths (coll, path, kind, dirty) \
                 VALUES (?1, ?2, ?3, 1)",
                params![self.def.collection, path.as_str(), kind_name(kind)],
            )
            .map_err(crate::map_err)?;
        }
        Ok(())
    }
}
