//! Declared entities. Each file holds the typed struct, its [`EntityDef`] and its enums.

pub mod activity;
pub mod attachment;
pub mod company;
pub mod contact;
pub mod contact_list;
pub mod counter;
pub mod custom_field;
pub mod invite_link;
pub mod notification;
pub mod opportunity;
pub mod otp;
pub mod pipeline;
pub mod project;
pub mod referral;
pub mod stage_change_event;
pub mod task;
pub mod team_member;
pub mod ticket;
pub mod user;
pub mod user_action;
pub mod waitlist;

use crate::schema::EntityDef;

/// Every declared entity, for schema creation and the contract suite.
pub fn all() -> Vec<&'static EntityDef> {
    vec![
        &contact::CONTACT,
        &company::COMPANY,
        &user::USER,
        &project::PROJECT,
        &team_member::TEAM_MEMBER,
        &invite_link::WORKSPACE_INVITE_LINK,
        &pipeline::PIPELINE,
        &opportunity::OPPORTUNITY,
        &activity::ACTIVITY,
        &task::TASK,
        &ticket::TICKET,
        &counter::WORKSPACE_COUNTER,
        &custom_field::CUSTOM_FIELD_DEFINITION,
        &notification::NOTIFICATION,
        &attachment::ATTACHMENT,
        &contact_list::CONTACT_LIST,
        &waitlist::WAITLIST,
        &referral::REFERRAL,
        &otp::OTP,
        &user_action::USER_ACTION,
        &stage_change_event::STAGE_CHANGE_EVENT,
    ]
}

/// Salesforce sync state of contacts, companies and opportunities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SalesforceSyncStatus {
    Synced,
    Pending,
    Error,
    Conflict,
}

/// Address as the original embeds it on contacts and companies.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_declaration_is_valid_and_collections_unique() {
        let all = super::all();
        for d in &all {
            d.validate().unwrap();
        }
        let mut names: Vec<_> = all.iter().map(|d| d.collection).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }
}
