//! AI and agents (ADR 0023): what agents learn about contacts, companies and deals
//! ([`memory`], with recall ranking and erasure), and the other AI records ([`agents`]).
//! No model is called here: this crate stores, retrieves and governs what agents produce.

pub mod agents;
pub mod memory;

use std::sync::Arc;

use async_trait::async_trait;

use automation::handlers::EventConsumer;
use automation::runtime::Runtime;
use crm_core::entities::contact::ContactId;
use crm_core::events::DomainEvent;
use crm_core::repo::Stores;
use crm_core::{EntityDef, Result};

/// This crate's declared entities, for `clianta_catalog::all_entities`.
pub fn entities() -> Vec<&'static EntityDef> {
    vec![
        &memory::AI_CLIENT_MEMORY,
        &agents::AGENT_SESSION,
        &agents::AGENT_PERFORMANCE,
        &agents::AGENT_INSIGHT,
        &agents::AI_NOTIFICATION,
        &agents::CONVERSATION,
        &agents::CHAT_MESSAGE,
        &agents::MEETING,
        &agents::BUSINESS_PROFILE,
        &agents::AGENT,
        &agents::AGENT_EXECUTION,
        &agents::AGENT_TEST_RUN,
        &agents::AGENT_MEMORY_DATA,
        &agents::AGENT_COPILOT_CONVERSATION,
    ]
}

/// Registers the `ai-memory` consumer with a runtime. Called where the runtime is built (the
/// API state), since `automation` cannot depend on this crate.
pub fn register(rt: &Runtime) {
    rt.register_consumer(Arc::new(MemoryEraser::new(rt.stores().clone())));
}

/// The `ai-memory` event consumer: a contact deleted for good takes its memory along.
/// Idempotent (erasing twice erases nothing more).
#[derive(Debug, Clone)]
pub struct MemoryEraser {
    stores: Stores,
}

impl MemoryEraser {
    pub fn new(stores: Stores) -> Self {
        Self { stores }
    }
}

#[async_trait]
impl EventConsumer for MemoryEraser {
    fn name(&self) -> &'static str {
        "ai-memory"
    }

    fn wants(&self, event_type: &str) -> bool {
        event_type == "contact.deleted"
    }

    async fn handle(&self, event: &DomainEvent) -> Result<()> {
        let Some(id) = event.entity_id else {
            return Ok(());
        };
        let scope = self.stores.workspace(event.workspace_id);
        memory::erase_contact(&scope, ContactId(id)).await?;
        Ok(())
    }
}
