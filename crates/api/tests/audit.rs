//! The audit log over HTTP: writes to core records leave entries with the acting user and the
//! record before and after; only the owner and admins read them; workspaces never see each
//! other's entries.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::Arc;

use clianta_api::ApiConfig;
use common::{Account, SlowStore, TestApp, World, add_member, world, world_with};
use crm_core::accounts::Role;
use crm_core::entities::contact::Contact;
use crm_core::repo::Actor;
use crm_core::{Filter, Storage, Update, UserId};
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn tok(a: &Account) -> Option<&str> {
    Some(a.access.as_str())
}

/// The entries `query` selects, newest first.
async fn log(t: &TestApp, ws: &str, who: &Account, query: &str) -> Vec<Value> {
    let r = t
        .get(&url(ws, &format!("audit-log?limit=500&{query}")), tok(who))
        .await;
    r.ok(200)["entries"].as_array().unwrap().clone()
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["actionType"].as_str().unwrap())
        .collect()
}

async fn new_contact(t: &TestApp, ws: &str, who: &Account, first: &str) -> String {
    let r = t
        .post(
            &url(ws, "contacts"),
            tok(who),
            json!({"firstName": first, "lastName": "Lovelace"}),
        )
        .await;
    r.ok(201)["_id"].as_str().unwrap().to_owned()
}

async fn member(w: &World, email: &str, role: Role) -> Account {
    let a = w.t.register(email).await;
    add_member(&w.t, &w.ws, &a, role).await;
    a
}

#[tokio::test]
async fn a_contact_history_create_patch_trash_purge() {
    let w = world().await;
    let admin = member(&w, "adm@example.com", Role::Admin).await;
    let id = new_contact(&w.t, &w.ws, &admin, "Ada").await;
    w.t.clock.advance_secs(10);
    w.t.patch(
        &url(&w.ws, &format!("contacts/{id}")),
        w.tok(),
        json!({"firstName": "Grace", "jobTitle": "Admiral"}),
    )
    .await
    .ok(200);
    w.t.clock.advance_secs(10);
    let one = url(&w.ws, &format!("contacts/{id}"));
    assert_eq!(w.t.delete(&one, w.tok()).await.status, 204);
    w.t.clock.advance_secs(10);
    assert_eq!(
        w.t.delete(&format!("{one}?purge=true"), w.tok())
            .await
            .status,
        204
    );

    let h = log(&w.t, &w.ws, &w.owner, &format!("resourceId={id}")).await;
    assert_eq!(
        actions(&h),
        [
            "contact.delete",
            "contact.update",
            "contact.update",
            "contact.create"
        ]
    );
    for e in &h {
        assert_eq!(e["resourceType"], "contact");
        assert_eq!(e["resourceId"], id.as_str());
        assert_eq!(e["page"], "audit");
    }
    let (purge, trash, patch, create) = (&h[0], &h[1], &h[2], &h[3]);

    assert_eq!(create["userId"], admin.id.as_str());
    assert_eq!(create["metadata"]["actor"]["type"], "user");
    assert!(create["metadata"].get("before").is_none());
    assert_eq!(create["metadata"]["after"]["firstName"], "Ada");

    assert_eq!(patch["userId"], w.owner.id.as_str());
    assert_eq!(patch["metadata"]["before"]["firstName"], "Ada");
    assert_eq!(patch["metadata"]["after"]["firstName"], "Grace");
    assert_eq!(patch["metadata"]["after"]["jobTitle"], "Admiral");
    assert_eq!(
        patch["metadata"]["changed"],
        json!(["firstName", "jobTitle"])
    );

    assert!(trash["metadata"]["before"].get("deletedAt").is_none());
    assert!(trash["metadata"]["after"]["deletedAt"].is_string());
    assert!(
        trash["metadata"]["changed"]
            .as_array()
            .unwrap()
            .contains(&json!("deletedAt"))
    );

    assert_eq!(purge["userId"], w.owner.id.as_str());
    assert_eq!(purge["metadata"]["before"]["firstName"], "Grace");
    assert!(purge["metadata"].get("after").is_none());

    // Filters narrow the same history.
    let by_admin = log(&w.t, &w.ws, &w.owner, &format!("userId={}", admin.id)).await;
    assert_eq!(actions(&by_admin), ["contact.create"]);
    let updates = log(
        &w.t,
        &w.ws,
        &w.owner,
        &format!("resourceId={id}&actionType=contact.update"),
    )
    .await;
    assert_eq!(updates.len(), 2);
    let t0 = create["timestamp"].as_str().unwrap();
    let t2 = trash["timestamp"].as_str().unwrap();
    let window = log(
        &w.t,
        &w.ws,
        &w.owner,
        &format!("resourceType=contact&from={t0}&to={t2}"),
    )
    .await;
    assert_eq!(actions(&window), ["contact.update", "contact.create"]);
}

#[tokio::test]
async fn a_deal_move_logs_the_stage_before_and_after() {
    let w = world().await;
    let p =
        w.t.post(&url(&w.ws, "pipelines"), w.tok(), json!({"name": "Sales"}))
            .await
            .ok(201)
            .clone();
    let stage = |i: usize| p["stages"][i]["_id"].as_str().unwrap().to_owned();
    let d =
        w.t.post(
            &url(&w.ws, "opportunities"),
            w.tok(),
            json!({"title": "Deal", "value": 100}),
        )
        .await
        .ok(201)
        .clone();
    let id = d["_id"].as_str().unwrap();
    w.t.clock.advance_secs(60);
    w.t.patch(
        &url(&w.ws, &format!("opportunities/{id}/move")),
        w.tok(),
        json!({"stageId": stage(2)}),
    )
    .await
    .ok(200);

    let h = log(&w.t, &w.ws, &w.owner, &format!("resourceId={id}")).await;
    assert_eq!(actions(&h), ["opportunity.update", "opportunity.create"]);
    let mv = &h[0]["metadata"];
    assert_eq!(mv["before"]["stageId"], stage(0).as_str());
    assert_eq!(mv["after"]["stageId"], stage(2).as_str());
    let changed = mv["changed"].as_array().unwrap();
    assert!(changed.contains(&json!("stageId")));
    assert!(changed.contains(&json!("stageHistory")));
    assert_eq!(h[0]["userId"], w.owner.id.as_str());
    // The pipeline's creation is logged too.
    let pid = p["_id"].as_str().unwrap();
    let ph = log(&w.t, &w.ws, &w.owner, &format!("resourceId={pid}")).await;
    assert_eq!(actions(&ph), ["pipeline.create"]);
}

#[tokio::test]
async fn a_bulk_tag_logs_one_entry_per_record_and_skips_other_workspaces() {
    let w = world().await;
    let eve = w.t.register("eve@example.com").await;
    let theirs = w.t.workspace(&eve, "Elsewhere").await;
    let their_contact = new_contact(&w.t, &theirs, &eve, "Eve").await;
    let a = new_contact(&w.t, &w.ws, &w.owner, "A").await;
    let b = new_contact(&w.t, &w.ws, &w.owner, "B").await;
    let c = new_contact(&w.t, &w.ws, &w.owner, "C").await;
    let r =
        w.t.patch(
            &url(&w.ws, "contacts/bulk/tags"),
            w.tok(),
            json!({"ids": [a, b, their_contact], "add": ["vip"]}),
        )
        .await;
    r.ok(200);

    let ups = log(&w.t, &w.ws, &w.owner, "actionType=contact.update").await;
    let mut ids: Vec<&str> = ups
        .iter()
        .map(|e| e["resourceId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "one entry per tagged record, none for {c}");
    for e in &ups {
        assert!(
            e["metadata"]["before"]
                .get("tags")
                .is_none_or(|t| t == &json!([]))
        );
        assert_eq!(e["metadata"]["after"]["tags"], json!(["vip"]));
        assert_eq!(e["metadata"]["changed"], json!(["tags"]));
    }
    // Eve's contact was not touched, and her log shows nothing of it.
    let hers = log(&w.t, &theirs, &eve, "actionType=contact.update").await;
    assert!(hers.is_empty());
}

#[tokio::test]
async fn only_owner_and_admins_read_the_log_and_members_writes_are_logged() {
    let w = world().await;
    let admin = member(&w, "adm@example.com", Role::Admin).await;
    let mem = member(&w, "mem@example.com", Role::Member).await;
    let viewer = member(&w, "view@example.com", Role::Viewer).await;
    let id = new_contact(&w.t, &w.ws, &mem, "Ada").await;

    let u = url(&w.ws, "audit-log");
    w.t.get(&u, tok(&viewer)).await.problem(403, "forbidden");
    w.t.get(&u, tok(&mem)).await.problem(403, "forbidden");
    assert_eq!(w.t.get(&u, None).await.status, 401);
    let seen = log(&w.t, &w.ws, &admin, &format!("resourceId={id}")).await;
    assert_eq!(actions(&seen), ["contact.create"]);
    assert_eq!(seen[0]["userId"], mem.id.as_str());
    assert_eq!(log(&w.t, &w.ws, &w.owner, "").await.len(), 1);
}

#[tokio::test]
async fn workspaces_never_see_each_others_entries() {
    let w = world().await;
    let eve = w.t.register("eve@example.com").await;
    let theirs = w.t.workspace(&eve, "Elsewhere").await;
    let before_theirs = log(&w.t, &theirs, &eve, "").await.len();

    let mine = new_contact(&w.t, &w.ws, &w.owner, "Ada").await;
    let their_id = new_contact(&w.t, &theirs, &eve, "Eve").await;

    // A's writes land in A only.
    let theirs_now = log(&w.t, &theirs, &eve, "").await;
    assert_eq!(theirs_now.len(), before_theirs + 1);
    assert!(theirs_now.iter().all(|e| e["resourceId"] != mine.as_str()));
    let ours = log(&w.t, &w.ws, &w.owner, "").await;
    assert!(ours.iter().all(|e| e["resourceId"] != their_id.as_str()));
    assert!(ours.iter().all(|e| e["workspaceId"] == w.ws.as_str()));

    // Another workspace's id in the path or the filter gives nothing.
    w.t.get(&url(&theirs, "audit-log"), w.tok())
        .await
        .problem(404, "not_found");
    let filtered = log(&w.t, &w.ws, &w.owner, &format!("resourceId={their_id}")).await;
    assert!(filtered.is_empty());
    let by_eve = log(&w.t, &w.ws, &w.owner, &format!("userId={}", eve.id)).await;
    assert!(by_eve.is_empty());
}

#[tokio::test]
async fn paging_and_bad_parameters() {
    let w = world().await;
    let ids = [
        new_contact(&w.t, &w.ws, &w.owner, "A").await,
        new_contact(&w.t, &w.ws, &w.owner, "B").await,
        new_contact(&w.t, &w.ws, &w.owner, "C").await,
    ];
    let base = url(&w.ws, "audit-log?resourceType=contact");

    let p = w.t.get(&format!("{base}&limit=2"), w.tok()).await;
    let body = p.ok(200);
    assert_eq!(body["pagination"]["total"], 3);
    assert_eq!(body["pagination"]["pages"], 2);
    assert_eq!(body["entries"][0]["resourceId"], ids[2].as_str());

    let first =
        w.t.get(&format!("{base}&limit=2&cursor="), w.tok())
            .await
            .ok(200)
            .clone();
    let next = first["pagination"]["nextCursor"].as_str().unwrap();
    let second =
        w.t.get(&format!("{base}&limit=2&cursor={next}"), w.tok())
            .await
            .ok(200)
            .clone();
    let seen: Vec<&str> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["entries"].as_array().unwrap())
        .map(|e| e["resourceId"].as_str().unwrap())
        .collect();
    assert_eq!(seen, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);

    let fields =
        w.t.get(&format!("{base}&fields=actionType"), w.tok())
            .await
            .ok(200)
            .clone();
    assert!(fields["entries"][0].get("metadata").is_none());
    assert_eq!(fields["entries"][0]["actionType"], "contact.create");

    for (q, field) in [
        ("resourceId=nope", "resourceId"),
        ("userId=nope", "userId"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("search=ada", "search"),
        ("tags=x", "tags"),
        ("sort=timestamp", "sort"),
        ("expand=user", "expand"),
    ] {
        let r =
            w.t.get(&url(&w.ws, &format!("audit-log?{q}")), w.tok())
                .await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{q}");
    }
}

#[tokio::test]
async fn the_log_costs_one_batch_per_write_and_one_per_bulk_round() {
    let store = Arc::new(SlowStore::counting());
    let w = world_with(TestApp::with(
        Storage::new(store.clone()),
        ApiConfig::default(),
    ))
    .await;
    store.reset();
    let ids = [
        new_contact(&w.t, &w.ws, &w.owner, "A").await,
        new_contact(&w.t, &w.ws, &w.owner, "B").await,
        new_contact(&w.t, &w.ws, &w.owner, "C").await,
    ];
    // The record, its audit entry, event and outbox entry go in one batch; nothing else writes.
    assert_eq!(store.calls("write_batch", "contacts"), 3);
    for op in [
        "insert",
        "insert_many",
        "update_one",
        "update_many",
        "delete_one",
    ] {
        assert_eq!(store.calls_of_op(op), 0, "{op} beside the batches");
    }
    assert_eq!(actions(&log(&w.t, &w.ws, &w.owner, "").await).len(), 3);

    store.reset();
    w.t.patch(
        &url(&w.ws, &format!("contacts/{}", ids[0])),
        w.tok(),
        json!({"jobTitle": "CTO"}),
    )
    .await
    .ok(200);
    assert_eq!(store.calls_of_op("write_batch"), 1);
    assert_eq!(store.calls("write_batch", "contacts"), 1);
    for op in ["insert", "insert_many", "update_one", "update_many"] {
        assert_eq!(store.calls_of_op(op), 0, "{op} beside the batch");
    }

    store.reset();
    w.t.patch(
        &url(&w.ws, "contacts/bulk/tags"),
        w.tok(),
        json!({"ids": ids, "add": ["vip"]}),
    )
    .await
    .ok(200);
    assert_eq!(
        store.calls_of_op("write_batch"),
        1,
        "three records, one batch"
    );
    assert_eq!(store.calls("write_batch", "contacts"), 1);
    for op in ["insert", "insert_many", "update_one", "update_many"] {
        assert_eq!(store.calls_of_op(op), 0, "{op} beside the batch");
    }
    let tagged = log(&w.t, &w.ws, &w.owner, "actionType=contact.update").await;
    assert_eq!(tagged.len(), 4, "the edit and the three tag changes");

    // Past one round: 501 records are written in two batches (500 + 1), each with its records.
    let owner: UserId = w.owner.id.parse().unwrap();
    let scope =
        w.t.state
            .stores
            .workspace_as(w.ws.parse().unwrap(), Actor::User(owner));
    let many: Vec<Contact> = (0..501)
        .map(|i| Contact::new(w.ws.parse().unwrap(), owner, format!("Bulk{i}")))
        .collect();
    store.reset();
    assert_eq!(
        scope.repo::<Contact>().insert_many(&many).await.unwrap(),
        501
    );
    assert_eq!(
        store.calls_of_op("write_batch"),
        1,
        "an insert_many is one batch"
    );
    let bulk = Filter::Contains("firstName".into(), "Bulk".into());
    store.reset();
    let n = scope
        .repo::<Contact>()
        .update_many(&bulk, &Update::new().set("jobTitle", "Bulk"))
        .await
        .unwrap();
    assert_eq!(n, 501);
    assert_eq!(store.calls_of_op("write_batch"), 2, "rounds of 500");
    assert_eq!(store.calls_of_op("update_many"), 0);
    store.reset();
    assert_eq!(
        scope.repo::<Contact>().delete_many(&bulk).await.unwrap(),
        501
    );
    assert_eq!(store.calls_of_op("write_batch"), 2, "rounds of 500");
    assert_eq!(store.calls_of_op("delete_many"), 0);
    assert_eq!(
        scope.repo::<Contact>().count(&bulk).await.unwrap(),
        0,
        "every round applied"
    );
}
