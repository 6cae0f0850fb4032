#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use automation::runtime::Runtime;
use crm_core::entities::contact::Contact;
use crm_core::entities::task::Task;
use crm_core::repo::Stores;
use crm_core::{ManualClock, Timestamp, UserId, WorkspaceId};
use serde_json::json;
use storage_memory::MemoryStore;

use super::*;
use crate::campaign::{Campaign, CampaignStep, EnrollmentStatus};
use crate::sequence::Sequence;
use crate::text::Bounded;

struct Fx {
    clock: Arc<ManualClock>,
    stores: Stores,
    rt: Runtime,
    out: Arc<RecordingOutbound>,
    ws: WorkspaceId,
    user: UserId,
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn fx(at: &str) -> Fx {
    let clock = Arc::new(ManualClock::at(ts(at)));
    let stores = Stores::new(Arc::new(MemoryStore::new()), clock.clone());
    let rt = Runtime::new(stores.clone(), clock.clone());
    let out = Arc::new(RecordingOutbound::default());
    register(&rt, out.clone());
    Fx {
        clock,
        stores,
        rt,
        out,
        ws: WorkspaceId::new(),
        user: UserId::new(),
    }
}

impl Fx {
    fn scope(&self) -> WorkspaceScope {
        self.stores.workspace(self.ws)
    }
    fn now(&self) -> Timestamp {
        self.stores.clock().now()
    }
    async fn contact(&self, name: &str, email: Option<&str>) -> ContactId {
        let mut c = Contact::new(self.ws, self.user, name);
        c.email = email.map(str::to_owned);
        self.scope().repo::<Contact>().insert(&c).await.unwrap().id
    }
    async fn campaign(&self, steps: serde_json::Value, limit: u32) -> Campaign {
        let mut c = Campaign::new(self.ws, self.user, Bounded::parse("Outreach").unwrap());
        c.steps = serde_json::from_value::<Vec<CampaignStep>>(steps).unwrap();
        c.daily_limit = limit;
        self.scope().repo::<Campaign>().insert(&c).await.unwrap()
    }
    async fn enrollment(&self, id: CampaignEnrollmentId) -> CampaignEnrollment {
        self.scope()
            .repo::<CampaignEnrollment>()
            .get(id)
            .await
            .unwrap()
    }
    async fn settle(&self) {
        self.rt.run_until_idle().await.unwrap();
    }
}

fn two_steps() -> serde_json::Value {
    json!([
        {"id": "s1", "order": 0, "subject": "Hi {{firstName}}", "body": "<p>{{company}}</p>"},
        {"id": "s2", "order": 1, "delayDays": 2, "delayHours": 3, "subject": "Again",
         "body": "Still there, {{firstName}}?"},
    ])
}

#[tokio::test]
async fn a_send_due_at_night_waits_for_the_window_then_the_next_step_its_delay() {
    // Wednesday 22:00 UTC; window 09:00-17:00 UTC, no weekends.
    let f = fx("2026-11-25T22:00:00Z");
    let c = f.campaign(two_steps(), 50).await;
    let mut contact = Contact::new(f.ws, f.user, "Ada");
    contact.email = Some("ada@example.com".into());
    contact.company = Some("<Analytical & Co>".into());
    let ada = f
        .scope()
        .repo::<Contact>()
        .insert(&contact)
        .await
        .unwrap()
        .id;
    let q = f.rt.queue();
    let got = enroll(&f.scope(), q.as_ref(), f.now(), c.id, &[ada])
        .await
        .unwrap();
    assert_eq!(got.created, 1);
    start(&f.scope(), q.as_ref(), f.now(), c.id).await.unwrap();
    let e = got.enrollments[0].id;
    assert_eq!(
        f.enrollment(e).await.next_send_at,
        Some(ts("2026-11-26T09:00:00Z"))
    );
    f.settle().await;
    assert!(f.out.sent().is_empty(), "nothing goes out at night");

    f.clock.set(ts("2026-11-26T09:00:00Z"));
    f.settle().await;
    let sent = f.out.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].subject, "Hi Ada");
    assert_eq!(sent[0].body, "<p>&lt;Analytical &amp; Co&gt;</p>");
    assert_eq!(sent[0].to, "ada@example.com");
    let en = f.enrollment(e).await;
    assert_eq!(en.current_step_index, 1);
    assert_eq!(en.status, EnrollmentStatus::Active);
    assert_eq!(en.emails_sent.len(), 1);
    // Second step: 2 days 3 hours later, Saturday 12:00 -> Monday 09:00 (no weekends).
    assert_eq!(en.next_send_at, Some(ts("2026-11-30T09:00:00Z")));
    f.clock.set(ts("2026-11-28T12:00:00Z"));
    f.settle().await;
    assert_eq!(f.out.sent().len(), 1);
    f.clock.set(ts("2026-11-30T09:00:00Z"));
    f.settle().await;
    assert_eq!(f.out.sent().len(), 2);
    let en = f.enrollment(e).await;
    assert_eq!(en.status, EnrollmentStatus::Completed);
    let c = f.scope().repo::<Campaign>().get(c.id).await.unwrap();
    assert_eq!(c.stats.sent, 2);
    assert_eq!(c.completed_enrollments, 1);
}

#[tokio::test]
async fn enrollment_is_idempotent_and_contacts_must_be_in_the_workspace() {
    let f = fx("2026-11-25T10:00:00Z");
    let c = f.campaign(two_steps(), 50).await;
    let a = f.contact("A", Some("a@example.com")).await;
    let q = f.rt.queue();
    let first = enroll(&f.scope(), q.as_ref(), f.now(), c.id, &[a, a])
        .await
        .unwrap();
    assert_eq!((first.created, first.enrollments.len()), (1, 1));
    let again = enroll(&f.scope(), q.as_ref(), f.now(), c.id, &[a])
        .await
        .unwrap();
    assert_eq!(again.created, 0);
    assert_eq!(again.enrollments[0].id, first.enrollments[0].id);
    let foreign = Contact::new(WorkspaceId::new(), f.user, "X");
    let err = enroll(&f.scope(), q.as_ref(), f.now(), c.id, &[foreign.id])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::invalid("contactIds", "every contact must exist in this workspace")
    );
    let c = f.scope().repo::<Campaign>().get(c.id).await.unwrap();
    assert_eq!(c.total_enrolled, 1);
}

#[tokio::test]
async fn the_daily_limit_moves_extra_sends_to_the_next_day() {
    let f = fx("2026-11-25T10:00:00Z");
    let c = f
        .campaign(
            json!([{"id": "s1", "subject": "Hi", "body": "Hello {{firstName}}"}]),
            2,
        )
        .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            f.contact(&format!("C{i}"), Some(&format!("c{i}@example.com")))
                .await,
        );
    }
    let q = f.rt.queue();
    start(&f.scope(), q.as_ref(), f.now(), c.id).await.unwrap();
    enroll(&f.scope(), q.as_ref(), f.now(), c.id, &ids)
        .await
        .unwrap();
    f.settle().await;
    assert_eq!(f.out.sent().len(), 2, "two a day");
    f.clock.set(ts("2026-11-26T09:00:00Z"));
    f.settle().await;
    assert_eq!(f.out.sent().len(), 3);
}

#[tokio::test]
async fn send_if_skips_and_missing_variables_stop_the_enrollment() {
    let f = fx("2026-11-25T10:00:00Z");
    let c = f
        .campaign(
            json!([
                {"id": "s1", "subject": "Hi", "body": "Hello"},
                {"id": "s2", "subject": "Opened?", "body": "x",
                 "sendIf": {"previousEmailOpened": true}},
                {"id": "s3", "subject": "Last", "body": "at {{company}}"},
            ]),
            50,
        )
        .await;
    let a = f.contact("A", Some("a@example.com")).await;
    let q = f.rt.queue();
    start(&f.scope(), q.as_ref(), f.now(), c.id).await.unwrap();
    let e = enroll(&f.scope(), q.as_ref(), f.now(), c.id, &[a])
        .await
        .unwrap()
        .enrollments[0]
        .id;
    f.settle().await;
    assert_eq!(f.out.sent().len(), 1);
    // s2 (not opened -> skipped) and s3 due immediately (no delays).
    f.settle().await;
    let en = f.enrollment(e).await;
    assert_eq!(f.out.sent().len(), 1, "s2 skipped, s3 not sent blank");
    assert_eq!(en.status, EnrollmentStatus::Paused);
    assert_eq!(en.last_error.as_deref(), Some("no value for company"));
    assert_eq!(en.current_step_index, 2);
}

#[tokio::test]
async fn a_paused_campaign_sends_nothing_until_started_again() {
    let f = fx("2026-11-25T10:00:00Z");
    let c = f
        .campaign(json!([{"id": "s1", "subject": "Hi", "body": "Hello"}]), 50)
        .await;
    let a = f.contact("A", Some("a@example.com")).await;
    let q = f.rt.queue();
    start(&f.scope(), q.as_ref(), f.now(), c.id).await.unwrap();
    pause(&f.scope(), c.id).await.unwrap();
    enroll(&f.scope(), q.as_ref(), f.now(), c.id, &[a])
        .await
        .unwrap();
    f.settle().await;
    assert!(f.out.sent().is_empty());
    start(&f.scope(), q.as_ref(), f.now(), c.id).await.unwrap();
    f.settle().await;
    assert_eq!(f.out.sent().len(), 1);
}

async fn sequence(f: &Fx) -> Sequence {
    let s: Sequence = serde_json::from_value(json!({
        "_id": SequenceId::new().to_string(), "workspaceId": f.ws.to_string(),
        "userId": f.user.to_string(), "name": "Drip", "status": "active",
        "sendWindowStart": "09:00", "sendWindowEnd": "17:00",
        "steps": [
            {"id": "e1", "order": 0, "subject": "Hi {{firstName}}", "body": "One",
             "delay": {"value": 1, "unit": "hours"}},
            {"id": "t1", "order": 1, "type": "task", "subject": "Call {{firstName}}",
             "body": "Follow up", "delay": {"value": 1, "unit": "days"}, "taskDueInDays": 2},
            {"id": "e2", "order": 2, "subject": "Two", "body": "Two",
             "delay": {"value": 1, "unit": "days"}},
        ],
    }))
    .unwrap();
    f.scope().repo::<Sequence>().insert(&s).await.unwrap()
}

#[tokio::test]
async fn sequence_steps_run_as_delayed_jobs_and_a_reply_exits() {
    let f = fx("2026-11-25T10:00:00Z");
    let s = sequence(&f).await;
    let a = f.contact("Ada", Some("ada@example.com")).await;
    let q = f.rt.queue();
    let e = enroll_in_sequence(&f.scope(), q.as_ref(), f.now(), s.id, &[a])
        .await
        .unwrap();
    let again = enroll_in_sequence(&f.scope(), q.as_ref(), f.now(), s.id, &[a])
        .await
        .unwrap();
    assert_eq!(again[0].id, e[0].id, "an active enrollment is kept");
    let e = e[0].id;
    f.settle().await;
    assert!(f.out.sent().is_empty(), "first step waits its hour");
    f.clock.advance_seconds(3600);
    f.settle().await;
    assert_eq!(f.out.sent().len(), 1);
    assert_eq!(f.out.sent()[0].subject, "Hi Ada");
    f.clock.advance_seconds(86_400);
    f.settle().await;
    let tasks = f
        .scope()
        .repo::<Task>()
        .find(&Filter::all(), &FindOptions::default())
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].related_contact_id, Some(a));
    let got = record_reply(&f.scope(), f.now(), s.id, e).await.unwrap();
    assert_eq!(got.status, SequenceEnrollmentStatus::Replied);
    f.clock.advance_seconds(2 * 86_400);
    f.settle().await;
    assert_eq!(f.out.sent().len(), 1, "no email after the reply");
    let s = f.scope().repo::<Sequence>().get(s.id).await.unwrap();
    assert_eq!(s.stats.replied, 1);
    assert_eq!(s.stats.currently_active, 0);
}

#[tokio::test]
async fn an_email_replied_event_ends_campaign_and_sequence_enrollments() {
    let f = fx("2026-11-25T10:00:00Z");
    let s = sequence(&f).await;
    let c = f.campaign(two_steps(), 50).await;
    let a = f.contact("Ada", Some("ada@example.com")).await;
    let q = f.rt.queue();
    enroll_in_sequence(&f.scope(), q.as_ref(), f.now(), s.id, &[a])
        .await
        .unwrap();
    let ce = enroll(&f.scope(), q.as_ref(), f.now(), c.id, &[a])
        .await
        .unwrap()
        .enrollments[0]
        .id;
    let mut ev = DomainEvent::new(f.ws, "email.replied", f.now());
    ev.data.insert("contactId".into(), json!(a.to_string()));
    f.scope().emit(ev).await.unwrap();
    f.settle().await;
    let s = f.scope().repo::<Sequence>().get(s.id).await.unwrap();
    assert_eq!(s.enrollments[0].status, SequenceEnrollmentStatus::Replied);
    assert_eq!(f.enrollment(ce).await.status, EnrollmentStatus::Replied);
}

#[tokio::test]
async fn the_workflow_enroller_enrolls_once() {
    use automation::workflows::actions::SequenceEnroller;
    let f = fx("2026-11-25T10:00:00Z");
    let s = sequence(&f).await;
    let a = f.contact("Ada", Some("ada@example.com")).await;
    let enroller = Enroller {
        queue: f.rt.queue(),
        clock: f.clock.clone(),
    };
    let first = enroller
        .enroll(&f.scope(), &s.id.to_string(), a, "wf:1:step")
        .await
        .unwrap();
    let again = enroller
        .enroll(&f.scope(), &s.id.to_string(), a, "wf:1:step")
        .await
        .unwrap();
    assert_eq!(first[0]["_id"], again[0]["_id"]);
    let s = f.scope().repo::<Sequence>().get(s.id).await.unwrap();
    assert_eq!(s.enrollments.len(), 1);
    let err = enroller
        .enroll(&f.scope(), "nope", a, "k")
        .await
        .unwrap_err();
    assert!(err.contains("not a sequence id"), "{err}");
}

#[tokio::test]
async fn a_workflow_step_enrolls_the_new_contact_in_a_sequence() {
    use automation::workflows::Workflow;
    let f = fx("2026-11-25T10:00:00Z");
    wire_workflow_sequences(
        &f.rt,
        Arc::new(crm_core::outbound::RecordingHttp::default()),
    );
    let mut project = crm_core::entities::project::Project::new(f.user, "Acme");
    project.id = f.ws;
    f.stores
        .global::<crm_core::entities::project::Project>()
        .insert(&project)
        .await
        .unwrap();
    let s = sequence(&f).await;
    let w: Workflow = serde_json::from_value(json!({
        "_id": crm_core::ObjectId::new().to_hex(), "workspaceId": f.ws.to_string(),
        "userId": f.user.to_string(), "name": "Nurture", "status": "active",
        "triggerEntityType": "contact",
        "steps": [
            {"id": "t", "type": "trigger", "name": "Trigger", "position": {"x": 0, "y": 0},
             "nextStepIds": ["e"], "config": {"triggerType": "contact_created"}},
            {"id": "e", "type": "action", "name": "Enroll", "nextStepIds": [],
             "config": {"actionType": "enroll_sequence", "sequenceId": s.id.to_string()}},
        ],
    }))
    .unwrap();
    f.scope().repo::<Workflow>().insert(&w).await.unwrap();
    let human = f
        .stores
        .workspace_as(f.ws, crm_core::repo::Actor::User(f.user));
    let mut c = Contact::new(f.ws, f.user, "Ada");
    c.email = Some("ada@example.com".into());
    let c = human.repo::<Contact>().insert(&c).await.unwrap();
    f.settle().await;
    let runs = f
        .scope()
        .repo::<automation::workflows::WorkflowEnrollment>()
        .find(&Filter::all(), &FindOptions::default())
        .await
        .unwrap();
    let s = f.scope().repo::<Sequence>().get(s.id).await.unwrap();
    assert_eq!(s.enrollments.len(), 1, "{runs:?}");
    assert_eq!(s.enrollments[0].contact_id, c.id);
}
