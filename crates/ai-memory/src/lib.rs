//! AI and agents: AIClientMemory, AINotification, Conversation, ChatMessage, BusinessProfile, AgentInsight and the archived Agent models.
//!
//! Declared through `crm_core::schema::EntityDef` like the core entities; this crate is empty
//! until its issue lands (see docs/ARCHITECTURE.md for the crate map).

use crm_core::EntityDef;

/// This crate's declared entities, for `clianta_catalog::all_entities`.
pub fn entities() -> Vec<&'static EntityDef> {
    Vec::new()
}
