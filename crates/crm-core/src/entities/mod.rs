//! Declared entities. Each file holds the typed struct, its [`EntityDef`] and its enums.

pub mod activity;
pub mod api_key;
pub mod attachment;
pub mod company;
pub mod contact;
pub mod contact_list;
pub mod contact_merge;
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
    let mut defs = vec![
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
        &contact_merge::CONTACT_MERGE,
        &waitlist::WAITLIST,
        &referral::REFERRAL,
        &otp::OTP,
        &user_action::USER_ACTION,
        &stage_change_event::STAGE_CHANGE_EVENT,
        &api_key::API_KEY,
    ];
    defs.extend(crate::events::entities());
    defs.extend(crate::accounts::entities());
    defs.extend(crate::services::ratelimit::entities());
    defs.extend(crate::services::idempotency::entities());
    defs
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
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::*;
    use crate::id::{ObjectId, UserId, WorkspaceId};
    use crate::repo::{Entity, from_document, to_document};
    use crate::schema::{CREATED_AT, FieldKind, ID_FIELD, UPDATED_AT};
    use crate::time::Timestamp;

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

    #[test]
    fn no_entity_declares_one_index_twice() {
        for d in super::all() {
            let mut keys = d.effective_indexes();
            for uk in d.unique {
                let mut k: Vec<_> = d
                    .tenant_field()
                    .map(|t| (t, Dir::Asc))
                    .into_iter()
                    .collect();
                k.extend(uk.fields.iter().map(|f| (*f, Dir::Asc)));
                keys.push(k);
            }
            let n = keys.len();
            keys.sort_unstable_by_key(|k| format!("{k:?}"));
            keys.dedup();
            assert_eq!(keys.len(), n, "{}: an index or unique key repeats", d.name);
        }
    }

    use crate::schema::Dir;

    fn looks_typed(v: &Value) -> bool {
        v.as_str()
            .is_some_and(|s| ObjectId::parse_str(s).is_ok() || Timestamp::parse(s).is_ok())
    }

    fn kind_fits(kind: FieldKind, v: &Value) -> bool {
        let id = |v: &Value| v.as_str().is_some_and(|s| ObjectId::parse_str(s).is_ok());
        let all = |f: &dyn Fn(&Value) -> bool| v.as_array().is_some_and(|a| a.iter().all(f));
        match kind {
            FieldKind::Id => id(v),
            FieldKind::Ids => all(&id),
            FieldKind::Date => v.as_str().is_some_and(|s| Timestamp::parse(s).is_ok()),
            FieldKind::Text => v.is_string(),
            FieldKind::Texts => all(&|x: &Value| x.is_string()),
            FieldKind::Number => v.is_number(),
            FieldKind::Bool => v.is_boolean(),
            FieldKind::Object => v.is_object(),
            FieldKind::Array => v.is_array(),
            FieldKind::Any => true,
        }
    }

    /// Every top-level key is declared, every value has its declared kind, and no nested id or
    /// date goes undeclared (MongoDB would store it as text).
    fn check_declared(def: &EntityDef, path: &str, v: &Value, top: bool, errs: &mut Vec<String>) {
        let implicit = path == ID_FIELD
            || Some(path) == def.tenant_field()
            || (def.timestamps && (path == CREATED_AT || path == UPDATED_AT));
        let declared = def.fields.iter().find(|f| f.path == path);
        let kind = def.kind_of(path);
        if !implicit && declared.is_none() {
            if top {
                errs.push(format!("{path} is not declared"));
            } else if looks_typed(v) {
                errs.push(format!("{path} holds an id or date but is not declared"));
            }
        }
        if (implicit || declared.is_some()) && !kind_fits(kind, v) {
            errs.push(format!("{path} is not a {kind:?}: {v}"));
        }
        if kind == FieldKind::Any && declared.is_some() {
            return;
        }
        let mut child = |k: &str, x: &Value| {
            check_declared(def, &format!("{path}.{k}"), x, false, errs);
        };
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| child(k, x)),
            Value::Array(items) => {
                for it in items {
                    if let Value::Object(m) = it {
                        m.iter().for_each(|(k, x)| child(k, x));
                    }
                }
            }
            _ => {}
        }
    }

    fn check<E: Entity + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(e: &E) {
        let doc = to_document(e).unwrap();
        let mut errs = Vec::new();
        for (k, v) in &doc {
            check_declared(E::DEF, k, v, true, &mut errs);
        }
        assert!(errs.is_empty(), "{}: {errs:#?}", E::DEF.name);
        let back: E = from_document(E::DEF, doc).unwrap();
        assert_eq!(&back, e, "{} round trip", E::DEF.name);
    }

    #[test]
    fn typed_entities_serialise_only_declared_fields_of_their_kinds() {
        let (ws, user) = (WorkspaceId::new(), UserId::new());
        let now = Timestamp::from_millis(1_700_000_000_123);

        check(&contact::Contact::new(ws, user, "Ada").with_email("ada@example.com"));
        check(&company::Company::new(ws, user, "Acme"));
        check(&user::User::new("Ada@Example.com ", "Ada"));
        let mut p = project::Project::new(user, "Workspace");
        p.allowed_domains.push("*.example.com".into());
        check(&p);

        let mut m = team_member::TeamMember::invite(
            ws,
            "Bob@Example.com",
            team_member::Role::Admin,
            user,
            "tok",
            now,
        );
        m.user_id = Some(UserId::new());
        m.joined_at = Some(now);
        m.permissions.push("contacts:all".into());
        check(&m);
        check(&invite_link::WorkspaceInviteLink::new(
            ws,
            "tok",
            invite_link::LinkRole::Viewer,
            user,
        ));

        let stage = pipeline::Stage::new("Lead", 0, "#AABBCC");
        let pl = pipeline::Pipeline::new(ws, user, "Sales", vec![stage.clone()]);
        check(&pl);
        assert_eq!(pl.stage(stage.id), Some(&stage));

        let mut o = opportunity::Opportunity::new(ws, user, pl.id, stage.id, "Deal", 1500.5);
        o.stage_history.push(opportunity::StageVisit {
            stage_id: stage.id,
            stage_name: "Lead".into(),
            entered_at: now,
            exited_at: Some(now.plus_seconds(60)),
            duration: Some(60_000.0),
        });
        o.associated_contacts.push(contact::ContactId::new());
        o.priority = Some(opportunity::DealPriority::High);
        o.deal_temperature = Some(opportunity::DealTemperature::Warm);
        o.salesforce_sync_status = Some(SalesforceSyncStatus::Synced);
        o.custom_fields.insert("custom_x".into(), json!(1));
        check(&o);

        let mut a = activity::Activity::new(ws, activity::ActivityType::StageChange, "Moved");
        a.entity_type = Some(activity::ActivityEntityType::Opportunity);
        a.entity_id = Some(o.id.object_id());
        a.opportunity_id = Some(o.id);
        a.direction = Some(activity::Direction::Outbound);
        a.metadata = Some(json!({"fromStage": "Lead", "toStage": "Won"}));
        check(&a);

        let mut t = task::Task::new(ws, user, "Call back");
        t.due_date = Some(now);
        t.related_opportunity_id = Some(o.id);
        t.tags.push("x".into());
        check(&t);

        let mut tk = ticket::Ticket::new(
            ws,
            ticket::ticket_number(1),
            "Help",
            "It broke",
            " Req@Example.com",
            user,
        );
        assert_eq!(tk.ticket_number, "TKT-0001");
        assert_eq!(tk.requester_email, "req@example.com");
        let mut c = ticket::TicketComment::new(user, "On it", now);
        c.attachments.push("a.png".into());
        tk.comments.push(c);
        check(&tk);
        check(&counter::WorkspaceCounter::new(ws, counter::TICKET_COUNTER));

        let mut cf = custom_field::CustomFieldDefinition::new(
            ws,
            custom_field::CustomFieldEntity::Deal,
            "custom_tier",
            "Tier",
            custom_field::CustomFieldType::Select,
        );
        cf.select_options = vec!["gold".into(), "silver".into()];
        cf.default_value = Some(json!("gold"));
        cf.validation = Some(custom_field::ValueRules {
            min: Some(0.0),
            max: None,
            pattern: Some("^[a-z]+$".into()),
        });
        check(&cf);

        let mut n = notification::Notification::new(
            ws,
            user,
            notification::NotificationType::DealWon,
            "Won",
            "Deal won",
        );
        n.related_entity_type = Some(notification::RelatedEntityType::Opportunity);
        n.related_entity_id = Some(o.id.object_id());
        check(&n);
        check(&attachment::Attachment::new(
            ws,
            o.id,
            user,
            "p.pdf",
            "application/pdf",
            10,
            "files/p.pdf",
        ));

        let mut l =
            contact_list::ContactList::new(ws, user, "VIP", contact_list::ListType::Dynamic);
        l.filters.conditions.push(contact_list::ListCondition {
            field: "status".into(),
            operator: contact_list::ListOperator::Equals,
            value: json!("customer"),
        });
        l.filters.logic = contact_list::Logic::Or;
        l.contacts.push(contact::ContactId::new());
        check(&l);

        let mut w = waitlist::Waitlist::new(" X@Y.io");
        w.team_size = Some(waitlist::TeamSize::Unspecified);
        check(&w);

        let mut r = referral::Referral::new(
            ws,
            contact::ContactId::new(),
            "a@b.co",
            "CODE1",
            "https://x/r/CODE1",
            "c@d.co",
        );
        r.referrer_reward = Some(referral::Reward {
            kind: referral::RewardType::Credit,
            value: 10.0,
            description: "credit".into(),
            code: None,
            claimed_at: Some(now),
            delivered_at: None,
            expires_at: Some(now),
            status: referral::RewardStatus::Earned,
        });
        r.utm_params = Some(referral::UtmParams {
            source: Some("mail".into()),
            ..Default::default()
        });
        check(&r);

        let otp = otp::Otp::new("A@B.co", "hash", otp::OtpPurpose::PasswordReset, now);
        assert_eq!(otp.expires_at, now.plus_seconds(600));
        check(&otp);

        let mut ua = user_action::UserAction::new(ws, user, "contact.update", "/contacts", now);
        ua.resource_id = Some(ObjectId::new());
        ua.metadata
            .insert("before".into(), json!({"firstName": "A"}));
        check(&ua);

        let mut ev =
            stage_change_event::StageChangeEvent::new(ws, o.id, pl.id, stage.id, "Lead", now);
        ev.old_stage_id = Some(pipeline::StageId::new());
        ev.metadata.assigned_to = Some(user);
        ev.metadata.value = Some(1500.5);
        ev.metadata.status = Some(opportunity::OpportunityStatus::Open);
        check(&ev);

        let mut k = api_key::ApiKey::new(ws, "CI", "clk_x", "hash", api_key::KeyRole::Viewer, user);
        k.last_used_at = Some(now);
        k.expires_at = Some(now);
        k.revoked_at = Some(now);
        k.revoked_by = Some(user);
        check(&k);
    }

    #[test]
    fn enums_use_the_original_spellings() {
        let s = |v: Value| v.as_str().unwrap_or_default().to_owned();
        let j = |x: &dyn erased::Ser| s(x.json());
        assert_eq!(j(&otp::OtpPurpose::PasswordReset), "password-reset");
        assert_eq!(
            j(&ticket::TicketStatus::WaitingOnCustomer),
            "waiting_on_customer"
        );
        assert_eq!(j(&task::TaskStatus::InProgress), "in_progress");
        assert_eq!(j(&contact_list::Logic::And), "AND");
        assert_eq!(j(&waitlist::TeamSize::Over200), "200+");
        assert_eq!(j(&activity::ActivityType::AiSuggestion), "ai_suggestion");
        assert_eq!(
            j(&notification::NotificationType::AgentHandoff),
            "agent_handoff"
        );
        assert_eq!(j(&referral::ReferralStatus::SignedUp), "signed_up");
        assert_eq!(
            j(&custom_field::CustomFieldType::Multiselect),
            "multiselect"
        );
        assert_eq!(j(&team_member::Role::Viewer), "viewer");
    }

    mod erased {
        pub trait Ser {
            fn json(&self) -> serde_json::Value;
        }
        impl<T: serde::Serialize> Ser for T {
            fn json(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap()
            }
        }
    }

    #[test]
    fn ticket_numbers_pad_to_four_digits() {
        assert_eq!(ticket::ticket_number(42), "TKT-0042");
        assert_eq!(ticket::ticket_number(12_345), "TKT-12345");
    }

    #[test]
    fn defaults_match_the_original_schema() {
        let ws = WorkspaceId::new();
        let d: task::Task = serde_json::from_value(json!({
            "_id": ObjectId::new(), "workspaceId": ws, "userId": UserId::new(),
            "createdBy": UserId::new(), "title": "t"
        }))
        .unwrap();
        assert_eq!(d.status, task::TaskStatus::Todo);
        assert_eq!(d.priority, task::Priority::Medium);
        let p: pipeline::Pipeline = serde_json::from_value(json!({
            "_id": ObjectId::new(), "workspaceId": ws, "userId": UserId::new(), "name": "p"
        }))
        .unwrap();
        assert!(p.is_active && !p.is_default);
        let cf: custom_field::CustomFieldDefinition = serde_json::from_value(json!({
            "_id": ObjectId::new(), "workspaceId": ws, "entityType": "contact",
            "fieldKey": "custom_a", "fieldLabel": "A", "fieldType": "text"
        }))
        .unwrap();
        assert!(cf.is_active && cf.currency_config.show_symbol);
        assert_eq!(cf.currency_config.default_currency, "USD");
        assert_eq!(
            cf.relation_config.display_format,
            custom_field::DisplayFormat::Name
        );
        let pr: project::Project = serde_json::from_value(json!({
            "_id": ws, "userId": UserId::new(), "name": "Acme"
        }))
        .unwrap();
        assert_eq!(pr.timezone, "UTC");
        assert!(pr.tracking_enabled);
        // Node stores large whole numbers as doubles; durations still read.
        let v: opportunity::StageVisit = serde_json::from_value(json!({
            "stageId": ObjectId::new(), "stageName": "x",
            "enteredAt": "2024-01-01T00:00:00.000Z", "duration": 3.0e9
        }))
        .unwrap();
        assert_eq!(v.duration, Some(3.0e9));
    }
}
