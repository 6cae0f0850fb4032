//! Domain rules of the workspace resources: validation of commands, state changes, derived values.

pub mod activities;
pub mod attachments;
pub mod companies;
pub mod contact_lists;
pub mod contacts;
pub mod csv_io;
pub mod custom_fields;
pub mod idempotency;
pub mod merge;
pub mod notifications;
pub mod opportunities;
pub mod pipelines;
pub mod ratelimit;
pub mod referrals;
pub mod tasks;
pub mod tickets;
pub mod waitlist;
