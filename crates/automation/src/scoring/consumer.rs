//! The `lead-scoring` consumer: domain events to lead-score points.

use async_trait::async_trait;
use serde_json::Value;

use crm_core::entities::contact::ContactId;
use crm_core::events::DomainEvent;
use crm_core::repo::Stores;
use crm_core::{Error, Result};

use super::lead;
use crate::handlers::EventConsumer;

/// Event type → point-table event. Email events score once the mail engineers emit them.
pub const SCORED_EVENTS: &[(&str, &str)] = &[
    ("form.submitted", "form_submitted"),
    ("deal.created", "deal_created"),
    ("deal.stage_changed", "deal_stage_advanced"),
    ("deal.won", "deal_won"),
    ("deal.lost", "deal_lost"),
    ("email.opened", "email_opened"),
    ("email.clicked", "email_clicked"),
    ("email.replied", "email_replied"),
    ("email.bounced", "email_bounced"),
    ("email.unsubscribed", "email_unsubscribed"),
    ("meeting.attended", "meeting_attended"),
    ("call.scheduled", "call_scheduled"),
];

pub fn scored_as(event_type: &str) -> Option<&'static str> {
    SCORED_EVENTS
        .iter()
        .find(|(e, _)| *e == event_type)
        .map(|(_, s)| *s)
}

/// The contact an event is about: the event's own entity when it is a contact, else a
/// `contactId` in its data or in the record it carries (a deal's contact).
pub fn contact_of(e: &DomainEvent) -> Option<ContactId> {
    if e.entity_type.as_deref() == Some("contact")
        && let Some(id) = e.entity_id
    {
        return Some(id.into());
    }
    let from = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|s| s.parse().ok());
    from(e.data.get("contactId")).or_else(|| from(e.record().and_then(|r| r.get("contactId"))))
}

#[derive(Debug, Clone)]
pub struct LeadScoringConsumer {
    stores: Stores,
}

impl LeadScoringConsumer {
    pub fn new(stores: Stores) -> Self {
        Self { stores }
    }
}

pub const CONSUMER_NAME: &str = "lead-scoring";

#[async_trait]
impl EventConsumer for LeadScoringConsumer {
    fn name(&self) -> &'static str {
        CONSUMER_NAME
    }

    fn wants(&self, event_type: &str) -> bool {
        scored_as(event_type).is_some()
    }

    async fn handle(&self, event: &DomainEvent) -> Result<()> {
        let Some(kind) = scored_as(&event.event_type) else {
            return Ok(());
        };
        let Some(contact) = contact_of(event) else {
            return Ok(());
        };
        let Some(points) = lead::points_for(kind) else {
            return Ok(());
        };
        let scope = self.stores.workspace(event.workspace_id);
        let reason = format!("{} ({})", kind.replace('_', " "), event.event_type);
        let id = event.id.to_string();
        match lead::add_points(
            &scope,
            contact,
            kind,
            points,
            &reason,
            Some(&id),
            event.occurred_at,
        )
        .await
        {
            // A contact deleted since has nothing left to score.
            Ok(_) | Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
