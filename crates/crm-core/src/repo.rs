//! Typed access: a workspace scope hands out repositories for workspace entities only, and global
//! entities are reached only through [`Stores::global`]. The compiler keeps the two apart.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::engine::Document;
use crate::error::{Error, Result};
use crate::id::{ObjectId, WorkspaceId};
use crate::paging::{Page, PageRequest, find_page};
use crate::query::{Filter, FindOptions, GroupBy, GroupRow, SortKey, Update};
use crate::schema::{CREATED_AT, EntityDef, ID_FIELD, UPDATED_AT};
use crate::store::{DocumentStore, Tenant};
use crate::time::Clock;

/// A stored entity, declared once.
pub trait Entity: Serialize + DeserializeOwned + Send + Sync + 'static {
    const DEF: &'static EntityDef;
}

/// Isolated per workspace.
pub trait WorkspaceEntity: Entity {}

/// Not tied to a workspace (User, Waitlist, OTP).
pub trait GlobalEntity: Entity {}

pub fn to_document<E: Serialize>(e: &E) -> Result<Document> {
    match serde_json::to_value(e) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::internal("entity did not serialise to an object")),
        Err(e) => Err(Error::internal(e)),
    }
}

pub fn from_document<E: DeserializeOwned>(def: &EntityDef, doc: Document) -> Result<E> {
    serde_json::from_value(Value::Object(doc))
        .map_err(|e| Error::Internal(format!("stored {} does not decode: {e}", def.name)))
}

/// The entry point to storage for application code.
#[derive(Debug, Clone)]
pub struct Stores {
    store: Arc<dyn DocumentStore>,
    clock: Arc<dyn Clock>,
}

impl Stores {
    pub fn new(store: Arc<dyn DocumentStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub fn workspace(&self, ws: WorkspaceId) -> WorkspaceScope {
        WorkspaceScope {
            ws,
            stores: self.clone(),
        }
    }

    pub fn global<E: GlobalEntity>(&self) -> Repo<E> {
        Repo::new(self.store.clone(), self.clock.clone(), Tenant::Global)
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

/// Proof that the holder acts within one workspace. Handlers get it from the membership check.
#[derive(Debug, Clone)]
pub struct WorkspaceScope {
    ws: WorkspaceId,
    stores: Stores,
}

impl WorkspaceScope {
    pub fn id(&self) -> WorkspaceId {
        self.ws
    }

    pub fn repo<E: WorkspaceEntity>(&self) -> Repo<E> {
        Repo::new(
            self.stores.store.clone(),
            self.stores.clock.clone(),
            Tenant::Workspace(self.ws),
        )
    }
}

/// One entity's records within one tenant.
#[derive(Debug)]
pub struct Repo<E> {
    store: Arc<dyn DocumentStore>,
    clock: Arc<dyn Clock>,
    tenant: Tenant,
    _e: PhantomData<fn() -> E>,
}

impl<E> Clone for Repo<E> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            clock: self.clock.clone(),
            tenant: self.tenant,
            _e: PhantomData,
        }
    }
}

impl<E: Entity> Repo<E> {
    fn new(store: Arc<dyn DocumentStore>, clock: Arc<dyn Clock>, tenant: Tenant) -> Self {
        Self {
            store,
            clock,
            tenant,
            _e: PhantomData,
        }
    }

    fn decode(doc: Document) -> Result<E> {
        from_document(E::DEF, doc)
    }

    fn stamp_update(&self, update: &Update) -> Update {
        let mut u = update.clone();
        if E::DEF.timestamps && !u.ops.iter().any(|o| o.path().as_str() == UPDATED_AT) {
            u = u.set(UPDATED_AT, self.clock.now().to_canonical());
        }
        u
    }

    /// Inserts, stamping `createdAt`/`updatedAt` (when the entity has them) and an `_id` if absent.
    pub async fn insert(&self, e: &E) -> Result<E> {
        let mut doc = to_document(e)?;
        if E::DEF.timestamps {
            let now = Value::String(self.clock.now().to_canonical());
            doc.insert(CREATED_AT.into(), now.clone());
            doc.insert(UPDATED_AT.into(), now);
        }
        if !doc.get(ID_FIELD).is_some_and(Value::is_string) {
            doc.insert(ID_FIELD.into(), Value::String(ObjectId::new().to_hex()));
        }
        Self::decode(self.store.insert(self.tenant, E::DEF, doc).await?)
    }

    pub async fn get(&self, id: impl Into<ObjectId>) -> Result<E> {
        Self::decode(self.store.get(self.tenant, E::DEF, id.into()).await?)
    }

    pub async fn find(&self, filter: &Filter, opts: &FindOptions) -> Result<Vec<E>> {
        self.store
            .find(self.tenant, E::DEF, filter, opts)
            .await?
            .into_iter()
            .map(Self::decode)
            .collect()
    }

    pub async fn page(
        &self,
        filter: &Filter,
        sort: &[SortKey],
        req: &PageRequest,
    ) -> Result<Page<E>> {
        find_page(self.store.as_ref(), self.tenant, E::DEF, filter, sort, req)
            .await?
            .try_map(Self::decode)
    }

    pub async fn count(&self, filter: &Filter) -> Result<u64> {
        self.store.count(self.tenant, E::DEF, filter).await
    }

    pub async fn update(&self, id: impl Into<ObjectId>, update: &Update) -> Result<E> {
        let u = self.stamp_update(update);
        Self::decode(
            self.store
                .update_one(self.tenant, E::DEF, id.into(), &u)
                .await?,
        )
    }

    pub async fn update_many(&self, filter: &Filter, update: &Update) -> Result<u64> {
        let u = self.stamp_update(update);
        self.store
            .update_many(self.tenant, E::DEF, filter, &u)
            .await
    }

    /// Atomic read-modify-write of the first match; `upsert` creates it from the filter's
    /// equalities when missing.
    pub async fn find_one_and_update(
        &self,
        filter: &Filter,
        update: &Update,
        upsert: bool,
    ) -> Result<Option<E>> {
        let mut u = self.stamp_update(update);
        if E::DEF.timestamps && upsert {
            u = u.set_on_insert(CREATED_AT, self.clock.now().to_canonical());
        }
        self.store
            .find_one_and_update(self.tenant, E::DEF, filter, &u, upsert)
            .await?
            .map(Self::decode)
            .transpose()
    }

    pub async fn delete(&self, id: impl Into<ObjectId>) -> Result<()> {
        self.store.delete_one(self.tenant, E::DEF, id.into()).await
    }

    pub async fn delete_many(&self, filter: &Filter) -> Result<u64> {
        self.store.delete_many(self.tenant, E::DEF, filter).await
    }

    pub async fn group(&self, group: &GroupBy) -> Result<Vec<GroupRow>> {
        self.store.aggregate(self.tenant, E::DEF, group).await
    }
}
