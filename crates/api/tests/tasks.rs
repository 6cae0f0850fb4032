//! Tasks over HTTP: CRUD, completion, bulk status/assignment, stats, references within the
//! workspace, the role table and workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Account, TestApp, add_member_as, seed};
use crm_core::accounts::Role;
use crm_core::entities::contact::Contact;
use crm_core::entities::opportunity::Opportunity;
use crm_core::entities::pipeline::{PipelineId, StageId};
use crm_core::entities::team_member::MemberStatus;
use serde_json::{Value, json};

async fn contact(t: &TestApp, ws: &str, owner: &Account) -> String {
    let c = Contact::new(ws.parse().unwrap(), owner.id.parse().unwrap(), "Ada");
    seed(t, ws, &c).await
}

async fn opportunity(t: &TestApp, ws: &str, owner: &Account) -> String {
    let o = Opportunity::new(
        ws.parse().unwrap(),
        owner.id.parse().unwrap(),
        PipelineId::new(),
        StageId::new(),
        "Deal",
        10.0,
    );
    seed(t, ws, &o).await
}

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn tasks(body: &Value) -> Vec<&Value> {
    body["tasks"].as_array().unwrap().iter().collect()
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn crud_complete_and_filters() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    let tok = Some(ann.access.as_str());
    let c = contact(&t, &ws, &ann).await;
    let o = opportunity(&t, &ws, &ann).await;

    let a = t
        .post(&url(&ws, "tasks"), tok, json!({"title": " Call Ada "}))
        .await;
    let a = a.ok(201).clone();
    assert_eq!(a["title"], "Call Ada");
    assert_eq!(a["status"], "todo");
    assert_eq!(a["priority"], "medium");
    assert_eq!(a["userId"], ann.id.as_str());
    assert_eq!(a["createdBy"], ann.id.as_str());
    t.clock.advance_secs(1);
    let b = t
        .post(
            &url(&ws, "tasks"),
            tok,
            json!({"title": "Send proposal", "priority": "high", "relatedContactId": c,
                "relatedOpportunityId": o, "assignedTo": ann.id, "tags": ["deal"],
                "dueDate": "2030-01-01T00:00:00Z"}),
        )
        .await;
    let b = b.ok(201).clone();
    assert_eq!(b["relatedContactId"], c.as_str());
    assert_eq!(b["dueDate"], "2030-01-01T00:00:00.000Z");

    let got = t.get(&url(&ws, &format!("tasks/{}", id(&a))), tok).await;
    assert_eq!(got.ok(200)["title"], "Call Ada");
    let all = t.get(&url(&ws, "tasks"), tok).await;
    let all = all.ok(200).clone();
    assert_eq!(all["pagination"]["total"], 2);
    assert_eq!(tasks(&all)[0]["title"], "Send proposal");
    for (q, n) in [
        ("priority=high", 1),
        ("status=todo", 2),
        ("search=PROPOSAL", 1),
        ("tags=deal", 1),
        (&format!("assignedTo={}", ann.id) as &str, 1),
        ("sort=title", 2),
    ] {
        let r = t.get(&url(&ws, &format!("tasks?{q}")), tok).await;
        assert_eq!(tasks(r.ok(200)).len(), n, "{q}");
    }
    t.get(&url(&ws, "tasks?priority=extreme"), tok)
        .await
        .problem(422, "invalid");

    // completedAt follows the status.
    let one = url(&ws, &format!("tasks/{}", id(&a)));
    let r = t.patch(&one, tok, json!({"status": "completed"})).await;
    let done_at = r.ok(200)["completedAt"].clone();
    assert!(done_at.is_string());
    let r = t.patch(&one, tok, json!({"status": "in_progress"})).await;
    assert!(r.ok(200).get("completedAt").is_none());
    t.clock.advance_secs(5);
    let r = t.post(&format!("{one}/complete"), tok, json!({})).await;
    let r = r.ok(200).clone();
    assert_eq!(r["status"], "completed");
    assert_ne!(r["completedAt"], done_at);
    let again = t.post(&format!("{one}/complete"), tok, json!({})).await;
    assert_eq!(again.ok(200)["completedAt"], r["completedAt"]);

    let r = t
        .patch(
            &url(&ws, &format!("tasks/{}", id(&b))),
            tok,
            json!({"relatedContactId": null, "title": "Send it", "dueDate": null}),
        )
        .await;
    let r = r.ok(200);
    assert!(r.get("relatedContactId").is_none());
    assert!(r.get("dueDate").is_none());
    assert_eq!(r["title"], "Send it");
    t.patch(&one, tok, json!({"title": ""}))
        .await
        .problem(422, "invalid");
    t.patch(&one, tok, json!({"nope": 1}))
        .await
        .problem(422, "invalid");

    let d = t.delete(&one, tok).await;
    assert_eq!(d.status.as_u16(), 204);
    t.get(&one, tok).await.problem(404, "not_found");
}

#[tokio::test]
async fn bulk_and_stats() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let mel = t.register("mel@example.com").await;
    let pam = t.register("pam@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    add_member_as(&t, &ws, &mel, Role::Member, MemberStatus::Active).await;
    add_member_as(&t, &ws, &pam, Role::Member, MemberStatus::Pending).await;
    let tok = Some(ann.access.as_str());
    let now = t.state.stores.clock().now();
    let past = now.plus_seconds(-3600).to_canonical();
    let later_today = now.plus_seconds(60).to_canonical();
    let mut ids = Vec::new();
    for (title, due, prio) in [
        ("late", Some(past.clone()), "high"),
        ("late but done", Some(past), "low"),
        ("soon", Some(later_today), "high"),
        ("someday", None, "medium"),
    ] {
        let mut body = json!({"title": title, "priority": prio});
        if let Some(d) = due {
            body["dueDate"] = json!(d);
        }
        ids.push(id(t.post(&url(&ws, "tasks"), tok, body).await.ok(201)));
    }

    let other = t.workspace(&ann, "Other").await;
    let foreign = id(t
        .post(&url(&other, "tasks"), tok, json!({"title": "x"}))
        .await
        .ok(201));

    let r = t
        .patch(
            &url(&ws, "tasks/bulk/status"),
            tok,
            json!({"taskIds": [ids[1], foreign], "status": "completed"}),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 1);
    // The other workspace's task is untouched.
    let f = t.get(&url(&other, &format!("tasks/{foreign}")), tok).await;
    assert_eq!(f.ok(200)["status"], "todo");
    let done = t.get(&url(&ws, &format!("tasks/{}", ids[1])), tok).await;
    assert!(done.ok(200)["completedAt"].is_string());

    let r = t
        .patch(
            &url(&ws, "tasks/bulk/assign"),
            tok,
            json!({"taskIds": [ids[0], ids[2]], "assignedTo": mel.id}),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 2);
    let r = t
        .get(&url(&ws, &format!("tasks?assignedTo={}", mel.id)), tok)
        .await;
    assert_eq!(tasks(r.ok(200)).len(), 2);
    let r = t
        .patch(
            &url(&ws, "tasks/bulk/assign"),
            tok,
            json!({"taskIds": [ids[0]], "assignedTo": null}),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 1);
    // A pending invitee is not a member yet.
    let r = t
        .patch(
            &url(&ws, "tasks/bulk/assign"),
            tok,
            json!({"taskIds": [ids[0]], "assignedTo": pam.id}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "assignedTo");
    let too_many: Vec<String> = (0..501).map(|_| ids[0].clone()).collect();
    t.patch(
        &url(&ws, "tasks/bulk/status"),
        tok,
        json!({"taskIds": too_many, "status": "todo"}),
    )
    .await
    .problem(422, "invalid");
    let r = t
        .patch(
            &url(&ws, "tasks/bulk/status"),
            tok,
            json!({"taskIds": ["zz"], "status": "todo"}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "taskIds[0]");

    let s = t.get(&url(&ws, "tasks-stats"), tok).await;
    let s = s.ok(200);
    assert_eq!(s["total"], 4);
    assert_eq!(s["byStatus"], json!({"todo": 3, "completed": 1}));
    assert_eq!(s["byPriority"], json!({"high": 2, "low": 1, "medium": 1}));
    assert_eq!(s["overdue"], 1);
    // "soon" is due today unless the test runs in the last minute of a UTC day.
    let today_end = (now.millis() / 86_400_000 + 1) * 86_400_000;
    let expect_today = if now.millis() + 60_000 < today_end {
        2
    } else {
        1
    };
    assert_eq!(s["dueToday"], expect_today);
}

#[tokio::test]
async fn role_table() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let vic = t.register("vic@example.com").await;
    let mel = t.register("mel@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    add_member_as(&t, &ws, &vic, Role::Viewer, MemberStatus::Active).await;
    add_member_as(&t, &ws, &mel, Role::Member, MemberStatus::Active).await;
    let a = id(t
        .post(&url(&ws, "tasks"), Some(&ann.access), json!({"title": "x"}))
        .await
        .ok(201));
    let one = url(&ws, &format!("tasks/{a}"));

    let v = Some(vic.access.as_str());
    t.get(&url(&ws, "tasks"), v).await.ok(200);
    t.get(&one, v).await.ok(200);
    t.get(&url(&ws, "tasks-stats"), v).await.ok(200);
    t.post(&url(&ws, "tasks"), v, json!({"title": "x"}))
        .await
        .problem(403, "forbidden");
    t.patch(&one, v, json!({"title": "y"}))
        .await
        .problem(403, "forbidden");
    t.post(&format!("{one}/complete"), v, json!({}))
        .await
        .problem(403, "forbidden");
    t.patch(
        &url(&ws, "tasks/bulk/status"),
        v,
        json!({"taskIds": [a], "status": "todo"}),
    )
    .await
    .problem(403, "forbidden");
    t.delete(&one, v).await.problem(403, "forbidden");

    // Members may delete tasks (the original's table).
    let m = Some(mel.access.as_str());
    t.patch(&one, m, json!({"title": "y"})).await.ok(200);
    let d = t.delete(&one, m).await;
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
    let their_task = id(t
        .post(
            &url(&theirs, "tasks"),
            Some(&bob.access),
            json!({"title": "x"}),
        )
        .await
        .ok(201));
    let their_contact = contact(&t, &theirs, &bob).await;
    let their_opp = opportunity(&t, &theirs, &bob).await;

    let path = url(&mine, &format!("tasks/{their_task}"));
    t.get(&path, a).await.problem(404, "not_found");
    t.patch(&path, a, json!({"title": "y"}))
        .await
        .problem(404, "not_found");
    t.post(&format!("{path}/complete"), a, json!({}))
        .await
        .problem(404, "not_found");
    t.delete(&path, a).await.problem(404, "not_found");

    for (field, value) in [
        ("relatedContactId", their_contact),
        ("relatedOpportunityId", their_opp),
        ("relatedCompanyId", their_task.clone()),
        ("assignedTo", bob.id.clone()),
    ] {
        let r = t
            .post(&url(&mine, "tasks"), a, json!({"title": "x", field: value}))
            .await;
        assert_eq!(r.problem(422, "invalid").body["field"], field);
    }
    let r = t
        .get(&url(&mine, &format!("tasks?assignedTo={}", bob.id)), a)
        .await;
    assert!(tasks(r.ok(200)).is_empty());
    // The other workspace's task is still as it was.
    let r = t
        .get(
            &url(&theirs, &format!("tasks/{their_task}")),
            Some(&bob.access),
        )
        .await;
    assert_eq!(r.ok(200)["title"], "x");
}
