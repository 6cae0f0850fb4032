//! Domain events and background jobs over HTTP: the event list (newest first, filters, paging),
//! the job list, cancel and replay of a dead letter, the role table and workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;
use automation::handlers::EventConsumer;
use common::{Account, TestApp, World, add_member, world};
use crm_core::accounts::Role;
use crm_core::events::DomainEvent;
use crm_core::{Error, Result};
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn list<'a>(body: &'a Value, key: &str) -> Vec<&'a Value> {
    body[key].as_array().unwrap().iter().collect()
}

fn types(body: &Value) -> Vec<&str> {
    list(body, "events")
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

/// Wants created contacts; fails while `failing` is set.
#[derive(Debug, Default)]
struct Flaky {
    failing: AtomicBool,
    handled: AtomicU32,
}

#[async_trait]
impl EventConsumer for Flaky {
    fn name(&self) -> &'static str {
        "test.flaky"
    }
    fn wants(&self, event_type: &str) -> bool {
        event_type == "contact.created"
    }
    async fn handle(&self, _event: &DomainEvent) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("the far side is down".into()));
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn contact(w: &World, first: &str) -> String {
    let r =
        w.t.post(
            &url(&w.ws, "contacts"),
            w.tok(),
            json!({"firstName": first, "lastName": "Lovelace"}),
        )
        .await;
    r.ok(201)["_id"].as_str().unwrap().to_owned()
}

/// A world whose one contact's delivery to a failing consumer went dead after 5 attempts.
async fn dead_letter() -> (World, Arc<Flaky>, String) {
    let w = world().await;
    let flaky = Arc::new(Flaky::default());
    flaky.failing.store(true, Ordering::SeqCst);
    w.t.state.automation.register_consumer(flaky.clone());
    contact(&w, "Ada").await;
    let first = w.t.run_jobs().await;
    assert_eq!((first.relayed, first.jobs.retried), (1, 1));
    for _ in 0..4 {
        w.t.clock.advance_secs(60);
        w.t.run_jobs().await;
    }
    let jobs = w.t.get(&url(&w.ws, "jobs?status=dead"), w.tok()).await;
    let jobs = list(jobs.ok(200), "jobs");
    assert_eq!(jobs.len(), 1);
    let id = jobs[0]["_id"].as_str().unwrap().to_owned();
    (w, flaky, id)
}

#[tokio::test]
async fn events_are_listed_newest_first_with_filters_and_paging() {
    let w = world().await;
    let ada = contact(&w, "Ada").await;
    w.t.clock.advance_secs(1);
    let r =
        w.t.patch(
            &url(&w.ws, &format!("contacts/{ada}")),
            w.tok(),
            json!({"lastName": "Byron"}),
        )
        .await;
    r.ok(200);
    w.t.clock.advance_secs(1);
    let bob = contact(&w, "Bob").await;

    let all = w.t.get(&url(&w.ws, "events"), w.tok()).await;
    let all = all.ok(200);
    assert_eq!(
        types(all),
        ["contact.created", "contact.updated", "contact.created"]
    );
    let newest = list(all, "events")[0];
    assert_eq!(newest["entityId"], bob.as_str());
    assert_eq!(newest["entityType"], "contact");
    assert_eq!(newest["workspaceId"], w.ws.as_str());
    assert_eq!(newest["after"]["firstName"], "Bob");
    let updated = list(all, "events")[1];
    assert_eq!(updated["changed"], json!(["lastName"]));
    assert_eq!(updated["before"]["firstName"], "Ada");
    assert_eq!(updated["actor"]["userId"], w.owner.id.as_str());

    let r =
        w.t.get(&url(&w.ws, &format!("events?entityId={ada}")), w.tok())
            .await;
    assert_eq!(types(r.ok(200)), ["contact.updated", "contact.created"]);
    let r =
        w.t.get(&url(&w.ws, "events?type=contact.updated"), w.tok())
            .await;
    assert_eq!(types(r.ok(200)), ["contact.updated"]);

    let p1 = w.t.get(&url(&w.ws, "events?limit=2"), w.tok()).await;
    let p1 = p1.ok(200);
    assert_eq!(list(p1, "events").len(), 2);
    let p2 = w.t.get(&url(&w.ws, "events?limit=2&page=2"), w.tok()).await;
    let p2 = p2.ok(200);
    assert_eq!(list(p2, "events").len(), 1);
    assert_eq!(list(p2, "events")[0]["entityId"], ada.as_str());

    let r = w.t.get(&url(&w.ws, "events?entityId=nope"), w.tok()).await;
    r.problem(422, "invalid");
    let r = w.t.get(&url(&w.ws, "events?sort=type"), w.tok()).await;
    r.problem(422, "invalid");
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_replayed_and_a_queued_job_cancelled() {
    let (w, flaky, id) = dead_letter().await;
    // Other consumers of the standard runtime get the event too; theirs are done.
    let r = w.t.get(&url(&w.ws, "jobs"), w.tok()).await;
    let jobs = list(r.ok(200), "jobs");
    let job = *jobs.iter().find(|j| j["_id"] == id.as_str()).unwrap();
    assert!(
        jobs.iter()
            .all(|j| j["_id"] == id.as_str() || j["status"] == "done")
    );
    assert_eq!(job["kind"], "event.deliver");
    assert_eq!(job["status"], "dead");
    assert_eq!(job["attempts"], 5);
    assert_eq!(job["workspaceId"], w.ws.as_str());
    assert_eq!(job["payload"]["consumer"], "test.flaky");
    assert!(
        job["lastError"]
            .as_str()
            .unwrap()
            .contains("the far side is down")
    );
    let r =
        w.t.get(
            &url(&w.ws, "jobs?kind=event.deliver&status=queued"),
            w.tok(),
        )
        .await;
    assert!(list(r.ok(200), "jobs").is_empty());
    let r = w.t.get(&url(&w.ws, "jobs?status=stuck"), w.tok()).await;
    r.problem(422, "invalid");

    let r =
        w.t.post(
            &url(&w.ws, &format!("jobs/{id}/cancel")),
            w.tok(),
            json!({}),
        )
        .await;
    r.problem(422, "invalid");
    flaky.failing.store(false, Ordering::SeqCst);
    let r =
        w.t.post(
            &url(&w.ws, &format!("jobs/{id}/replay")),
            w.tok(),
            json!({}),
        )
        .await;
    let job = r.ok(200);
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_u64()),
        (Some("queued"), Some(0))
    );
    let r =
        w.t.post(
            &url(&w.ws, &format!("jobs/{id}/replay")),
            w.tok(),
            json!({}),
        )
        .await;
    r.problem(422, "invalid");
    assert!(w.t.run_jobs().await.jobs.done >= 1);
    assert_eq!(flaky.handled.load(Ordering::SeqCst), 1);
    let r = w.t.get(&url(&w.ws, "jobs?status=done"), w.tok()).await;
    assert!(
        list(r.ok(200), "jobs")
            .iter()
            .any(|j| j["_id"] == id.as_str())
    );

    // A delivery waiting for its retry can be cancelled, and is then never run.
    flaky.failing.store(true, Ordering::SeqCst);
    contact(&w, "Bob").await;
    w.t.run_jobs().await;
    let r = w.t.get(&url(&w.ws, "jobs?status=queued"), w.tok()).await;
    let queued = list(r.ok(200), "jobs")
        .into_iter()
        .find(|j| j["payload"]["consumer"] == "test.flaky")
        .unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r =
        w.t.post(
            &url(&w.ws, &format!("jobs/{queued}/cancel")),
            w.tok(),
            json!({}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "cancelled");
    flaky.failing.store(false, Ordering::SeqCst);
    w.t.clock.advance_secs(60);
    w.t.run_jobs().await;
    assert_eq!(flaky.handled.load(Ordering::SeqCst), 1);
}

async fn member(t: &TestApp, ws: &str, email: &str, role: Role) -> Account {
    let a = t.register(email).await;
    add_member(t, ws, &a, role).await;
    a
}

#[tokio::test]
async fn the_role_table() {
    let (w, _flaky, id) = dead_letter().await;
    let t = &w.t;
    let viewer = member(t, &w.ws, "viewer@example.com", Role::Viewer).await;
    let mem = member(t, &w.ws, "member@example.com", Role::Member).await;
    let admin = member(t, &w.ws, "admin@example.com", Role::Admin).await;
    for who in [&viewer, &mem] {
        let tok = Some(who.access.as_str());
        let r = t.get(&url(&w.ws, "events?type=contact.created"), tok).await;
        assert_eq!(list(r.ok(200), "events").len(), 1);
        t.get(&url(&w.ws, "jobs"), tok)
            .await
            .problem(403, "forbidden");
        for op in ["cancel", "replay"] {
            let r = t
                .post(&url(&w.ws, &format!("jobs/{id}/{op}")), tok, json!({}))
                .await;
            r.problem(403, "forbidden");
        }
    }
    let tok = Some(admin.access.as_str());
    let r = t.get(&url(&w.ws, "jobs?status=dead"), tok).await;
    assert_eq!(list(r.ok(200), "jobs")[0]["_id"], id.as_str());
    let r = t
        .post(&url(&w.ws, &format!("jobs/{id}/replay")), tok, json!({}))
        .await;
    assert_eq!(r.ok(200)["status"], "queued");
    let r = t
        .post(&url(&w.ws, &format!("jobs/{id}/cancel")), tok, json!({}))
        .await;
    assert_eq!(r.ok(200)["status"], "cancelled");
    t.get(&url(&w.ws, "events"), None)
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn another_workspace_sees_none_of_it() {
    let (w, _flaky, id) = dead_letter().await;
    let ada = list(
        w.t.get(&url(&w.ws, "events?type=contact.created"), w.tok())
            .await
            .ok(200),
        "events",
    )[0]["entityId"]
        .as_str()
        .unwrap()
        .to_owned();
    let eve = w.t.register("eve@example.com").await;
    let other = w.t.workspace(&eve, "Other").await;
    let tok = Some(eve.access.as_str());

    let r = w.t.get(&url(&other, "events"), tok).await;
    assert!(list(r.ok(200), "events").is_empty());
    let r =
        w.t.get(&url(&other, &format!("events?entityId={ada}")), tok)
            .await;
    assert!(list(r.ok(200), "events").is_empty());
    let r = w.t.get(&url(&other, "jobs"), tok).await;
    assert!(list(r.ok(200), "jobs").is_empty());
    for op in ["cancel", "replay"] {
        let r =
            w.t.post(&url(&other, &format!("jobs/{id}/{op}")), tok, json!({}))
                .await;
        r.problem(404, "not_found");
        // The other workspace in the path, the caller not a member of it.
        let r =
            w.t.post(&url(&w.ws, &format!("jobs/{id}/{op}")), tok, json!({}))
                .await;
        r.problem(404, "not_found");
    }
    let r = w.t.get(&url(&w.ws, "events"), tok).await;
    r.problem(404, "not_found");
    // Unknown and malformed ids.
    for bad in ["000000000000000000000000", "nope"] {
        let r =
            w.t.post(
                &url(&w.ws, &format!("jobs/{bad}/replay")),
                w.tok(),
                json!({}),
            )
            .await;
        r.problem(404, "not_found");
    }
    // Nothing was changed by the refused calls.
    let r = w.t.get(&url(&w.ws, "jobs?status=dead"), w.tok()).await;
    assert_eq!(list(r.ok(200), "jobs").len(), 1);
}
