//! Typed access: a workspace scope hands out repositories for workspace entities only, and global
//! entities are reached only through [`Stores::global`]. The compiler keeps the two apart.
//!
//! Writes of audited entities ([`Entity::AUDITED`]) made through a workspace scope also record
//! one `UserAction` per record with the scope's [`Actor`] and the document before and after
//! (ADR 0009). Writes of entities that declare [`Entity::EVENTS`] also record a domain event
//! and its outbox entry (ADR 0018). Both are written in the same atomic batch as the change
//! ([`DocumentStore::write_batch`]); updates and deletes are guarded by the `updatedAt` they
//! read, so the recorded `before` is the state the write applied to.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::engine::Document;
use crate::engine::apply_update;
use crate::entities::user_action::{USER_ACTION, UserAction};
use crate::error::{Error, Result};
use crate::events::{DOMAIN_EVENT, DomainEvent, OUTBOX_ENTRY, OutboxEntry};
use crate::id::{ObjectId, UserId, WorkspaceId};
use crate::paging::{Page, PageRequest, find_page};
use crate::query::{Filter, FindOptions, GroupBy, GroupRow, SortKey, Update};
use crate::schema::{CREATED_AT, EntityDef, ID_FIELD, UPDATED_AT};
use crate::store::{DocumentStore, Tenant, WriteOp};
use crate::time::Clock;

/// A stored entity, declared once.
pub trait Entity: Serialize + DeserializeOwned + Send + Sync + 'static {
    const DEF: &'static EntityDef;
    /// Writes through a workspace scope leave an audit entry per record (`useractions`).
    const AUDITED: bool = false;
    /// Writes through a workspace scope emit `<EVENTS>.created`, `.updated` (when something
    /// changed) and `.deleted` domain events, e.g. `Some("contact")`.
    const EVENTS: Option<&'static str> = None;
    /// Further event types one change implies, e.g. `deal.stage_changed` when `stageId` moved.
    fn derived_events(_before: Option<&Document>, _after: Option<&Document>) -> Vec<&'static str> {
        Vec::new()
    }
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
    crate::migrations::decode_reporting(def, doc)
        .map_err(|u| Error::Internal(format!("stored {} does not decode: {u}", def.name)))
}

/// Who performs the writes of a workspace scope, as the audit log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A signed-in user.
    User(UserId),
    /// A machine caller; `on_behalf_of` is the user who answers for the key (its creator).
    ApiKey { id: ObjectId, on_behalf_of: UserId },
    /// Start-up, migrations, seeding and background work: no user.
    System,
}

impl Actor {
    /// The user the audit entry is filed under (`userId`), if any.
    pub fn user(&self) -> Option<UserId> {
        match self {
            Actor::User(u)
            | Actor::ApiKey {
                on_behalf_of: u, ..
            } => Some(*u),
            Actor::System => None,
        }
    }

    pub fn describe(&self) -> Value {
        match self {
            Actor::User(u) => json!({"type": "user", "userId": u.to_string()}),
            Actor::ApiKey { id, on_behalf_of } => json!({
                "type": "apiKey",
                "apiKeyId": id.to_hex(),
                "userId": on_behalf_of.to_string(),
            }),
            Actor::System => json!({"type": "system"}),
        }
    }
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

    /// A scope acting as [`Actor::System`]; request handlers get theirs from the membership
    /// check, which names the caller.
    pub fn workspace(&self, ws: WorkspaceId) -> WorkspaceScope {
        self.workspace_as(ws, Actor::System)
    }

    /// A scope whose audited writes are recorded as done by `actor`.
    pub fn workspace_as(&self, ws: WorkspaceId, actor: Actor) -> WorkspaceScope {
        WorkspaceScope {
            ws,
            actor,
            stores: self.clone(),
        }
    }

    pub fn global<E: GlobalEntity>(&self) -> Repo<E> {
        Repo::new(self.store.clone(), self.clock.clone(), Tenant::Global, None)
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

/// Proof that the holder acts within one workspace. Handlers get it from the membership check.
#[derive(Debug, Clone)]
pub struct WorkspaceScope {
    ws: WorkspaceId,
    actor: Actor,
    stores: Stores,
}

impl WorkspaceScope {
    pub fn id(&self) -> WorkspaceId {
        self.ws
    }

    pub fn actor(&self) -> Actor {
        self.actor
    }

    /// Records an event that is not one record's write (e.g. `score.threshold_crossed`) with
    /// its outbox entry, atomically; `actor` and `workspaceId` are this scope's.
    pub async fn emit(&self, mut event: DomainEvent) -> Result<DomainEvent> {
        event.workspace_id = self.ws;
        if event.actor.is_null() {
            event.actor = self.actor.describe();
        }
        let ops = vec![
            WriteOp::Insert {
                t: Tenant::Global,
                def: &OUTBOX_ENTRY,
                doc: to_document(&OutboxEntry::for_event(&event))?,
            },
            WriteOp::Insert {
                t: Tenant::Workspace(self.ws),
                def: &DOMAIN_EVENT,
                doc: to_document(&event)?,
            },
        ];
        self.stores.store.write_batch(ops).await?;
        Ok(event)
    }

    pub fn repo<E: WorkspaceEntity>(&self) -> Repo<E> {
        Repo::new(
            self.stores.store.clone(),
            self.stores.clock.clone(),
            Tenant::Workspace(self.ws),
            Some(self.actor),
        )
    }
}

/// Records read and written per round of a bulk write, so audit snapshots stay bounded in memory.
const AUDIT_BATCH: u64 = 500;

/// Rounds a guarded write is retried when the record changed between its read and its write.
const STALE_RETRIES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Create,
    Update,
    Delete,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Delete => "delete",
        }
    }
}

/// Whether `field` differs between two versions of a record that both exist (an update).
pub fn field_moved(before: Option<&Document>, after: Option<&Document>, field: &str) -> bool {
    matches!((before, after), (Some(b), Some(a)) if b.get(field) != a.get(field))
}

/// Whether `field` became `value` in this change (created with it, or updated to it).
pub fn field_became(
    before: Option<&Document>,
    after: Option<&Document>,
    field: &str,
    value: &str,
) -> bool {
    let is =
        |d: Option<&Document>| d.and_then(|d| d.get(field)).and_then(Value::as_str) == Some(value);
    is(after) && !is(before)
}

/// `Contact` -> `contact`, `CustomFieldDefinition` -> `customFieldDefinition`.
pub fn audit_resource_type(def: &EntityDef) -> String {
    let mut chars = def.name.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The paths whose values differ, descending into embedded objects (`address.city`); `_id`, the
/// tenant field and the timestamps are left out.
pub fn changed_paths(def: &EntityDef, before: &Document, after: &Document) -> Vec<String> {
    // Runs on every audited write: compares in place, allocating only the paths it reports.
    fn walk(
        prefix: &str,
        a: &Map<String, Value>,
        b: &Map<String, Value>,
        skip: &[Option<&str>],
        out: &mut Vec<String>,
    ) {
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            if skip.contains(&Some(k.as_str())) {
                continue;
            }
            let path = || {
                if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                }
            };
            match (a.get(k), b.get(k)) {
                (Some(Value::Object(x)), Some(Value::Object(y))) => {
                    walk(&path(), x, y, &[], out);
                }
                (x, y) if x != y => out.push(path()),
                _ => {}
            }
        }
    }
    let skip = [
        Some(ID_FIELD),
        def.tenant_field(),
        Some(CREATED_AT),
        Some(UPDATED_AT),
    ];
    let mut out = Vec::new();
    walk("", before, after, &skip, &mut out);
    out
}

fn doc_id(doc: &Document) -> Option<&Value> {
    doc.get(ID_FIELD).filter(|v| v.is_string())
}

/// The `_id` of a stored record, which the store always gives.
fn stored_id(doc: &Document) -> Result<ObjectId> {
    doc_id(doc)
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<ObjectId>().ok())
        .ok_or_else(|| Error::internal("a stored record has no valid _id"))
}

fn by_id_asc() -> Vec<SortKey> {
    vec![SortKey::asc(ID_FIELD)]
}

/// One entity's records within one tenant.
#[derive(Debug)]
pub struct Repo<E> {
    store: Arc<dyn DocumentStore>,
    clock: Arc<dyn Clock>,
    tenant: Tenant,
    /// Set for workspace repositories; global ones are never audited.
    actor: Option<Actor>,
    _e: PhantomData<fn() -> E>,
}

impl<E> Clone for Repo<E> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            clock: self.clock.clone(),
            tenant: self.tenant,
            actor: self.actor,
            _e: PhantomData,
        }
    }
}

impl<E: Entity> Repo<E> {
    fn new(
        store: Arc<dyn DocumentStore>,
        clock: Arc<dyn Clock>,
        tenant: Tenant,
        actor: Option<Actor>,
    ) -> Self {
        Self {
            store,
            clock,
            tenant,
            actor,
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

    /// The workspace and actor to record writes under, when this entity is audited or emits
    /// events here.
    fn tracking(&self) -> Option<(WorkspaceId, Actor)> {
        match (self.tenant, self.actor) {
            (Tenant::Workspace(ws), Some(a)) if E::AUDITED || E::EVENTS.is_some() => Some((ws, a)),
            _ => None,
        }
    }

    /// The audit entries, events and outbox entries of one write, as ops of its batch; an
    /// update that changed nothing leaves none.
    fn side_ops(
        &self,
        ws: WorkspaceId,
        actor: Actor,
        changes: &[(Change, Option<&Document>, Option<&Document>)],
    ) -> Result<Vec<WriteOp>> {
        let now = self.clock.now();
        let t = Tenant::Workspace(ws);
        let resource = audit_resource_type(E::DEF);
        let mut ops = Vec::new();
        for &(change, before, after) in changes {
            if change == Change::Update && before == after {
                continue;
            }
            let empty = Document::new();
            let changed = changed_paths(E::DEF, before.unwrap_or(&empty), after.unwrap_or(&empty));
            // Only `updatedAt` moved: nothing happened that a reader or a consumer could see.
            if change == Change::Update && changed.is_empty() {
                continue;
            }
            let Some(record) = after.or(before) else {
                return Err(Error::internal("a recorded change has no record"));
            };
            let resource_id = stored_id(record)?;
            if let Some(prefix) = E::EVENTS {
                let verb = match change {
                    Change::Create => "created",
                    Change::Update => "updated",
                    Change::Delete => "deleted",
                };
                let base = format!("{prefix}.{verb}");
                let derived = E::derived_events(before, after);
                for ty in std::iter::once(base.as_str()).chain(derived.iter().copied()) {
                    let mut ev = DomainEvent::new(ws, ty, now);
                    ev.entity_type = Some(prefix.to_owned());
                    ev.entity_id = Some(resource_id);
                    ev.actor = actor.describe();
                    ev.changed = changed.clone();
                    ev.before = before.cloned();
                    ev.after = after.cloned();
                    ops.push(WriteOp::Insert {
                        t: Tenant::Global,
                        def: &OUTBOX_ENTRY,
                        doc: to_document(&OutboxEntry::for_event(&ev))?,
                    });
                    ops.push(WriteOp::Insert {
                        t,
                        def: &DOMAIN_EVENT,
                        doc: to_document(&ev)?,
                    });
                }
            }
            if !E::AUDITED {
                continue;
            }
            let mut entry = UserAction::audit(
                ws,
                actor.user(),
                format!("{resource}.{}", change.verb()),
                now,
            );
            entry.resource_type = Some(resource.clone());
            entry.resource_id = Some(resource_id);
            let m = &mut entry.metadata;
            m.insert("actor".into(), actor.describe());
            if let Some(b) = before {
                m.insert("before".into(), Value::Object(b.clone()));
            }
            if let Some(a) = after {
                m.insert("after".into(), Value::Object(a.clone()));
            }
            m.insert(
                "changed".into(),
                Value::Array(changed.into_iter().map(Value::String).collect()),
            );
            let mut doc = to_document(&entry)?;
            let stamp = Value::String(now.to_canonical());
            doc.insert(CREATED_AT.into(), stamp.clone());
            doc.insert(UPDATED_AT.into(), stamp);
            ops.push(WriteOp::Insert {
                t,
                def: &USER_ACTION,
                doc,
            });
        }
        Ok(ops)
    }

    /// What a guarded write requires of the record besides its id: the `updatedAt` it was read
    /// with (entities without timestamps are not guarded).
    fn guard_for(&self, before: &Document) -> Filter {
        match before.get(UPDATED_AT) {
            Some(v) if E::DEF.timestamps => Filter::Eq(UPDATED_AT.into(), v.clone()),
            _ => Filter::all(),
        }
    }

    /// Stamps the tenant field so recorded documents read as the stored ones.
    fn with_tenant(&self, mut doc: Document) -> Document {
        if let (Tenant::Workspace(ws), Some(field)) = (self.tenant, E::DEF.tenant_field()) {
            doc.insert(field.into(), Value::String(ws.to_string()));
        }
        doc
    }

    /// Up to [`AUDIT_BATCH`] matches with `_id` after `after`, in `_id` order.
    async fn batch_after(&self, filter: &Filter, after: Option<&Value>) -> Result<Vec<Document>> {
        let f = match after {
            Some(last) => filter
                .clone()
                .and(Filter::Gt(ID_FIELD.into(), last.clone())),
            None => filter.clone(),
        };
        let opts = FindOptions {
            sort: by_id_asc(),
            skip: 0,
            limit: Some(AUDIT_BATCH),
        };
        self.store.find(self.tenant, E::DEF, &f, &opts).await
    }

    fn prepare(&self, e: &E, now: &Value) -> Result<Document> {
        let mut doc = to_document(e)?;
        if E::DEF.timestamps {
            doc.insert(CREATED_AT.into(), now.clone());
            doc.insert(UPDATED_AT.into(), now.clone());
        }
        if !doc.get(ID_FIELD).is_some_and(Value::is_string) {
            doc.insert(ID_FIELD.into(), Value::String(ObjectId::new().to_hex()));
        }
        Ok(self.with_tenant(doc))
    }

    /// Inserts, stamping `createdAt`/`updatedAt` (when the entity has them) and an `_id` if absent.
    pub async fn insert(&self, e: &E) -> Result<E> {
        let doc = self.prepare(e, &Value::String(self.clock.now().to_canonical()))?;
        let Some((ws, actor)) = self.tracking() else {
            return Self::decode(self.store.insert(self.tenant, E::DEF, doc).await?);
        };
        let mut ops = self.side_ops(ws, actor, &[(Change::Create, None, Some(&doc))])?;
        ops.insert(
            0,
            WriteOp::Insert {
                t: self.tenant,
                def: E::DEF,
                doc: doc.clone(),
            },
        );
        let stored = self.store.write_batch(ops).await?.swap_remove(0);
        Self::decode(stored.unwrap_or(doc))
    }

    /// Inserts all or none, each stamped and recorded as [`Repo::insert`] does; returns how many.
    pub async fn insert_many(&self, es: &[E]) -> Result<u64> {
        if es.is_empty() {
            return Ok(0);
        }
        let now = Value::String(self.clock.now().to_canonical());
        let docs = es
            .iter()
            .map(|e| self.prepare(e, &now))
            .collect::<Result<Vec<_>>>()?;
        let Some((ws, actor)) = self.tracking() else {
            return self.store.insert_many(self.tenant, E::DEF, docs).await;
        };
        let n = docs.len() as u64;
        let changes: Vec<_> = docs
            .iter()
            .map(|d| (Change::Create, None, Some(d)))
            .collect();
        let side = self.side_ops(ws, actor, &changes)?;
        let mut ops: Vec<WriteOp> = docs
            .iter()
            .map(|d| WriteOp::Insert {
                t: self.tenant,
                def: E::DEF,
                doc: d.clone(),
            })
            .collect();
        ops.extend(side);
        self.store.write_batch(ops).await?;
        Ok(n)
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
        let page = find_page(self.store.as_ref(), self.tenant, E::DEF, filter, sort, req).await?;
        // A document another program wrote that does not fit is left out and reported, so
        // one bad record never fails the whole list (ADR 0025).
        let mut skipped = page.skipped;
        let mut items = Vec::with_capacity(page.items.len());
        for doc in page.items {
            match crate::migrations::decode_reporting::<E>(E::DEF, doc) {
                Ok(e) => items.push(e),
                Err(u) => {
                    tracing::warn!(
                        collection = %u.collection, id = %u.id, field = %u.field,
                        reason = %u.reason, "skipped a stored document that does not fit"
                    );
                    skipped.push(u);
                }
            }
        }
        Ok(Page {
            items,
            pagination: page.pagination,
            skipped,
        })
    }

    pub async fn count(&self, filter: &Filter) -> Result<u64> {
        self.store.count(self.tenant, E::DEF, filter).await
    }

    /// One guarded update of `before` with its records; `Ok(None)` when it went stale.
    async fn update_recorded(
        &self,
        ws: WorkspaceId,
        actor: Actor,
        before: &Document,
        guard: Filter,
        u: &Update,
    ) -> Result<Option<Document>> {
        let id = stored_id(before)?;
        let mut after = before.clone();
        apply_update(E::DEF, &mut after, u, false)?;
        let mut ops = self.side_ops(ws, actor, &[(Change::Update, Some(before), Some(&after))])?;
        ops.insert(
            0,
            WriteOp::Update {
                t: self.tenant,
                def: E::DEF,
                id,
                update: u.clone(),
                guard: guard.and(self.guard_for(before)),
            },
        );
        match self.store.write_batch(ops).await {
            Ok(mut out) => Ok(Some(out.swap_remove(0).unwrap_or(after))),
            Err(Error::Stale) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn update(&self, id: impl Into<ObjectId>, update: &Update) -> Result<E> {
        let id = id.into();
        let u = self.stamp_update(update);
        let Some((ws, actor)) = self.tracking() else {
            return Self::decode(self.store.update_one(self.tenant, E::DEF, id, &u).await?);
        };
        for _ in 0..STALE_RETRIES {
            let before = self.store.get(self.tenant, E::DEF, id).await?;
            if let Some(after) = self
                .update_recorded(ws, actor, &before, Filter::all(), &u)
                .await?
            {
                return Self::decode(after);
            }
        }
        Err(Error::Stale)
    }

    /// Recorded entities are updated in `_id` order, [`AUDIT_BATCH`] records per atomic batch.
    pub async fn update_many(&self, filter: &Filter, update: &Update) -> Result<u64> {
        let u = self.stamp_update(update);
        let Some((ws, actor)) = self.tracking() else {
            return self
                .store
                .update_many(self.tenant, E::DEF, filter, &u)
                .await;
        };
        let mut total = 0;
        let mut last: Option<Value> = None;
        let mut stale = 0;
        loop {
            let before = self.batch_after(filter, last.as_ref()).await?;
            let Some(tail) = before.last().and_then(doc_id).cloned() else {
                break;
            };
            let mut ops = Vec::with_capacity(before.len() * 4);
            let mut changes = Vec::with_capacity(before.len());
            let mut afters = Vec::with_capacity(before.len());
            for b in &before {
                let mut a = b.clone();
                apply_update(E::DEF, &mut a, &u, false)?;
                afters.push(a);
            }
            for (b, a) in before.iter().zip(&afters) {
                let id = stored_id(b)?;
                ops.push(WriteOp::Update {
                    t: self.tenant,
                    def: E::DEF,
                    id,
                    update: u.clone(),
                    guard: filter.clone().and(self.guard_for(b)),
                });
                changes.push((Change::Update, Some(b), Some(a)));
            }
            ops.extend(self.side_ops(ws, actor, &changes)?);
            match self.store.write_batch(ops).await {
                Ok(_) => {}
                Err(Error::Stale) if stale < STALE_RETRIES => {
                    stale += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
            total += before.len() as u64;
            if (before.len() as u64) < AUDIT_BATCH {
                break;
            }
            last = Some(tail);
        }
        Ok(total)
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
        let Some((ws, actor)) = self.tracking() else {
            return self
                .store
                .find_one_and_update(self.tenant, E::DEF, filter, &u, upsert)
                .await?
                .map(Self::decode)
                .transpose();
        };
        let first = FindOptions {
            sort: by_id_asc(),
            skip: 0,
            limit: Some(1),
        };
        // The store updates the first match by `_id`: read it, then update exactly that record
        // while it still matches and is unchanged.
        let mut last_err = Error::Stale;
        for _ in 0..STALE_RETRIES {
            let before = self
                .store
                .find(self.tenant, E::DEF, filter, &first)
                .await?
                .into_iter()
                .next();
            let Some(before) = before else {
                if !upsert {
                    return Ok(None);
                }
                let mut doc = crate::engine::upsert_seed(filter)?;
                apply_update(E::DEF, &mut doc, &u, true)?;
                if !doc.get(ID_FIELD).is_some_and(Value::is_string) {
                    doc.insert(ID_FIELD.into(), Value::String(ObjectId::new().to_hex()));
                }
                let doc = self.with_tenant(doc);
                let mut ops = self.side_ops(ws, actor, &[(Change::Create, None, Some(&doc))])?;
                ops.insert(
                    0,
                    WriteOp::Insert {
                        t: self.tenant,
                        def: E::DEF,
                        doc: doc.clone(),
                    },
                );
                match self.store.write_batch(ops).await {
                    Ok(mut out) => {
                        return Self::decode(out.swap_remove(0).unwrap_or(doc)).map(Some);
                    }
                    // Another writer created it first: update that one instead.
                    Err(e @ Error::Conflict { .. }) => {
                        last_err = e;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            if let Some(after) = self
                .update_recorded(ws, actor, &before, filter.clone(), &u)
                .await?
            {
                return Self::decode(after).map(Some);
            }
        }
        Err(last_err)
    }

    pub async fn delete(&self, id: impl Into<ObjectId>) -> Result<()> {
        let id = id.into();
        let Some((ws, actor)) = self.tracking() else {
            return self.store.delete_one(self.tenant, E::DEF, id).await;
        };
        for _ in 0..STALE_RETRIES {
            let before = self.store.get(self.tenant, E::DEF, id).await?;
            let mut ops = self.side_ops(ws, actor, &[(Change::Delete, Some(&before), None)])?;
            ops.insert(
                0,
                WriteOp::Delete {
                    t: self.tenant,
                    def: E::DEF,
                    id,
                    guard: self.guard_for(&before),
                },
            );
            match self.store.write_batch(ops).await {
                Ok(_) => return Ok(()),
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Stale)
    }

    /// Recorded entities are deleted in `_id` order, [`AUDIT_BATCH`] records per atomic batch.
    pub async fn delete_many(&self, filter: &Filter) -> Result<u64> {
        let Some((ws, actor)) = self.tracking() else {
            return self.store.delete_many(self.tenant, E::DEF, filter).await;
        };
        let mut total = 0;
        let mut stale = 0;
        loop {
            // Deleted records no longer match, so each round reads from the start.
            let before = self.batch_after(filter, None).await?;
            if before.is_empty() {
                break;
            }
            let mut ops = Vec::with_capacity(before.len() * 4);
            let mut changes = Vec::with_capacity(before.len());
            for b in &before {
                let id = stored_id(b)?;
                ops.push(WriteOp::Delete {
                    t: self.tenant,
                    def: E::DEF,
                    id,
                    guard: filter.clone().and(self.guard_for(b)),
                });
                changes.push((Change::Delete, Some(b), None));
            }
            ops.extend(self.side_ops(ws, actor, &changes)?);
            match self.store.write_batch(ops).await {
                Ok(_) => {}
                Err(Error::Stale | Error::NotFound) if stale < STALE_RETRIES => {
                    stale += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
            total += before.len() as u64;
            if (before.len() as u64) < AUDIT_BATCH {
                break;
            }
        }
        Ok(total)
    }

    pub async fn group(&self, group: &GroupBy) -> Result<Vec<GroupRow>> {
        self.store.aggregate(self.tenant, E::DEF, group).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::engine::{apply_update, cmp_docs, matches, upsert_seed};
    use crate::entities::contact::{CONTACT, Contact};
    use crate::entities::counter::WorkspaceCounter;
    use crate::query::effective_sort;
    use crate::time::{SystemClock, Timestamp};

    /// Just enough of a store over the reference engine; `fail_audit` refuses audit writes.
    #[derive(Debug, Default)]
    struct TinyStore {
        rows: Mutex<Vec<(Option<WorkspaceId>, &'static str, Document)>>,
        fail_audit: bool,
    }

    impl TinyStore {
        fn select(
            &self,
            t: Tenant,
            def: &'static EntityDef,
            filter: &Filter,
        ) -> Result<Vec<(usize, Document)>> {
            let ws = t.check(def)?;
            let rows = self.rows.lock().unwrap();
            Ok(rows
                .iter()
                .enumerate()
                .filter(|(_, (w, c, d))| {
                    *w == ws && *c == def.collection && matches(def, d, filter)
                })
                .map(|(i, (_, _, d))| (i, d.clone()))
                .collect())
        }
        fn by_id(id: ObjectId) -> Filter {
            Filter::eq(ID_FIELD, id.to_hex())
        }
        fn put(&self, i: usize, doc: Document) {
            self.rows.lock().unwrap()[i].2 = doc;
        }
    }

    #[async_trait]
    impl DocumentStore for TinyStore {
        async fn insert(
            &self,
            t: Tenant,
            def: &'static EntityDef,
            mut doc: Document,
        ) -> Result<Document> {
            if let (Some(f), Some(w)) = (def.tenant_field(), t.check(def)?) {
                doc.insert(f.into(), Value::String(w.to_string()));
            }
            self.insert_many(t, def, vec![doc.clone()]).await?;
            Ok(doc)
        }
        async fn insert_many(
            &self,
            t: Tenant,
            def: &'static EntityDef,
            docs: Vec<Document>,
        ) -> Result<u64> {
            if self.fail_audit && def.collection == "useractions" {
                return Err(Error::Unavailable("audit store down".into()));
            }
            let ws = t.check(def)?;
            let mut rows = self.rows.lock().unwrap();
            let n = docs.len() as u64;
            for mut d in docs {
                if let (Some(f), Some(w)) = (def.tenant_field(), ws) {
                    d.insert(f.into(), Value::String(w.to_string()));
                }
                rows.push((ws, def.collection, d));
            }
            Ok(n)
        }
        async fn get(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<Document> {
            let mut hit = self.select(t, def, &Self::by_id(id))?;
            hit.pop().map(|(_, d)| d).ok_or(Error::NotFound)
        }
        async fn find(
            &self,
            t: Tenant,
            def: &'static EntityDef,
            filter: &Filter,
            opts: &FindOptions,
        ) -> Result<Vec<Document>> {
            let mut docs: Vec<Document> = self
                .select(t, def, filter)?
                .into_iter()
                .map(|(_, d)| d)
                .collect();
            let sort = effective_sort(&opts.sort);
            docs.sort_by(|a, b| cmp_docs(a, b, &sort));
            let docs = docs.into_iter().skip(opts.skip as usize);
            Ok(match opts.limit {
                Some(l) => docs.take(l as usize).collect(),
                None => docs.collect(),
            })
        }
        async fn count(&self, t: Tenant, def: &'static EntityDef, filter: &Filter) -> Result<u64> {
            Ok(self.select(t, def, filter)?.len() as u64)
        }
        async fn update_one(
            &self,
            t: Tenant,
            def: &'static EntityDef,
            id: ObjectId,
            update: &Update,
        ) -> Result<Document> {
            let (i, mut d) = self
                .select(t, def, &Self::by_id(id))?
                .pop()
                .ok_or(Error::NotFound)?;
            apply_update(def, &mut d, update, false)?;
            self.put(i, d.clone());
            Ok(d)
        }
        async fn update_many(
            &self,
            t: Tenant,
            def: &'static EntityDef,
            filter: &Filter,
            update: &Update,
        ) -> Result<u64> {
            let hits = self.select(t, def, filter)?;
            for (i, mut d) in hits.iter().cloned() {
                apply_update(def, &mut d, update, false)?;
                self.put(i, d);
            }
            Ok(hits.len() as u64)
        }
        async fn find_one_and_update(
            &self,
            t: Tenant,
            def: &'static EntityDef,
            filter: &Filter,
            update: &Update,
            upsert: bool,
        ) -> Result<Option<Document>> {
            let mut hits = self.select(t, def, filter)?;
            hits.sort_by(|a, b| cmp_docs(&a.1, &b.1, &by_id_asc()));
            match hits.into_iter().next() {
                Some((i, mut d)) => {
                    apply_update(def, &mut d, update, false)?;
                    self.put(i, d.clone());
                    Ok(Some(d))
                }
                None if upsert => {
                    let mut d = upsert_seed(filter)?;
                    d.insert(ID_FIELD.into(), Value::String(ObjectId::new().to_hex()));
                    apply_update(def, &mut d, update, true)?;
                    self.insert(t, def, d).await.map(Some)
                }
                None => Ok(None),
            }
        }
        async fn delete_one(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<()> {
            match self.delete_many(t, def, &Self::by_id(id)).await? {
                0 => Err(Error::NotFound),
                _ => Ok(()),
            }
        }
        async fn delete_many(
            &self,
            t: Tenant,
            def: &'static EntityDef,
            filter: &Filter,
        ) -> Result<u64> {
            let gone: Vec<usize> = self
                .select(t, def, filter)?
                .into_iter()
                .map(|h| h.0)
                .collect();
            let mut rows = self.rows.lock().unwrap();
            for i in gone.iter().rev() {
                rows.remove(*i);
            }
            Ok(gone.len() as u64)
        }
        async fn aggregate(
            &self,
            _: Tenant,
            _: &'static EntityDef,
            _: &GroupBy,
        ) -> Result<Vec<GroupRow>> {
            Err(Error::internal("not needed here"))
        }
    }

    struct Fixture {
        store: Arc<TinyStore>,
        stores: Stores,
        ws: WorkspaceId,
        user: UserId,
    }

    fn fixture_with(store: TinyStore) -> Fixture {
        let store = Arc::new(store);
        Fixture {
            stores: Stores::new(store.clone(), Arc::new(SystemClock)),
            store,
            ws: WorkspaceId::new(),
            user: UserId::new(),
        }
    }

    fn fixture() -> Fixture {
        fixture_with(TinyStore::default())
    }

    impl Fixture {
        fn contacts(&self) -> Repo<Contact> {
            self.stores
                .workspace_as(self.ws, Actor::User(self.user))
                .repo::<Contact>()
        }
        async fn add(&self, name: &str) -> Contact {
            self.contacts()
                .insert(&Contact::new(self.ws, self.user, name))
                .await
                .unwrap()
        }
        /// Audit entries of `ws`, oldest first.
        async fn log(&self, ws: WorkspaceId) -> Vec<UserAction> {
            let opts = FindOptions {
                sort: vec![SortKey::asc(ID_FIELD)],
                ..FindOptions::default()
            };
            self.stores
                .workspace(ws)
                .repo::<UserAction>()
                .find(&Filter::all(), &opts)
                .await
                .unwrap()
        }
    }

    fn changed(e: &UserAction) -> Vec<&str> {
        e.metadata["changed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn insert_logs_a_create_with_after_only() {
        let f = fixture();
        let c = f.add("Ada").await;
        let log = f.log(f.ws).await;
        assert_eq!(log.len(), 1);
        let e = &log[0];
        assert_eq!(e.action_type, "contact.create");
        assert_eq!(e.resource_type.as_deref(), Some("contact"));
        assert_eq!(e.resource_id, Some(ObjectId::from(c.id)));
        assert_eq!(e.user_id, Some(f.user));
        assert_eq!(e.page, "audit");
        assert!(!e.metadata.contains_key("before"));
        assert_eq!(e.metadata["after"]["firstName"], "Ada");
        assert_eq!(e.metadata["actor"]["type"], "user");
        assert!(changed(e).contains(&"firstName"));
        assert!(!changed(e).contains(&"_id"));
        assert!(!changed(e).contains(&"workspaceId"));
    }

    #[tokio::test]
    async fn update_logs_before_after_and_the_changed_paths() {
        let f = fixture();
        let c = f.add("Ada").await;
        let u = Update::new()
            .set("firstName", "Grace")
            .set("address.city", "Oslo");
        f.contacts().update(c.id, &u).await.unwrap();
        let log = f.log(f.ws).await;
        assert_eq!(log.len(), 2);
        let e = &log[1];
        assert_eq!(e.action_type, "contact.update");
        assert_eq!(e.metadata["before"]["firstName"], "Ada");
        assert_eq!(e.metadata["after"]["firstName"], "Grace");
        assert_eq!(changed(e), ["address", "firstName"]);

        let u = Update::new().set("address.zipCode", "0150");
        f.contacts().update(c.id, &u).await.unwrap();
        assert_eq!(changed(&f.log(f.ws).await[2]), ["address.zipCode"]);
    }

    #[tokio::test]
    async fn an_update_that_changes_nothing_leaves_no_entry() {
        let f = fixture();
        let c = f.add("Ada").await;
        let same = Update::new()
            .set("firstName", "Ada")
            .set(UPDATED_AT, c.updated_at.unwrap().to_canonical());
        f.contacts().update(c.id, &same).await.unwrap();
        assert_eq!(f.log(f.ws).await.len(), 1);
    }

    #[tokio::test]
    async fn delete_logs_before_only_and_a_missing_record_logs_nothing() {
        let f = fixture();
        let c = f.add("Ada").await;
        f.contacts().delete(c.id).await.unwrap();
        assert_eq!(
            f.contacts().delete(c.id).await.unwrap_err(),
            Error::NotFound
        );
        let log = f.log(f.ws).await;
        assert_eq!(log.len(), 2);
        let e = &log[1];
        assert_eq!(e.action_type, "contact.delete");
        assert_eq!(e.metadata["before"]["firstName"], "Ada");
        assert!(!e.metadata.contains_key("after"));
    }

    #[tokio::test]
    async fn update_many_logs_one_entry_per_matched_record_in_batches() {
        let f = fixture();
        let n = AUDIT_BATCH as usize + 3;
        let docs: Vec<Document> = (0..n)
            .map(|i| {
                let mut c = Contact::new(f.ws, f.user, format!("c{i}"));
                c.tags = vec!["old".into()];
                to_document(&c).unwrap()
            })
            .collect();
        f.store
            .insert_many(Tenant::Workspace(f.ws), &CONTACT, docs)
            .await
            .unwrap();
        let untouched = f.add("zed").await;
        let hit = f
            .contacts()
            .update_many(
                &Filter::eq("tags", "old"),
                &Update::new().add_to_set("tags", "new"),
            )
            .await
            .unwrap();
        assert_eq!(hit, n as u64);
        let log = f.log(f.ws).await;
        let updates: Vec<&UserAction> = log
            .iter()
            .filter(|e| e.action_type == "contact.update")
            .collect();
        assert_eq!(updates.len(), n);
        assert!(
            updates
                .iter()
                .all(|e| e.resource_id != Some(ObjectId::from(untouched.id)))
        );
        let e = updates[0];
        assert_eq!(e.metadata["before"]["tags"], json!(["old"]));
        assert_eq!(e.metadata["after"]["tags"], json!(["old", "new"]));
        assert_eq!(changed(e), ["tags"]);
        let mut ids: Vec<_> = updates.iter().map(|e| e.resource_id).collect();
        ids.dedup();
        assert_eq!(ids.len(), n, "one entry per record");
    }

    #[tokio::test]
    async fn delete_many_logs_each_deleted_record() {
        let f = fixture();
        for name in ["a", "b", "c"] {
            f.add(name).await;
        }
        let gone = f
            .contacts()
            .delete_many(&Filter::In(
                "firstName".into(),
                vec![json!("a"), json!("b")],
            ))
            .await
            .unwrap();
        assert_eq!(gone, 2);
        let deletes: Vec<String> = f
            .log(f.ws)
            .await
            .into_iter()
            .filter(|e| e.action_type == "contact.delete")
            .map(|e| {
                e.metadata["before"]["firstName"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(deletes, ["a", "b"]);
    }

    #[tokio::test]
    async fn find_one_and_update_logs_the_record_it_changed() {
        let f = fixture();
        let a = f.add("a").await;
        f.add("b").await;
        let got = f
            .contacts()
            .find_one_and_update(
                &Filter::eq("_id", a.id.to_string()).and(Filter::eq("firstName", "a")),
                &Update::new().set("firstName", "a2"),
                false,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.first_name, "a2");
        let none = f
            .contacts()
            .find_one_and_update(
                &Filter::eq("firstName", "nobody"),
                &Update::new().set("firstName", "x"),
                false,
            )
            .await
            .unwrap();
        assert!(none.is_none());
        let log = f.log(f.ws).await;
        assert_eq!(log.len(), 3);
        assert_eq!(log[2].resource_id, Some(ObjectId::from(a.id)));
        assert_eq!(log[2].metadata["before"]["firstName"], "a");
        assert_eq!(log[2].metadata["after"]["firstName"], "a2");

        // An upsert that creates is a create.
        f.contacts()
            .find_one_and_update(
                &Filter::eq("firstName", "new"),
                &Update::new()
                    .set("userId", f.user.to_string())
                    .set("status", "lead"),
                true,
            )
            .await
            .unwrap();
        let log = f.log(f.ws).await;
        assert_eq!(log.len(), 4);
        assert_eq!(log[3].action_type, "contact.create");
        assert_eq!(log[3].metadata["after"]["firstName"], "new");
    }

    #[tokio::test]
    async fn entries_land_in_the_writing_workspace_and_name_the_actor() {
        let f = fixture();
        let other = WorkspaceId::new();
        let key = ObjectId::new();
        let as_key = f
            .stores
            .workspace_as(
                f.ws,
                Actor::ApiKey {
                    id: key,
                    on_behalf_of: f.user,
                },
            )
            .repo::<Contact>();
        as_key
            .insert(&Contact::new(f.ws, f.user, "k"))
            .await
            .unwrap();
        f.stores
            .workspace(f.ws)
            .repo::<Contact>()
            .insert(&Contact::new(f.ws, f.user, "s"))
            .await
            .unwrap();
        assert!(f.log(other).await.is_empty());
        let log = f.log(f.ws).await;
        assert_eq!(log[0].user_id, Some(f.user));
        assert_eq!(log[0].metadata["actor"]["type"], "apiKey");
        assert_eq!(log[0].metadata["actor"]["apiKeyId"], key.to_hex());
        assert_eq!(log[1].user_id, None);
        assert_eq!(log[1].metadata["actor"], json!({"type": "system"}));
    }

    #[tokio::test]
    async fn unaudited_entities_and_the_log_itself_leave_no_entries() {
        let f = fixture();
        let scope = f.stores.workspace_as(f.ws, Actor::User(f.user));
        scope
            .repo::<WorkspaceCounter>()
            .insert(&WorkspaceCounter::new(f.ws, "ticket"))
            .await
            .unwrap();
        scope
            .repo::<UserAction>()
            .insert(&UserAction::audit(
                f.ws,
                Some(f.user),
                "x",
                Timestamp::now(),
            ))
            .await
            .unwrap();
        assert_eq!(
            f.log(f.ws).await.len(),
            1,
            "only the entry inserted by hand"
        );
    }

    #[tokio::test]
    async fn a_failed_audit_write_is_reported_after_the_data_write() {
        let f = fixture_with(TinyStore {
            fail_audit: true,
            ..TinyStore::default()
        });
        let err = f
            .contacts()
            .insert(&Contact::new(f.ws, f.user, "Ada"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)));
        assert_eq!(f.contacts().count(&Filter::all()).await.unwrap(), 1);
    }

    #[test]
    fn resource_types_and_changed_paths() {
        assert_eq!(audit_resource_type(&CONTACT), "contact");
        assert_eq!(
            audit_resource_type(&crate::entities::custom_field::CUSTOM_FIELD_DEFINITION),
            "customFieldDefinition"
        );
        let a = json!({"_id": "1", "workspaceId": "w", "a": 1, "o": {"x": 1, "y": [1]}, "updatedAt": "t"});
        let b = json!({"_id": "1", "workspaceId": "w", "a": 1, "o": {"x": 2, "y": [1]}, "n": null, "updatedAt": "u"});
        let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
        assert_eq!(changed_paths(&CONTACT, a, b), ["n", "o.x"]);
        assert!(changed_paths(&CONTACT, a, a).is_empty());
    }

    // The core records are audited; the log itself and volatile counters are not.
    const _: () = {
        use crate::entities::*;
        assert!(contact::Contact::AUDITED);
        assert!(company::Company::AUDITED);
        assert!(opportunity::Opportunity::AUDITED);
        assert!(pipeline::Pipeline::AUDITED);
        assert!(activity::Activity::AUDITED);
        assert!(task::Task::AUDITED);
        assert!(ticket::Ticket::AUDITED);
        assert!(custom_field::CustomFieldDefinition::AUDITED);
        assert!(!UserAction::AUDITED);
        assert!(!counter::WorkspaceCounter::AUDITED);
        assert!(!team_member::TeamMember::AUDITED);
    };
}
