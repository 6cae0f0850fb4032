//! Automation: the durable job queue ([`jobs`]), delivery of domain events to consumers
//! ([`handlers`]), workflows, lead and intent scoring, lifecycle, recycling and warm-up.
//!
//! Declared through `crm_core::schema::EntityDef` like the core entities.

pub mod handlers;
pub mod jobs;
pub mod periodic;
pub mod queue;
pub mod relay;
pub mod runtime;
pub mod scoring;
pub mod worker;
pub mod workflows;

use crm_core::EntityDef;

/// This crate's declared entities, for `clianta_catalog::all_entities`.
pub fn entities() -> Vec<&'static EntityDef> {
    let mut v = vec![
        &jobs::JOB,
        &workflows::WORKFLOW,
        &workflows::WORKFLOW_ENROLLMENT,
    ];
    v.extend(scoring::entities());
    v
}
