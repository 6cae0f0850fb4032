//! Notifications over HTTP: each user sees and changes only their own, read/unread counts, the
//! notifications a task assignment and a won or lost deal leave, and workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Account, TestApp, add_member, seed};
use crm_core::accounts::Role;
use crm_core::entities::notification::{Notification, NotificationType};
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn items(body: &Value) -> Vec<Value> {
    body["notifications"].as_array().unwrap().clone()
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

async fn note(t: &TestApp, ws: &str, to: &Account, kind: NotificationType, title: &str) -> String {
    let n = Notification::new(
        ws.parse().unwrap(),
        to.id.parse().unwrap(),
        kind,
        title,
        "message",
    );
    seed(t, ws, &n).await
}

async fn inbox(t: &TestApp, ws: &str, who: &Account, query: &str) -> Value {
    t.get(
        &url(ws, &format!("notifications{query}")),
        Some(&who.access),
    )
    .await
    .ok(200)
    .clone()
}

async fn unread(t: &TestApp, ws: &str, who: &Account) -> u64 {
    t.get(&url(ws, "notifications/unread-count"), Some(&who.access))
        .await
        .ok(200)["unreadCount"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn read_unread_and_delete_own_notifications() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let vic = t.register("vic@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    // A viewer reads no workspace data but tends their own inbox.
    add_member(&t, &ws, &vic, Role::Viewer).await;
    let v = Some(vic.access.as_str());
    let a = note(&t, &ws, &vic, NotificationType::System, "first").await;
    t.clock.advance_secs(1);
    let b = note(&t, &ws, &vic, NotificationType::Mention, "second").await;
    t.clock.advance_secs(1);
    let c = note(&t, &ws, &vic, NotificationType::Mention, "third").await;
    note(&t, &ws, &ann, NotificationType::System, "ann's").await;

    let all = inbox(&t, &ws, &vic, "").await;
    assert_eq!(all["pagination"]["total"], 3);
    assert_eq!(all["unreadCount"], 3);
    assert_eq!(items(&all)[0]["title"], "third", "newest first");
    assert_eq!(items(&all)[0]["isRead"], false);
    assert_eq!(unread(&t, &ws, &vic).await, 3);

    let read = t
        .post(&url(&ws, &format!("notifications/{a}/read")), v, json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(read["isRead"], true);
    let read_at = read["readAt"].clone();
    assert!(read_at.is_string());
    t.clock.advance_secs(5);
    let again = t
        .post(&url(&ws, &format!("notifications/{a}/read")), v, json!({}))
        .await;
    assert_eq!(
        again.ok(200)["readAt"],
        read_at,
        "the first read time stays"
    );
    assert_eq!(unread(&t, &ws, &vic).await, 2);

    for (q, n) in [
        ("?isRead=true", 1),
        ("?isRead=false", 2),
        ("?type=mention", 2),
        ("?type=mention&isRead=false", 2),
        ("?type=system", 1),
        ("?limit=1", 1),
    ] {
        assert_eq!(items(&inbox(&t, &ws, &vic, q).await).len(), n, "{q}");
    }
    for q in ["?isRead=maybe", "?type=nope", "?search=x"] {
        t.get(&url(&ws, &format!("notifications{q}")), v)
            .await
            .problem(422, "invalid");
    }

    let r = t
        .post(&url(&ws, "notifications/read-all"), v, json!({}))
        .await;
    assert_eq!(r.ok(200)["modified"], 2);
    assert_eq!(unread(&t, &ws, &vic).await, 0);
    assert_eq!(unread(&t, &ws, &ann).await, 1, "another user's stay unread");

    let one = url(&ws, &format!("notifications/{b}"));
    assert_eq!(t.delete(&one, v).await.status.as_u16(), 204);
    t.delete(&one, v).await.problem(404, "not_found");
    let left: Vec<String> = items(&inbox(&t, &ws, &vic, "").await)
        .iter()
        .map(id)
        .collect();
    assert_eq!(left, vec![c, a]);
}

#[tokio::test]
async fn nobody_sees_or_touches_another_users_notifications() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let mel = t.register("mel@example.com").await;
    let bob = t.register("bob@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    let theirs = t.workspace(&bob, "Theirs").await;
    add_member(&t, &ws, &mel, Role::Member).await;
    let mels = note(&t, &ws, &mel, NotificationType::System, "mel's").await;
    let bobs = note(&t, &theirs, &bob, NotificationType::System, "bob's").await;

    // The workspace owner does not see a member's inbox.
    let a = Some(ann.access.as_str());
    assert!(items(&inbox(&t, &ws, &ann, "").await).is_empty());
    let path = url(&ws, &format!("notifications/{mels}"));
    t.post(&format!("{path}/read"), a, json!({}))
        .await
        .problem(404, "not_found");
    t.delete(&path, a).await.problem(404, "not_found");
    let r = t
        .post(&url(&ws, "notifications/read-all"), a, json!({}))
        .await;
    assert_eq!(r.ok(200)["modified"], 0);
    assert_eq!(unread(&t, &ws, &mel).await, 1, "untouched");

    // Another workspace's notification, through this workspace or that one.
    let path = url(&ws, &format!("notifications/{bobs}"));
    let m = Some(mel.access.as_str());
    t.post(&format!("{path}/read"), m, json!({}))
        .await
        .problem(404, "not_found");
    t.delete(&path, m).await.problem(404, "not_found");
    t.get(&url(&theirs, "notifications"), m)
        .await
        .problem(404, "not_found");
    t.post(
        &url(&theirs, &format!("notifications/{bobs}/read")),
        m,
        json!({}),
    )
    .await
    .problem(404, "not_found");
    assert_eq!(unread(&t, &theirs, &bob).await, 1);
    t.post(&url(&ws, "notifications/nonsense/read"), m, json!({}))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn assigning_a_task_notifies_the_assignee() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let mel = t.register("mel@example.com").await;
    let max = t.register("max@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    add_member(&t, &ws, &mel, Role::Member).await;
    add_member(&t, &ws, &max, Role::Member).await;
    let a = Some(ann.access.as_str());

    let task = t
        .post(
            &url(&ws, "tasks"),
            a,
            json!({"title": "Call Ada", "assignedTo": mel.id}),
        )
        .await
        .ok(201)
        .clone();
    let got = items(&inbox(&t, &ws, &mel, "").await);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "task_assigned");
    assert_eq!(got[0]["message"], "Call Ada");
    assert_eq!(got[0]["relatedEntityType"], "task");
    assert_eq!(got[0]["relatedEntityId"], task["_id"]);
    assert_eq!(got[0]["userId"], mel.id.as_str());

    // Self-assignment, an unchanged assignee and other edits notify nobody.
    t.post(
        &url(&ws, "tasks"),
        a,
        json!({"title": "Mine", "assignedTo": ann.id}),
    )
    .await
    .ok(201);
    let one = url(&ws, &format!("tasks/{}", id(&task)));
    t.patch(
        &one,
        a,
        json!({"assignedTo": mel.id, "title": "Call Ada now"}),
    )
    .await
    .ok(200);
    assert_eq!(unread(&t, &ws, &ann).await, 0);
    assert_eq!(unread(&t, &ws, &mel).await, 1);

    // Reassigning notifies the new assignee.
    t.patch(&one, a, json!({"assignedTo": max.id}))
        .await
        .ok(200);
    let got = items(&inbox(&t, &ws, &max, "?type=task_assigned").await);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["message"], "Call Ada now");
}

#[tokio::test]
async fn a_won_or_lost_deal_notifies_its_owner() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let mel = t.register("mel@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    add_member(&t, &ws, &mel, Role::Member).await;
    let a = Some(ann.access.as_str());
    // The default stages: Lead, Qualified, Proposal, Negotiation, Closed Won, Closed Lost.
    let pipeline = t
        .post(&url(&ws, "pipelines"), a, json!({"name": "Sales"}))
        .await
        .ok(201)
        .clone();
    let stage = |i: usize| pipeline["stages"][i]["_id"].clone();
    let deal = |title: &str| json!({"title": title, "value": 10, "pipelineId": pipeline["_id"], "assignedTo": mel.id});

    let won = id(t
        .post(&url(&ws, "opportunities"), a, deal("Big"))
        .await
        .ok(201));
    t.patch(
        &url(&ws, &format!("opportunities/{won}/move")),
        a,
        json!({"stageId": stage(4)}),
    )
    .await
    .ok(200);
    t.clock.advance_secs(1);
    let lost = id(t
        .post(&url(&ws, "opportunities"), a, deal("Small"))
        .await
        .ok(201));
    t.patch(
        &url(&ws, &format!("opportunities/{lost}")),
        a,
        json!({"status": "lost"}),
    )
    .await
    .ok(200);

    let got = items(&inbox(&t, &ws, &mel, "").await);
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap(),
                n["relatedEntityId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![("deal_lost", lost.as_str()), ("deal_won", won.as_str())]
    );

    // Closing one's own deal notifies nobody.
    let mine = id(t
        .post(
            &url(&ws, "opportunities"),
            a,
            json!({"title": "Own", "value": 1, "pipelineId": pipeline["_id"]}),
        )
        .await
        .ok(201));
    t.patch(
        &url(&ws, &format!("opportunities/{mine}/move")),
        a,
        json!({"stageId": stage(4)}),
    )
    .await
    .ok(200);
    assert_eq!(unread(&t, &ws, &ann).await, 0);
}
