//! Activities on the timeline of a contact, company or opportunity: the parent must exist in the
//! workspace; a contact's activity sets its `lastContactedAt`, an opportunity's counts in its
//! `activityCount` and per-type counters (and deleting it counts it out again).

use serde::Deserialize;
use serde_json::Value;

use super::tasks::{Actor, nullable, opt_text, text};
use crate::entities::activity::{
    Activity, ActivityEntityType, ActivityId, ActivityType, Direction,
};
use crate::entities::company::{Company, CompanyId};
use crate::entities::contact::{Contact, ContactId};
use crate::entities::opportunity::{Opportunity, OpportunityId};
use crate::error::{Error, Result};
use crate::id::{ObjectId, UserId};
use crate::query::{Filter, Update};
use crate::repo::WorkspaceScope;
use crate::time::Timestamp;

/// Whose timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    Contact(ContactId),
    Company(CompanyId),
    Opportunity(OpportunityId),
}

impl Parent {
    /// 404 when the parent is not a record of this workspace.
    pub async fn ensure_exists(&self, scope: &WorkspaceScope) -> Result<()> {
        match *self {
            Parent::Contact(id) => scope.repo::<Contact>().get(id).await.map(drop),
            Parent::Company(id) => scope.repo::<Company>().get(id).await.map(drop),
            Parent::Opportunity(id) => scope.repo::<Opportunity>().get(id).await.map(drop),
        }
    }

    /// The activities of this timeline.
    pub fn filter(&self) -> Filter {
        match *self {
            Parent::Contact(id) => {
                Filter::eq("entityType", "contact").and(Filter::eq("entityId", id.to_string()))
            }
            Parent::Company(id) => {
                Filter::eq("entityType", "company").and(Filter::eq("entityId", id.to_string()))
            }
            Parent::Opportunity(id) => Filter::eq("opportunityId", id.to_string()),
        }
    }
}

/// The per-type counter of an opportunity, if the type has one.
fn type_counter(kind: ActivityType) -> Option<&'static str> {
    match kind {
        ActivityType::Email => Some("emailCount"),
        ActivityType::Call => Some("callCount"),
        ActivityType::Meeting => Some("meetingCount"),
        _ => None,
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewActivity {
    #[serde(rename = "type")]
    pub kind: ActivityType,
    pub title: String,
    pub description: Option<String>,
    pub direction: Option<Direction>,
    pub duration: Option<f64>,
    pub email_subject: Option<String>,
    pub email_body: Option<String>,
    pub due_date: Option<Timestamp>,
    #[serde(default)]
    pub completed: bool,
    pub assignee_id: Option<UserId>,
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityPatch {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    pub completed: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Option<Option<Value>>,
}

fn non_negative(field: &str, v: Option<f64>) -> Result<Option<f64>> {
    match v {
        Some(x) if !(x.is_finite() && x >= 0.0) => Err(Error::invalid(field, "must be 0 or more")),
        v => Ok(v),
    }
}

fn metadata(v: Option<Value>) -> Result<Option<Value>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(Error::invalid("metadata", "must be an object")),
    }
}

pub async fn create(
    scope: &WorkspaceScope,
    actor: &Actor,
    parent: Parent,
    cmd: NewActivity,
) -> Result<Activity> {
    if cmd.kind == ActivityType::WorkflowAction {
        return Err(Error::invalid(
            "type",
            "workflow_action activities are written by automation only",
        ));
    }
    let mut a = Activity::new(scope.id(), cmd.kind, text("title", &cmd.title, 200, true)?);
    a.user_id = Some(actor.user);
    a.description = opt_text("description", cmd.description, 5000)?;
    a.direction = cmd.direction;
    a.duration = non_negative("duration", cmd.duration)?;
    a.email_subject = opt_text("emailSubject", cmd.email_subject, 300)?;
    a.email_body = opt_text("emailBody", cmd.email_body, 10_000)?;
    a.due_date = cmd.due_date;
    a.completed = cmd.completed;
    a.metadata = metadata(cmd.metadata)?;
    if let Some(u) = cmd.assignee_id {
        super::tasks::ensure_member(scope, actor.owner, u, "assigneeId").await?;
        a.assignee_id = Some(u);
    }
    parent.ensure_exists(scope).await?;
    match parent {
        Parent::Contact(id) => {
            a.entity_type = Some(ActivityEntityType::Contact);
            a.entity_id = Some(id.into());
        }
        Parent::Company(id) => {
            a.entity_type = Some(ActivityEntityType::Company);
            a.entity_id = Some(id.into());
        }
        Parent::Opportunity(id) => {
            a.entity_type = Some(ActivityEntityType::Opportunity);
            a.entity_id = Some(id.into());
            a.opportunity_id = Some(id);
        }
    }
    let a = scope.repo::<Activity>().insert(&a).await?;
    match parent {
        Parent::Contact(id) => {
            scope
                .repo::<Contact>()
                .update(
                    id,
                    &Update::new().set("lastContactedAt", actor.now.to_canonical()),
                )
                .await?;
        }
        Parent::Opportunity(id) => {
            let mut u = Update::new()
                .inc("activityCount", 1)
                .set("lastActivityAt", actor.now.to_canonical());
            if let Some(c) = type_counter(a.kind) {
                u = u.inc(c, 1);
            }
            scope.repo::<Opportunity>().update(id, &u).await?;
        }
        Parent::Company(_) => {}
    }
    Ok(a)
}

pub async fn update(scope: &WorkspaceScope, id: ActivityId, p: ActivityPatch) -> Result<Activity> {
    let repo = scope.repo::<Activity>();
    let mut u = Update::new();
    if let Some(t) = p.title {
        u = u.set("title", text("title", &t, 200, true)?);
    }
    if let Some(d) = p.description {
        u = match opt_text("description", d, 5000)? {
            Some(d) => u.set("description", d),
            None => u.unset("description"),
        };
    }
    if let Some(c) = p.completed {
        u = u.set("completed", c);
    }
    if let Some(m) = p.metadata {
        u = match metadata(m)? {
            Some(m) => u.set("metadata", m),
            None => u.unset("metadata"),
        };
    }
    if u.is_empty() {
        return repo.get(id).await;
    }
    repo.update(id, &u).await
}

/// Deletes the activity; an opportunity's counters go down again, never below zero.
pub async fn delete(scope: &WorkspaceScope, a: &Activity) -> Result<()> {
    scope.repo::<Activity>().delete(a.id).await?;
    if let Some(opp) = a.opportunity_id {
        let repo = scope.repo::<Opportunity>();
        let this = Filter::eq("_id", opp.to_string());
        let mut counters = vec!["activityCount"];
        counters.extend(type_counter(a.kind));
        for c in counters {
            repo.update_many(
                &this.clone().and(Filter::Gt(c.into(), 0.into())),
                &Update::new().inc(c, -1),
            )
            .await?;
        }
    }
    Ok(())
}

/// `type` filter of a timeline listing.
pub fn type_filter(raw: Option<&str>) -> Result<Option<Filter>> {
    super::tasks::enum_filter::<ActivityType>("type", raw)
}

/// The entity kind whose permissions govern an activity.
pub fn owner_kind(a: &Activity) -> Option<ActivityEntityType> {
    if a.opportunity_id.is_some() {
        return Some(ActivityEntityType::Opportunity);
    }
    a.entity_type
}

/// Parses a path id as a parent id (a malformed one is as unknown as a missing one).
pub fn parse_id<T: From<ObjectId>>(raw: &str) -> Result<T> {
    raw.parse::<ObjectId>()
        .map(T::from)
        .map_err(|_| Error::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_by_type() {
        assert_eq!(type_counter(ActivityType::Call), Some("callCount"));
        assert_eq!(type_counter(ActivityType::Note), None);
        assert!(non_negative("d", Some(-1.0)).is_err());
        assert!(metadata(Some(Value::from(1))).is_err());
    }
}
