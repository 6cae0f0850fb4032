//! Domain rules of the workspace resources: validation of commands, state changes, derived values.

pub mod custom_fields;
