//! Running campaigns and sequences: enrollment, start and pause, and the jobs that send each
//! step (`campaign.send`, `sequence.step`). Every wait is a job with a `runAt`: a send due
//! outside the sending window is re-queued for the window's next opening, a step's delay is the
//! next job's `runAt`. Jobs may run twice, so each one re-reads the enrollment and acts only
//! when it still points at the job's step.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use automation::handlers::{EventConsumer, JobHandler};
use automation::jobs::{Job, JobQueue, NewJob};
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::entities::task::Task;
use crm_core::events::DomainEvent;
use crm_core::repo::{Stores, WorkspaceScope};
use crm_core::{Error, Filter, FindOptions, ObjectId, Result, SortKey, Timestamp, Update};

use crate::campaign::{
    Campaign, CampaignEnrollment, CampaignEnrollmentId, CampaignId, CampaignStatus, SentEmail,
};
use crate::sequence::{
    Sequence, SequenceEnrollment, SequenceEnrollmentId, SequenceEnrollmentStatus, SequenceId,
    SequenceStatus, SequenceStepType,
};
use crate::templates::{contact_values, render};

pub const CAMPAIGN_SEND: &str = "campaign.send";
pub const SEQUENCE_STEP: &str = "sequence.step";
/// Most contacts one enroll request may name.
pub const ENROLL_MAX: usize = 500;
/// How long one send holds its enrollment (the original's 60 s lock).
const LOCK_SECS: i64 = 60;
/// Rounds an optimistic write of a sequence's embedded enrollments is retried.
const RETRIES: usize = 8;

/// One message to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingEmail {
    pub workspace_id: crm_core::WorkspaceId,
    /// Stable per (enrollment, step): a transport may drop a repeat with the same key.
    pub key: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_account_id: Option<ObjectId>,
}

/// Where campaign and sequence emails leave the system (the integrations crate's sending
/// accounts in production); returns the message id.
#[async_trait]
pub trait OutboundEmail: Send + Sync + Debug {
    async fn send(&self, msg: &OutgoingEmail) -> Result<String>;
}

/// Logs each message instead of sending it (no sending account wired): the server's default,
/// as for workflow mails. The message id is derived from the key, so repeats agree.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOutbound;

#[async_trait]
impl OutboundEmail for LogOutbound {
    async fn send(&self, msg: &OutgoingEmail) -> Result<String> {
        tracing::info!(
            workspace = %msg.workspace_id,
            key = %msg.key,
            to = %msg.to,
            subject = %msg.subject,
            "engagement email not sent: no sending account is wired"
        );
        Ok(format!("<{}@clianta>", msg.key))
    }
}

/// Keeps what would have been sent; repeats of a key are not kept twice. For tests and for
/// servers without a sending account configured.
#[derive(Debug, Default)]
pub struct RecordingOutbound {
    sent: Mutex<Vec<OutgoingEmail>>,
}

impl RecordingOutbound {
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl OutboundEmail for RecordingOutbound {
    async fn send(&self, msg: &OutgoingEmail) -> Result<String> {
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| Error::internal("outbound log poisoned"))?;
        if !sent.iter().any(|m| m.key == msg.key) {
            sent.push(msg.clone());
        }
        Ok(format!("<{}@clianta>", msg.key))
    }
}

fn ids_of(contacts: &[ContactId]) -> Result<()> {
    if contacts.is_empty() || contacts.len() > ENROLL_MAX {
        return Err(Error::invalid(
            "contactIds",
            format!("name 1 to {ENROLL_MAX} contacts"),
        ));
    }
    Ok(())
}

async fn ensure_contacts(scope: &WorkspaceScope, contacts: &[ContactId]) -> Result<()> {
    let ids: Vec<Value> = contacts.iter().map(|c| json!(c.to_string())).collect();
    let found = scope
        .repo::<Contact>()
        .count(&Filter::any_of("_id", ids))
        .await?;
    let mut distinct = contacts.to_vec();
    distinct.sort();
    distinct.dedup();
    if found != distinct.len() as u64 {
        return Err(Error::invalid(
            "contactIds",
            "every contact must exist in this workspace",
        ));
    }
    Ok(())
}

// ---- campaigns ----

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolled {
    pub enrollments: Vec<CampaignEnrollment>,
    /// How many of them this request created (the rest existed already).
    pub created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendPayload {
    enrollment_id: CampaignEnrollmentId,
    step: u32,
}

/// Queues the send of `step` for the window's first opening at or after `due`, and records it
/// as the enrollment's `nextSendAt`.
async fn schedule_send(
    scope: &WorkspaceScope,
    queue: &dyn JobQueue,
    campaign: &Campaign,
    enrollment: CampaignEnrollmentId,
    step: u32,
    due: Timestamp,
) -> Result<Timestamp> {
    let run_at = campaign.sending_schedule.window().next_opening(due)?;
    scope
        .repo::<CampaignEnrollment>()
        .update(
            enrollment,
            &Update::new().set("nextSendAt", run_at.to_canonical()),
        )
        .await?;
    let payload = serde_json::to_value(SendPayload {
        enrollment_id: enrollment,
        step,
    })
    .map_err(Error::internal)?;
    queue
        .enqueue(
            NewJob::new(CAMPAIGN_SEND, payload, run_at)
                .in_workspace(scope.id())
                .dedupe(format!(
                    "{CAMPAIGN_SEND}:{enrollment}:{step}:{}",
                    run_at.millis()
                )),
        )
        .await?;
    Ok(run_at)
}

/// Enrolls contacts; a contact already enrolled gets its existing enrollment back (unique
/// `(contactId, campaignId)`). In an active campaign the first send is queued at once.
pub async fn enroll(
    scope: &WorkspaceScope,
    queue: &dyn JobQueue,
    now: Timestamp,
    campaign: CampaignId,
    contacts: &[ContactId],
) -> Result<Enrolled> {
    ids_of(contacts)?;
    let c = scope.repo::<Campaign>().get(campaign).await?;
    ensure_contacts(scope, contacts).await?;
    let repo = scope.repo::<CampaignEnrollment>();
    let mut out = Enrolled {
        enrollments: Vec::new(),
        created: 0,
    };
    for &contact in contacts {
        if out.enrollments.iter().any(|e| e.contact_id == contact) {
            continue;
        }
        let fresh = CampaignEnrollment::new(scope.id(), campaign, contact, now);
        match repo.insert(&fresh).await {
            Ok(e) => {
                out.created += 1;
                let e = if c.status == CampaignStatus::Active {
                    schedule_send(scope, queue, &c, e.id, 0, now).await?;
                    repo.get(e.id).await?
                } else {
                    e
                };
                out.enrollments.push(e);
            }
            Err(Error::Conflict { .. }) => {
                let f = Filter::eq("campaignId", campaign.to_string())
                    .and(Filter::eq("contactId", contact.to_string()));
                let existing = repo
                    .find(&f, &FindOptions::default())
                    .await?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::internal("enrollment conflict without a record"))?;
                out.enrollments.push(existing);
            }
            Err(e) => return Err(e),
        }
    }
    if out.created > 0 {
        scope
            .repo::<Campaign>()
            .update(
                campaign,
                &Update::new()
                    .inc("totalEnrolled", out.created)
                    .inc("activeEnrollments", out.created),
            )
            .await?;
    }
    Ok(out)
}

/// Every live enrollment of a campaign, a page at a time.
async fn live_enrollments(
    scope: &WorkspaceScope,
    campaign: CampaignId,
    after: Option<CampaignEnrollmentId>,
) -> Result<Vec<CampaignEnrollment>> {
    let mut f = Filter::eq("campaignId", campaign.to_string()).and(Filter::any_of(
        "status",
        vec![json!("pending"), json!("active")],
    ));
    if let Some(a) = after {
        f = f.and(Filter::Gt("_id".into(), json!(a.to_string())));
    }
    let opts = FindOptions {
        sort: vec![SortKey::asc("_id")],
        limit: Some(500),
        ..FindOptions::default()
    };
    scope.repo::<CampaignEnrollment>().find(&f, &opts).await
}

/// Activates a campaign (it needs steps) and queues the next send of each live enrollment.
pub async fn start(
    scope: &WorkspaceScope,
    queue: &dyn JobQueue,
    now: Timestamp,
    campaign: CampaignId,
) -> Result<Campaign> {
    let c = scope.repo::<Campaign>().get(campaign).await?;
    if c.steps.is_empty() {
        return Err(Error::invalid("steps", "a campaign needs a step to start"));
    }
    if c.status == CampaignStatus::Completed {
        return Err(Error::invalid(
            "status",
            "a completed campaign cannot start",
        ));
    }
    let c = scope
        .repo::<Campaign>()
        .update(campaign, &Update::new().set("status", "active"))
        .await?;
    let mut after = None;
    loop {
        let page = live_enrollments(scope, campaign, after).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for e in &page {
            let due = e.next_send_at.map_or(now, |t| t.max(now));
            schedule_send(scope, queue, &c, e.id, e.current_step_index, due).await?;
        }
    }
    Ok(c)
}

/// Pauses a campaign: queued sends find it paused and do nothing; `start` queues them again.
pub async fn pause(scope: &WorkspaceScope, campaign: CampaignId) -> Result<Campaign> {
    scope
        .repo::<Campaign>()
        .update(campaign, &Update::new().set("status", "paused"))
        .await
}

/// The campaign's local day of `now`, as the daily limit counts it.
fn local_day(c: &Campaign, now: Timestamp) -> String {
    now.datetime()
        .with_timezone(&c.sending_schedule.timezone.tz())
        .date_naive()
        .to_string()
}

/// Takes one of today's `dailyLimit` sends, atomically; false when none is left.
async fn take_daily_slot(scope: &WorkspaceScope, c: &Campaign, now: Timestamp) -> Result<bool> {
    if c.daily_limit == 0 {
        return Ok(false);
    }
    let repo = scope.repo::<Campaign>();
    let day = local_day(c, now);
    let id = Filter::eq("_id", c.id.to_string());
    let same_day = id
        .clone()
        .and(Filter::eq("dailySent.day", day.clone()))
        .and(Filter::Lt("dailySent.count".into(), json!(c.daily_limit)));
    if repo
        .find_one_and_update(&same_day, &Update::new().inc("dailySent.count", 1), false)
        .await?
        .is_some()
    {
        return Ok(true);
    }
    let new_day = id.and(Filter::Ne("dailySent.day".into(), json!(day.clone())));
    Ok(repo
        .find_one_and_update(
            &new_day,
            &Update::new().set("dailySent", json!({"day": day, "count": 1})),
            false,
        )
        .await?
        .is_some())
}

/// The first instant of the campaign's next local day.
fn next_local_midnight(c: &Campaign, now: Timestamp) -> Timestamp {
    let tz = c.sending_schedule.timezone.tz();
    let local = now.datetime().with_timezone(&tz).date_naive() + Duration::days(1);
    let midnight = local.and_time(chrono::NaiveTime::MIN);
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|d| Timestamp::from(d.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|| now.plus_seconds(86_400))
}

/// Runs `campaign.send` jobs.
#[derive(Debug, Clone)]
pub struct CampaignSender {
    pub stores: Stores,
    pub queue: Arc<dyn JobQueue>,
    pub outbound: Arc<dyn OutboundEmail>,
}

/// What one run of a send job did (for tests and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The job no longer applies (enrollment moved on, campaign paused, records gone).
    Stale,
    /// Outside the window or over the daily limit: queued again for this instant.
    Rescheduled(Timestamp),
    /// `sendIf` failed: the step was skipped.
    Skipped,
    /// The enrollment stopped with this reason (no email, a template variable without value).
    Stopped(String),
    Sent {
        message_id: String,
    },
}

impl CampaignSender {
    async fn stop(
        &self,
        scope: &WorkspaceScope,
        e: &CampaignEnrollment,
        now: Timestamp,
        why: String,
    ) -> Result<SendOutcome> {
        scope
            .repo::<CampaignEnrollment>()
            .update(
                e.id,
                &Update::new()
                    .set("status", "paused")
                    .set("pausedAt", now.to_canonical())
                    .set("lastError", why.clone())
                    .unset("_lockedUntil")
                    .unset("_lockedBy"),
            )
            .await?;
        Ok(SendOutcome::Stopped(why))
    }

    /// Moves the enrollment past `step`: the next step is queued after its delay, or the
    /// enrollment completes.
    async fn advance(
        &self,
        scope: &WorkspaceScope,
        c: &Campaign,
        e: &CampaignEnrollment,
        step: u32,
        sent: Option<SentEmail>,
        now: Timestamp,
    ) -> Result<()> {
        let steps = c.ordered_steps();
        let next = step + 1;
        let mut u = Update::new()
            .set("currentStepIndex", next)
            .unset("_lockedUntil")
            .unset("_lockedBy")
            .unset("lastError");
        if let Some(s) = sent {
            u = u.push(
                "emailsSent",
                serde_json::to_value(s).map_err(Error::internal)?,
            );
        }
        let follow = steps.get(next as usize).copied();
        u = match follow {
            Some(_) => u.set("status", "active"),
            None => u
                .set("status", "completed")
                .set("completedAt", now.to_canonical())
                .unset("nextSendAt"),
        };
        scope.repo::<CampaignEnrollment>().update(e.id, &u).await?;
        match follow {
            Some(st) => {
                let due = now.plus_seconds(st.delay_secs());
                schedule_send(scope, self.queue.as_ref(), c, e.id, next, due).await?;
            }
            None => {
                scope
                    .repo::<Campaign>()
                    .update(
                        c.id,
                        &Update::new()
                            .inc("completedEnrollments", 1)
                            .inc("activeEnrollments", -1),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// One attempt at the send a job names.
    pub async fn send(&self, job: &Job) -> Result<SendOutcome> {
        let ws = job
            .workspace_id
            .ok_or_else(|| Error::internal("campaign.send without a workspace"))?;
        let p: SendPayload =
            serde_json::from_value(job.payload.clone()).map_err(Error::internal)?;
        let scope = self.stores.workspace(ws);
        let now = self.stores.clock().now();
        let e = match scope
            .repo::<CampaignEnrollment>()
            .get(p.enrollment_id)
            .await
        {
            Err(Error::NotFound) => return Ok(SendOutcome::Stale),
            other => other?,
        };
        if !e.status.is_live() || e.current_step_index != p.step {
            return Ok(SendOutcome::Stale);
        }
        let c = match scope.repo::<Campaign>().get(e.campaign_id).await {
            Err(Error::NotFound) => return Ok(SendOutcome::Stale),
            other => other?,
        };
        if c.status != CampaignStatus::Active {
            return Ok(SendOutcome::Stale);
        }
        let steps = c.ordered_steps();
        let Some(step) = steps.get(p.step as usize).copied() else {
            self.advance(&scope, &c, &e, p.step, None, now).await?;
            return Ok(SendOutcome::Stale);
        };
        let open = c.sending_schedule.window().next_opening(now)?;
        if open != now {
            let at = schedule_send(&scope, self.queue.as_ref(), &c, e.id, p.step, open).await?;
            return Ok(SendOutcome::Rescheduled(at));
        }
        if let Some(cond) = &step.send_if
            && !cond.holds(e.emails_sent.last())
        {
            self.advance(&scope, &c, &e, p.step, None, now).await?;
            return Ok(SendOutcome::Skipped);
        }
        // Claim the enrollment for this send (another worker may run a copy of the job).
        let unlocked = Filter::Or(vec![
            Filter::Exists("_lockedUntil".into(), false),
            Filter::Lt("_lockedUntil".into(), json!(now.to_canonical())),
        ]);
        let claim = Filter::eq("_id", e.id.to_string())
            .and(Filter::eq("currentStepIndex", p.step))
            .and(unlocked);
        let lock = Update::new()
            .set("_lockedUntil", now.plus_seconds(LOCK_SECS).to_canonical())
            .set("_lockedBy", job.id.to_string());
        if scope
            .repo::<CampaignEnrollment>()
            .find_one_and_update(&claim, &lock, false)
            .await?
            .is_none()
        {
            return Ok(SendOutcome::Stale);
        }
        let contact = match scope.repo::<Contact>().get(e.contact_id).await {
            Err(Error::NotFound) => {
                return self.stop(&scope, &e, now, "contact deleted".into()).await;
            }
            other => other?,
        };
        let Some(to) = contact.email.clone().filter(|m| !m.is_empty()) else {
            return self
                .stop(&scope, &e, now, "contact has no email".into())
                .await;
        };
        let rendered = match render(
            step.subject.as_str(),
            step.body.as_str(),
            None,
            &contact_values(&contact),
        ) {
            Ok(r) => r,
            Err(Error::Invalid { reason, .. }) => {
                return self.stop(&scope, &e, now, reason).await;
            }
            Err(other) => return Err(other),
        };
        if !take_daily_slot(&scope, &c, now).await? {
            let at = schedule_send(
                &scope,
                self.queue.as_ref(),
                &c,
                e.id,
                p.step,
                next_local_midnight(&c, now),
            )
            .await?;
            scope
                .repo::<CampaignEnrollment>()
                .update(
                    e.id,
                    &Update::new().unset("_lockedUntil").unset("_lockedBy"),
                )
                .await?;
            return Ok(SendOutcome::Rescheduled(at));
        }
        let from = (!c.from_accounts.is_empty())
            .then(|| c.from_accounts[(c.stats.sent as usize) % c.from_accounts.len()]);
        let msg = OutgoingEmail {
            workspace_id: ws,
            key: format!("campaign:{}:{}", e.id, step.id),
            to,
            subject: rendered.subject,
            body: rendered.body,
            from_account_id: from,
        };
        let message_id = match self.outbound.send(&msg).await {
            Ok(id) => id,
            Err(err) => {
                // Free the enrollment so the job's retry can claim it again.
                scope
                    .repo::<CampaignEnrollment>()
                    .update(
                        e.id,
                        &Update::new().unset("_lockedUntil").unset("_lockedBy"),
                    )
                    .await?;
                return Err(err);
            }
        };
        let sent = SentEmail {
            step_id: step.id.to_string(),
            message_id: message_id.clone(),
            sent_at: now,
            from_account_id: from,
            opened: false,
            opened_at: None,
            clicked: false,
            clicked_at: None,
            replied: false,
            replied_at: None,
            bounced: false,
            bounced_at: None,
        };
        scope
            .repo::<Campaign>()
            .update(c.id, &Update::new().inc("stats.sent", 1))
            .await?;
        self.advance(&scope, &c, &e, p.step, Some(sent), now)
            .await?;
        Ok(SendOutcome::Sent { message_id })
    }
}

#[async_trait]
impl JobHandler for CampaignSender {
    fn kind(&self) -> &'static str {
        CAMPAIGN_SEND
    }
    async fn run(&self, job: &Job) -> Result<()> {
        let outcome = self.send(job).await?;
        tracing::debug!(job = %job.id, ?outcome, "campaign send");
        Ok(())
    }
}

// ---- sequences ----

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepPayload {
    sequence_id: SequenceId,
    enrollment_id: SequenceEnrollmentId,
    step: u32,
}

/// Applies `f` to a fresh copy of the sequence and writes its enrollments and stats back,
/// guarded by the `updatedAt` it read; retried when another write came first.
async fn modify_sequence<R>(
    scope: &WorkspaceScope,
    id: SequenceId,
    mut f: impl FnMut(&mut Sequence) -> Result<R>,
) -> Result<(Sequence, R)> {
    let repo = scope.repo::<Sequence>();
    for _ in 0..RETRIES {
        let mut s = repo.get(id).await?;
        let read_at = s.updated_at;
        let r = f(&mut s)?;
        s.recount();
        let mut guard = Filter::eq("_id", id.to_string());
        if let Some(t) = read_at {
            guard = guard.and(Filter::eq("updatedAt", t.to_canonical()));
        }
        let u = Update::new()
            .set(
                "enrollments",
                serde_json::to_value(&s.enrollments).map_err(Error::internal)?,
            )
            .set(
                "stats",
                serde_json::to_value(&s.stats).map_err(Error::internal)?,
            );
        if let Some(saved) = repo.find_one_and_update(&guard, &u, false).await? {
            return Ok((saved, r));
        }
    }
    Err(Error::Stale)
}

async fn schedule_step(
    scope: &WorkspaceScope,
    queue: &dyn JobQueue,
    s: &Sequence,
    enrollment: SequenceEnrollmentId,
    step: u32,
    due: Timestamp,
) -> Result<Timestamp> {
    let run_at = s.window().next_opening(due)?;
    let payload = serde_json::to_value(StepPayload {
        sequence_id: s.id,
        enrollment_id: enrollment,
        step,
    })
    .map_err(Error::internal)?;
    queue
        .enqueue(
            NewJob::new(SEQUENCE_STEP, payload, run_at)
                .in_workspace(scope.id())
                .dedupe(format!(
                    "{SEQUENCE_STEP}:{enrollment}:{step}:{}",
                    run_at.millis()
                )),
        )
        .await?;
    Ok(run_at)
}

/// Enrolls contacts in an active sequence with steps; a contact with an active enrollment
/// keeps it. The first step is due after its own delay (the original's rule).
pub async fn enroll_in_sequence(
    scope: &WorkspaceScope,
    queue: &dyn JobQueue,
    now: Timestamp,
    sequence: SequenceId,
    contacts: &[ContactId],
) -> Result<Vec<SequenceEnrollment>> {
    ids_of(contacts)?;
    let current = scope.repo::<Sequence>().get(sequence).await?;
    if current.status != SequenceStatus::Active {
        return Err(Error::invalid("status", "the sequence is not active"));
    }
    let Some(first) = current.ordered_steps().first().map(|s| s.delay) else {
        return Err(Error::invalid("steps", "the sequence has no steps"));
    };
    ensure_contacts(scope, contacts).await?;
    let (saved, ids) = modify_sequence(scope, sequence, |s| {
        let mut ids = Vec::new();
        for &c in contacts {
            if let Some(e) = s
                .enrollments
                .iter()
                .find(|e| e.contact_id == c && e.status == SequenceEnrollmentStatus::Active)
            {
                ids.push((e.id, false));
                continue;
            }
            let e = SequenceEnrollment {
                id: SequenceEnrollmentId::new(),
                contact_id: c,
                current_step_index: 0,
                status: SequenceEnrollmentStatus::Active,
                enrolled_at: now,
                next_email_at: Some(now.plus_seconds(first.secs())),
                last_email_at: None,
                completed_at: None,
                emails_sent: 0,
                emails_opened: 0,
                emails_clicked: 0,
            };
            ids.push((e.id, true));
            s.enrollments.push(e);
        }
        Ok(ids)
    })
    .await?;
    let mut out = Vec::new();
    for (id, new) in ids {
        let Some(e) = saved.enrollment(id).cloned() else {
            continue;
        };
        if new {
            schedule_step(scope, queue, &saved, id, 0, e.next_email_at.unwrap_or(now)).await?;
        }
        out.push(e);
    }
    Ok(out)
}

/// Sets the status of a sequence; activating queues the next step of every active enrollment.
pub async fn set_sequence_status(
    scope: &WorkspaceScope,
    queue: &dyn JobQueue,
    now: Timestamp,
    sequence: SequenceId,
    status: SequenceStatus,
) -> Result<Sequence> {
    let s = scope.repo::<Sequence>().get(sequence).await?;
    if status == SequenceStatus::Active && s.steps.is_empty() {
        return Err(Error::invalid("steps", "a sequence needs a step to start"));
    }
    let s = scope
        .repo::<Sequence>()
        .update(
            sequence,
            &Update::new().set(
                "status",
                serde_json::to_value(status).map_err(Error::internal)?,
            ),
        )
        .await?;
    if status == SequenceStatus::Active {
        for e in s
            .enrollments
            .iter()
            .filter(|e| e.status == SequenceEnrollmentStatus::Active)
        {
            let due = e.next_email_at.map_or(now, |t| t.max(now));
            schedule_step(scope, queue, &s, e.id, e.current_step_index, due).await?;
        }
    }
    Ok(s)
}

/// A reply from the enrolled contact: with `unenrollOnReply` the enrollment exits (status
/// `replied`) and its queued steps find it so and do nothing.
pub async fn record_reply(
    scope: &WorkspaceScope,
    now: Timestamp,
    sequence: SequenceId,
    enrollment: SequenceEnrollmentId,
) -> Result<SequenceEnrollment> {
    let (saved, ()) = modify_sequence(scope, sequence, |s| {
        let exit = s.unenroll_on_reply;
        let e = s
            .enrollments
            .iter_mut()
            .find(|e| e.id == enrollment)
            .ok_or(Error::NotFound)?;
        if exit && e.status == SequenceEnrollmentStatus::Active {
            e.status = SequenceEnrollmentStatus::Replied;
            e.completed_at = Some(now);
            e.next_email_at = None;
        }
        Ok(())
    })
    .await?;
    saved.enrollment(enrollment).cloned().ok_or(Error::NotFound)
}

/// Runs `sequence.step` jobs.
#[derive(Debug, Clone)]
pub struct SequenceRunner {
    pub stores: Stores,
    pub queue: Arc<dyn JobQueue>,
    pub outbound: Arc<dyn OutboundEmail>,
}

impl SequenceRunner {
    /// One attempt at the step a job names.
    pub async fn step(&self, job: &Job) -> Result<SendOutcome> {
        let ws = job
            .workspace_id
            .ok_or_else(|| Error::internal("sequence.step without a workspace"))?;
        let p: StepPayload =
            serde_json::from_value(job.payload.clone()).map_err(Error::internal)?;
        let scope = self.stores.workspace(ws);
        let now = self.stores.clock().now();
        let s = match scope.repo::<Sequence>().get(p.sequence_id).await {
            Err(Error::NotFound) => return Ok(SendOutcome::Stale),
            other => other?,
        };
        let live = |s: &Sequence| {
            s.enrollment(p.enrollment_id).is_some_and(|e| {
                e.status == SequenceEnrollmentStatus::Active && e.current_step_index == p.step
            })
        };
        if s.status != SequenceStatus::Active || !live(&s) {
            return Ok(SendOutcome::Stale);
        }
        let open = s.window().next_opening(now)?;
        if open != now {
            let at = schedule_step(
                &scope,
                self.queue.as_ref(),
                &s,
                p.enrollment_id,
                p.step,
                open,
            )
            .await?;
            return Ok(SendOutcome::Rescheduled(at));
        }
        let steps = s.ordered_steps();
        let mut outcome = SendOutcome::Skipped;
        let mut stop: Option<String> = None;
        if let Some(step) = steps.get(p.step as usize).copied() {
            let contact_id = s
                .enrollment(p.enrollment_id)
                .map(|e| e.contact_id)
                .ok_or(Error::NotFound)?;
            let contact = match scope.repo::<Contact>().get(contact_id).await {
                Err(Error::NotFound) => None,
                other => Some(other?),
            };
            match (step.step_type, contact) {
                (_, None) => stop = Some("contact deleted".into()),
                (SequenceStepType::Email, Some(c)) => {
                    match (
                        c.email.clone().filter(|m| !m.is_empty()),
                        render(
                            step.subject.as_str(),
                            step.body.as_str(),
                            None,
                            &contact_values(&c),
                        ),
                    ) {
                        (None, _) => stop = Some("contact has no email".into()),
                        (_, Err(Error::Invalid { reason, .. })) => stop = Some(reason),
                        (_, Err(e)) => return Err(e),
                        (Some(to), Ok(r)) => {
                            let msg = OutgoingEmail {
                                workspace_id: ws,
                                key: format!("sequence:{}:{}", p.enrollment_id, step.id),
                                to,
                                subject: r.subject,
                                body: r.body,
                                from_account_id: s.send_from_account_id,
                            };
                            let message_id = self.outbound.send(&msg).await?;
                            outcome = SendOutcome::Sent { message_id };
                        }
                    }
                }
                (SequenceStepType::Task, Some(c)) => {
                    let owner = step.task_assignee.or(s.user_id);
                    if let Some(owner) = owner {
                        let mut t = Task::new(ws, owner, step.subject.as_str());
                        t.description = Some(step.body.to_string());
                        t.related_contact_id = Some(c.id);
                        t.assigned_to = Some(owner);
                        if let Some(p) = step.task_priority {
                            t.priority = p;
                        }
                        t.due_date = step
                            .task_due_in_days
                            .map(|d| now.plus_seconds(i64::from(d) * 86_400));
                        scope.repo::<Task>().insert(&t).await?;
                    }
                }
                (SequenceStepType::Linkedin, Some(_)) => {}
            }
        }
        let sent = matches!(outcome, SendOutcome::Sent { .. });
        let next_delay = steps.get(p.step as usize + 1).map(|st| st.delay);
        let (saved, next_due) = modify_sequence(&scope, p.sequence_id, |s| {
            let Some(e) = s.enrollments.iter_mut().find(|e| e.id == p.enrollment_id) else {
                return Ok(None);
            };
            if e.status != SequenceEnrollmentStatus::Active || e.current_step_index != p.step {
                return Ok(None);
            }
            if stop.is_some() {
                e.status = SequenceEnrollmentStatus::Unenrolled;
                e.completed_at = Some(now);
                e.next_email_at = None;
                return Ok(None);
            }
            if sent {
                e.emails_sent += 1;
                e.last_email_at = Some(now);
            }
            e.current_step_index = p.step + 1;
            match next_delay {
                Some(d) => {
                    let due = now.plus_seconds(d.secs());
                    e.next_email_at = Some(due);
                    Ok(Some(due))
                }
                None => {
                    e.status = SequenceEnrollmentStatus::Completed;
                    e.completed_at = Some(now);
                    e.next_email_at = None;
                    Ok(None)
                }
            }
        })
        .await?;
        if let Some(due) = next_due {
            schedule_step(
                &scope,
                self.queue.as_ref(),
                &saved,
                p.enrollment_id,
                p.step + 1,
                due,
            )
            .await?;
        }
        Ok(match stop {
            Some(why) => SendOutcome::Stopped(why),
            None => outcome,
        })
    }
}

#[async_trait]
impl JobHandler for SequenceRunner {
    fn kind(&self) -> &'static str {
        SEQUENCE_STEP
    }
    async fn run(&self, job: &Job) -> Result<()> {
        let outcome = self.step(job).await?;
        tracing::debug!(job = %job.id, ?outcome, "sequence step");
        Ok(())
    }
}

// ---- replies ----

/// Ends the engagement of a contact who replied (`email.replied`, data `contactId`): its
/// active sequence enrollments with `unenrollOnReply` exit, its live campaign enrollments
/// become `replied`. Idempotent: a second delivery finds nothing live.
#[derive(Debug, Clone)]
pub struct ReplyConsumer {
    pub stores: Stores,
}

pub async fn contact_replied(
    scope: &WorkspaceScope,
    now: Timestamp,
    contact: ContactId,
) -> Result<u64> {
    let mut changed = 0;
    // The query engine does not look into arrays of embedded documents, so the workspace's
    // sequences are read and their enrollments checked here (a workspace has few sequences).
    let seqs = scope
        .repo::<Sequence>()
        .find(&Filter::all(), &FindOptions::default())
        .await?;
    for s in seqs {
        for e in s
            .enrollments
            .iter()
            .filter(|e| e.contact_id == contact && e.status == SequenceEnrollmentStatus::Active)
        {
            let r = record_reply(scope, now, s.id, e.id).await?;
            if r.status == SequenceEnrollmentStatus::Replied {
                changed += 1;
            }
        }
    }
    let live = Filter::eq("contactId", contact.to_string()).and(Filter::any_of(
        "status",
        vec![json!("pending"), json!("active")],
    ));
    let replied = scope
        .repo::<CampaignEnrollment>()
        .update_many(
            &live,
            &Update::new().set("status", "replied").unset("nextSendAt"),
        )
        .await?;
    Ok(changed + replied)
}

#[async_trait]
impl EventConsumer for ReplyConsumer {
    fn name(&self) -> &'static str {
        "campaigns.reply"
    }
    fn wants(&self, event_type: &str) -> bool {
        event_type == "email.replied"
    }
    async fn handle(&self, event: &DomainEvent) -> Result<()> {
        let Some(contact) = event
            .data
            .get("contactId")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<ContactId>().ok())
        else {
            return Ok(());
        };
        let scope = self.stores.workspace(event.workspace_id);
        contact_replied(&scope, event.occurred_at, contact).await?;
        Ok(())
    }
}

/// Registers this crate's job handlers and its reply consumer with an automation runtime.
pub fn register(rt: &automation::runtime::Runtime, outbound: Arc<dyn OutboundEmail>) {
    let stores = rt.stores().clone();
    rt.register_handler(Arc::new(CampaignSender {
        stores: stores.clone(),
        queue: rt.queue(),
        outbound: outbound.clone(),
    }));
    rt.register_handler(Arc::new(SequenceRunner {
        stores: stores.clone(),
        queue: rt.queue(),
        outbound,
    }));
    rt.register_consumer(Arc::new(ReplyConsumer { stores }));
}

/// Registers the workflow engine again with this crate's [`Enroller`] as its sequence port
/// (automation cannot depend on campaigns). The other ports are those
/// `automation::workflows::register` uses: logged mails and the given HTTP caller.
pub fn wire_workflow_sequences(
    rt: &automation::runtime::Runtime,
    http: Arc<dyn crm_core::outbound::HttpCaller>,
) {
    use automation::workflows::{LogWorkflowMailer, WorkflowPorts};
    automation::workflows::register_with(
        rt,
        WorkflowPorts {
            mailer: Arc::new(LogWorkflowMailer),
            http,
            sequences: Arc::new(Enroller {
                queue: rt.queue(),
                clock: rt.clock().clone(),
            }),
        },
    );
}

/// The workflow engine's `enroll_sequence` action: enrolls through the same rules as the
/// API (an already active enrollment is kept, so a redelivered step changes nothing).
#[derive(Debug, Clone)]
pub struct Enroller {
    pub queue: Arc<dyn JobQueue>,
    pub clock: Arc<dyn crm_core::Clock>,
}

#[async_trait]
impl automation::workflows::actions::SequenceEnroller for Enroller {
    async fn enroll(
        &self,
        scope: &WorkspaceScope,
        sequence_id: &str,
        contact: ContactId,
        _key: &str,
    ) -> std::result::Result<Value, String> {
        let id: SequenceId = sequence_id
            .parse()
            .map_err(|_| format!("`{sequence_id}` is not a sequence id"))?;
        let out = enroll_in_sequence(scope, self.queue.as_ref(), self.clock.now(), id, &[contact])
            .await
            .map_err(|e| e.to_string())?;
        serde_json::to_value(out).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[path = "engage_tests.rs"]
mod tests;
