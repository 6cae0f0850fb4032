//! Automation: Workflow, WorkflowEnrollment, LeadRecycling, and the job-queue and scheduler ports.
//!
//! Declared through `crm_core::schema::EntityDef` like the core entities; this crate is empty
//! until its issue lands (see docs/ARCHITECTURE.md for the crate map).
