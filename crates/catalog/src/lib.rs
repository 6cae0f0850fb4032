//! Every entity type the product declares, across the domain crates: what start-up creates
//! schema for, what the contract suite covers and what docs/MODELS.md lists.

use crm_core::EntityDef;

/// The declarations of every domain crate, core first.
pub fn all_entities() -> Vec<&'static EntityDef> {
    let mut defs = crm_core::entities::all();
    defs.extend(campaigns::entities());
    defs.extend(ai_memory::entities());
    defs.extend(analytics::entities());
    defs.extend(automation::entities());
    defs.extend(integrations::entities());
    defs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_are_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for d in all_entities() {
            assert!(seen.insert(d.collection), "{} declared twice", d.collection);
        }
    }
}
