//! Analytics and tracking: website tracking (Visitor, CompanyVisitor, TrackingEvent), email
//! open and click tracking (EmailTracking), multi-touch attribution (Attribution), the revenue
//! forecast (Forecast snapshots), the report builder's records and the UserAction report, and
//! the sales intelligence records (BuyingCommittee, Battlecard, Competitor, ICPDefinition,
//! Proposal, CallRecording). LeadScore, IntentSignal and ContactLifecycleHistory belong to the
//! scoring work; UserAction and StageChangeEvent live in the core. See ADR 0024.

use crm_core::{EntityDef, Tenancy};

pub mod attribution;
pub mod consumers;
pub mod email;
pub mod forecast;
pub mod intel;
pub mod reports;
pub mod tracking;

/// Every entity here is isolated per workspace through `workspaceId`, as in the original.
pub(crate) const fn ws() -> Tenancy {
    Tenancy::Workspace {
        field: "workspaceId",
    }
}

pub use consumers::register;

/// This crate's declared entities, for `clianta_catalog::all_entities`.
pub fn entities() -> Vec<&'static EntityDef> {
    vec![
        &tracking::VISITOR,
        &tracking::COMPANY_VISITOR,
        &tracking::TRACKING_EVENT,
        &email::EMAIL_TRACKING,
        &attribution::ATTRIBUTION,
        &forecast::FORECAST,
        &intel::PROPOSAL,
        &intel::CALL_RECORDING,
        &reports::REPORT_DASHBOARD,
        &reports::REPORT_TEMPLATE,
        &reports::REPORT_SUBSCRIPTION,
        &reports::REPORT_COMMENT,
        &intel::BUYING_COMMITTEE,
        &intel::BATTLECARD,
        &intel::COMPETITOR,
        &intel::ICP_DEFINITION,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn declarations_are_valid() {
        for d in super::entities() {
            assert!(d.validate().is_ok(), "{}", d.name);
        }
    }
}
