//! The engine (ADR 0020). Every step of an enrollment is one `workflow.step` job whose dedupe
//! key names (enrollment, run, step, poll), so a step is enqueued once however often it is
//! asked for, and a delay is a job due later: nothing waits in memory, and a restarted process
//! picks up where the store says. A step job first checks that the enrollment still stands at
//! that step (a duplicate or stale job does nothing), runs the step, then moves the enrollment on
//! with a write guarded by the same facts, and only then enqueues the next step.
//!
//! Events reach [`WorkflowConsumer`] through the outbox relay; enrollment is idempotent per
//! (workflow, record, trigger event) by a unique key, and "no second live enrollment" (behaviour
//! 45) is the unique `activeKey`, so two servers cannot enroll one record twice either.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crm_core::engine::Document;
use crm_core::entities::company::{COMPANY, Company};
use crm_core::entities::contact::{CONTACT, Contact};
use crm_core::entities::opportunity::{OPPORTUNITY, Opportunity};
use crm_core::events::DomainEvent;
use crm_core::repo::{Stores, WorkspaceScope, to_document};
use crm_core::services::contacts::get_live;
use crm_core::{
    Clock, EntityDef, Error, FieldPath, Filter, FindOptions, ObjectId, Result, SortKey, Timestamp,
    Update, UserId,
};

use super::actions::{self, StepCtx, WorkflowPorts, resolve_input, vars};
use super::conditions::criteria_match;
use super::model::{
    Criteria, EnrollmentSource, EnrollmentStatus, EntityType, Step, StepExecution, StepRunStatus,
    Workflow, WorkflowEnrollment, WorkflowEnrollmentId, WorkflowId, WorkflowStatus, active_key,
};
use super::timing::{resume_at, span_secs};
use crate::handlers::{EventConsumer, JobHandler};
use crate::jobs::{Job, JobQueue, NewJob};

/// The job kind of one step of one enrollment.
pub const STEP_KIND: &str = "workflow.step";
/// Errors of one step before its enrollment fails (behaviour 48).
pub const MAX_STEP_ERRORS: u32 = 3;
/// How often a `wait_until` step looks at its record again.
pub const WAIT_POLL_SECS: i64 = 3600;
/// How long a `wait_until` step waits without a timeout of its own.
pub const WAIT_DEFAULT_SECS: i64 = 7 * 86_400;

/// The declaration of an entity type, for evaluating conditions.
pub fn def_of(et: EntityType) -> &'static EntityDef {
    match et {
        EntityType::Contact => &CONTACT,
        EntityType::Deal => &OPPORTUNITY,
        EntityType::Company => &COMPANY,
    }
}

/// The live (not trashed) record as stored; `NotFound` for a missing, trashed or foreign one.
pub async fn load_record(scope: &WorkspaceScope, et: EntityType, id: ObjectId) -> Result<Document> {
    match et {
        EntityType::Contact => to_document(&get_live::<Contact>(scope, id).await?),
        EntityType::Deal => to_document(&get_live::<Opportunity>(scope, id).await?),
        EntityType::Company => to_document(&get_live::<Company>(scope, id).await?),
    }
}

/// How an enrollment comes about.
#[derive(Debug, Clone, PartialEq)]
pub struct Enroll {
    pub source: EnrollmentSource,
    pub by: Option<UserId>,
    pub trigger_event: Option<ObjectId>,
    /// The trigger type that fired; the enrollment starts after that trigger step.
    pub trigger: Option<String>,
}

impl Enroll {
    pub fn manual(by: Option<UserId>, source: EnrollmentSource) -> Self {
        Self {
            source,
            by,
            trigger_event: None,
            trigger: None,
        }
    }
    pub fn event(id: ObjectId, trigger: &str) -> Self {
        Self {
            source: EnrollmentSource::Automatic,
            by: None,
            trigger_event: Some(id),
            trigger: Some(trigger.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Enrolled {
    pub enrollment: WorkflowEnrollment,
    /// False when the trigger event had already enrolled the record.
    pub created: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepPayload {
    enrollment_id: WorkflowEnrollmentId,
    step_id: String,
    #[serde(default)]
    run: u32,
    #[serde(default)]
    poll: u32,
}

/// The dedupe key of a step job: one job per enrollment, run, step and poll, ever.
pub fn step_key(e: WorkflowEnrollmentId, run: u32, step: &str, poll: u32) -> String {
    format!("{STEP_KIND}:{e}:{run}:{step}:{poll}")
}

/// What evaluating one step decided.
enum Outcome {
    /// Done; continue with `next` (or finish) at `at`.
    Next {
        next: Option<String>,
        at: Timestamp,
        output: Value,
        input: Option<Value>,
    },
    /// A wait_until not satisfied yet: look again at `at`, give up at `deadline`.
    Wait {
        at: Timestamp,
        deadline: Timestamp,
    },
    Failed {
        error: String,
        input: Option<Value>,
    },
}

/// One step of a dry run.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DryStep {
    pub step_id: String,
    pub step_type: String,
    pub name: String,
    /// What the step would do or decide: an action's resolved inputs, a delay's resume time, a
    /// condition's branch.
    pub detail: Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    pub workflow_id: String,
    pub entity_type: EntityType,
    pub entity_id: String,
    pub enrollment_criteria_matched: bool,
    /// Whether the record's goal criteria hold now (absent without goal criteria).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal_met: Option<bool>,
    /// The steps the record would pass, in order.
    pub path: Vec<DryStep>,
    /// The actions it would run, with their resolved inputs.
    pub actions: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct Engine {
    stores: Stores,
    clock: Arc<dyn Clock>,
    queue: Arc<dyn JobQueue>,
    ports: WorkflowPorts,
}

fn runnable() -> Filter {
    Filter::In(
        "status".into(),
        EnrollmentStatus::RUNNABLE
            .iter()
            .map(|s| json!(s))
            .collect(),
    )
}

fn run_is(run: u32) -> Filter {
    if run == 0 {
        Filter::Or(vec![
            Filter::eq("run", 0),
            Filter::Exists("run".into(), false),
        ])
    } else {
        Filter::eq("run", run)
    }
}

fn entry(step: &Step, started: Timestamp, now: Timestamp) -> StepExecution {
    StepExecution {
        step_id: step.id.clone(),
        step_name: step.name.clone(),
        step_type: step.step_type.clone(),
        started_at: started,
        completed_at: Some(now),
        status: StepRunStatus::Completed,
        input: None,
        result: None,
        error: None,
        duration_ms: Some(now.millis() - started.millis()),
    }
}

fn as_json<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(Error::internal)
}

/// The trigger types an event fires, most specific last.
pub fn triggers_for(ev: &DomainEvent) -> Vec<&'static str> {
    let job_fields = ["jobTitle", "title", "company", "companyId"];
    match ev.event_type.as_str() {
        "contact.created" => vec!["contact_created"],
        "contact.updated" => {
            let mut v = vec!["contact_updated"];
            if ev
                .changed
                .iter()
                .any(|c| job_fields.contains(&c.split('.').next().unwrap_or("")))
            {
                v.push("contact_job_changed");
            }
            v
        }
        "deal.created" => vec!["deal_created"],
        "deal.updated" => vec!["deal_updated"],
        "deal.stage_changed" => vec!["deal_stage_changed"],
        "deal.won" => vec!["deal_won"],
        "deal.lost" => vec!["deal_lost"],
        "company.created" => vec!["company_created"],
        "company.updated" => vec!["company_updated"],
        "form.submitted" => vec!["form_submitted"],
        "email.opened" => vec!["email_opened"],
        "email.clicked" => vec!["email_clicked"],
        "task.completed" => vec!["task_completed"],
        _ => Vec::new(),
    }
}

/// Event types the consumer takes.
pub const EVENT_TYPES: &[&str] = &[
    "contact.created",
    "contact.updated",
    "deal.created",
    "deal.updated",
    "deal.stage_changed",
    "deal.won",
    "deal.lost",
    "company.created",
    "company.updated",
    "form.submitted",
    "email.opened",
    "email.clicked",
    "task.completed",
];

fn id_in(v: Option<&Value>) -> Option<ObjectId> {
    v.and_then(Value::as_str)
        .and_then(|s| ObjectId::parse_str(s).ok())
}

/// The record of type `et` an event is about: the event's own record, or one it names (a
/// task's related contact, a form submission's contact, a deal's company).
pub fn subject(ev: &DomainEvent, et: EntityType) -> Option<ObjectId> {
    if ev.entity_type.as_deref().and_then(EntityType::parse) == Some(et) {
        return ev.entity_id;
    }
    let keys: &[&str] = match et {
        EntityType::Contact => &["contactId", "relatedContactId"],
        EntityType::Company => &["companyId", "relatedCompanyId"],
        EntityType::Deal => &["opportunityId", "dealId", "relatedOpportunityId"],
    };
    keys.iter()
        .find_map(|k| id_in(ev.data.get(*k)).or_else(|| id_in(ev.record().and_then(|r| r.get(*k)))))
}

impl Engine {
    pub fn new(
        stores: Stores,
        clock: Arc<dyn Clock>,
        queue: Arc<dyn JobQueue>,
        ports: WorkflowPorts,
    ) -> Self {
        Self {
            stores,
            clock,
            queue,
            ports,
        }
    }

    pub fn stores(&self) -> &Stores {
        &self.stores
    }
    pub fn ports(&self) -> &WorkflowPorts {
        &self.ports
    }
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Adds to the workflow's counters; they are a cache (analytics counts enrollments), so a
    /// failure is logged rather than failing the step.
    async fn bump(&self, scope: &WorkspaceScope, wf: WorkflowId, incs: &[(&'static str, i64)]) {
        let mut u = Update::new();
        for (k, n) in incs.iter().filter(|(_, n)| *n != 0) {
            u = u.inc(*k, *n);
        }
        if u.is_empty() {
            return;
        }
        if let Err(e) = scope.repo::<Workflow>().update(wf, &u).await
            && e != Error::NotFound
        {
            tracing::warn!(error = %e, workflow = %wf, "workflow stats not updated");
        }
    }

    /// Enqueues the job of the enrollment's current step (a no-op when it exists already).
    pub async fn enqueue_current(&self, e: &WorkflowEnrollment, poll: u32) -> Result<()> {
        let Some(step) = e.current_step_id.as_deref() else {
            return Ok(());
        };
        let payload = as_json(&StepPayload {
            enrollment_id: e.id,
            step_id: step.to_owned(),
            run: e.run,
            poll,
        })?;
        let job = NewJob::new(
            STEP_KIND,
            payload,
            e.next_execution_time.unwrap_or_else(|| self.now()),
        )
        .in_workspace(e.workspace_id)
        .dedupe(step_key(e.id, e.run, step, poll))
        .attempts(MAX_STEP_ERRORS + 2);
        self.queue.enqueue(job).await.map(|_| ())
    }

    async fn by_trigger_event(
        &self,
        scope: &WorkspaceScope,
        wf: WorkflowId,
        entity: ObjectId,
        event: ObjectId,
    ) -> Result<Option<WorkflowEnrollment>> {
        let f = Filter::eq("workflowId", wf.to_string())
            .and(Filter::eq("entityId", entity.to_hex()))
            .and(Filter::eq("triggerEventId", event.to_hex()));
        let opts = FindOptions {
            limit: Some(1),
            ..FindOptions::default()
        };
        Ok(scope
            .repo::<WorkflowEnrollment>()
            .find(&f, &opts)
            .await?
            .into_iter()
            .next())
    }

    /// Enrolls a record. `Conflict{key: "activeKey"}` when it has a live enrollment and the
    /// workflow forbids re-enrollment; a trigger event that already enrolled it answers that
    /// enrollment (and makes sure its step is queued).
    pub async fn enroll(
        &self,
        scope: &WorkspaceScope,
        wf: &Workflow,
        et: EntityType,
        entity: ObjectId,
        how: Enroll,
    ) -> Result<Enrolled> {
        let now = self.now();
        let mut e = WorkflowEnrollment::new(wf, et, entity, now);
        e.enrollment_source = how.source;
        e.enrolled_by = how.by;
        e.trigger_event_id = how.trigger_event;
        let fired = how.trigger.as_deref().and_then(|t| {
            wf.steps
                .iter()
                .find(|s| s.step_type == "trigger" && s.config.trigger_type.as_deref() == Some(t))
        });
        e.current_step_id = match fired {
            Some(t) => t.next_step_ids.first().cloned(),
            None => wf.entry_step().map(|s| s.id.clone()),
        };
        if e.current_step_id.is_none() {
            e.status = EnrollmentStatus::Completed;
            e.completed_at = Some(now);
            e.active_key = None;
            e.next_execution_time = None;
        }
        match scope.repo::<WorkflowEnrollment>().insert(&e).await {
            Ok(e) => {
                let live = e.status.is_live();
                self.bump(
                    scope,
                    wf.id,
                    &[
                        ("stats.totalEnrolled", 1),
                        ("stats.currentlyActive", i64::from(live)),
                        ("stats.completed", i64::from(!live)),
                    ],
                )
                .await;
                self.enqueue_current(&e, 0).await?;
                Ok(Enrolled {
                    enrollment: e,
                    created: true,
                })
            }
            Err(Error::Conflict { key }) => {
                if let Some(ev) = how.trigger_event
                    && let Some(existing) = self.by_trigger_event(scope, wf.id, entity, ev).await?
                {
                    if existing.status.is_runnable() {
                        self.enqueue_current(&existing, 0).await?;
                    }
                    return Ok(Enrolled {
                        enrollment: existing,
                        created: false,
                    });
                }
                Err(Error::Conflict { key })
            }
            Err(e) => Err(e),
        }
    }

    /// A write of the enrollment that applies only while it still stands at `step` in this run.
    async fn guarded(
        &self,
        scope: &WorkspaceScope,
        e: &WorkflowEnrollment,
        step: &str,
        u: &Update,
    ) -> Result<Option<WorkflowEnrollment>> {
        let f = Filter::eq("_id", e.id.to_string())
            .and(Filter::eq("currentStepId", step))
            .and(run_is(e.run))
            .and(runnable());
        scope
            .repo::<WorkflowEnrollment>()
            .find_one_and_update(&f, u, false)
            .await
    }

    /// Ends a live enrollment (cancelled, failed, paused keep the log) outside a step's flow.
    async fn close(
        &self,
        scope: &WorkspaceScope,
        e: &WorkflowEnrollment,
        step: &str,
        status: EnrollmentStatus,
        why: &str,
    ) -> Result<()> {
        let mut u = Update::new()
            .set("status", status.as_str())
            .set("lastError", why);
        if !status.is_live() {
            u = u
                .set("completedAt", self.now().to_canonical())
                .unset("activeKey");
        }
        if self.guarded(scope, e, step, &u).await?.is_some() && !status.is_live() {
            let failed = i64::from(status == EnrollmentStatus::Failed);
            self.bump(
                scope,
                e.workflow_id,
                &[("stats.currentlyActive", -1), ("stats.failed", failed)],
            )
            .await;
        }
        Ok(())
    }

    /// Runs one `workflow.step` job.
    pub async fn run_step(&self, job: &Job) -> Result<()> {
        let ws = job
            .workspace_id
            .ok_or_else(|| Error::invalid("workspaceId", "a workflow step names its workspace"))?;
        let p: StepPayload = serde_json::from_value(job.payload.clone())
            .map_err(|e| Error::invalid("payload", e.to_string()))?;
        let scope = self.stores.workspace(ws);
        let e = match scope
            .repo::<WorkflowEnrollment>()
            .get(p.enrollment_id)
            .await
        {
            Err(Error::NotFound) => return Ok(()),
            other => other?,
        };
        let here = e.current_step_id.as_deref() == Some(p.step_id.as_str()) && e.run == p.run;
        if !e.status.is_runnable() || !here {
            // A duplicate or superseded job. If the enrollment moved on but its next job was
            // never queued (a crash in between), queue it now.
            if e.status.is_runnable() {
                self.enqueue_current(&e, 0).await?;
            }
            return Ok(());
        }
        let step_id = p.step_id.as_str();
        let wf = match scope.repo::<Workflow>().get(e.workflow_id).await {
            Err(Error::NotFound) => {
                return self
                    .close(
                        &scope,
                        &e,
                        step_id,
                        EnrollmentStatus::Cancelled,
                        "the workflow was deleted",
                    )
                    .await;
            }
            other => other?,
        };
        if wf.status != WorkflowStatus::Active {
            let u = Update::new().set("status", EnrollmentStatus::Paused.as_str());
            self.guarded(&scope, &e, step_id, &u).await?;
            return Ok(());
        }
        let Some(step) = wf.step(step_id).cloned() else {
            return self
                .close(
                    &scope,
                    &e,
                    step_id,
                    EnrollmentStatus::Failed,
                    "the step no longer exists",
                )
                .await;
        };
        let record = match load_record(&scope, e.entity_type, e.entity_id).await {
            Err(Error::NotFound) => {
                return self
                    .close(
                        &scope,
                        &e,
                        step_id,
                        EnrollmentStatus::Cancelled,
                        "the record no longer exists",
                    )
                    .await;
            }
            other => other?,
        };
        let started = self.now();
        if step.step_type == "action" {
            // Marks the window in which this workflow writes, so the events of its own writes
            // do not trigger it again (see `own_write`).
            let u = Update::new()
                .set("status", EnrollmentStatus::Processing.as_str())
                .set(
                    "dataContext.running",
                    json!({"stepId": step.id, "startedAt": started.to_canonical()}),
                );
            if self.guarded(&scope, &e, step_id, &u).await?.is_none() {
                return Ok(());
            }
        }
        let outcome = self
            .evaluate(&scope, &wf, &e, &step, &record, started, p.poll, true)
            .await?;
        self.apply(&scope, &wf, &e, &step, started, p.poll, outcome)
            .await
    }

    /// Decides a step; `live` runs actions, otherwise they are only resolved (dry run).
    #[allow(clippy::too_many_arguments)]
    async fn evaluate(
        &self,
        scope: &WorkspaceScope,
        wf: &Workflow,
        e: &WorkflowEnrollment,
        step: &Step,
        record: &Document,
        now: Timestamp,
        _poll: u32,
        live: bool,
    ) -> Result<Outcome> {
        let first = step.next_step_ids.first().cloned();
        let second = step.next_step_ids.get(1).cloned();
        let conds = || Criteria {
            conditions: step.config.conditions.clone().unwrap_or_default(),
            match_all: step.config.match_all.unwrap_or(true),
        };
        Ok(match step.step_type.as_str() {
            "trigger" => Outcome::Next {
                next: first,
                at: now,
                output: json!({}),
                input: None,
            },
            "action" => {
                let vars = vars(scope, wf, e, record).await;
                let ctx = StepCtx {
                    scope,
                    workflow: wf,
                    enrollment: e,
                    record,
                    vars: &vars,
                    now,
                    key: step_key(e.id, e.run, &step.id, 0),
                };
                let input = resolve_input(&ctx, step);
                if !live {
                    return Ok(Outcome::Next {
                        next: first,
                        at: now,
                        output: json!({"dryRun": true}),
                        input: Some(input),
                    });
                }
                match actions::run(self, &ctx, step, &input).await {
                    Ok(output) => Outcome::Next {
                        next: first,
                        at: self.now(),
                        output,
                        input: Some(input),
                    },
                    Err(error) => Outcome::Failed {
                        error,
                        input: Some(input),
                    },
                }
            }
            "delay" => {
                let at = resume_at(&step.config, now);
                Outcome::Next {
                    next: first,
                    at,
                    output: json!({"resumeAt": at.to_canonical()}),
                    input: None,
                }
            }
            "condition" => {
                let matched = criteria_match(def_of(e.entity_type), record, &conds());
                Outcome::Next {
                    next: if matched { first } else { second },
                    at: now,
                    output: json!({"matched": matched, "branch": if matched { "yes" } else { "no" }}),
                    input: None,
                }
            }
            "wait_until" => {
                if criteria_match(def_of(e.entity_type), record, &conds()) {
                    return Ok(Outcome::Next {
                        next: first,
                        at: now,
                        output: json!({"matched": true}),
                        input: None,
                    });
                }
                let deadline = e
                    .data_context
                    .pointer(&format!("/waits/{}", step.id))
                    .and_then(Value::as_str)
                    .and_then(|s| Timestamp::parse(s).ok())
                    .unwrap_or_else(|| {
                        let secs = if step.config.timeout_value.is_some() {
                            span_secs(
                                step.config.timeout_value,
                                step.config.timeout_unit.as_deref(),
                            )
                        } else {
                            WAIT_DEFAULT_SECS
                        };
                        now.plus_seconds(secs)
                    });
                if now.millis() >= deadline.millis() || !live {
                    Outcome::Next {
                        next: second,
                        at: now,
                        output: json!({"matched": false, "timedOut": true,
                            "deadline": deadline.to_canonical()}),
                        input: None,
                    }
                } else {
                    let at = now.plus_seconds(WAIT_POLL_SECS);
                    Outcome::Wait {
                        at: if at.millis() > deadline.millis() {
                            deadline
                        } else {
                            at
                        },
                        deadline,
                    }
                }
            }
            other => Outcome::Failed {
                error: format!("unknown step type `{other}`"),
                input: None,
            },
        })
    }

    /// Records the outcome and moves the enrollment on, then queues what comes next.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        scope: &WorkspaceScope,
        wf: &Workflow,
        e: &WorkflowEnrollment,
        step: &Step,
        started: Timestamp,
        poll: u32,
        outcome: Outcome,
    ) -> Result<()> {
        let now = self.now();
        match outcome {
            Outcome::Wait { at, deadline } => {
                let u = Update::new()
                    .set("status", EnrollmentStatus::WaitingForEvent.as_str())
                    .set("nextExecutionTime", at.to_canonical())
                    .set(
                        FieldPath::parse(&format!("dataContext.waits.{}", step.id))?,
                        deadline.to_canonical(),
                    );
                if let Some(mut moved) = self.guarded(scope, e, &step.id, &u).await? {
                    moved.next_execution_time = Some(at);
                    self.enqueue_current(&moved, poll + 1).await?;
                }
                Ok(())
            }
            Outcome::Failed { error, input } => {
                let errors = e.error_count + 1;
                let mut log = entry(step, started, now);
                log.status = StepRunStatus::Failed;
                log.error = Some(error.clone());
                log.input = input;
                let done = errors >= MAX_STEP_ERRORS;
                let status = if done {
                    EnrollmentStatus::Failed
                } else {
                    EnrollmentStatus::Retrying
                };
                let mut u = Update::new()
                    .push("stepsExecuted", as_json(&log)?)
                    .set("status", status.as_str())
                    .set("lastError", error.as_str())
                    .set("errorCount", errors)
                    .unset("dataContext.running");
                if done {
                    u = u.set("completedAt", now.to_canonical()).unset("activeKey");
                }
                if self.guarded(scope, e, &step.id, &u).await?.is_none() {
                    return Ok(());
                }
                if done {
                    self.bump(
                        scope,
                        wf.id,
                        &[("stats.currentlyActive", -1), ("stats.failed", 1)],
                    )
                    .await;
                    Ok(())
                } else {
                    // The queue retries this job with its backoff.
                    Err(Error::Unavailable(format!(
                        "workflow step `{}` failed: {error}",
                        step.id
                    )))
                }
            }
            Outcome::Next {
                next,
                at,
                output,
                input,
            } => {
                let mut log = entry(step, started, now);
                log.input = input;
                log.result = Some(output.clone());
                let mut u = Update::new()
                    .push("stepsExecuted", as_json(&log)?)
                    .set(
                        FieldPath::parse(&format!("dataContext.previousResults.{}", step.id))?,
                        output,
                    )
                    .unset("dataContext.running");
                let finished = next.is_none();
                let mut goal = false;
                match &next {
                    Some(n) => {
                        u = u
                            .set("currentStepId", n.as_str())
                            .set("nextExecutionTime", at.to_canonical())
                            .set("status", EnrollmentStatus::Active.as_str());
                    }
                    None => {
                        goal = match &wf.goal_criteria {
                            Some(g) if !g.conditions.is_empty() => {
                                load_record(scope, e.entity_type, e.entity_id)
                                    .await
                                    .is_ok_and(|r| criteria_match(def_of(e.entity_type), &r, g))
                            }
                            _ => false,
                        };
                        let status = if goal {
                            EnrollmentStatus::GoalMet
                        } else {
                            EnrollmentStatus::Completed
                        };
                        u = u
                            .set("status", status.as_str())
                            .set("completedAt", now.to_canonical())
                            .unset("currentStepId")
                            .unset("nextExecutionTime")
                            .unset("activeKey");
                    }
                }
                let Some(moved) = self.guarded(scope, e, &step.id, &u).await? else {
                    return Ok(());
                };
                if finished {
                    self.bump(
                        scope,
                        wf.id,
                        &[
                            ("stats.currentlyActive", -1),
                            ("stats.completed", i64::from(!goal)),
                            ("stats.goalsMet", i64::from(goal)),
                        ],
                    )
                    .await;
                    Ok(())
                } else {
                    self.enqueue_current(&moved, 0).await
                }
            }
        }
    }

    /// Whether an event is the echo of this workflow's own write to the record: written by the
    /// system while one of the workflow's action steps on that record was running.
    async fn own_write(
        &self,
        scope: &WorkspaceScope,
        wf: WorkflowId,
        entity: ObjectId,
        ev: &DomainEvent,
    ) -> Result<bool> {
        if ev.actor.get("type").and_then(Value::as_str) != Some("system") {
            return Ok(false);
        }
        let f =
            Filter::eq("workflowId", wf.to_string()).and(Filter::eq("entityId", entity.to_hex()));
        let opts = FindOptions {
            sort: vec![SortKey::desc("_id")],
            limit: Some(20),
            ..FindOptions::default()
        };
        let t = ev.occurred_at.millis();
        let es = scope.repo::<WorkflowEnrollment>().find(&f, &opts).await?;
        Ok(es.iter().any(|e| {
            let running = e
                .data_context
                .pointer("/running/startedAt")
                .and_then(Value::as_str)
                .and_then(|s| Timestamp::parse(s).ok())
                .is_some_and(|s| s.millis() <= t);
            running
                || e.steps_executed.iter().any(|x| {
                    x.step_type == "action"
                        && x.started_at.millis() <= t
                        && x.completed_at.is_none_or(|c| t <= c.millis())
                })
        }))
    }

    /// Enrolls the event's record in every active workflow it triggers (behaviour 44).
    pub async fn on_event(&self, ev: &DomainEvent) -> Result<()> {
        let triggers = triggers_for(ev);
        if triggers.is_empty() {
            return Ok(());
        }
        let scope = self.stores.workspace(ev.workspace_id);
        let wfs = scope
            .repo::<Workflow>()
            .find(&Filter::eq("status", "active"), &FindOptions::default())
            .await?;
        let mut seen: HashSet<(WorkflowId, ObjectId)> = HashSet::new();
        for trigger in triggers {
            for wf in wfs.iter().filter(|w| w.has_trigger(trigger)) {
                let et = wf.trigger_entity_type;
                let Some(entity) = subject(ev, et) else {
                    continue;
                };
                if !seen.insert((wf.id, entity)) {
                    continue;
                }
                if self.own_write(&scope, wf.id, entity, ev).await? {
                    tracing::debug!(workflow = %wf.id, "skipping the echo of the workflow's own write");
                    continue;
                }
                let own = ev.entity_type.as_deref().and_then(EntityType::parse) == Some(et);
                let record = match ev.after.as_ref().filter(|_| own) {
                    Some(doc) => doc.clone(),
                    None => match load_record(&scope, et, entity).await {
                        Err(Error::NotFound) => continue,
                        other => other?,
                    },
                };
                if record.get("deletedAt").is_some_and(|v| !v.is_null()) {
                    continue;
                }
                if !criteria_match(def_of(et), &record, &wf.enrollment_criteria) {
                    continue;
                }
                match self
                    .enroll(
                        &scope,
                        wf,
                        et,
                        entity,
                        Enroll::event(ev.id.object_id(), trigger),
                    )
                    .await
                {
                    Ok(_) | Err(Error::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Pauses the live enrollments of a workflow being paused (behaviour 49).
    pub async fn pause_enrollments(&self, scope: &WorkspaceScope, wf: WorkflowId) -> Result<u64> {
        scope
            .repo::<WorkflowEnrollment>()
            .update_many(
                &Filter::eq("workflowId", wf.to_string()).and(runnable()),
                &Update::new().set("status", EnrollmentStatus::Paused.as_str()),
            )
            .await
    }

    /// Resumes a workflow's paused enrollments: a new run of their current step, due when it
    /// was due (or now).
    pub async fn resume_enrollments(&self, scope: &WorkspaceScope, wf: WorkflowId) -> Result<u64> {
        let repo = scope.repo::<WorkflowEnrollment>();
        let paused = Filter::eq("workflowId", wf.to_string()).and(Filter::eq("status", "paused"));
        let opts = FindOptions {
            sort: vec![SortKey::asc("_id")],
            limit: Some(500),
            ..FindOptions::default()
        };
        let mut n = 0;
        loop {
            let batch = repo.find(&paused, &opts).await?;
            if batch.is_empty() {
                return Ok(n);
            }
            for e in batch {
                let f = Filter::eq("_id", e.id.to_string())
                    .and(Filter::eq("status", "paused"))
                    .and(run_is(e.run));
                let u = Update::new()
                    .set("status", EnrollmentStatus::Active.as_str())
                    .set("run", e.run + 1);
                if let Some(moved) = repo.find_one_and_update(&f, &u, false).await? {
                    self.enqueue_current(&moved, 0).await?;
                    n += 1;
                }
            }
        }
    }

    /// Deletes a workflow and its enrollments (behaviour 49); their queued jobs find nothing.
    pub async fn delete_workflow(&self, scope: &WorkspaceScope, wf: WorkflowId) -> Result<()> {
        scope
            .repo::<WorkflowEnrollment>()
            .delete_many(&Filter::eq("workflowId", wf.to_string()))
            .await?;
        scope.repo::<Workflow>().delete(wf).await
    }

    /// Runs a failed enrollment's failed step again, as a new run.
    pub async fn retry(
        &self,
        scope: &WorkspaceScope,
        wf: &Workflow,
        e: &WorkflowEnrollment,
    ) -> Result<WorkflowEnrollment> {
        if e.status != EnrollmentStatus::Failed || e.current_step_id.is_none() {
            return Err(Error::invalid(
                "status",
                "only a failed enrollment can be retried",
            ));
        }
        if wf.status != WorkflowStatus::Active {
            return Err(Error::invalid("workflow", "the workflow is not active"));
        }
        let mut u = Update::new()
            .set("status", EnrollmentStatus::Active.as_str())
            .set("errorCount", 0)
            .unset("lastError")
            .unset("completedAt")
            .set("nextExecutionTime", self.now().to_canonical())
            .set("run", e.run + 1);
        if !wf.allow_reenrollment {
            u = u.set("activeKey", active_key(wf.id, e.entity_id));
        }
        let f = Filter::eq("_id", e.id.to_string())
            .and(Filter::eq("status", "failed"))
            .and(run_is(e.run));
        let moved = scope
            .repo::<WorkflowEnrollment>()
            .find_one_and_update(&f, &u, false)
            .await?
            .ok_or(Error::Stale)?;
        self.bump(
            scope,
            wf.id,
            &[("stats.currentlyActive", 1), ("stats.failed", -1)],
        )
        .await;
        self.enqueue_current(&moved, 0).await?;
        Ok(moved)
    }

    /// Evaluates a workflow against a record without writing anything: criteria, the path the
    /// record would take (conditions decided on the record as it is now, delays from now) and
    /// the actions with their resolved inputs.
    pub async fn dry_run(
        &self,
        scope: &WorkspaceScope,
        wf: &Workflow,
        et: EntityType,
        entity: ObjectId,
    ) -> Result<DryRun> {
        let record = load_record(scope, et, entity).await?;
        let mut now = self.now();
        let e = WorkflowEnrollment::new(wf, et, entity, now);
        let mut out = DryRun {
            workflow_id: wf.id.to_string(),
            entity_type: et,
            entity_id: entity.to_hex(),
            enrollment_criteria_matched: criteria_match(
                def_of(et),
                &record,
                &wf.enrollment_criteria,
            ),
            goal_met: wf
                .goal_criteria
                .as_ref()
                .filter(|g| !g.conditions.is_empty())
                .map(|g| criteria_match(def_of(et), &record, g)),
            path: Vec::new(),
            actions: Vec::new(),
        };
        let mut cur = wf.entry_step().map(|s| s.id.clone());
        let mut visited = HashSet::new();
        while let Some(id) = cur.take() {
            if !visited.insert(id.clone()) {
                break;
            }
            let Some(step) = wf.step(&id) else {
                break;
            };
            let outcome = self
                .evaluate(scope, wf, &e, step, &record, now, 0, false)
                .await?;
            let (detail, next) = match outcome {
                Outcome::Next {
                    next,
                    at,
                    output,
                    input,
                } => {
                    if let Some(i) = &input {
                        out.actions.push(json!({"stepId": step.id, "input": i}));
                    }
                    now = at;
                    (input.unwrap_or(output), next)
                }
                Outcome::Wait { deadline, .. } => {
                    (json!({"waitsUntil": deadline.to_canonical()}), None)
                }
                Outcome::Failed { error, .. } => (json!({"error": error}), None),
            };
            out.path.push(DryStep {
                step_id: step.id.clone(),
                step_type: step.step_type.clone(),
                name: step.name.clone(),
                detail,
            });
            cur = next;
        }
        Ok(out)
    }
}

/// Runs `workflow.step` jobs.
#[derive(Debug, Clone)]
pub struct StepHandler(pub Engine);

#[async_trait]
impl JobHandler for StepHandler {
    fn kind(&self) -> &'static str {
        STEP_KIND
    }
    async fn run(&self, job: &Job) -> Result<()> {
        self.0.run_step(job).await
    }
}

/// Enrolls records when their events fire a workflow's trigger.
#[derive(Debug, Clone)]
pub struct WorkflowConsumer(pub Engine);

#[async_trait]
impl EventConsumer for WorkflowConsumer {
    fn name(&self) -> &'static str {
        "workflows"
    }
    fn wants(&self, event_type: &str) -> bool {
        EVENT_TYPES.contains(&event_type)
    }
    async fn handle(&self, event: &DomainEvent) -> Result<()> {
        self.0.on_event(event).await
    }
}
