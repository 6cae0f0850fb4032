//! The workspace role table (target behaviour 5): viewer reads; member creates and edits but does
//! not delete (tasks excepted, as in the original's `ROLE_PERMISSIONS`); admin may do everything
//! but delete the workspace and touch billing; owner may do everything.
//!
//! Resources not in the original's table map onto the nearest one: pipelines, opportunities and
//! their activities → `Deals`; tickets → `Tickets` (like contacts); custom-field definitions and
//! other workspace configuration → `Settings`; the audit log is its own resource, read by the
//! owner and admins only (it shows every record's past values, ADR 0009).

use serde::Serialize;

pub use crate::entities::team_member::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Resource {
    /// The workspace record itself (name, timezone, deletion).
    Workspace,
    /// Memberships, roles and invites.
    Team,
    Contacts,
    Companies,
    Deals,
    Tasks,
    Tickets,
    Workflows,
    Campaigns,
    Settings,
    Integrations,
    Billing,
    /// Who changed which record, with values before and after.
    AuditLog,
    /// Tracking, attribution, forecasts, reports and sales intelligence.
    Analytics,
    /// What agents store and recall: AI memory, agent sessions, insights, conversations.
    Ai,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    View,
    Create,
    Edit,
    Delete,
}

impl Resource {
    pub const ALL: [Resource; 15] = [
        Resource::Workspace,
        Resource::Team,
        Resource::Contacts,
        Resource::Companies,
        Resource::Deals,
        Resource::Tasks,
        Resource::Tickets,
        Resource::Workflows,
        Resource::Campaigns,
        Resource::Settings,
        Resource::Integrations,
        Resource::Billing,
        Resource::AuditLog,
        Resource::Analytics,
        Resource::Ai,
    ];
}

impl Action {
    pub const ALL: [Action; 4] = [Action::View, Action::Create, Action::Edit, Action::Delete];
}

/// Whether `role` may perform `action` on `resource`. The single source of truth for every route.
pub const fn allows(role: Role, resource: Resource, action: Action) -> bool {
    use Action::*;
    use Resource::*;
    match role {
        Role::Owner => true,
        Role::Admin => match resource {
            Billing => false,
            Workspace => matches!(action, View | Edit),
            _ => true,
        },
        Role::Member => match resource {
            Contacts | Companies | Deals | Tickets | Analytics | Ai => {
                matches!(action, View | Create | Edit)
            }
            Tasks => true,
            Workspace | Team | Workflows | Campaigns | Settings => matches!(action, View),
            Integrations | Billing | AuditLog => false,
        },
        Role::Viewer => match resource {
            Integrations | Billing | AuditLog => false,
            _ => matches!(action, View),
        },
    }
}

/// Roles one may hand out or take away: admins manage admins, members and viewers; only the
/// owner manages admins' peers the same way, and nobody changes the owner's membership here
/// (ownership transfer is its own operation).
pub const fn may_manage(actor: Role, target: Role) -> bool {
    match (actor, target) {
        (_, Role::Owner) => false,
        (Role::Owner, _) => true,
        (Role::Admin, Role::Admin | Role::Member | Role::Viewer) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_only_reads() {
        for r in Resource::ALL {
            for a in Action::ALL {
                let expected = a == Action::View
                    && !matches!(
                        r,
                        Resource::Integrations | Resource::Billing | Resource::AuditLog
                    );
                assert_eq!(allows(Role::Viewer, r, a), expected, "{r:?} {a:?}");
            }
        }
    }

    #[test]
    fn member_creates_and_edits_records_but_does_not_delete_them() {
        for r in [
            Resource::Contacts,
            Resource::Companies,
            Resource::Deals,
            Resource::Tickets,
        ] {
            assert!(allows(Role::Member, r, Action::Create));
            assert!(allows(Role::Member, r, Action::Edit));
            assert!(!allows(Role::Member, r, Action::Delete));
        }
        assert!(allows(Role::Member, Resource::Tasks, Action::Delete));
        assert!(!allows(Role::Member, Resource::Team, Action::Edit));
        assert!(!allows(Role::Member, Resource::Workspace, Action::Edit));
        assert!(!allows(Role::Member, Resource::Workflows, Action::Create));
        for a in Action::ALL {
            assert!(!allows(Role::Member, Resource::AuditLog, a));
        }
    }

    #[test]
    fn admin_all_but_workspace_deletion_and_billing() {
        for r in Resource::ALL {
            for a in Action::ALL {
                let expected = match r {
                    Resource::Billing => false,
                    Resource::Workspace => matches!(a, Action::View | Action::Edit),
                    _ => true,
                };
                assert_eq!(allows(Role::Admin, r, a), expected, "{r:?} {a:?}");
            }
        }
    }

    #[test]
    fn owner_all() {
        for r in Resource::ALL {
            for a in Action::ALL {
                assert!(allows(Role::Owner, r, a));
            }
        }
    }

    #[test]
    fn management() {
        assert!(may_manage(Role::Owner, Role::Admin));
        assert!(may_manage(Role::Admin, Role::Viewer));
        assert!(!may_manage(Role::Admin, Role::Owner));
        assert!(!may_manage(Role::Owner, Role::Owner));
        assert!(!may_manage(Role::Member, Role::Viewer));
        assert!(!may_manage(Role::Viewer, Role::Viewer));
    }
}
