//! Tickets over HTTP: numbering per workspace (also under concurrency), CRUD, comments with
//! response/resolution times, stats, the role table and workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use clianta_api::ApiConfig;
use common::{Account, SlowStore, TestApp, add_member, seed};
use crm_core::accounts::Role;
use crm_core::entities::contact::Contact;
use serde_json::{Value, json};
use storage_memory::MemoryStore;

async fn contact(t: &TestApp, ws: &str, owner: &Account) -> String {
    let c = Contact::new(ws.parse().unwrap(), owner.id.parse().unwrap(), "Ada");
    seed(t, ws, &c).await
}

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn ticket(subject: &str) -> Value {
    json!({"subject": subject, "description": "It broke", "requesterEmail": " Bob@Example.com "})
}

fn list_of<'a>(body: &'a Value, key: &str) -> Vec<&'a Value> {
    body[key].as_array().unwrap().iter().collect()
}

#[tokio::test]
async fn crud_numbers_and_filters() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Support").await;
    let tok = Some(ann.access.as_str());

    let a = t
        .post(&url(&ws, "tickets"), tok, ticket("Login fails"))
        .await;
    let a = a.ok(201).clone();
    assert_eq!(a["ticketNumber"], "TKT-0001");
    assert_eq!(a["status"], "open");
    assert_eq!(a["priority"], "medium");
    assert_eq!(a["category"], "support");
    assert_eq!(a["source"], "web");
    assert_eq!(a["requesterEmail"], "bob@example.com");
    assert_eq!(a["createdBy"], ann.id.as_str());
    let mut body = ticket("Invoice wrong");
    body["priority"] = json!("urgent");
    body["category"] = json!("billing");
    body["tags"] = json!(["vip", " vip "]);
    t.clock.advance_secs(1);
    let b = t
        .post(&url(&ws, "tickets"), tok, body)
        .await
        .ok(201)
        .clone();
    assert_eq!(b["ticketNumber"], "TKT-0002");
    assert_eq!(b["tags"], json!(["vip"]));

    // Another workspace counts from 1 again.
    let other = t.workspace(&ann, "Other").await;
    let o = t
        .post(&url(&other, "tickets"), tok, ticket("Elsewhere"))
        .await;
    assert_eq!(o.ok(201)["ticketNumber"], "TKT-0001");

    let id = a["_id"].as_str().unwrap();
    let got = t.get(&url(&ws, &format!("tickets/{id}")), tok).await;
    assert_eq!(got.ok(200)["subject"], "Login fails");

    let all = t.get(&url(&ws, "tickets"), tok).await;
    let all = all.ok(200).clone();
    assert_eq!(all["pagination"]["total"], 2);
    // Newest first.
    assert_eq!(list_of(&all, "tickets")[0]["ticketNumber"], "TKT-0002");
    for (q, n) in [
        ("priority=urgent", 1),
        ("status=open", 2),
        ("status=closed", 0),
        ("search=invoice", 1),
        ("search=tkt-0001", 1),
        ("tags=vip", 1),
        ("limit=1&page=2", 1),
    ] {
        let r = t.get(&url(&ws, &format!("tickets?{q}")), tok).await;
        assert_eq!(list_of(r.ok(200), "tickets").len(), n, "{q}");
    }
    let r = t.get(&url(&ws, "tickets?fields=ticketNumber"), tok).await;
    assert_eq!(
        list_of(r.ok(200), "tickets")[1].as_object().unwrap().len(),
        2,
        "_id and ticketNumber only"
    );
    t.get(&url(&ws, "tickets?expand=assignedTo"), tok)
        .await
        .problem(422, "invalid");
    t.get(&url(&ws, "tickets?status=done"), tok)
        .await
        .problem(422, "invalid");

    let p = t
        .patch(
            &url(&ws, &format!("tickets/{id}")),
            tok,
            json!({"priority": "high", "subject": " Login still fails "}),
        )
        .await;
    let p = p.ok(200);
    assert_eq!(p["priority"], "high");
    assert_eq!(p["subject"], "Login still fails");
    assert_eq!(p["ticketNumber"], "TKT-0001");
    t.patch(
        &url(&ws, &format!("tickets/{id}")),
        tok,
        json!({"status": "bogus"}),
    )
    .await
    .problem(422, "invalid");
    t.post(
        &url(&ws, "tickets"),
        tok,
        json!({"subject": " ", "description": "x", "requesterEmail": "a@b.co"}),
    )
    .await
    .problem(422, "invalid");

    let d = t.delete(&url(&ws, &format!("tickets/{id}")), tok).await;
    assert_eq!(d.status.as_u16(), 204);
    t.get(&url(&ws, &format!("tickets/{id}")), tok)
        .await
        .problem(404, "not_found");
    // Numbers are never reused.
    let c = t.post(&url(&ws, "tickets"), tok, ticket("Again")).await;
    assert_eq!(c.ok(201)["ticketNumber"], "TKT-0003");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_get_gapless_unique_numbers() {
    let mem = Arc::new(MemoryStore::new());
    let storage = SlowStore::storage(mem, Duration::from_millis(2));
    let t = Arc::new(TestApp::with(storage, ApiConfig::default()));
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Busy desk").await;
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let t = t.clone();
            let ws = ws.clone();
            let tok = ann.access.clone();
            tokio::spawn(async move {
                let r = t
                    .post(&url(&ws, "tickets"), Some(&tok), ticket(&format!("T{i}")))
                    .await;
                r.ok(201)["ticketNumber"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut numbers = BTreeSet::new();
    for h in handles {
        assert!(numbers.insert(h.await.unwrap()), "duplicate number");
    }
    let expected: BTreeSet<String> = (1..=20).map(|n| format!("TKT-{n:04}")).collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn comments_response_and_resolution_times_and_stats() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Support").await;
    let tok = Some(ann.access.as_str());
    let a = t.post(&url(&ws, "tickets"), tok, ticket("One")).await;
    let a = a.ok(201)["_id"].as_str().unwrap().to_owned();
    let mut high = ticket("Two");
    high["priority"] = json!("high");
    let b = t.post(&url(&ws, "tickets"), tok, high).await;
    let b = b.ok(201)["_id"].as_str().unwrap().to_owned();

    // An internal note is not a response.
    t.clock.advance_secs(60);
    let r = t
        .post(
            &url(&ws, &format!("tickets/{a}/comments")),
            tok,
            json!({"message": "looking", "isInternal": true}),
        )
        .await;
    let r = r.ok(201);
    assert_eq!(r["comments"].as_array().unwrap().len(), 1);
    assert!(r.get("firstResponseAt").is_none());

    t.clock.advance_secs(60);
    let r = t
        .post(
            &url(&ws, &format!("tickets/{a}/comments")),
            tok,
            json!({"message": "Fixed?"}),
        )
        .await;
    let r = r.ok(201).clone();
    assert_eq!(r["responseTimeMinutes"], 2.0);
    let first = r["firstResponseAt"].clone();
    assert!(first.is_string());
    let c = &r["comments"][1];
    assert_eq!(c["message"], "Fixed?");
    assert_eq!(c["isInternal"], false);
    assert_eq!(c["userId"], ann.id.as_str());
    assert!(c["_id"].is_string());

    // A later reply keeps the first response time.
    t.clock.advance_secs(60);
    let r = t
        .post(
            &url(&ws, &format!("tickets/{a}/comments")),
            tok,
            json!({"message": "Ping"}),
        )
        .await;
    assert_eq!(r.ok(201)["firstResponseAt"], first);
    t.post(
        &url(&ws, &format!("tickets/{a}/comments")),
        tok,
        json!({"message": ""}),
    )
    .await
    .problem(422, "invalid");

    // Resolution stamps once; reopening and closing keeps the first.
    t.clock.advance_secs(120);
    let r = t
        .patch(
            &url(&ws, &format!("tickets/{a}")),
            tok,
            json!({"status": "resolved"}),
        )
        .await;
    let r = r.ok(200).clone();
    assert_eq!(r["resolutionTimeMinutes"], 5.0);
    let resolved = r["resolvedAt"].clone();
    t.clock.advance_secs(60);
    t.patch(
        &url(&ws, &format!("tickets/{a}")),
        tok,
        json!({"status": "open"}),
    )
    .await
    .ok(200);
    let r = t
        .patch(
            &url(&ws, &format!("tickets/{a}")),
            tok,
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(r.ok(200)["resolvedAt"], resolved);

    // b: answered after 7 minutes, never resolved.
    t.clock.advance_secs(60);
    t.post(
        &url(&ws, &format!("tickets/{b}/comments")),
        tok,
        json!({"message": "On it"}),
    )
    .await
    .ok(201);

    let s = t.get(&url(&ws, "tickets-stats"), tok).await;
    let s = s.ok(200);
    assert_eq!(s["total"], 2);
    assert_eq!(s["byStatus"], json!({"closed": 1, "open": 1}));
    assert_eq!(s["byPriority"], json!({"high": 1, "medium": 1}));
    assert_eq!(s["avgResponseMinutes"], 4.5);
    assert_eq!(s["avgResolutionMinutes"], 5.0);

    // Another workspace's stats are empty.
    let other = t.workspace(&ann, "Other").await;
    let s = t.get(&url(&other, "tickets-stats"), tok).await;
    let s = s.ok(200);
    assert_eq!(s["total"], 0);
    assert_eq!(s["avgResponseMinutes"], Value::Null);
}

#[tokio::test]
async fn role_table() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let vic = t.register("vic@example.com").await;
    let mel = t.register("mel@example.com").await;
    let adam = t.register("adam@example.com").await;
    let ws = t.workspace(&ann, "Support").await;
    add_member(&t, &ws, &vic, Role::Viewer).await;
    add_member(&t, &ws, &mel, Role::Member).await;
    add_member(&t, &ws, &adam, Role::Admin).await;
    let id = t
        .post(&url(&ws, "tickets"), Some(&ann.access), ticket("One"))
        .await
        .ok(201)["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = url(&ws, &format!("tickets/{id}"));

    let v = Some(vic.access.as_str());
    t.get(&url(&ws, "tickets"), v).await.ok(200);
    t.get(&one, v).await.ok(200);
    t.get(&url(&ws, "tickets-stats"), v).await.ok(200);
    t.post(&url(&ws, "tickets"), v, ticket("x"))
        .await
        .problem(403, "forbidden");
    t.patch(&one, v, json!({"priority": "low"}))
        .await
        .problem(403, "forbidden");
    t.post(&format!("{one}/comments"), v, json!({"message": "hi"}))
        .await
        .problem(403, "forbidden");
    t.delete(&one, v).await.problem(403, "forbidden");

    let m = Some(mel.access.as_str());
    t.post(&url(&ws, "tickets"), m, ticket("x")).await.ok(201);
    t.patch(&one, m, json!({"priority": "low"})).await.ok(200);
    t.post(&format!("{one}/comments"), m, json!({"message": "hi"}))
        .await
        .ok(201);
    t.delete(&one, m).await.problem(403, "forbidden");

    let d = t.delete(&one, Some(&adam.access)).await;
    assert_eq!(d.status.as_u16(), 204);
}

#[tokio::test]
async fn workspaces_are_isolated() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let bob = t.register("bob@example.com").await;
    let mine = t.workspace(&ann, "Mine").await;
    let theirs = t.workspace(&bob, "Theirs").await;
    let a = Some(ann.access.as_str());
    let b = Some(bob.access.as_str());
    let their_ticket = t
        .post(&url(&theirs, "tickets"), b, ticket("Theirs"))
        .await
        .ok(201)["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let their_contact = contact(&t, &theirs, &bob).await;
    let my_contact = contact(&t, &mine, &ann).await;

    // Another workspace's id in the path.
    let path = url(&mine, &format!("tickets/{their_ticket}"));
    t.get(&path, a).await.problem(404, "not_found");
    t.patch(&path, a, json!({"priority": "low"}))
        .await
        .problem(404, "not_found");
    t.post(&format!("{path}/comments"), a, json!({"message": "x"}))
        .await
        .problem(404, "not_found");
    t.delete(&path, a).await.problem(404, "not_found");
    t.get(&url(&mine, "tickets/not-an-id"), a)
        .await
        .problem(404, "not_found");
    // Not a member of the other workspace at all.
    t.get(&url(&theirs, "tickets"), a)
        .await
        .problem(404, "not_found");

    // Another workspace's ids in the body.
    let mut body = ticket("x");
    body["relatedContactId"] = json!(their_contact);
    let r = t.post(&url(&mine, "tickets"), a, body).await;
    assert_eq!(r.problem(422, "invalid").body["field"], "relatedContactId");
    let mut body = ticket("x");
    body["assignedTo"] = json!(bob.id);
    let r = t.post(&url(&mine, "tickets"), a, body).await;
    assert_eq!(r.problem(422, "invalid").body["field"], "assignedTo");
    // Nothing was numbered for the refused ones.
    let mut body = ticket("ok");
    body["requesterId"] = json!(my_contact);
    body["assignedTo"] = json!(ann.id);
    let r = t.post(&url(&mine, "tickets"), a, body).await;
    let r = r.ok(201).clone();
    assert_eq!(r["ticketNumber"], "TKT-0001");
    let id = r["_id"].as_str().unwrap();
    let r = t
        .patch(
            &url(&mine, &format!("tickets/{id}")),
            a,
            json!({"requesterId": their_contact}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "requesterId");

    // Another workspace's user in a filter finds nothing.
    let r = t
        .get(&url(&mine, &format!("tickets?assignedTo={}", bob.id)), a)
        .await;
    assert!(list_of(r.ok(200), "tickets").is_empty());
    let r = t
        .get(&url(&mine, &format!("tickets?assignedTo={}", ann.id)), a)
        .await;
    assert_eq!(list_of(r.ok(200), "tickets").len(), 1);
    // Clearing an assignee with null.
    let r = t
        .patch(
            &url(&mine, &format!("tickets/{id}")),
            a,
            json!({"assignedTo": null}),
        )
        .await;
    assert!(r.ok(200).get("assignedTo").is_none());
}
