//! The analytics event consumer: a won deal marks its contact's stored attribution converted
//! (when, how much, which deal) and refreshes its touchpoints.

use std::sync::Arc;

use async_trait::async_trait;
use automation::handlers::EventConsumer;
use automation::runtime::Runtime;
use crm_core::entities::contact::ContactId;
use crm_core::entities::opportunity::OpportunityId;
use crm_core::events::DomainEvent;
use crm_core::repo::Stores;
use crm_core::{Result, Timestamp};

/// Registers this crate's consumers with the runtime (called where the runtime is built, since
/// `automation` cannot depend on this crate).
pub fn register(rt: &Runtime) {
    rt.register_consumer(Arc::new(ConversionRecorder::new(rt.stores().clone())));
}

/// Marks attributions converted on `deal.won`. Idempotent: a second delivery writes the same
/// values.
#[derive(Debug, Clone)]
pub struct ConversionRecorder {
    stores: Stores,
}

impl ConversionRecorder {
    pub fn new(stores: Stores) -> Self {
        Self { stores }
    }
}

#[async_trait]
impl EventConsumer for ConversionRecorder {
    fn name(&self) -> &'static str {
        "analytics.attribution"
    }

    fn wants(&self, event_type: &str) -> bool {
        event_type == "deal.won"
    }

    async fn handle(&self, event: &DomainEvent) -> Result<()> {
        let Some(deal) = event.after.as_ref() else {
            return Ok(());
        };
        let contact = deal
            .get("contactId")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<ContactId>().ok());
        let (Some(contact), Some(id)) = (contact, event.entity_id) else {
            return Ok(());
        };
        let at = deal
            .get("actualCloseDate")
            .and_then(|v| v.as_str())
            .and_then(|s| Timestamp::parse(s).ok())
            .unwrap_or(event.occurred_at);
        let value = deal.get("value").and_then(|v| v.as_f64()).unwrap_or(0.0);
        let scope = self.stores.workspace(event.workspace_id);
        crate::attribution::refresh(&scope, contact, Some((at, value, OpportunityId(id)))).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crm_core::repo::to_document;
    use crm_core::{Filter, FindOptions, SystemClock, UserId, WorkspaceId};
    use storage_memory::MemoryStore;

    use super::*;
    use crate::attribution::Attribution;
    use crm_core::entities::opportunity::Opportunity;
    use crm_core::entities::pipeline::{PipelineId, StageId};

    #[tokio::test]
    async fn a_won_deal_marks_its_contact_converted_once() {
        let stores = Stores::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock));
        let ws = WorkspaceId::new();
        let contact = ContactId::new();
        let mut deal = Opportunity::new(
            ws,
            UserId::new(),
            PipelineId::new(),
            StageId::new(),
            "Big",
            1200.0,
        );
        deal.contact_id = Some(contact);
        let closed = Timestamp::parse("2026-03-01T00:00:00Z").unwrap_or(Timestamp::now());
        deal.actual_close_date = Some(closed);
        let mut ev = DomainEvent::new(ws, "deal.won", Timestamp::now());
        ev.entity_id = Some(deal.id.into());
        ev.after = to_document(&deal).ok();

        let c = ConversionRecorder::new(stores.clone());
        assert!(c.wants("deal.won") && !c.wants("deal.updated"));
        c.handle(&ev).await.unwrap_or_else(|e| panic!("{e}"));
        c.handle(&ev).await.unwrap_or_else(|e| panic!("{e}"));
        let rows = stores
            .workspace(ws)
            .repo::<Attribution>()
            .find(&Filter::all(), &FindOptions::default())
            .await
            .unwrap_or_default();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].converted);
        assert_eq!(rows[0].converted_at, Some(closed));
        assert_eq!(rows[0].conversion_value, Some(1200.0));
        assert_eq!(rows[0].opportunity_id, Some(deal.id));
        // Another workspace sees nothing of it.
        let other = stores
            .workspace(WorkspaceId::new())
            .repo::<Attribution>()
            .count(&Filter::all())
            .await
            .unwrap_or(1);
        assert_eq!(other, 0);
        // A deal without a contact changes nothing.
        let mut ev2 = ev.clone();
        deal.contact_id = None;
        ev2.after = to_document(&deal).ok();
        c.handle(&ev2).await.unwrap_or_else(|e| panic!("{e}"));
    }
}
