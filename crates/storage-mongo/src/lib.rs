//! MongoDB storage: `crm_core`'s ports over the official driver.
//!
//! Documents keep the original's shape (camelCase names, `_id`, `workspaceId`, `createdAt`), with
//! BSON types chosen from the entity declaration (see [`convert`]). All collection access goes
//! through the `raw` module, which scopes every call to the tenant.
//!
//! Full-text search: on a server with text indexes a text index over the declared fields serves
//! `$text`; on one without (SecantusDB, the test server) every word is a case-insensitive
//! substring match on one of the fields, which is the reference engine's own semantics.

mod convert;
mod errors;
mod legacy;
mod raw;
mod translate;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use crm_core::engine::{apply_update, cmp_values, normalize_filter, upsert_seed, validate_update};
use crm_core::schema::FieldKind;
use crm_core::store::{AppliedMigration, WriteOp};
use crm_core::{
    Dir, Document, DocumentStore, EntityDef, Error, Filter, FindOptions, GroupBy, GroupRow,
    ObjectId, Result, StoreAdmin, Tenant, Timestamp, Update,
};
use mongodb::bson::{Bson, DateTime, Document as BsonDoc, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, IndexModel};

use crate::convert::{from_bson, from_document, oid, to_document};
use crate::raw::{BatchOp, Db, Scoped};
pub use crate::translate::TextMode;

/// The database used when the URI names none.
pub const DEFAULT_DATABASE: &str = "clianta";
/// How long to look for a server before failing; `serverSelectionTimeoutMS` in the URI wins.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// An upsert that keeps losing the insert race to a record that then no longer matches gives up.
const UPSERT_ATTEMPTS: u32 = 3;

/// A MongoDB database holding Clianta's collections. Cheap to clone.
#[derive(Clone)]
pub struct MongoStore {
    db: Db,
    text: TextMode,
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("database", &self.db.db.name())
            .field("text", &self.text)
            .field("transactions", &self.db.transactions)
            .finish()
    }
}

impl MongoStore {
    /// Connects to the database named in the URI's path (default `clianta`). Fails with
    /// `Unavailable` when no server answers within the server-selection timeout (5 s unless the
    /// URI sets `serverSelectionTimeoutMS`).
    pub async fn connect(uri: &str) -> Result<Self> {
        Self::open(uri, None).await
    }

    /// Connects to `db_name`, whatever the URI's path says.
    pub async fn connect_db(uri: &str, db_name: &str) -> Result<Self> {
        Self::open(uri, Some(db_name)).await
    }

    async fn open(uri: &str, db_name: Option<&str>) -> Result<Self> {
        let mut opts = ClientOptions::parse(uri).await.map_err(|e| {
            if matches!(*e.kind, mongodb::error::ErrorKind::DnsResolve { .. }) {
                Error::Unavailable(format!("MongoDB URI does not resolve: {e}"))
            } else {
                Error::invalid("mongodb uri", e.to_string())
            }
        })?;
        let timeout = *opts
            .server_selection_timeout
            .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
        opts.connect_timeout
            .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
        opts.app_name.get_or_insert_with(|| "clianta".to_owned());
        let name = db_name
            .map(str::to_owned)
            .or_else(|| opts.default_database.clone())
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let hosts = opts
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let client =
            Client::with_options(opts).map_err(|e| Error::invalid("mongodb uri", e.to_string()))?;
        let database = client.database(&name);
        let hello = database
            .run_command(doc! { "hello": 1 })
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "MongoDB at {hosts} did not answer within {}s: {e}",
                    timeout.as_secs_f64()
                ))
            })?;
        let transactions =
            hello.get_str("setName").is_ok() || hello.get_str("msg") == Ok("isdbgrid");
        let db = Db {
            client,
            db: database,
            transactions,
        };
        let text = if raw::probe_text_index(&db).await? {
            TextMode::Index
        } else {
            TextMode::Regex
        };
        tracing::info!(database = %name, hosts = %hosts, ?text, transactions, "connected to MongoDB");
        Ok(Self { db, text })
    }

    /// Whether the server builds text indexes (real MongoDB) and `$text` serves text search.
    pub fn supports_text_index(&self) -> bool {
        self.text == TextMode::Index
    }

    /// How text search runs on this server.
    pub fn text_mode(&self) -> TextMode {
        self.text
    }

    /// Runs text search by the substring fallback even where `$text` is available (its exact
    /// semantics are the reference engine's; `$text` matches whole words only).
    pub fn with_text_fallback(mut self) -> Self {
        self.text = TextMode::Regex;
        self
    }

    /// Whether multi-document writes (`insert_many`, `update_many`) run in a transaction; false
    /// on a standalone server, where a failed `insert_many` is undone by deleting what it wrote.
    pub fn supports_transactions(&self) -> bool {
        self.db.transactions
    }

    /// Behaves as on a standalone server: no transactions (tests of that path).
    pub fn without_transactions(mut self) -> Self {
        self.db.transactions = false;
        self
    }

    pub fn database_name(&self) -> &str {
        self.db.db.name()
    }

    /// Drops the whole database (tests).
    pub async fn drop_database(&self) -> Result<()> {
        self.db
            .db
            .drop()
            .await
            .map_err(|e| errors::map(e, errors::Ctx::default()))
    }

    fn scoped(&self, t: Tenant, def: &'static EntityDef) -> Result<Scoped<'_>> {
        Scoped::new(&self.db, def, t)
    }

    fn filter(&self, def: &EntityDef, f: &Filter) -> Result<BsonDoc> {
        translate::filter(def, f, self.text)
    }
}

fn kind_type(def: &EntityDef, field: &str) -> Result<&'static str> {
    Ok(match def.kind_of(field) {
        FieldKind::Text => "string",
        FieldKind::Id => "objectId",
        FieldKind::Date => "date",
        FieldKind::Number => "number",
        FieldKind::Bool => "bool",
        k => {
            return Err(Error::Internal(format!(
                "{}: unique field {field} has kind {k:?}, which has no BSON type",
                def.name
            )));
        }
    })
}

fn key_doc(keys: &[(&str, Dir)]) -> BsonDoc {
    keys.iter()
        .map(|(k, d)| {
            let dir = if *d == Dir::Desc { -1 } else { 1 };
            ((*k).to_owned(), Bson::Int32(dir))
        })
        .collect()
}

/// The indexes an entity declares: plain and TTL ones under MongoDB's default names, each unique
/// key as a partial unique index (only documents where every field has its declared type take
/// part, so many documents may lack the value), and the text index where supported.
fn index_models(def: &EntityDef, text: TextMode) -> Result<Vec<IndexModel>> {
    def.validate()?;
    let mut models = Vec::new();
    let mut unique_keys = Vec::new();
    for uk in def.unique {
        let mut keys: Vec<(&str, Dir)> = Vec::new();
        if let Some(t) = def.tenant_field() {
            keys.push((t, Dir::Asc));
        }
        keys.extend(uk.fields.iter().map(|f| (*f, Dir::Asc)));
        let mut partial = BsonDoc::new();
        for f in uk.fields {
            partial.insert(*f, doc! { "$type": kind_type(def, f)? });
        }
        let keys = key_doc(&keys);
        unique_keys.push(keys.clone());
        models.push(
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(raw::unique_index_name(def, uk))
                        .unique(true)
                        .partial_filter_expression(partial)
                        .build(),
                )
                .build(),
        );
    }
    for (ix, keys) in def.indexes.iter().zip(def.effective_indexes()) {
        let keys = key_doc(&keys);
        // A unique index on the same keys serves the same queries (and MongoDB refuses a second
        // index with the same key pattern).
        if unique_keys.contains(&keys) {
            continue;
        }
        let opts = ix.ttl_seconds.map(|s| {
            IndexOptions::builder()
                .expire_after(Duration::from_secs(s))
                .build()
        });
        models.push(IndexModel::builder().keys(keys).options(opts).build());
    }
    if text == TextMode::Index && !def.text.is_empty() {
        models.push(raw::text_index_model(def));
    }
    Ok(models)
}

fn as_u64(b: Option<&Bson>) -> u64 {
    match b {
        Some(Bson::Int32(i)) => u64::try_from(*i).unwrap_or(0),
        Some(Bson::Int64(i)) => u64::try_from(*i).unwrap_or(0),
        Some(Bson::Double(f)) if *f >= 0.0 => *f as u64,
        _ => 0,
    }
}

fn as_f64(b: Option<&Bson>) -> f64 {
    match b {
        Some(Bson::Int32(i)) => f64::from(*i),
        Some(Bson::Int64(i)) => *i as f64,
        Some(Bson::Double(f)) => *f,
        _ => 0.0,
    }
}

#[async_trait]
impl DocumentStore for MongoStore {
    async fn insert(&self, t: Tenant, def: &'static EntityDef, doc: Document) -> Result<Document> {
        let s = self.scoped(t, def)?;
        Ok(from_document(s.insert_one(to_document(def, &doc)).await?))
    }

    async fn insert_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        docs: Vec<Document>,
    ) -> Result<u64> {
        let s = self.scoped(t, def)?;
        s.insert_many(docs.iter().map(|d| to_document(def, d)).collect())
            .await
    }

    async fn get(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<Document> {
        let s = self.scoped(t, def)?;
        s.find_by_id(oid(id))
            .await?
            .map(from_document)
            .ok_or(Error::NotFound)
    }

    async fn find(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        let s = self.scoped(t, def)?;
        let docs = s
            .find(
                self.filter(def, filter)?,
                translate::sort(&opts.sort),
                opts.skip,
                opts.limit,
            )
            .await?;
        Ok(docs.into_iter().map(from_document).collect())
    }

    async fn count(&self, t: Tenant, def: &'static EntityDef, filter: &Filter) -> Result<u64> {
        let s = self.scoped(t, def)?;
        s.count(self.filter(def, filter)?).await
    }

    async fn update_one(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        id: ObjectId,
        update: &Update,
    ) -> Result<Document> {
        let s = self.scoped(t, def)?;
        // MongoDB refuses an empty update document; nothing to change is a read.
        let found = if update.is_empty() {
            s.find_by_id(oid(id)).await?
        } else {
            s.update_by_id(oid(id), update).await?
        };
        found.map(from_document).ok_or(Error::NotFound)
    }

    async fn update_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        let s = self.scoped(t, def)?;
        let f = self.filter(def, filter)?;
        if update.is_empty() {
            return s.count(f).await;
        }
        s.update_many(f, update).await
    }

    async fn find_one_and_update(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
        upsert: bool,
    ) -> Result<Option<Document>> {
        let s = self.scoped(t, def)?;
        let f = self.filter(def, filter)?;
        validate_update(def, update)?;
        // Upsert as MongoDB runs it inside the server: update the first match, else insert the
        // seed, and on a duplicate key (a concurrent upsert won) update again. Done here because
        // SecantusDB answers a findAndModify upsert that loses that race with a null document
        // although its update was applied; the seed is the engine's, so it is exact everywhere.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let found = if update.is_empty() {
                // MongoDB refuses an empty update document; nothing to change is a read.
                s.find(f.clone(), doc! { "_id": 1 }, 0, Some(1))
                    .await?
                    .into_iter()
                    .next()
            } else {
                s.find_one_and_update(f.clone(), update).await?
            };
            if found.is_some() || !upsert {
                return Ok(found.map(from_document));
            }
            let mut seed = upsert_seed(&normalize_filter(def, filter)?)?;
            apply_update(def, &mut seed, update, true)?;
            match s.insert_one(to_document(def, &seed)).await {
                Ok(d) => return Ok(Some(from_document(d))),
                Err(Error::Conflict { .. }) if attempt < UPSERT_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
        }
    }

    async fn delete_one(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<()> {
        let s = self.scoped(t, def)?;
        if s.delete_by_id(oid(id)).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    async fn delete_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
    ) -> Result<u64> {
        let s = self.scoped(t, def)?;
        s.delete_many(self.filter(def, filter)?).await
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<Option<Document>>> {
        let ops = ops
            .iter()
            .map(|op| {
                Ok(match op {
                    WriteOp::Insert { t, def, doc } => BatchOp::Insert {
                        s: self.scoped(*t, def)?,
                        doc: to_document(def, doc),
                    },
                    WriteOp::Update {
                        t,
                        def,
                        id,
                        update,
                        guard,
                    } => {
                        validate_update(def, update)?;
                        BatchOp::Update {
                            s: self.scoped(*t, def)?,
                            id: oid(*id),
                            guard: self.filter(def, guard)?,
                            update: update.clone(),
                        }
                    }
                    WriteOp::Delete { t, def, id, guard } => BatchOp::Delete {
                        s: self.scoped(*t, def)?,
                        id: oid(*id),
                        guard: self.filter(def, guard)?,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(raw::write_batch(&self.db, &ops)
            .await?
            .into_iter()
            .map(|d| d.map(from_document))
            .collect())
    }

    async fn aggregate(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        group: &GroupBy,
    ) -> Result<Vec<GroupRow>> {
        let s = self.scoped(t, def)?;
        let rows = s
            .aggregate(
                self.filter(def, &group.filter)?,
                translate::group_stages(group),
            )
            .await?;
        let mut out: Vec<GroupRow> = rows
            .into_iter()
            .map(|r| GroupRow {
                key: from_bson(r.get("_id").cloned().unwrap_or(Bson::Null)),
                count: as_u64(r.get("count")),
                sums: (0..group.sums.len())
                    .map(|i| as_f64(r.get(format!("s{i}"))))
                    .collect(),
            })
            .collect();
        // BSON orders ids and dates apart from text; rows follow the engine's order of the keys
        // as the port shows them.
        out.sort_by(|a, b| cmp_values(&a.key, &b.key));
        Ok(out)
    }
}

#[async_trait]
impl StoreAdmin for MongoStore {
    async fn ping(&self) -> Result<()> {
        self.db
            .db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| errors::map(e, errors::Ctx::default()))?;
        Ok(())
    }

    async fn ensure_schema(&self, defs: &[&'static EntityDef]) -> Result<()> {
        for def in defs {
            raw::create_indexes(&self.db, def.collection, index_models(def, self.text)?).await?;
        }
        Ok(())
    }

    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        raw::applied_migrations(&self.db)
            .await?
            .into_iter()
            .map(|d| {
                let bad = || Error::Internal(format!("malformed migration record {d}"));
                let version = match d.get("_id") {
                    Some(Bson::Int32(v)) => u32::try_from(*v).map_err(|_| bad())?,
                    Some(Bson::Int64(v)) => u32::try_from(*v).map_err(|_| bad())?,
                    _ => return Err(bad()),
                };
                Ok(AppliedMigration {
                    version,
                    name: d.get_str("name").map_err(|_| bad())?.to_owned(),
                    applied_at: Timestamp::from_millis(
                        d.get_datetime("appliedAt")
                            .map_err(|_| bad())?
                            .timestamp_millis(),
                    ),
                })
            })
            .collect()
    }

    async fn record_migration(&self, m: &AppliedMigration) -> Result<()> {
        raw::record_migration(
            &self.db,
            migration_version(m.version)?,
            &m.name,
            DateTime::from_millis(m.applied_at.millis()),
        )
        .await
    }

    async fn forget_migration(&self, version: u32) -> Result<()> {
        raw::forget_migration(&self.db, migration_version(version)?).await
    }

    async fn update_all_tenants(
        &self,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        raw::update_all_tenants(&self.db, def, self.filter(def, filter)?, update).await
    }

    fn backend(&self) -> &'static str {
        "mongo"
    }

    fn legacy(&self) -> Option<&dyn crm_core::migrations::LegacyAdmin> {
        Some(self)
    }
}

fn migration_version(v: u32) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::invalid("version", "migration versions stop at 2^31-1"))
}
