//! The caller's role in a workspace, remembered for a few seconds so the [`super::Member`]
//! extractor does not read `projects` and `teammembers` on every request.
//!
//! Staleness: every write this process makes to those two collections goes through
//! [`InvalidatingStore`] and bumps a generation that retires every cached entry, so within one
//! process a change (role, removal, workspace deletion) applies to the next request. Another
//! process sharing the store (several servers over MongoDB) learns of it when its entry expires:
//! at most the configured TTL (`ApiConfig::member_cache_ttl`, 5 s by default; zero disables).
//! Only positive answers are kept, so a new member is never refused by the cache.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use crm_core::accounts::Role;
use crm_core::entities::project::Project;
use crm_core::entities::team_member::TeamMember;
use crm_core::repo::Entity;
use crm_core::{
    Document, DocumentStore, EntityDef, Filter, FindOptions, GroupBy, GroupRow, ObjectId, Result,
    Tenant, Update, UserId, WorkspaceId,
};
use moka::sync::Cache;

/// Entries kept at most; beyond it the least useful are dropped (a miss, never a wrong answer).
const CAPACITY: u64 = 100_000;

#[derive(Clone)]
struct Entry {
    generation: u64,
    role: Role,
    workspace: Arc<Project>,
}

/// (user, workspace) → role and workspace, for active members and owners.
pub(crate) struct MemberCache {
    entries: Option<Cache<(UserId, WorkspaceId), Entry>>,
    generation: AtomicU64,
}

impl fmt::Debug for MemberCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberCache")
            .field("enabled", &self.entries.is_some())
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish()
    }
}

impl MemberCache {
    /// A zero `ttl` keeps nothing.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            entries: (!ttl.is_zero()).then(|| {
                Cache::builder()
                    .max_capacity(CAPACITY)
                    .time_to_live(ttl)
                    .build()
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// Read before the store lookup whose answer [`Self::put`] will keep, so a write that lands
    /// during the lookup retires it.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn get(&self, user: UserId, ws: WorkspaceId) -> Option<(Role, Project)> {
        let e = self.entries.as_ref()?.get(&(user, ws))?;
        (e.generation == self.generation()).then(|| (e.role, Project::clone(&e.workspace)))
    }

    pub(crate) fn put(
        &self,
        user: UserId,
        ws: WorkspaceId,
        generation: u64,
        role: Role,
        workspace: &Project,
    ) {
        if let Some(c) = &self.entries {
            c.insert(
                (user, ws),
                Entry {
                    generation,
                    role,
                    workspace: Arc::new(workspace.clone()),
                },
            );
        }
    }

    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(c) = &self.entries {
            c.invalidate_all();
        }
    }
}

/// Passes every call through and retires the member cache after any write to `projects` or
/// `teammembers` (after, so a lookup that read the old rows is retired too; also after a failed
/// write, which may have changed something before failing).
#[derive(Debug)]
pub(crate) struct InvalidatingStore {
    inner: Arc<dyn DocumentStore>,
    cache: Arc<MemberCache>,
}

impl InvalidatingStore {
    pub(crate) fn new(inner: Arc<dyn DocumentStore>, cache: Arc<MemberCache>) -> Self {
        Self { inner, cache }
    }

    fn after_write<T>(&self, def: &EntityDef, r: Result<T>) -> Result<T> {
        if def.collection == Project::DEF.collection || def.collection == TeamMember::DEF.collection
        {
            self.cache.invalidate();
        }
        r
    }
}

#[async_trait]
impl DocumentStore for InvalidatingStore {
    async fn insert(&self, t: Tenant, def: &'static EntityDef, doc: Document) -> Result<Document> {
        let r = self.inner.insert(t, def, doc).await;
        self.after_write(def, r)
    }

    async fn insert_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        docs: Vec<Document>,
    ) -> Result<u64> {
        let r = self.inner.insert_many(t, def, docs).await;
        self.after_write(def, r)
    }

    async fn get(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<Document> {
        self.inner.get(t, def, id).await
    }

    async fn find(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        self.inner.find(t, def, filter, opts).await
    }

    async fn count(&self, t: Tenant, def: &'static EntityDef, filter: &Filter) -> Result<u64> {
        self.inner.count(t, def, filter).await
    }

    async fn update_one(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        id: ObjectId,
        update: &Update,
    ) -> Result<Document> {
        let r = self.inner.update_one(t, def, id, update).await;
        self.after_write(def, r)
    }

    async fn update_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        let r = self.inner.update_many(t, def, filter, update).await;
        self.after_write(def, r)
    }

    async fn find_one_and_update(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
        upsert: bool,
    ) -> Result<Option<Document>> {
        let r = self
            .inner
            .find_one_and_update(t, def, filter, update, upsert)
            .await;
        self.after_write(def, r)
    }

    async fn delete_one(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<()> {
        let r = self.inner.delete_one(t, def, id).await;
        self.after_write(def, r)
    }

    async fn delete_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
    ) -> Result<u64> {
        let r = self.inner.delete_many(t, def, filter).await;
        self.after_write(def, r)
    }

    async fn aggregate(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        group: &GroupBy,
    ) -> Result<Vec<GroupRow>> {
        self.inner.aggregate(t, def, group).await
    }

    // Passed through whole: the trait's default would run the ops one by one, not atomically.
    async fn write_batch(
        &self,
        ops: Vec<crm_core::store::WriteOp>,
    ) -> Result<Vec<Option<Document>>> {
        use crm_core::store::WriteOp;
        let defs: Vec<&'static EntityDef> = ops
            .iter()
            .map(|op| match op {
                WriteOp::Insert { def, .. }
                | WriteOp::Update { def, .. }
                | WriteOp::Delete { def, .. } => *def,
            })
            .collect();
        let mut r = self.inner.write_batch(ops).await;
        for def in defs {
            r = self.after_write(def, r);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crm_core::Timestamp;

    fn project(owner: UserId) -> Project {
        serde_json::from_value(serde_json::json!({
            "_id": ObjectId::new().to_hex(),
            "userId": owner.to_string(),
            "name": "Acme",
            "createdAt": Timestamp::from_millis(0).to_canonical(),
            "updatedAt": Timestamp::from_millis(0).to_canonical(),
        }))
        .unwrap()
    }

    #[test]
    fn an_entry_from_before_a_write_is_not_served() {
        let c = MemberCache::new(Duration::from_secs(60));
        let (u, p) = (
            UserId::from(ObjectId::new()),
            project(UserId::from(ObjectId::new())),
        );
        let g = c.generation();
        c.put(u, p.id, g, Role::Admin, &p);
        assert_eq!(c.get(u, p.id).map(|(r, _)| r), Some(Role::Admin));
        // A lookup that started before the write keeps an answer the write may have changed.
        let g = c.generation();
        c.invalidate();
        c.put(u, p.id, g, Role::Admin, &p);
        assert!(c.get(u, p.id).is_none());
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let c = MemberCache::new(Duration::ZERO);
        let (u, p) = (
            UserId::from(ObjectId::new()),
            project(UserId::from(ObjectId::new())),
        );
        c.put(u, p.id, c.generation(), Role::Viewer, &p);
        assert!(c.get(u, p.id).is_none());
    }
}
