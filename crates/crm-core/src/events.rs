//! Domain events and their outbox (ADR 0018).
//!
//! A write through a workspace scope to an entity that declares [`crate::repo::Entity::EVENTS`]
//! stores a [`DomainEvent`] (`domainevents`, per workspace: the event itself, readable through
//! the workspace like any record) and an [`OutboxEntry`] (`eventoutbox`, global: the pointer a
//! relay claims to deliver it) in the same atomic batch as the change
//! ([`crate::store::DocumentStore::write_batch`]). So an event exists exactly when its change
//! does. Delivery to consumers (workflows, scoring, webhooks) is the `automation` crate's relay.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::define_id;
use crate::engine::Document;
use crate::id::{ObjectId, WorkspaceId};
use crate::repo::{Entity, GlobalEntity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(DomainEventId);
define_id!(OutboxEntryId);

/// Events are kept 90 days, as the audit log.
pub const DOMAIN_EVENT_TTL_SECONDS: u64 = 90 * 24 * 3600;

pub static DOMAIN_EVENT: EntityDef = EntityDef {
    name: "DomainEvent",
    collection: "domainevents",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: false,
    fields: &[
        f("type", Text).required(),
        f("entityType", Text),
        f("entityId", Id),
        f("actor", Any),
        f("changed", Texts),
        f("before", Any),
        f("after", Any),
        f("data", Any),
        f("occurredAt", Date).required(),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("occurredAt", Desc)]),
        IndexDef::on(&[("type", Asc), ("occurredAt", Desc)]),
        IndexDef::on(&[("entityId", Asc), ("occurredAt", Desc)]),
        IndexDef::ttl(&[("occurredAt", Asc)], DOMAIN_EVENT_TTL_SECONDS),
    ],
    text: &[],
};

/// Something that happened in a workspace, e.g. `contact.updated` with the changed paths and
/// the record before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    #[serde(rename = "_id")]
    pub id: DomainEventId,
    pub workspace_id: WorkspaceId,
    /// `<entity>.<verb>`: `contact.created`, `deal.stage_changed`, `form.submitted`, ...
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<ObjectId>,
    /// Who caused it, as the audit log describes actors.
    #[serde(default)]
    pub actor: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Document>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Document>,
    /// Event-specific facts (e.g. a score's old and new value).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
    pub occurred_at: Timestamp,
}

impl DomainEvent {
    pub fn new(ws: WorkspaceId, event_type: impl Into<String>, now: Timestamp) -> Self {
        Self {
            id: DomainEventId::new(),
            workspace_id: ws,
            event_type: event_type.into(),
            entity_type: None,
            entity_id: None,
            actor: Value::Null,
            changed: Vec::new(),
            before: None,
            after: None,
            data: Map::new(),
            occurred_at: now,
        }
    }

    /// The record the event is about as it is now (after), or as it was (deleted).
    pub fn record(&self) -> Option<&Document> {
        self.after.as_ref().or(self.before.as_ref())
    }
}

impl Entity for DomainEvent {
    const DEF: &'static EntityDef = &DOMAIN_EVENT;
}
impl WorkspaceEntity for DomainEvent {}

pub static OUTBOX_ENTRY: EntityDef = EntityDef {
    name: "OutboxEntry",
    collection: "eventoutbox",
    tenancy: Tenancy::Global,
    timestamps: false,
    fields: &[
        f("eventId", Id).required(),
        f("workspaceId", Id).required(),
        f("eventType", Text).required(),
        f("occurredAt", Date).required(),
        // Claimed by a relay until then; absent = free.
        f("leaseUntil", Date),
        f("leasedBy", Text),
        f("attempts", Number),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("leaseUntil", Asc), ("occurredAt", Asc)]),
        IndexDef::on(&[("occurredAt", Asc)]),
    ],
    text: &[],
};

/// An event not yet handed to its consumers. The relay deletes it once every consumer's job is
/// enqueued, so the collection holds only the backlog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    #[serde(rename = "_id")]
    pub id: OutboxEntryId,
    pub event_id: DomainEventId,
    pub workspace_id: WorkspaceId,
    pub event_type: String,
    pub occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leased_by: Option<String>,
    #[serde(default)]
    pub attempts: u32,
}

impl OutboxEntry {
    pub fn for_event(e: &DomainEvent) -> Self {
        Self {
            id: OutboxEntryId::new(),
            event_id: e.id,
            workspace_id: e.workspace_id,
            event_type: e.event_type.clone(),
            occurred_at: e.occurred_at,
            lease_until: None,
            leased_by: None,
            attempts: 0,
        }
    }
}

impl Entity for OutboxEntry {
    const DEF: &'static EntityDef = &OUTBOX_ENTRY;
}
impl GlobalEntity for OutboxEntry {}

/// The two declarations, for `entities::all()`.
pub fn entities() -> [&'static EntityDef; 2] {
    [&DOMAIN_EVENT, &OUTBOX_ENTRY]
}
