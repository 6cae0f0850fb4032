//! Numbered, reversible data migrations (the original had none). Schema (indexes) is ensured at
//! every start; migrations change data, over all tenants, through [`StoreAdmin`].

use std::future::Future;
use std::pin::Pin;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::migrations::{LegacyAdmin, contact_email, deals};
use crate::query::{Filter, Update};
use crate::schema::EntityDef;
use crate::store::{AppliedMigration, StoreAdmin};
use crate::time::Clock;

/// One maintenance update applied to every tenant's documents of an entity.
#[derive(Debug, Clone)]
pub struct Step {
    pub def: &'static EntityDef,
    pub filter: Filter,
    pub update: Update,
}

/// Work that only a store another program may have written needs (indexes, legacy
/// collections), run through [`StoreAdmin::legacy`]; skipped where the store has none.
pub type LegacyStep =
    for<'a> fn(&'a dyn LegacyAdmin) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub up: fn() -> Vec<Step>,
    pub down: fn() -> Vec<Step>,
    /// Runs before `up`'s steps; an error leaves the migration pending.
    pub legacy_up: Option<LegacyStep>,
    pub legacy_down: Option<LegacyStep>,
}

fn missing(path: &'static str) -> Filter {
    Filter::Exists(path.into(), false)
}

fn set_where_missing(def: &'static EntityDef, path: &'static str, v: Value) -> Step {
    Step {
        def,
        filter: missing(path),
        update: Update::new().set(path, v),
    }
}

/// Records written by other tools (or old versions) may lack the defaults the original's schema
/// applies on save; listing filters on them would then miss those records.
fn contact_defaults_up() -> Vec<Step> {
    use crate::entities::contact::CONTACT;
    vec![
        set_where_missing(&CONTACT, "status", json!("lead")),
        set_where_missing(&CONTACT, "lifecycleStage", json!("lead")),
        set_where_missing(&CONTACT, "tags", json!([])),
        set_where_missing(&CONTACT, "customFields", json!({})),
    ]
}

/// The defaults are valid values, so going down leaves them: nothing to undo.
fn nothing() -> Vec<Step> {
    Vec::new()
}

/// The target's soft delete: `deletedAt` null means live. Down removes the marker again.
fn soft_delete_marker_up() -> Vec<Step> {
    use crate::entities::{company::COMPANY, contact::CONTACT};
    vec![
        set_where_missing(&CONTACT, "deletedAt", Value::Null),
        set_where_missing(&COMPANY, "deletedAt", Value::Null),
    ]
}

fn soft_delete_marker_down() -> Vec<Step> {
    use crate::entities::{company::COMPANY, contact::CONTACT};
    [&CONTACT, &COMPANY]
        .into_iter()
        .map(|def| Step {
            def,
            filter: Filter::eq("deletedAt", Value::Null)
                .and(Filter::Exists("deletedAt".into(), true)),
            update: Update::new().unset("deletedAt"),
        })
        .collect()
}

/// Every migration, in order. Never edit one that has shipped; add a new one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "contact_defaults",
        up: contact_defaults_up,
        down: nothing,
        legacy_up: None,
        legacy_down: None,
    },
    Migration {
        version: 2,
        name: "soft_delete_marker",
        up: soft_delete_marker_up,
        down: soft_delete_marker_down,
        legacy_up: None,
        legacy_down: None,
    },
    Migration {
        version: 3,
        name: "contact_email_partial_index",
        up: nothing,
        down: nothing,
        legacy_up: Some(|l| Box::pin(contact_email::up(l))),
        legacy_down: Some(|l| Box::pin(contact_email::down(l))),
    },
    Migration {
        version: 4,
        name: "fold_legacy_deals",
        up: nothing,
        down: nothing,
        legacy_up: Some(|l| Box::pin(deals::up(l))),
        legacy_down: Some(|l| Box::pin(deals::down(l))),
    },
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: u32,
    pub name: &'static str,
    pub applied: bool,
}

pub async fn status(admin: &dyn StoreAdmin, all: &[Migration]) -> Result<Vec<MigrationStatus>> {
    let applied = admin.applied_migrations().await?;
    Ok(all
        .iter()
        .map(|m| MigrationStatus {
            version: m.version,
            name: m.name,
            applied: applied.iter().any(|a| a.version == m.version),
        })
        .collect())
}

/// Applies every pending migration up to `target` (all when `None`); returns the versions applied.
pub async fn up(
    admin: &dyn StoreAdmin,
    all: &[Migration],
    target: Option<u32>,
    clock: &dyn Clock,
) -> Result<Vec<u32>> {
    check_order(all)?;
    let applied = admin.applied_migrations().await?;
    let mut done = Vec::new();
    for m in all {
        if target.is_some_and(|t| m.version > t) || applied.iter().any(|a| a.version == m.version) {
            continue;
        }
        if let (Some(step), Some(legacy)) = (m.legacy_up, admin.legacy()) {
            step(legacy).await?;
        }
        for s in (m.up)() {
            admin
                .update_all_tenants(s.def, &s.filter, &s.update)
                .await?;
        }
        admin
            .record_migration(&AppliedMigration {
                version: m.version,
                name: m.name.to_owned(),
                applied_at: clock.now(),
            })
            .await?;
        done.push(m.version);
    }
    Ok(done)
}

/// Reverts applied migrations above `target` (0 reverts all), newest first.
pub async fn down(admin: &dyn StoreAdmin, all: &[Migration], target: u32) -> Result<Vec<u32>> {
    check_order(all)?;
    let applied = admin.applied_migrations().await?;
    let mut done = Vec::new();
    for m in all.iter().rev() {
        if m.version <= target || !applied.iter().any(|a| a.version == m.version) {
            continue;
        }
        if let (Some(step), Some(legacy)) = (m.legacy_down, admin.legacy()) {
            step(legacy).await?;
        }
        for s in (m.down)() {
            admin
                .update_all_tenants(s.def, &s.filter, &s.update)
                .await?;
        }
        admin.forget_migration(m.version).await?;
        done.push(m.version);
    }
    Ok(done)
}

fn check_order(all: &[Migration]) -> Result<()> {
    if all.windows(2).all(|w| w[0].version < w[1].version) {
        Ok(())
    } else {
        Err(Error::internal("migrations must have increasing versions"))
    }
}
