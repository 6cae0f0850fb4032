//! A memory store wrapped to count port calls and, on request, to misbehave.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use crm_core::engine::Document;
use crm_core::store::{AppliedMigration, WriteOp, write_batch_sequentially};
use crm_core::{
    DocumentStore, EntityDef, Filter, FindOptions, GroupBy, GroupRow, ObjectId, Result, Storage,
    StoreAdmin, Tenant, Update,
};
use storage_memory::MemoryStore;

#[derive(Debug, Default)]
pub struct Wrapped {
    pub inner: MemoryStore,
    /// Port calls, counting `ensure_schema` once per entity (one index batch each on MongoDB).
    pub ops: Arc<AtomicU64>,
    /// Lose the last record of every `find` that returns several.
    pub drop_last: bool,
    /// Run write batches op by op (the port's non-atomic default) instead of the store's own.
    pub op_by_op_batches: bool,
}

impl Wrapped {
    pub fn storage(self) -> Storage {
        Storage::new(Arc::new(self))
    }

    fn tick(&self, n: u64) {
        self.ops.fetch_add(n, Ordering::Relaxed);
    }
}

#[async_trait]
impl DocumentStore for Wrapped {
    async fn insert(&self, t: Tenant, def: &'static EntityDef, doc: Document) -> Result<Document> {
        self.tick(1);
        self.inner.insert(t, def, doc).await
    }
    async fn insert_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        docs: Vec<Document>,
    ) -> Result<u64> {
        self.tick(1);
        self.inner.insert_many(t, def, docs).await
    }
    async fn get(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<Document> {
        self.tick(1);
        self.inner.get(t, def, id).await
    }
    async fn find(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        self.tick(1);
        let mut found = self.inner.find(t, def, filter, opts).await?;
        if self.drop_last && found.len() >= 2 {
            found.pop();
        }
        Ok(found)
    }
    async fn count(&self, t: Tenant, def: &'static EntityDef, filter: &Filter) -> Result<u64> {
        self.tick(1);
        self.inner.count(t, def, filter).await
    }
    async fn update_one(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        id: ObjectId,
        update: &Update,
    ) -> Result<Document> {
        self.tick(1);
        self.inner.update_one(t, def, id, update).await
    }
    async fn update_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        self.tick(1);
        self.inner.update_many(t, def, filter, update).await
    }
    async fn find_one_and_update(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
        upsert: bool,
    ) -> Result<Option<Document>> {
        self.tick(1);
        self.inner
            .find_one_and_update(t, def, filter, update, upsert)
            .await
    }
    async fn delete_one(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<()> {
        self.tick(1);
        self.inner.delete_one(t, def, id).await
    }
    async fn delete_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
    ) -> Result<u64> {
        self.tick(1);
        self.inner.delete_many(t, def, filter).await
    }
    async fn aggregate(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        group: &GroupBy,
    ) -> Result<Vec<GroupRow>> {
        self.tick(1);
        self.inner.aggregate(t, def, group).await
    }
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<Option<Document>>> {
        if self.op_by_op_batches {
            return write_batch_sequentially(self, ops).await;
        }
        self.tick(1);
        self.inner.write_batch(ops).await
    }
}

#[async_trait]
impl StoreAdmin for Wrapped {
    async fn ping(&self) -> Result<()> {
        self.tick(1);
        self.inner.ping().await
    }
    async fn ensure_schema(&self, defs: &[&'static EntityDef]) -> Result<()> {
        self.tick(defs.len() as u64);
        self.inner.ensure_schema(defs).await
    }
    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        self.tick(1);
        self.inner.applied_migrations().await
    }
    async fn record_migration(&self, m: &AppliedMigration) -> Result<()> {
        self.tick(1);
        self.inner.record_migration(m).await
    }
    async fn forget_migration(&self, version: u32) -> Result<()> {
        self.tick(1);
        self.inner.forget_migration(version).await
    }
    async fn update_all_tenants(
        &self,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        self.tick(1);
        self.inner.update_all_tenants(def, filter, update).await
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
