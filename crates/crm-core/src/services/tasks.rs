//! Tasks: creation and change rules (references within the workspace, `completedAt` following the
//! status), bulk status/assignment, and the stats. Also the small checks the other resource
//! services share (text limits, references, membership).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::entities::company::{Company, CompanyId};
use crate::entities::contact::{Contact, ContactId};
use crate::entities::opportunity::{Opportunity, OpportunityId};
use crate::entities::task::{Priority, Task, TaskId, TaskStatus};
use crate::entities::team_member::TeamMember;
use crate::error::{Error, Result};
use crate::id::{ObjectId, UserId};
use crate::query::{Filter, GroupBy, Update};
use crate::repo::{WorkspaceEntity, WorkspaceScope};
use crate::time::Timestamp;

/// Most ids a bulk request may name.
pub const BULK_MAX: usize = 500;

/// For patches: absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Trimmed text of at most `max` characters; `required` refuses an empty one.
pub fn text(field: &str, s: &str, max: usize, required: bool) -> Result<String> {
    let t = s.trim();
    if required && t.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if t.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(t.to_owned())
}

pub fn opt_text(field: &str, s: Option<String>, max: usize) -> Result<Option<String>> {
    s.map(|s| text(field, &s, max, false))
        .transpose()
        .map(|o| o.filter(|t| !t.is_empty()))
}

/// Trimmed, non-empty, without repeats.
pub fn tags(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for t in v {
        let t = t.trim();
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    out
}

/// A referenced record must exist in this workspace; 422 naming `field` otherwise (another
/// workspace's id is as unknown as a missing one).
pub async fn ensure_exists<E: WorkspaceEntity>(
    scope: &WorkspaceScope,
    id: ObjectId,
    field: &str,
) -> Result<()> {
    match scope.repo::<E>().get(id).await {
        Ok(_) => Ok(()),
        Err(Error::NotFound) => Err(Error::invalid(field, "does not exist in this workspace")),
        Err(e) => Err(e),
    }
}

/// `user` must be the workspace's owner or one of its active members.
pub async fn ensure_member(
    scope: &WorkspaceScope,
    owner: UserId,
    user: UserId,
    field: &str,
) -> Result<()> {
    if user == owner {
        return Ok(());
    }
    let n = scope
        .repo::<TeamMember>()
        .count(&Filter::eq("userId", user.to_string()).and(Filter::eq("status", "active")))
        .await?;
    if n == 0 {
        return Err(Error::invalid(field, "is not a member of this workspace"));
    }
    Ok(())
}

fn json<T: serde::Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(Error::internal)
}

/// Who acts, and the workspace's owner (who may have no membership row).
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user: UserId,
    pub owner: UserId,
    pub now: Timestamp,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    pub due_date: Option<Timestamp>,
    pub reminder_date: Option<Timestamp>,
    pub related_contact_id: Option<ContactId>,
    pub related_company_id: Option<CompanyId>,
    pub related_opportunity_id: Option<OpportunityId>,
    pub assigned_to: Option<UserId>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskPatch {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "nullable")]
    pub due_date: Option<Option<Timestamp>>,
    #[serde(default, deserialize_with = "nullable")]
    pub reminder_date: Option<Option<Timestamp>>,
    #[serde(default, deserialize_with = "nullable")]
    pub related_contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub related_company_id: Option<Option<CompanyId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub related_opportunity_id: Option<Option<OpportunityId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub assigned_to: Option<Option<UserId>>,
    pub tags: Option<Vec<String>>,
}

async fn check_refs(
    scope: &WorkspaceScope,
    actor: &Actor,
    contact: Option<ContactId>,
    company: Option<CompanyId>,
    opportunity: Option<OpportunityId>,
    assigned: Option<UserId>,
) -> Result<()> {
    if let Some(id) = contact {
        ensure_exists::<Contact>(scope, id.into(), "relatedContactId").await?;
    }
    if let Some(id) = company {
        ensure_exists::<Company>(scope, id.into(), "relatedCompanyId").await?;
    }
    if let Some(id) = opportunity {
        ensure_exists::<Opportunity>(scope, id.into(), "relatedOpportunityId").await?;
    }
    if let Some(u) = assigned {
        ensure_member(scope, actor.owner, u, "assignedTo").await?;
    }
    Ok(())
}

pub async fn create(scope: &WorkspaceScope, actor: &Actor, cmd: NewTask) -> Result<Task> {
    let mut t = Task::new(
        scope.id(),
        actor.user,
        text("title", &cmd.title, 500, true)?,
    );
    t.description = opt_text("description", cmd.description, 5000)?;
    t.status = cmd.status.unwrap_or_default();
    t.priority = cmd.priority.unwrap_or_default();
    t.due_date = cmd.due_date;
    t.reminder_date = cmd.reminder_date;
    t.related_contact_id = cmd.related_contact_id;
    t.related_company_id = cmd.related_company_id;
    t.related_opportunity_id = cmd.related_opportunity_id;
    t.assigned_to = cmd.assigned_to;
    t.tags = tags(cmd.tags);
    if t.status == TaskStatus::Completed {
        t.completed_at = Some(actor.now);
    }
    check_refs(
        scope,
        actor,
        t.related_contact_id,
        t.related_company_id,
        t.related_opportunity_id,
        t.assigned_to,
    )
    .await?;
    let t = scope.repo::<Task>().insert(&t).await?;
    notify_assignee(scope, actor, &t, None).await;
    Ok(t)
}

/// Tells a newly assigned user other than the actor about the task.
async fn notify_assignee(scope: &WorkspaceScope, actor: &Actor, t: &Task, before: Option<UserId>) {
    use super::notifications::{Notice, notify_best_effort};
    use crate::entities::notification::{NotificationType, RelatedEntityType};
    if let Some(u) = t
        .assigned_to
        .filter(|u| *u != actor.user && Some(*u) != before)
    {
        let notice = Notice::new(
            NotificationType::TaskAssigned,
            "Task assigned to you",
            &t.title,
        )
        .about(RelatedEntityType::Task, t.id);
        notify_best_effort(scope, u, notice).await;
    }
}

fn set_or_unset<T: serde::Serialize>(
    u: Update,
    field: &'static str,
    v: Option<T>,
) -> Result<Update> {
    Ok(match v {
        Some(v) => u.set(field, json(v)?),
        None => u.unset(field),
    })
}

/// `completedAt` follows the status: stamped on entering completed (kept if already there),
/// cleared on leaving it.
fn status_change(u: Update, old: &Task, new: TaskStatus, now: Timestamp) -> Result<Update> {
    let mut u = u.set("status", json(new)?);
    if new == TaskStatus::Completed {
        if old.status != TaskStatus::Completed || old.completed_at.is_none() {
            u = u.set("completedAt", now.to_canonical());
        }
    } else if old.completed_at.is_some() {
        u = u.unset("completedAt");
    }
    Ok(u)
}

pub async fn update(
    scope: &WorkspaceScope,
    actor: &Actor,
    id: TaskId,
    p: TaskPatch,
) -> Result<Task> {
    let repo = scope.repo::<Task>();
    let old = repo.get(id).await?;
    check_refs(
        scope,
        actor,
        p.related_contact_id.flatten(),
        p.related_company_id.flatten(),
        p.related_opportunity_id.flatten(),
        p.assigned_to.flatten(),
    )
    .await?;
    let mut u = Update::new();
    if let Some(t) = p.title {
        u = u.set("title", text("title", &t, 500, true)?);
    }
    if let Some(d) = p.description {
        u = set_or_unset(u, "description", opt_text("description", d, 5000)?)?;
    }
    if let Some(s) = p.status {
        u = status_change(u, &old, s, actor.now)?;
    }
    if let Some(pr) = p.priority {
        u = u.set("priority", json(pr)?);
    }
    for (field, v) in [("dueDate", p.due_date), ("reminderDate", p.reminder_date)] {
        if let Some(v) = v {
            u = set_or_unset(u, field, v)?;
        }
    }
    if let Some(v) = p.related_contact_id {
        u = set_or_unset(u, "relatedContactId", v)?;
    }
    if let Some(v) = p.related_company_id {
        u = set_or_unset(u, "relatedCompanyId", v)?;
    }
    if let Some(v) = p.related_opportunity_id {
        u = set_or_unset(u, "relatedOpportunityId", v)?;
    }
    if let Some(v) = p.assigned_to {
        u = set_or_unset(u, "assignedTo", v)?;
    }
    if let Some(t) = p.tags {
        u = u.set("tags", json(tags(t))?);
    }
    if u.is_empty() {
        return Ok(old);
    }
    let t = repo.update(id, &u).await?;
    notify_assignee(scope, actor, &t, old.assigned_to).await;
    Ok(t)
}

pub async fn complete(scope: &WorkspaceScope, now: Timestamp, id: TaskId) -> Result<Task> {
    let repo = scope.repo::<Task>();
    let old = repo.get(id).await?;
    if old.status == TaskStatus::Completed && old.completed_at.is_some() {
        return Ok(old);
    }
    let u = status_change(Update::new(), &old, TaskStatus::Completed, now)?;
    repo.update(id, &u).await
}

/// The ids of a bulk request: 1 to [`BULK_MAX`], each a valid id.
pub fn bulk_ids(ids: &[String]) -> Result<Vec<Value>> {
    if ids.is_empty() || ids.len() > BULK_MAX {
        return Err(Error::invalid(
            "taskIds",
            format!("must name 1 to {BULK_MAX} tasks"),
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<ObjectId>()
                .map(|id| Value::String(id.to_hex()))
                .map_err(|_| Error::invalid(format!("taskIds[{i}]"), "is not a valid id"))
        })
        .collect()
}

/// Sets the status of the named tasks (ids of other workspaces are ignored); returns how many
/// matched.
pub async fn bulk_status(
    scope: &WorkspaceScope,
    now: Timestamp,
    ids: &[String],
    status: TaskStatus,
) -> Result<u64> {
    let ids = bulk_ids(ids)?;
    let repo = scope.repo::<Task>();
    let in_ids = Filter::In("_id".into(), ids);
    let s = json(status)?;
    let matched = repo.count(&in_ids).await?;
    if status == TaskStatus::Completed {
        // Tasks already completed keep their completion time.
        repo.update_many(
            &in_ids.and(Filter::eq("status", s.clone()).negate()),
            &Update::new()
                .set("status", s)
                .set("completedAt", now.to_canonical()),
        )
        .await?;
    } else {
        repo.update_many(
            &in_ids,
            &Update::new().set("status", s).unset("completedAt"),
        )
        .await?;
    }
    Ok(matched)
}

/// Assigns (or with `None` unassigns) the named tasks.
pub async fn bulk_assign(
    scope: &WorkspaceScope,
    actor: &Actor,
    ids: &[String],
    assigned_to: Option<UserId>,
) -> Result<u64> {
    let ids = bulk_ids(ids)?;
    if let Some(u) = assigned_to {
        ensure_member(scope, actor.owner, u, "assignedTo").await?;
    }
    let u = set_or_unset(Update::new(), "assignedTo", assigned_to)?;
    scope
        .repo::<Task>()
        .update_many(&Filter::In("_id".into(), ids), &u)
        .await
}

/// Filters of the task and ticket lists: `status`, `priority`, `assignedTo`, each checked.
pub fn enum_filter<T: for<'de> Deserialize<'de> + serde::Serialize>(
    field: &'static str,
    raw: Option<&str>,
) -> Result<Option<Filter>> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let v: T = serde_json::from_value(Value::String(raw.to_owned()))
        .map_err(|_| Error::invalid(field, format!("unknown value `{raw}`")))?;
    Ok(Some(Filter::eq(field, json(v)?)))
}

pub fn id_filter(field: &'static str, raw: Option<&str>) -> Result<Option<Filter>> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let id: ObjectId = raw
        .parse()
        .map_err(|_| Error::invalid(field, "is not a valid id"))?;
    Ok(Some(Filter::eq(field, id.to_hex())))
}

/// Case-insensitive substring search over `fields` (these entities declare no text index).
pub fn contains_any(fields: &[&'static str], q: Option<&str>) -> Option<Filter> {
    let q = q.map(str::trim).filter(|q| !q.is_empty())?;
    Some(Filter::Or(
        fields
            .iter()
            .map(|f| Filter::Contains((*f).into(), q.to_owned()))
            .collect(),
    ))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub status: Option<String>,
    pub priority: Option<String>,
    pub assigned_to: Option<String>,
    pub search: Option<String>,
}

pub fn list_filter(q: &ListQuery) -> Result<Filter> {
    let mut f = Filter::all();
    for x in [
        enum_filter::<TaskStatus>("status", q.status.as_deref())?,
        enum_filter::<Priority>("priority", q.priority.as_deref())?,
        id_filter("assignedTo", q.assigned_to.as_deref())?,
        contains_any(&["title", "description"], q.search.as_deref()),
    ]
    .into_iter()
    .flatten()
    {
        f = f.and(x);
    }
    Ok(f)
}

/// Counts per value of `key` (`null` keys, from records without the field, are left out).
pub async fn counts_by<E: WorkspaceEntity>(
    scope: &WorkspaceScope,
    key: &'static str,
) -> Result<serde_json::Map<String, Value>> {
    let rows = scope
        .repo::<E>()
        .group(&GroupBy {
            filter: Filter::all(),
            key: key.into(),
            sums: Vec::new(),
        })
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r.key {
            Value::String(k) => Some((k, Value::from(r.count))),
            _ => None,
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStats {
    pub total: u64,
    pub by_status: serde_json::Map<String, Value>,
    pub by_priority: serde_json::Map<String, Value>,
    /// Due before now and neither completed nor cancelled.
    pub overdue: u64,
    /// Due today (UTC) and neither completed nor cancelled.
    pub due_today: u64,
}

pub async fn stats(scope: &WorkspaceScope, now: Timestamp) -> Result<TaskStats> {
    let by_status = counts_by::<Task>(scope, "status").await?;
    let by_priority = counts_by::<Task>(scope, "priority").await?;
    let total = by_status.values().filter_map(Value::as_u64).sum();
    let open = Filter::Nin(
        "status".into(),
        vec!["completed".into(), "cancelled".into()],
    );
    let repo = scope.repo::<Task>();
    let overdue = repo
        .count(
            &open
                .clone()
                .and(Filter::Lt("dueDate".into(), now.to_canonical().into())),
        )
        .await?;
    let day = 86_400_000;
    let start = Timestamp::from_millis(now.millis().div_euclid(day) * day);
    let end = start.plus_seconds(86_400);
    let due_today = repo
        .count(
            &open
                .and(Filter::Gte("dueDate".into(), start.to_canonical().into()))
                .and(Filter::Lt("dueDate".into(), end.to_canonical().into())),
        )
        .await?;
    Ok(TaskStats {
        total,
        by_status,
        by_priority,
        overdue,
        due_today,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_and_tags() {
        assert_eq!(text("t", "  a ", 5, true).unwrap(), "a");
        assert!(text("t", "   ", 5, true).is_err());
        assert!(text("t", "abcdef", 5, false).is_err());
        assert_eq!(
            tags(vec![" a".into(), "a".into(), "".into(), "b".into()]),
            vec!["a", "b"]
        );
    }

    #[test]
    fn bulk_ids_are_bounded_and_checked() {
        assert!(bulk_ids(&[]).is_err());
        let many: Vec<String> = (0..501).map(|_| ObjectId::new().to_hex()).collect();
        assert!(bulk_ids(&many).is_err());
        assert_eq!(bulk_ids(&many[..500]).unwrap().len(), 500);
        match bulk_ids(&["x".into()]) {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "taskIds[0]"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_filter_checks_enums() {
        let q = ListQuery {
            status: Some("done".into()),
            ..Default::default()
        };
        assert!(list_filter(&q).is_err());
        let q = ListQuery {
            status: Some("in_progress".into()),
            ..Default::default()
        };
        assert_eq!(
            list_filter(&q).unwrap(),
            Filter::And(vec![Filter::eq("status", "in_progress")])
        );
    }
}
