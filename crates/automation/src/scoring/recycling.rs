//! Lead recycling (`leadrecyclings`): leads gone quiet (no contact for 30 days, or no
//! engagement for 45) get up to 5 re-engagement attempts, spaced 1, 3, 7, 14 and 30 days.
//! An attempt is a `lead.recycling_attempt` event: workflows and campaigns decide what to send.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crm_core::define_id;
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::events::DomainEvent;
use crm_core::repo::{Entity, WorkspaceEntity, WorkspaceScope, to_document};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{
    Error, Filter, FindOptions, Result, SortKey, Timestamp, Update, UserId, WorkspaceId,
};

use super::DAY_SECS;
use super::lead::LeadScore;

define_id!(LeadRecyclingId);

pub static LEAD_RECYCLING: EntityDef = EntityDef {
    name: "LeadRecycling",
    collection: "leadrecyclings",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("contactId", Id).required(),
        f("detectedAt", Date).required(),
        f("detectedReason", Text).required(),
        f("detectionCriteria", Object),
        f("status", Text).required(),
        f("currentAttempt", Number),
        f("maxAttempts", Number),
        f("firstAttemptAt", Date),
        f("lastAttemptAt", Date),
        f("reEngagedAt", Date),
        f("exhaustedAt", Date),
        f("attempts", Array),
        f("attempts.sentAt", Date),
        f("totalEmailsSent", Number),
        f("totalOpens", Number),
        f("totalClicks", Number),
        f("totalReplies", Number),
        f("reEngagementScore", Number),
        f("nextAttemptAt", Date),
        f("nextAttemptMethod", Text),
        f("assignedTo", Id),
        f("notes", Text),
        f("tags", Texts),
    ],
    // Also the original's {contactId} (the tenant goes in front).
    unique: &[UniqueKey {
        name: "contactId",
        fields: &["contactId"],
    }],
    indexes: &[
        IndexDef::on(&[("detectedAt", Asc)]),
        IndexDef::on(&[("detectedAt", Desc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("nextAttemptAt", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecyclingStatus {
    Detected,
    InRecycling,
    ReEngaged,
    Failed,
    Exhausted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecyclingReason {
    Inactive,
    LowScore,
    NoEngagement,
    Stale,
    Churned,
    LostOpportunity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Email,
    Sms,
    Call,
    Linkedin,
    Workflow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt_number: u32,
    pub method: Method,
    pub sent_at: Timestamp,
    pub status: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadRecycling {
    #[serde(rename = "_id")]
    pub id: LeadRecyclingId,
    pub workspace_id: WorkspaceId,
    pub contact_id: ContactId,
    pub detected_at: Timestamp,
    pub detected_reason: RecyclingReason,
    #[serde(default)]
    pub detection_criteria: Map<String, Value>,
    pub status: RecyclingStatus,
    #[serde(default)]
    pub current_attempt: u32,
    #[serde(default = "five")]
    pub max_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempt_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re_engaged_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhausted_at: Option<Timestamp>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub total_emails_sent: u32,
    #[serde(default)]
    pub total_opens: u32,
    #[serde(default)]
    pub total_clicks: u32,
    #[serde(default)]
    pub total_replies: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn five() -> u32 {
    MAX_ATTEMPTS
}

impl Entity for LeadRecycling {
    const DEF: &'static EntityDef = &LEAD_RECYCLING;
}
impl WorkspaceEntity for LeadRecycling {}

pub const INACTIVE_DAYS: i64 = 30;
pub const UNENGAGED_DAYS: i64 = 45;
pub const MAX_ATTEMPTS: u32 = 5;
/// Days before attempt n+1 after attempt n (the first comes a day after detection).
const DELAYS: [i64; 5] = [1, 3, 7, 14, 30];
const METHODS: [Method; 5] = [
    Method::Email,
    Method::Sms,
    Method::Email,
    Method::Call,
    Method::Email,
];
const STAGES: [&str; 5] = ["lead", "mql", "sql", "sal", "opportunity"];
const BATCH: u64 = 200;

fn method_for(attempt: u32) -> Method {
    METHODS
        .get(attempt as usize)
        .copied()
        .unwrap_or(Method::Email)
}

fn days_between(a: Timestamp, b: Timestamp) -> i64 {
    (b.millis() - a.millis()) / (DAY_SECS * 1000)
}

/// Why a contact needs recycling at `now`, if it does.
fn reason(
    c: &Contact,
    score: Option<&LeadScore>,
    now: Timestamp,
) -> Option<(RecyclingReason, Map<String, Value>)> {
    let mut crit = Map::new();
    crit.insert("lifecycleStage".into(), json!(c.lifecycle_stage));
    if let Some(t) = c.last_contacted_at {
        let d = days_between(t, now);
        if d >= INACTIVE_DAYS {
            crit.insert("daysSinceLastActivity".into(), json!(d));
            return Some((RecyclingReason::Inactive, crit));
        }
    }
    let last = score.and_then(|s| s.last_activity_at).or(c.created_at)?;
    let d = days_between(last, now);
    if d >= UNENGAGED_DAYS {
        crit.insert("noEngagementDays".into(), json!(d));
        if let Some(s) = score {
            crit.insert("currentScore".into(), json!(s.current_score));
        }
        return Some((RecyclingReason::NoEngagement, crit));
    }
    None
}

async fn score_of(scope: &WorkspaceScope, c: ContactId) -> Result<Option<LeadScore>> {
    Ok(scope
        .repo::<LeadScore>()
        .find(
            &Filter::eq("contactId", c.to_string()),
            &FindOptions::default(),
        )
        .await?
        .into_iter()
        .next())
}

async fn record_of(scope: &WorkspaceScope, c: ContactId) -> Result<Option<LeadRecycling>> {
    Ok(scope
        .repo::<LeadRecycling>()
        .find(
            &Filter::eq("contactId", c.to_string()),
            &FindOptions::default(),
        )
        .await?
        .into_iter()
        .next())
}

/// Opens a recycling record for every quiet lead without an open one (a re-engaged lead that
/// went quiet again starts a new cycle). Returns how many were opened.
pub async fn detect(scope: &WorkspaceScope, now: Timestamp) -> Result<u64> {
    let cut_inactive = now.plus_seconds(-INACTIVE_DAYS * DAY_SECS).to_canonical();
    let cut_unengaged = now.plus_seconds(-UNENGAGED_DAYS * DAY_SECS).to_canonical();
    let base = Filter::In(
        "lifecycleStage".into(),
        STAGES.iter().map(|s| json!(s)).collect(),
    )
    .and(Filter::eq("deletedAt", Value::Null))
    .and(Filter::Or(vec![
        Filter::Lte("lastContactedAt".into(), json!(cut_inactive)),
        Filter::Lte("createdAt".into(), json!(cut_unengaged)),
    ]));
    let repo = scope.repo::<LeadRecycling>();
    let mut opened = 0;
    let mut after: Option<String> = None;
    loop {
        let mut f = base.clone();
        if let Some(a) = &after {
            f = f.and(Filter::Gt("_id".into(), json!(a)));
        }
        let opts = FindOptions {
            sort: vec![SortKey::asc("_id")],
            skip: 0,
            limit: Some(BATCH),
        };
        let batch = scope.repo::<Contact>().find(&f, &opts).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id.to_string());
        let n = batch.len() as u64;
        for c in batch {
            let score = score_of(scope, c.id).await?;
            let Some((why, crit)) = reason(&c, score.as_ref(), now) else {
                continue;
            };
            let fresh = LeadRecycling {
                id: LeadRecyclingId::new(),
                workspace_id: scope.id(),
                contact_id: c.id,
                detected_at: now,
                detected_reason: why,
                detection_criteria: crit,
                status: RecyclingStatus::Detected,
                current_attempt: 0,
                max_attempts: MAX_ATTEMPTS,
                first_attempt_at: None,
                last_attempt_at: None,
                re_engaged_at: None,
                exhausted_at: None,
                attempts: Vec::new(),
                total_emails_sent: 0,
                total_opens: 0,
                total_clicks: 0,
                total_replies: 0,
                next_attempt_at: Some(now.plus_seconds(DELAYS[0] * DAY_SECS)),
                next_attempt_method: Some(method_for(0)),
                assigned_to: c.assigned_to,
                notes: None,
                tags: Vec::new(),
                created_at: None,
                updated_at: None,
            };
            match record_of(scope, c.id).await? {
                None => match repo.insert(&fresh).await {
                    Ok(_) => opened += 1,
                    // Another run opened it first.
                    Err(Error::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                },
                Some(r)
                    if r.status == RecyclingStatus::ReEngaged
                        && r.re_engaged_at
                            .is_some_and(|t| t < now.plus_seconds(-INACTIVE_DAYS * DAY_SECS)) =>
                {
                    // A new cycle in place: one record per contact (unique key).
                    let mut doc = to_document(&fresh)?;
                    doc.remove("_id");
                    doc.remove("workspaceId");
                    doc.remove("createdAt");
                    doc.remove("updatedAt");
                    let mut u = Update::new();
                    for (k, v) in doc {
                        u = u.set(crm_core::FieldPath::parse(&k)?, v);
                    }
                    let guard =
                        Filter::eq("_id", r.id.to_string()).and(Filter::eq("status", "re_engaged"));
                    if repo.find_one_and_update(&guard, &u, false).await?.is_some() {
                        opened += 1;
                    }
                }
                Some(_) => {}
            }
        }
        if n < BATCH {
            break;
        }
    }
    Ok(opened)
}

/// Whether the contact showed activity after `since` (a scored event, or being contacted).
async fn active_since(scope: &WorkspaceScope, c: ContactId, since: Timestamp) -> Result<bool> {
    let contact = match scope.repo::<Contact>().get(c).await {
        Ok(x) => x,
        Err(Error::NotFound) => return Ok(false),
        Err(e) => return Err(e),
    };
    if contact.last_contacted_at.is_some_and(|t| t > since) {
        return Ok(true);
    }
    Ok(score_of(scope, c)
        .await?
        .and_then(|s| s.last_activity_at)
        .is_some_and(|t| t > since))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Processed {
    pub attempted: u64,
    pub re_engaged: u64,
    pub exhausted: u64,
}

/// Makes every due attempt: a lead active since its last attempt is re-engaged instead; the
/// fifth attempt exhausts the record. Each record moves under a guard on its attempt count, so
/// a job that runs twice attempts once.
pub async fn process(scope: &WorkspaceScope, now: Timestamp) -> Result<Processed> {
    let due = Filter::In(
        "status".into(),
        vec![json!("detected"), json!("in_recycling")],
    )
    .and(Filter::Lte(
        "nextAttemptAt".into(),
        json!(now.to_canonical()),
    ));
    let repo = scope.repo::<LeadRecycling>();
    let mut out = Processed::default();
    let mut after: Option<String> = None;
    loop {
        let mut f = due.clone();
        if let Some(a) = &after {
            f = f.and(Filter::Gt("_id".into(), json!(a)));
        }
        let opts = FindOptions {
            sort: vec![SortKey::asc("_id")],
            skip: 0,
            limit: Some(BATCH),
        };
        let batch = repo.find(&f, &opts).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id.to_string());
        let n = batch.len() as u64;
        for r in batch {
            let guard = Filter::eq("_id", r.id.to_string())
                .and(Filter::eq("currentAttempt", r.current_attempt))
                .and(Filter::eq("status", json!(r.status)));
            let since = r.last_attempt_at.unwrap_or(r.detected_at);
            if active_since(scope, r.contact_id, since).await? {
                let u = Update::new()
                    .set("status", "re_engaged")
                    .set("reEngagedAt", now.to_canonical())
                    .unset("nextAttemptAt")
                    .unset("nextAttemptMethod");
                if repo.find_one_and_update(&guard, &u, false).await?.is_some() {
                    out.re_engaged += 1;
                }
                continue;
            }
            if r.current_attempt >= r.max_attempts {
                let u = Update::new()
                    .set("status", "exhausted")
                    .set("exhaustedAt", now.to_canonical())
                    .unset("nextAttemptAt");
                if repo.find_one_and_update(&guard, &u, false).await?.is_some() {
                    out.exhausted += 1;
                }
                continue;
            }
            let number = r.current_attempt + 1;
            let method = method_for(r.current_attempt);
            let attempt = Attempt {
                attempt_number: number,
                method,
                sent_at: now,
                status: "sent".into(),
                metadata: Map::new(),
            };
            let mut u = Update::new()
                .push(
                    "attempts",
                    serde_json::to_value(&attempt).map_err(Error::internal)?,
                )
                .set("currentAttempt", number)
                .set("lastAttemptAt", now.to_canonical());
            if r.first_attempt_at.is_none() {
                u = u.set("firstAttemptAt", now.to_canonical());
            }
            if method == Method::Email {
                u = u.inc("totalEmailsSent", 1);
            }
            let done = number >= r.max_attempts;
            if done {
                u = u
                    .set("status", "exhausted")
                    .set("exhaustedAt", now.to_canonical())
                    .unset("nextAttemptAt")
                    .unset("nextAttemptMethod");
            } else {
                let delay = DELAYS.get(number as usize).copied().unwrap_or(30);
                u = u
                    .set("status", "in_recycling")
                    .set(
                        "nextAttemptAt",
                        now.plus_seconds(delay * DAY_SECS).to_canonical(),
                    )
                    .set("nextAttemptMethod", json!(method_for(number)));
            }
            if repo.find_one_and_update(&guard, &u, false).await?.is_none() {
                continue;
            }
            out.attempted += 1;
            if done {
                out.exhausted += 1;
            }
            let mut e = DomainEvent::new(scope.id(), "lead.recycling_attempt", now);
            e.entity_type = Some("contact".into());
            e.entity_id = Some(r.contact_id.object_id());
            e.data.insert("contactId".into(), json!(r.contact_id));
            e.data.insert("recyclingId".into(), json!(r.id));
            e.data.insert("attemptNumber".into(), json!(number));
            e.data.insert("method".into(), json!(method));
            e.data.insert("reason".into(), json!(r.detected_reason));
            scope.emit(e).await?;
        }
        if n < BATCH {
            break;
        }
    }
    Ok(out)
}

/// What an admin may change by hand.
#[derive(Debug, Clone, Default)]
pub struct RecyclingPatch {
    pub status: Option<RecyclingStatus>,
    pub notes: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub assigned_to: Option<Option<UserId>>,
    pub next_attempt_at: Option<Timestamp>,
    pub max_attempts: Option<u32>,
}

pub async fn patch(
    scope: &WorkspaceScope,
    id: LeadRecyclingId,
    p: RecyclingPatch,
    now: Timestamp,
) -> Result<LeadRecycling> {
    let repo = scope.repo::<LeadRecycling>();
    let current = repo.get(id).await?;
    let mut u = Update::new();
    if let Some(s) = p.status {
        u = u.set("status", json!(s));
        match s {
            RecyclingStatus::ReEngaged => u = u.set("reEngagedAt", now.to_canonical()),
            RecyclingStatus::Exhausted => u = u.set("exhaustedAt", now.to_canonical()),
            _ => {}
        }
    }
    if let Some(n) = p.notes {
        if n.as_ref().is_some_and(|n| n.chars().count() > 5000) {
            return Err(Error::invalid("notes", "at most 5000 characters"));
        }
        u = match n {
            Some(n) => u.set("notes", n),
            None => u.unset("notes"),
        };
    }
    if let Some(t) = p.tags {
        u = u.set("tags", json!(t));
    }
    if let Some(a) = p.assigned_to {
        u = match a {
            Some(a) => u.set("assignedTo", a.to_string()),
            None => u.unset("assignedTo"),
        };
    }
    if let Some(t) = p.next_attempt_at {
        u = u.set("nextAttemptAt", t.to_canonical());
    }
    if let Some(m) = p.max_attempts {
        if !(1..=10).contains(&m) {
            return Err(Error::invalid("maxAttempts", "must be between 1 and 10"));
        }
        if m < current.current_attempt {
            return Err(Error::invalid(
                "maxAttempts",
                "cannot be below the attempts already made",
            ));
        }
        u = u.set("maxAttempts", m);
    }
    if u.is_empty() {
        return Ok(current);
    }
    repo.update(id, &u).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_leads_are_found_for_the_right_reason() {
        let now = Timestamp::parse("2026-06-01T00:00:00Z").unwrap();
        let ago = |d: i64| now.plus_seconds(-d * DAY_SECS);
        let mut c = Contact::new(WorkspaceId::new(), UserId::new(), "A");
        c.created_at = Some(ago(10));
        assert!(reason(&c, None, now).is_none());
        c.last_contacted_at = Some(ago(30));
        assert_eq!(reason(&c, None, now).unwrap().0, RecyclingReason::Inactive);
        c.last_contacted_at = Some(ago(29));
        c.created_at = Some(ago(45));
        assert_eq!(
            reason(&c, None, now).unwrap().0,
            RecyclingReason::NoEngagement
        );
        let mut s = LeadScore::new(WorkspaceId::new(), c.id, ago(44));
        assert!(reason(&c, Some(&s), now).is_none());
        s.last_activity_at = Some(ago(46));
        assert_eq!(reason(&c, Some(&s), now).unwrap().1["noEngagementDays"], 46);
    }
}
