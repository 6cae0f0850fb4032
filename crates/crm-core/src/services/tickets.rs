//! Tickets: numbering (one atomic counter per workspace), creation and change rules, comments
//! with first-response and resolution times, and the stats.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::tasks::{
    Actor, contains_any, counts_by, ensure_exists, ensure_member, enum_filter, id_filter, nullable,
    opt_text, tags, text,
};
use crate::entities::company::{Company, CompanyId};
use crate::entities::contact::{Contact, ContactId};
use crate::entities::counter::{TICKET_COUNTER, WorkspaceCounter};
use crate::entities::task::Priority;
use crate::entities::ticket::{
    Ticket, TicketCategory, TicketComment, TicketId, TicketSource, TicketStatus, ticket_number,
};
use crate::error::{Error, Result};
use crate::id::UserId;
use crate::query::{Filter, GroupBy, Update};
use crate::repo::{WorkspaceScope, to_document};
use crate::services::contacts::parse_ids;
use crate::services::opportunities::BulkReport;
use crate::time::Timestamp;

/// The next ticket number of the workspace: one atomic increment-or-create of its counter.
pub async fn next_number(scope: &WorkspaceScope) -> Result<String> {
    let c = scope
        .repo::<WorkspaceCounter>()
        .find_one_and_update(
            &Filter::eq("name", TICKET_COUNTER),
            &Update::new().inc("seq", 1),
            true,
        )
        .await?
        .ok_or_else(|| Error::internal("the ticket counter upsert returned nothing"))?;
    Ok(ticket_number(c.seq))
}

fn email(s: &str) -> Result<String> {
    let e = s.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !e.contains(char::is_whitespace);
    if ok {
        Ok(e)
    } else {
        Err(Error::invalid("requesterEmail", "must be an email address"))
    }
}

fn minutes_between(from: Option<Timestamp>, to: Timestamp) -> Option<f64> {
    from.map(|f| ((to.millis() - f.millis()).max(0) as f64 / 60_000.0 * 100.0).round() / 100.0)
}

fn is_done(s: TicketStatus) -> bool {
    matches!(s, TicketStatus::Resolved | TicketStatus::Closed)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTicket {
    pub subject: String,
    pub description: String,
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub category: Option<TicketCategory>,
    pub requester_id: Option<ContactId>,
    pub requester_email: String,
    pub requester_name: Option<String>,
    pub assigned_to: Option<UserId>,
    pub assigned_team: Option<String>,
    pub related_contact_id: Option<ContactId>,
    pub related_company_id: Option<CompanyId>,
    pub due_date: Option<Timestamp>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub source: Option<TicketSource>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketPatch {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub category: Option<TicketCategory>,
    #[serde(default, deserialize_with = "nullable")]
    pub requester_id: Option<Option<ContactId>>,
    pub requester_email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub requester_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub assigned_to: Option<Option<UserId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub assigned_team: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub related_contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub related_company_id: Option<Option<CompanyId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub due_date: Option<Option<Timestamp>>,
    pub tags: Option<Vec<String>>,
    pub source: Option<TicketSource>,
}

async fn check_refs(
    scope: &WorkspaceScope,
    actor: &Actor,
    requester: Option<ContactId>,
    contact: Option<ContactId>,
    company: Option<CompanyId>,
    assigned: Option<UserId>,
) -> Result<()> {
    if let Some(id) = requester {
        ensure_exists::<Contact>(scope, id.into(), "requesterId").await?;
    }
    if let Some(id) = contact {
        ensure_exists::<Contact>(scope, id.into(), "relatedContactId").await?;
    }
    if let Some(id) = company {
        ensure_exists::<Company>(scope, id.into(), "relatedCompanyId").await?;
    }
    if let Some(u) = assigned {
        ensure_member(scope, actor.owner, u, "assignedTo").await?;
    }
    Ok(())
}

/// Validates, checks references, then draws the number (so a refused ticket uses none).
pub async fn create(scope: &WorkspaceScope, actor: &Actor, cmd: NewTicket) -> Result<Ticket> {
    let subject = text("subject", &cmd.subject, 500, true)?;
    let description = text("description", &cmd.description, 10_000, true)?;
    let requester_email = email(&cmd.requester_email)?;
    let mut t = Ticket::new(
        scope.id(),
        String::new(),
        subject,
        description,
        &requester_email,
        actor.user,
    );
    t.status = cmd.status.unwrap_or_default();
    t.priority = cmd.priority.unwrap_or_default();
    t.category = cmd.category.unwrap_or_default();
    t.source = cmd.source.unwrap_or_default();
    t.requester_id = cmd.requester_id;
    t.requester_name = opt_text("requesterName", cmd.requester_name, 200)?;
    t.assigned_to = cmd.assigned_to;
    t.assigned_team = opt_text("assignedTeam", cmd.assigned_team, 200)?;
    t.related_contact_id = cmd.related_contact_id;
    t.related_company_id = cmd.related_company_id;
    t.due_date = cmd.due_date;
    t.tags = tags(cmd.tags);
    if is_done(t.status) {
        t.resolved_at = Some(actor.now);
        t.resolution_time_minutes = Some(0.0);
    }
    check_refs(
        scope,
        actor,
        t.requester_id,
        t.related_contact_id,
        t.related_company_id,
        t.assigned_to,
    )
    .await?;
    t.ticket_number = next_number(scope).await?;
    scope.repo::<Ticket>().insert(&t).await
}

fn json<T: serde::Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(Error::internal)
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

pub async fn update(
    scope: &WorkspaceScope,
    actor: &Actor,
    id: TicketId,
    p: TicketPatch,
) -> Result<Ticket> {
    let repo = scope.repo::<Ticket>();
    let old = repo.get(id).await?;
    check_refs(
        scope,
        actor,
        p.requester_id.flatten(),
        p.related_contact_id.flatten(),
        p.related_company_id.flatten(),
        p.assigned_to.flatten(),
    )
    .await?;
    let mut u = Update::new();
    if let Some(s) = p.subject {
        u = u.set("subject", text("subject", &s, 500, true)?);
    }
    if let Some(d) = p.description {
        u = u.set("description", text("description", &d, 10_000, true)?);
    }
    if let Some(s) = p.status {
        u = u.set("status", json(s)?);
        // The first resolution counts; reopening keeps it.
        if is_done(s) && old.resolved_at.is_none() {
            u = u.set("resolvedAt", actor.now.to_canonical());
            if let Some(m) = minutes_between(old.created_at, actor.now) {
                u = u.set("resolutionTimeMinutes", m);
            }
        }
    }
    if let Some(v) = p.priority {
        u = u.set("priority", json(v)?);
    }
    if let Some(v) = p.category {
        u = u.set("category", json(v)?);
    }
    if let Some(v) = p.source {
        u = u.set("source", json(v)?);
    }
    if let Some(e) = p.requester_email {
        u = u.set("requesterEmail", email(&e)?);
    }
    if let Some(v) = p.requester_name {
        u = set_or_unset(u, "requesterName", opt_text("requesterName", v, 200)?)?;
    }
    if let Some(v) = p.assigned_team {
        u = set_or_unset(u, "assignedTeam", opt_text("assignedTeam", v, 200)?)?;
    }
    if let Some(v) = p.requester_id {
        u = set_or_unset(u, "requesterId", v)?;
    }
    if let Some(v) = p.assigned_to {
        u = set_or_unset(u, "assignedTo", v)?;
    }
    if let Some(v) = p.related_contact_id {
        u = set_or_unset(u, "relatedContactId", v)?;
    }
    if let Some(v) = p.related_company_id {
        u = set_or_unset(u, "relatedCompanyId", v)?;
    }
    if let Some(v) = p.due_date {
        u = set_or_unset(u, "dueDate", v)?;
    }
    if let Some(t) = p.tags {
        u = u.set("tags", json(tags(t))?);
    }
    if u.is_empty() {
        return Ok(old);
    }
    repo.update(id, &u).await
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewComment {
    pub message: String,
    #[serde(default)]
    pub is_internal: bool,
}

/// Appends a comment. The first public one (every commenter here is workspace staff) stamps
/// `firstResponseAt` and `responseTimeMinutes`, atomically so two racing replies stamp once.
pub async fn add_comment(
    scope: &WorkspaceScope,
    actor: &Actor,
    id: TicketId,
    cmd: NewComment,
) -> Result<Ticket> {
    let mut c = TicketComment::new(
        actor.user,
        text("message", &cmd.message, 10_000, true)?,
        actor.now,
    );
    c.is_internal = cmd.is_internal;
    let comment = Value::Object(to_document(&c)?);
    let repo = scope.repo::<Ticket>();
    let old = repo.get(id).await?;
    let push = Update::new().push("comments", comment);
    if !c.is_internal && old.first_response_at.is_none() {
        let mut first = push
            .clone()
            .set("firstResponseAt", actor.now.to_canonical());
        if let Some(m) = minutes_between(old.created_at, actor.now) {
            first = first.set("responseTimeMinutes", m);
        }
        let unanswered =
            Filter::eq("_id", id.to_string()).and(Filter::Exists("firstResponseAt".into(), false));
        if let Some(t) = repo.find_one_and_update(&unanswered, &first, false).await? {
            return Ok(t);
        }
    }
    repo.update(id, &push).await
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
        enum_filter::<TicketStatus>("status", q.status.as_deref())?,
        enum_filter::<Priority>("priority", q.priority.as_deref())?,
        id_filter("assignedTo", q.assigned_to.as_deref())?,
        contains_any(
            &["ticketNumber", "subject", "description", "requesterEmail"],
            q.search.as_deref(),
        ),
    ]
    .into_iter()
    .flatten()
    {
        f = f.and(x);
    }
    Ok(f)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketStats {
    pub total: u64,
    pub by_status: Map<String, Value>,
    pub by_priority: Map<String, Value>,
    /// Mean minutes to the first public reply, over tickets that have one.
    pub avg_response_minutes: Option<f64>,
    /// Mean minutes to the first resolution, over tickets that have one.
    pub avg_resolution_minutes: Option<f64>,
}

async fn average(scope: &WorkspaceScope, field: &'static str) -> Result<Option<f64>> {
    // Grouping on the tenant field makes one group of every ticket that has the value.
    let rows = scope
        .repo::<Ticket>()
        .group(&GroupBy {
            filter: Filter::Exists(field.into(), true),
            key: "workspaceId".into(),
            sums: vec![field.into()],
        })
        .await?;
    let (n, sum) = rows.iter().fold((0u64, 0.0), |(n, s), r| {
        (n + r.count, s + r.sums.first().copied().unwrap_or(0.0))
    });
    Ok((n > 0).then(|| (sum / n as f64 * 100.0).round() / 100.0))
}

pub async fn stats(scope: &WorkspaceScope) -> Result<TicketStats> {
    let by_status = counts_by::<Ticket>(scope, "status").await?;
    let by_priority = counts_by::<Ticket>(scope, "priority").await?;
    let total = by_status.values().filter_map(Value::as_u64).sum();
    Ok(TicketStats {
        total,
        by_status,
        by_priority,
        avg_response_minutes: average(scope, "responseTimeMinutes").await?,
        avg_resolution_minutes: average(scope, "resolutionTimeMinutes").await?,
    })
}

/// Sets the status of each ticket among the ids through [`update`] (first resolution stamped
/// as for one ticket); a ticket already in it is `unchanged`.
pub async fn bulk_status(
    scope: &WorkspaceScope,
    actor: &Actor,
    ids: &[String],
    status: TicketStatus,
) -> Result<BulkReport> {
    let ids = parse_ids(ids, "ids")?;
    let mut report = BulkReport::default();
    for id in ids {
        let r = change_one(scope, actor, id.into(), |t| {
            (t.status != status).then(|| TicketPatch {
                status: Some(status),
                ..TicketPatch::default()
            })
        })
        .await;
        report.push(id, r)?;
    }
    Ok(report)
}

/// Assigns (or with `None` unassigns) each ticket among the ids.
pub async fn bulk_assign(
    scope: &WorkspaceScope,
    actor: &Actor,
    ids: &[String],
    assigned_to: Option<UserId>,
) -> Result<BulkReport> {
    let ids = parse_ids(ids, "ids")?;
    // Refused for every ticket alike, so refused once before any write.
    if let Some(u) = assigned_to {
        ensure_member(scope, actor.owner, u, "assignedTo").await?;
    }
    let mut report = BulkReport::default();
    for id in ids {
        let r = change_one(scope, actor, id.into(), |t| {
            (t.assigned_to != assigned_to).then(|| TicketPatch {
                assigned_to: Some(assigned_to),
                ..TicketPatch::default()
            })
        })
        .await;
        report.push(id, r)?;
    }
    Ok(report)
}

/// `patch_for` says what to change given the current ticket, or `None` when nothing.
async fn change_one(
    scope: &WorkspaceScope,
    actor: &Actor,
    id: TicketId,
    patch_for: impl FnOnce(&Ticket) -> Option<TicketPatch>,
) -> Result<bool> {
    let cur = scope.repo::<Ticket>().get(id).await?;
    match patch_for(&cur) {
        Some(p) => update(scope, actor, id, p).await.map(|_| true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_minutes() {
        assert_eq!(email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        assert!(email("nope").is_err());
        assert!(email("a@b").is_err());
        let t0 = Timestamp::from_millis(0);
        assert_eq!(
            minutes_between(Some(t0), Timestamp::from_millis(90_000)),
            Some(1.5)
        );
        assert_eq!(minutes_between(None, t0), None);
    }
}
