//! The storage ports. Every data method takes a [`Tenant`]; adapters add it to every filter,
//! stamp it on every insert and refuse to change it, so no caller can forget it.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::engine::Document;
use crate::error::{Error, Result};
use crate::id::{ObjectId, WorkspaceId};
use crate::query::{Filter, FindOptions, GroupBy, GroupRow, Update};
use crate::schema::EntityDef;

/// Whose data an operation may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tenant {
    Workspace(WorkspaceId),
    /// Only for entities declared [`crate::schema::Tenancy::Global`].
    Global,
}

impl Tenant {
    /// The workspace to filter on, after checking the tenant fits the entity. Adapters call this
    /// first in every method.
    pub fn check(self, def: &EntityDef) -> Result<Option<WorkspaceId>> {
        match (self, def.tenant_field()) {
            (Tenant::Workspace(ws), Some(_)) => Ok(Some(ws)),
            (Tenant::Global, None) => Ok(None),
            (Tenant::Global, Some(_)) => Err(Error::Internal(format!(
                "{} is workspace-scoped and needs a workspace",
                def.name
            ))),
            (Tenant::Workspace(_), None) => Err(Error::Internal(format!(
                "{} is global and takes no workspace",
                def.name
            ))),
        }
    }
}

/// One write of an atomic batch ([`DocumentStore::write_batch`]). Each op names its own tenant,
/// checked as in the single-record methods.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Insert {
        t: Tenant,
        def: &'static EntityDef,
        doc: Document,
    },
    /// Applies `update` to record `id` only while it still matches `guard`; otherwise the whole
    /// batch fails with [`Error::Stale`] (or [`Error::NotFound`] when the record is gone).
    Update {
        t: Tenant,
        def: &'static EntityDef,
        id: ObjectId,
        update: Update,
        guard: Filter,
    },
    /// Deletes record `id` only while it still matches `guard`, as `Update`.
    Delete {
        t: Tenant,
        def: &'static EntityDef,
        id: ObjectId,
        guard: Filter,
    },
}

/// Default [`DocumentStore::write_batch`]: op by op, not atomic. Adapters override it; this is
/// for test doubles.
pub async fn write_batch_sequentially<S: DocumentStore + ?Sized>(
    store: &S,
    ops: Vec<WriteOp>,
) -> Result<Vec<Option<Document>>> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match op {
            WriteOp::Insert { t, def, doc } => Some(store.insert(t, def, doc).await?),
            WriteOp::Update {
                t,
                def,
                id,
                update,
                guard,
            } => {
                check_guard(store, t, def, id, &guard).await?;
                Some(store.update_one(t, def, id, &update).await?)
            }
            WriteOp::Delete { t, def, id, guard } => {
                check_guard(store, t, def, id, &guard).await?;
                store.delete_one(t, def, id).await?;
                None
            }
        });
    }
    Ok(out)
}

async fn check_guard<S: DocumentStore + ?Sized>(
    store: &S,
    t: Tenant,
    def: &'static EntityDef,
    id: ObjectId,
    guard: &Filter,
) -> Result<()> {
    let doc = store.get(t, def, id).await?;
    if !crate::engine::matches(def, &doc, &crate::engine::normalize_filter(def, guard)?) {
        return Err(Error::Stale);
    }
    Ok(())
}

/// CRUD, query and aggregation over the documents of one declared entity, within one tenant.
///
/// Contracts every adapter keeps (the contract suite in `storage-contract` checks them):
/// - a record of another tenant behaves exactly as a missing one (`NotFound`, not counted);
/// - `insert` keeps a given `_id` or makes one, stamps the tenant field, and returns
///   `Conflict { key }` naming the declared unique key it would violate;
/// - updates never change `_id` or the tenant field (`Invalid`), and a failed write changes nothing;
/// - `find` sorts by the given keys then `_id`, and text search uses the declared text fields.
#[async_trait]
pub trait DocumentStore: Send + Sync + Debug {
    async fn insert(&self, t: Tenant, def: &'static EntityDef, doc: Document) -> Result<Document>;
    /// All or nothing.
    async fn insert_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        docs: Vec<Document>,
    ) -> Result<u64>;
    async fn get(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<Document>;
    async fn find(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>>;
    async fn count(&self, t: Tenant, def: &'static EntityDef, filter: &Filter) -> Result<u64>;
    /// Returns the document after the update.
    async fn update_one(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        id: ObjectId,
        update: &Update,
    ) -> Result<Document>;
    async fn update_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64>;
    /// Atomically updates the first match (by `_id`) and returns it after the update; with
    /// `upsert`, inserts one built from the filter's equalities when none matches.
    async fn find_one_and_update(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
        upsert: bool,
    ) -> Result<Option<Document>>;
    async fn delete_one(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<()>;
    async fn delete_many(&self, t: Tenant, def: &'static EntityDef, filter: &Filter)
    -> Result<u64>;
    async fn aggregate(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        group: &GroupBy,
    ) -> Result<Vec<GroupRow>>;
    /// All the ops or none, in order; returns each op's document after it (`None` for deletes).
    /// This is how a change and its audit entry and domain event are written together.
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<Option<Document>>> {
        write_batch_sequentially(self, ops).await
    }
}

/// A migration that has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: u32,
    pub name: String,
    pub applied_at: crate::time::Timestamp,
}

/// Operations that are not on behalf of a workspace: start-up, health, migrations. Never reachable
/// from a request handler.
#[async_trait]
pub trait StoreAdmin: Send + Sync + Debug {
    /// Cheap round trip, for `/ready`.
    async fn ping(&self) -> Result<()>;
    /// Creates collections/tables, indexes and unique keys for the entities; idempotent.
    async fn ensure_schema(&self, defs: &[&'static EntityDef]) -> Result<()>;
    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>>;
    async fn record_migration(&self, m: &AppliedMigration) -> Result<()>;
    async fn forget_migration(&self, version: u32) -> Result<()>;
    /// A maintenance update over every tenant's documents (migrations only).
    async fn update_all_tenants(
        &self,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64>;
    /// A short name for logs and benchmarks ("memory", "sqlite", "mongo").
    fn backend(&self) -> &'static str;
    /// Raw all-tenant maintenance for `doctor` and the cut-over migrations (ADR 0025); `None`
    /// where no other program's data can be (memory).
    fn legacy(&self) -> Option<&dyn crate::migrations::LegacyAdmin> {
        None
    }
}

/// The two faces of one storage backend.
#[derive(Debug, Clone)]
pub struct Storage {
    pub docs: Arc<dyn DocumentStore>,
    pub admin: Arc<dyn StoreAdmin>,
}

impl Storage {
    pub fn new<S: DocumentStore + StoreAdmin + 'static>(s: Arc<S>) -> Self {
        Self {
            docs: s.clone(),
            admin: s,
        }
    }
}
