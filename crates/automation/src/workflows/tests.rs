//! The engine over a real store and runtime with a simulated clock.

use std::sync::Arc;

use serde_json::{Value, json};

use crm_core::entities::contact::Contact;
use crm_core::entities::project::Project;
use crm_core::events::DomainEvent;
use crm_core::outbound::RecordingHttp;
use crm_core::repo::{Actor, Stores};
use crm_core::{
    DocumentStore, Filter, FindOptions, ManualClock, SortKey, StoreAdmin, Timestamp, Update,
    UserId, WorkspaceId,
};

use super::engine::Engine;
use super::model::{EnrollmentStatus, EntityType, Workflow, WorkflowEnrollment, WorkflowStatus};
use super::{RecordingWorkflowMailer, WorkflowPorts, register_with, validate};
use crate::runtime::Runtime;

struct World {
    store: Arc<dyn DocumentStore>,
    clock: Arc<ManualClock>,
    stores: Stores,
    ws: WorkspaceId,
    user: UserId,
}

struct Rt {
    rt: Runtime,
    engine: Engine,
    http: RecordingHttp,
    mail: RecordingWorkflowMailer,
}

fn start() -> Timestamp {
    Timestamp::parse("2026-11-25T10:00:00Z").unwrap()
}

async fn world_on(store: Arc<dyn DocumentStore>, clock: Arc<ManualClock>) -> World {
    let stores = Stores::new(store.clone(), clock.clone());
    let user = UserId::new();
    let p = stores
        .global::<Project>()
        .insert(&Project::new(user, "Acme"))
        .await
        .unwrap();
    World {
        store,
        clock,
        stores,
        ws: p.id,
        user,
    }
}

async fn memory_world() -> World {
    let store: Arc<dyn DocumentStore> = Arc::new(storage_memory::MemoryStore::new());
    world_on(store, Arc::new(ManualClock::at(start()))).await
}

fn all_defs() -> Vec<&'static crm_core::EntityDef> {
    let mut v = crm_core::entities::all();
    v.extend(crate::entities());
    v
}

impl World {
    fn runtime(&self) -> Rt {
        let rt = Runtime::new(self.stores.clone(), self.clock.clone());
        let http = RecordingHttp::default();
        let mail = RecordingWorkflowMailer::default();
        let engine = register_with(
            &rt,
            WorkflowPorts {
                mailer: Arc::new(mail.clone()),
                http: Arc::new(http.clone()),
                sequences: Arc::new(super::NoSequences),
            },
        );
        Rt {
            rt,
            engine,
            http,
            mail,
        }
    }

    async fn workflow(&self, trigger: &str, steps: Value, extra: Value) -> Workflow {
        let mut body = json!({
            "_id": crm_core::ObjectId::new().to_hex(),
            "workspaceId": self.ws.to_string(),
            "userId": self.user.to_string(),
            "name": "W",
            "status": "active",
            "triggerEntityType": "contact",
            "steps": std::iter::once(json!({
                "id": "t", "type": "trigger", "name": "Trigger",
                "position": {"x": 0, "y": 0},
                "nextStepIds": [steps[0]["id"].clone()],
                "config": {"triggerType": trigger}
            })).chain(steps.as_array().cloned().unwrap_or_default()).collect::<Vec<_>>(),
        });
        if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(x.clone());
        }
        let w: Workflow = serde_json::from_value(body).unwrap();
        validate::activation(&w).unwrap();
        assert_eq!(w.status, WorkflowStatus::Active);
        self.stores
            .workspace(self.ws)
            .repo::<Workflow>()
            .insert(&w)
            .await
            .unwrap()
    }

    async fn contact(&self, name: &str) -> Contact {
        let mut c = Contact::new(self.ws, self.user, name);
        c.email = Some(format!("{}@example.com", name.to_lowercase()));
        self.stores
            .workspace_as(self.ws, Actor::User(self.user))
            .repo::<Contact>()
            .insert(&c)
            .await
            .unwrap()
    }

    async fn get_contact(&self, c: &Contact) -> Contact {
        self.stores
            .workspace(self.ws)
            .repo::<Contact>()
            .get(c.id)
            .await
            .unwrap()
    }

    async fn enrollments(&self, wf: &Workflow) -> Vec<WorkflowEnrollment> {
        let opts = FindOptions {
            sort: vec![SortKey::asc("_id")],
            ..FindOptions::default()
        };
        self.stores
            .workspace(self.ws)
            .repo::<WorkflowEnrollment>()
            .find(&Filter::eq("workflowId", wf.id.to_string()), &opts)
            .await
            .unwrap()
    }

    async fn events(&self, ty: &str) -> Vec<DomainEvent> {
        self.stores
            .workspace(self.ws)
            .repo::<DomainEvent>()
            .find(&Filter::eq("type", ty), &FindOptions::default())
            .await
            .unwrap()
    }
}

fn tag_step(id: &str, tag: &str, next: &[&str]) -> Value {
    json!({"id": id, "type": "action", "name": id, "nextStepIds": next,
           "config": {"actionType": "add_tag", "tagName": tag}})
}

#[tokio::test]
async fn a_contact_created_once_is_enrolled_once_even_when_the_event_comes_twice() {
    let w = memory_world().await;
    let r = w.runtime();
    let wf = w
        .workflow(
            "contact_created",
            json!([tag_step("a", "welcomed", &[])]),
            json!({}),
        )
        .await;
    let c = w.contact("Ada").await;
    r.rt.run_until_idle().await.unwrap();
    let es = w.enrollments(&wf).await;
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].status, EnrollmentStatus::Completed);
    assert_eq!(es[0].entity_id, c.id.object_id());
    assert_eq!(w.get_contact(&c).await.tags, ["welcomed"]);

    // The same event delivered again (a relay lost its lease, a second server) enrolls no one.
    let ev = w.events("contact.created").await.remove(0);
    r.engine.on_event(&ev).await.unwrap();
    r.engine.on_event(&ev).await.unwrap();
    r.rt.run_until_idle().await.unwrap();
    assert_eq!(w.enrollments(&wf).await.len(), 1);
    let stored = w
        .stores
        .workspace(w.ws)
        .repo::<Workflow>()
        .get(wf.id)
        .await
        .unwrap();
    assert_eq!(stored.stats.total_enrolled, 1);
    assert_eq!(stored.stats.completed, 1);
    assert_eq!(stored.stats.currently_active, 0);
}

#[tokio::test]
async fn criteria_decide_who_is_enrolled_and_a_live_enrollment_blocks_a_second() {
    let w = memory_world().await;
    let r = w.runtime();
    let steps = json!([
        {"id": "d", "type": "delay", "name": "wait", "nextStepIds": ["a"],
         "config": {"delayType": "duration", "delayValue": 1, "delayUnit": "days"}},
        tag_step("a", "done", &[])
    ]);
    let crit = json!({"enrollmentCriteria": {"conditions": [
        {"field": "email", "operator": "contains", "value": "ADA"}], "matchAll": true}});
    let wf = w.workflow("contact_updated", steps, crit).await;
    let ada = w.contact("Ada").await;
    let bob = w.contact("Bob").await;
    let human = w
        .stores
        .workspace_as(w.ws, Actor::User(w.user))
        .repo::<Contact>();
    for c in [&ada, &bob] {
        human
            .update(c.id, &Update::new().set("jobTitle", "CTO"))
            .await
            .unwrap();
    }
    r.rt.run_until_idle().await.unwrap();
    // A second update while Ada's enrollment waits in its delay: no second enrollment (45).
    human
        .update(ada.id, &Update::new().set("jobTitle", "CEO"))
        .await
        .unwrap();
    r.rt.run_until_idle().await.unwrap();
    let es = w.enrollments(&wf).await;
    assert_eq!(es.len(), 1, "{es:?}");
    assert_eq!(es[0].entity_id, ada.id.object_id());
    assert_eq!(es[0].status, EnrollmentStatus::Active);
    assert_eq!(es[0].current_step_id.as_deref(), Some("a"));
}

/// Part one on one runtime, part two on a fresh one after the clock moved on 3 days.
async fn three_day_delay_survives_a_restart(w: &World, reopen: impl Fn() -> Option<World>) {
    let steps = json!([
        tag_step("before", "day0", &["wait"]),
        {"id": "wait", "type": "delay", "name": "3 days", "nextStepIds": ["after"],
         "config": {"delayType": "duration", "delayValue": 3, "delayUnit": "days"}},
        tag_step("after", "day3", &[])
    ]);
    let wf = w.workflow("contact_created", steps, json!({})).await;
    let c = w.contact("Ada").await;
    {
        let r = w.runtime();
        r.rt.run_until_idle().await.unwrap();
        assert_eq!(w.get_contact(&c).await.tags, ["day0"]);
        w.clock.advance_seconds(3 * 86_400 - 60);
        r.rt.run_until_idle().await.unwrap();
        assert_eq!(w.get_contact(&c).await.tags, ["day0"], "not yet due");
        let e = &w.enrollments(&wf).await[0];
        assert_eq!(e.current_step_id.as_deref(), Some("after"));
        assert_eq!(
            e.next_execution_time,
            Some(start().plus_seconds(3 * 86_400))
        );
        // The runtime goes away here, as a server that stops.
    }
    w.clock.advance_seconds(60);
    let w2 = reopen();
    let w = w2.as_ref().unwrap_or(w);
    let r = w.runtime();
    r.rt.run_until_idle().await.unwrap();
    assert_eq!(w.get_contact(&c).await.tags, ["day0", "day3"]);
    let e = &w.enrollments(&wf).await[0];
    assert_eq!(e.status, EnrollmentStatus::Completed);
    let ran: Vec<&str> = e
        .steps_executed
        .iter()
        .map(|s| s.step_id.as_str())
        .collect();
    assert_eq!(ran, ["before", "wait", "after"]);
}

#[tokio::test]
async fn a_three_day_delay_resumes_after_a_restart_on_memory() {
    let w = memory_world().await;
    three_day_delay_survives_a_restart(&w, || None).await;
}

#[tokio::test]
async fn a_three_day_delay_resumes_after_a_restart_on_sqlite() {
    let dir =
        std::env::temp_dir().join(format!("clianta-wf-{}", crm_core::ObjectId::new().to_hex()));
    let path = dir.join("db.sqlite");
    let clock = Arc::new(ManualClock::at(start()));
    let open = |path: &std::path::Path| {
        let s = storage_sqlite::SqliteStore::open(path).unwrap();
        Arc::new(s)
    };
    let s = open(&path);
    s.ensure_schema(&all_defs()).await.unwrap();
    let w = world_on(s, clock.clone()).await;
    let (ws, user) = (w.ws, w.user);
    // The second half opens the file again, as a restarted server does.
    let reopen = || {
        let s = open(&path);
        let stores = Stores::new(s.clone(), clock.clone());
        Some(World {
            store: s,
            clock: clock.clone(),
            stores,
            ws,
            user,
        })
    };
    three_day_delay_survives_a_restart(&w, reopen).await;
    drop(w);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_workflow_does_not_retrigger_itself_on_its_own_write() {
    let w = memory_world().await;
    let r = w.runtime();
    // Re-enrollment allowed, so only loop prevention stops update -> tag -> update -> ...
    let wf = w
        .workflow(
            "contact_updated",
            json!([tag_step("a", "touched", &[])]),
            json!({"allowReenrollment": true}),
        )
        .await;
    let c = w.contact("Ada").await;
    w.stores
        .workspace_as(w.ws, Actor::User(w.user))
        .repo::<Contact>()
        .update(c.id, &Update::new().set("jobTitle", "CTO"))
        .await
        .unwrap();
    r.rt.run_until_idle().await.unwrap();
    assert_eq!(w.enrollments(&wf).await.len(), 1);
    assert_eq!(w.get_contact(&c).await.tags, ["touched"]);
    // The workflow's write did produce an event; it was just not taken as a trigger.
    assert_eq!(w.events("contact.updated").await.len(), 2);
}

#[tokio::test]
async fn conditions_branch_and_goals_decide_the_end() {
    let w = memory_world().await;
    let r = w.runtime();
    let steps = json!([
        {"id": "c", "type": "condition", "name": "vip?", "nextStepIds": ["yes", "no"],
         "config": {"conditions": [{"field": "jobTitle", "operator": "equals", "value": "CEO"}]}},
        tag_step("yes", "vip", &[]),
        tag_step("no", "regular", &[])
    ]);
    let goal = json!({"goalCriteria": {"conditions": [
        {"field": "tags", "operator": "contains", "value": "vip"}]}});
    let wf = w.workflow("contact_created", steps, goal).await;
    let mut ceo = Contact::new(w.ws, w.user, "Ceo");
    ceo.job_title = Some("CEO".into());
    let ceo = w
        .stores
        .workspace_as(w.ws, Actor::User(w.user))
        .repo::<Contact>()
        .insert(&ceo)
        .await
        .unwrap();
    let other = w.contact("Other").await;
    r.rt.run_until_idle().await.unwrap();
    assert_eq!(w.get_contact(&ceo).await.tags, ["vip"]);
    assert_eq!(w.get_contact(&other).await.tags, ["regular"]);
    let es = w.enrollments(&wf).await;
    let by = |c: &Contact| {
        es.iter()
            .find(|e| e.entity_id == c.id.object_id())
            .unwrap()
            .clone()
    };
    assert_eq!(by(&ceo).status, EnrollmentStatus::GoalMet);
    assert_eq!(by(&other).status, EnrollmentStatus::Completed);
    assert_eq!(
        by(&ceo).steps_executed[0].result,
        Some(json!({"matched": true, "branch": "yes"}))
    );
}

#[tokio::test]
async fn a_failing_step_is_retried_and_fails_the_enrollment_after_three_errors() {
    let w = memory_world().await;
    let r = w.runtime();
    r.http.answer_with(500);
    let steps = json!([{"id": "hook", "type": "action", "name": "hook", "nextStepIds": [],
        "config": {"actionType": "send_webhook", "webhookUrl": "https://hooks.example.com/{{firstName}}",
                   "webhookMethod": "POST"}}]);
    let wf = w.workflow("contact_created", steps, json!({})).await;
    w.contact("Ada").await;
    for _ in 0..6 {
        r.rt.run_until_idle().await.unwrap();
        w.clock.advance_seconds(3600);
    }
    let calls = r.http.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].url, "https://hooks.example.com/Ada");
    let e = &w.enrollments(&wf).await[0];
    assert_eq!(e.status, EnrollmentStatus::Failed);
    assert_eq!(e.error_count, 3);
    assert_eq!(e.steps_executed.len(), 3);
    assert!(e.last_error.as_deref().unwrap_or("").contains("500"));
    let stored = w
        .stores
        .workspace(w.ws)
        .repo::<Workflow>()
        .get(wf.id)
        .await
        .unwrap();
    assert_eq!(stored.stats.failed, 1);

    // A retry once the endpoint works runs the step again and finishes.
    r.http.answer_with(200);
    r.engine
        .retry(&w.stores.workspace(w.ws), &stored, e)
        .await
        .unwrap();
    r.rt.run_until_idle().await.unwrap();
    let e = &w.enrollments(&wf).await[0];
    assert_eq!(e.status, EnrollmentStatus::Completed);
    assert_eq!(r.http.calls().len(), 4);
}

#[tokio::test]
async fn pausing_a_workflow_pauses_its_enrollments_and_activating_resumes_them() {
    let w = memory_world().await;
    let r = w.runtime();
    let steps = json!([
        {"id": "d", "type": "delay", "name": "wait", "nextStepIds": ["mail"],
         "config": {"delayValue": 2, "delayUnit": "hours"}},
        {"id": "mail", "type": "action", "name": "mail", "nextStepIds": [],
         "config": {"actionType": "send_email", "emailSubject": "Hi {{firstName}}",
                    "emailBody": "Hello @contact.firstName"}}
    ]);
    let wf = w.workflow("contact_created", steps, json!({})).await;
    w.contact("Ada").await;
    r.rt.run_until_idle().await.unwrap();
    let scope = w.stores.workspace(w.ws);
    scope
        .repo::<Workflow>()
        .update(wf.id, &Update::new().set("status", "paused"))
        .await
        .unwrap();
    assert_eq!(r.engine.pause_enrollments(&scope, wf.id).await.unwrap(), 1);
    w.clock.advance_seconds(3 * 3600);
    r.rt.run_until_idle().await.unwrap();
    assert!(r.mail.sent().is_empty());
    assert_eq!(w.enrollments(&wf).await[0].status, EnrollmentStatus::Paused);

    scope
        .repo::<Workflow>()
        .update(wf.id, &Update::new().set("status", "active"))
        .await
        .unwrap();
    assert_eq!(r.engine.resume_enrollments(&scope, wf.id).await.unwrap(), 1);
    r.rt.run_until_idle().await.unwrap();
    let sent = r.mail.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "ada@example.com");
    assert_eq!(sent[0].subject, "Hi Ada");
    assert_eq!(sent[0].body, "Hello Ada");
    assert_eq!(
        w.enrollments(&wf).await[0].status,
        EnrollmentStatus::Completed
    );
}

#[tokio::test]
async fn a_dry_run_reports_the_path_and_actions_and_writes_nothing() {
    let w = memory_world().await;
    let r = w.runtime();
    let steps = json!([
        {"id": "c", "type": "condition", "name": "has email", "nextStepIds": ["mail", "tag"],
         "config": {"conditions": [{"field": "email", "operator": "is_not_empty"}]}},
        {"id": "mail", "type": "action", "name": "mail", "nextStepIds": ["d"],
         "config": {"actionType": "send_email", "emailSubject": "Hi {{firstName}}", "emailBody": "x"}},
        {"id": "d", "type": "delay", "name": "1 day", "nextStepIds": ["tag"],
         "config": {"delayValue": 1, "delayUnit": "days"}},
        tag_step("tag", "dry", &[])
    ]);
    // Draft: a dry run does not need an active workflow, and nothing enrolls it.
    let wf = w.workflow("manual", steps, json!({})).await;
    let c = w.contact("Ada").await;
    r.rt.run_until_idle().await.unwrap();
    let before = w.get_contact(&c).await;
    let jobs_before = w
        .stores
        .global::<crate::jobs::Job>()
        .count(&Filter::all())
        .await
        .unwrap();
    let out = r
        .engine
        .dry_run(
            &w.stores.workspace(w.ws),
            &wf,
            EntityType::Contact,
            c.id.object_id(),
        )
        .await
        .unwrap();
    let path: Vec<&str> = out.path.iter().map(|s| s.step_id.as_str()).collect();
    assert_eq!(path, ["c", "mail", "d", "tag"]);
    assert!(out.enrollment_criteria_matched);
    assert_eq!(out.actions.len(), 2);
    assert_eq!(out.actions[0]["input"]["subject"], "Hi Ada");
    assert_eq!(out.actions[0]["input"]["to"], "ada@example.com");
    assert_eq!(
        out.path[2].detail["resumeAt"],
        start().plus_seconds(86_400).to_canonical()
    );
    assert_eq!(w.get_contact(&c).await, before);
    assert!(w.enrollments(&wf).await.is_empty());
    assert!(r.mail.sent().is_empty());
    let jobs_after = w
        .stores
        .global::<crate::jobs::Job>()
        .count(&Filter::all())
        .await
        .unwrap();
    assert_eq!(jobs_before, jobs_after);
    let _ = &w.store;
}

#[tokio::test]
async fn actions_write_through_the_core_rules() {
    use crm_core::entities::activity::Activity;
    use crm_core::entities::notification::Notification;
    use crm_core::entities::task::Task;
    use crm_core::entities::team_member::{MemberStatus, Role, TeamMember};

    let w = memory_world().await;
    let r = w.runtime();
    let scope = w.stores.workspace(w.ws);
    let mate = UserId::new();
    let mut m = TeamMember::new(w.ws, Role::Member, start());
    m.user_id = Some(mate);
    m.status = MemberStatus::Active;
    scope.repo::<TeamMember>().insert(&m).await.unwrap();

    let tagger = w
        .workflow(
            "manual",
            json!([tag_step("x", "chained", &[])]),
            json!({"allowReenrollment": true}),
        )
        .await;
    let steps = json!([
        {"id": "field", "type": "action", "name": "status", "nextStepIds": ["task"],
         "config": {"actionType": "update_field", "fieldName": "status", "fieldValue": "prospect"}},
        {"id": "task", "type": "action", "name": "task", "nextStepIds": ["owner"],
         "config": {"actionType": "create_task", "taskTitle": "Call {{firstName}}", "taskDueInDays": 2}},
        {"id": "owner", "type": "action", "name": "owner", "nextStepIds": ["act"],
         "config": {"actionType": "assign_owner"}},
        {"id": "act", "type": "action", "name": "act", "nextStepIds": ["note"],
         "config": {"actionType": "create_activity", "activityTitle": "Welcomed @contact.firstName"}},
        {"id": "note", "type": "action", "name": "note", "nextStepIds": ["score"],
         "config": {"actionType": "send_notification", "notificationMessage": "{{firstName}} is in"}},
        {"id": "score", "type": "action", "name": "score", "nextStepIds": ["chain"],
         "config": {"actionType": "update_lead_score", "scoreEventType": "demo_requested"}},
        {"id": "chain", "type": "action", "name": "chain", "nextStepIds": [],
         "config": {"actionType": "enroll_workflow", "targetWorkflowId": tagger.id.to_string()}}
    ]);
    let wf = w.workflow("contact_created", steps, json!({})).await;
    let a = w.contact("Ada").await;
    let b = w.contact("Bob").await;
    r.rt.run_until_idle().await.unwrap();

    for e in w.enrollments(&wf).await {
        assert_eq!(e.status, EnrollmentStatus::Completed, "{:?}", e.last_error);
        assert_eq!(e.steps_executed.len(), 7);
    }
    let (a, b) = (w.get_contact(&a).await, w.get_contact(&b).await);
    assert_eq!(serde_json::to_value(a.status).unwrap(), "prospect");
    assert_eq!(a.tags, ["chained"], "enrolled into the second workflow");
    // Round robin over the owner and the member: the two contacts get different owners.
    let owners = [a.assigned_to.unwrap(), b.assigned_to.unwrap()];
    assert_ne!(owners[0], owners[1]);
    assert!(owners.contains(&mate) && owners.contains(&w.user));

    let tasks = scope
        .repo::<Task>()
        .find(
            &Filter::eq("relatedContactId", a.id.to_string()),
            &FindOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].title, "Call Ada");
    assert_eq!(tasks[0].due_date, Some(start().plus_seconds(2 * 86_400)));
    let acts = scope
        .repo::<Activity>()
        .find(
            &Filter::eq("workflowId", wf.id.to_string()),
            &FindOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(acts.len(), 2);
    assert!(acts.iter().all(|x| x.automated));
    assert!(acts.iter().any(|x| x.title == "Welcomed Ada"));
    let notes = scope
        .repo::<Notification>()
        .find(&Filter::eq("message", "Ada is in"), &FindOptions::default())
        .await
        .unwrap();
    assert_eq!(notes.len(), 1);
    let score = crate::scoring::lead::get_or_create(&scope, a.id, start())
        .await
        .unwrap();
    assert_eq!(score.current_score, 50);

    // A field the contact rules refuse fails the step with the rule's words.
    let bad = w
        .workflow(
            "manual",
            json!([{"id": "f", "type": "action", "name": "f", "nextStepIds": [],
                "config": {"actionType": "update_field", "fieldName": "status", "fieldValue": "royalty"}}]),
            json!({}),
        )
        .await;
    r.engine
        .enroll(
            &scope,
            &bad,
            EntityType::Contact,
            a.id.object_id(),
            super::engine::Enroll::manual(None, super::model::EnrollmentSource::Api),
        )
        .await
        .unwrap();
    r.rt.run_until_idle().await.unwrap();
    let e = &w.enrollments(&bad).await[0];
    assert_eq!(e.status, EnrollmentStatus::Retrying);
    assert!(
        e.last_error.as_deref().unwrap().contains("status"),
        "{:?}",
        e.last_error
    );
}

#[tokio::test]
async fn enroll_sequence_without_sequences_is_a_step_error() {
    let w = memory_world().await;
    let r = w.runtime();
    let wf = w
        .workflow(
            "contact_created",
            json!([{"id": "s", "type": "action", "name": "s", "nextStepIds": [],
                "config": {"actionType": "enroll_sequence", "sequenceId": "5f0000000000000000000000"}}]),
            json!({}),
        )
        .await;
    w.contact("Ada").await;
    r.rt.run_until_idle().await.unwrap();
    let e = &w.enrollments(&wf).await[0];
    assert_eq!(e.last_error.as_deref(), Some("no sequences configured"));
    assert_eq!(
        e.steps_executed[0].status,
        super::model::StepRunStatus::Failed
    );
}

#[tokio::test]
async fn deal_task_and_form_events_fire_their_triggers() {
    use crm_core::entities::opportunity::Opportunity;
    use crm_core::entities::pipeline::{PipelineId, StageId};
    use crm_core::entities::task::Task;

    let w = memory_world().await;
    let r = w.runtime();
    let human = w.stores.workspace_as(w.ws, Actor::User(w.user));
    let on_stage = w
        .workflow(
            "deal_stage_changed",
            json!([tag_step("a", "moved", &[])]),
            json!({"triggerEntityType": "deal"}),
        )
        .await;
    let on_task = w
        .workflow(
            "task_completed",
            json!([tag_step("a", "task-done", &[])]),
            json!({}),
        )
        .await;
    let on_form = w
        .workflow(
            "form_submitted",
            json!([tag_step("a", "submitted", &[])]),
            json!({}),
        )
        .await;
    let c = w.contact("Ada").await;
    let deal = human
        .repo::<Opportunity>()
        .insert(&Opportunity::new(
            w.ws,
            w.user,
            PipelineId::new(),
            StageId::new(),
            "Deal",
            10.0,
        ))
        .await
        .unwrap();
    let mut t = Task::new(w.ws, w.user, "Call");
    t.related_contact_id = Some(c.id);
    let t = human.repo::<Task>().insert(&t).await.unwrap();
    r.rt.run_until_idle().await.unwrap();
    assert!(
        w.enrollments(&on_stage).await.is_empty(),
        "created is not a stage change"
    );
    assert!(w.enrollments(&on_task).await.is_empty());

    human
        .repo::<Opportunity>()
        .update(
            deal.id,
            &Update::new().set("stageId", StageId::new().to_string()),
        )
        .await
        .unwrap();
    human
        .repo::<Task>()
        .update(t.id, &Update::new().set("status", "completed"))
        .await
        .unwrap();
    let mut ev = DomainEvent::new(w.ws, "form.submitted", start());
    ev.data.insert("contactId".into(), json!(c.id.to_string()));
    human.emit(ev).await.unwrap();
    r.rt.run_until_idle().await.unwrap();

    let moved = w
        .stores
        .workspace(w.ws)
        .repo::<Opportunity>()
        .get(deal.id)
        .await
        .unwrap();
    assert_eq!(moved.tags, ["moved"]);
    let es = w.enrollments(&on_task).await;
    assert_eq!(es.len(), 1);
    assert_eq!(
        es[0].entity_id,
        c.id.object_id(),
        "the task's contact is enrolled"
    );
    assert_eq!(w.enrollments(&on_form).await.len(), 1);
    let mut tags = w.get_contact(&c).await.tags;
    tags.sort();
    assert_eq!(tags, ["submitted", "task-done"]);
}

#[tokio::test]
async fn wait_until_continues_when_the_record_qualifies_or_times_out() {
    let w = memory_world().await;
    let r = w.runtime();
    let steps = json!([
        {"id": "w", "type": "wait_until", "name": "until ready", "nextStepIds": ["yes", "no"],
         "config": {"conditions": [{"field": "jobTitle", "operator": "is_not_empty"}],
                    "timeoutValue": 2, "timeoutUnit": "days"}},
        tag_step("yes", "qualified", &[]),
        tag_step("no", "timed-out", &[])
    ]);
    let wf = w.workflow("contact_created", steps, json!({})).await;
    let ada = w.contact("Ada").await;
    let bob = w.contact("Bob").await;
    r.rt.run_until_idle().await.unwrap();
    for e in w.enrollments(&wf).await {
        assert_eq!(e.status, EnrollmentStatus::WaitingForEvent);
    }
    w.stores
        .workspace_as(w.ws, Actor::User(w.user))
        .repo::<Contact>()
        .update(ada.id, &Update::new().set("jobTitle", "CTO"))
        .await
        .unwrap();
    w.clock.advance_seconds(3600);
    r.rt.run_until_idle().await.unwrap();
    assert_eq!(w.get_contact(&ada).await.tags, ["qualified"]);
    assert!(w.get_contact(&bob).await.tags.is_empty());
    w.clock.advance_seconds(2 * 86_400);
    r.rt.run_until_idle().await.unwrap();
    assert_eq!(w.get_contact(&bob).await.tags, ["timed-out"]);
    for e in w.enrollments(&wf).await {
        assert_eq!(e.status, EnrollmentStatus::Completed);
    }
}
