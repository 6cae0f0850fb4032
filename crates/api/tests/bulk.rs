//! Bulk operations over HTTP: deals (trash, update, stage move), company tags, ticket status and
//! assignment. Each answers per id, leaves other workspaces' records untouched, follows the
//! single-record rules, caps ids at 500 and keeps the role table; the audit log gets one entry
//! per changed record.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Account, TestApp, add_member};
use crm_core::accounts::Role;
use crm_core::entities::stage_change_event::StageChangeEvent;
use crm_core::{Filter, FindOptions, ObjectId, WorkspaceId};
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn tok(a: &Account) -> Option<&str> {
    Some(a.access.as_str())
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

/// Two workspaces: `ws` (owner `ann`, member `mel`) and `theirs` (owner `bob`), each with a
/// pipeline of the default stages: Lead, Qualified, Proposal, Negotiation, Closed Won, Closed
/// Lost.
struct W {
    t: TestApp,
    ann: Account,
    mel: Account,
    bob: Account,
    ws: String,
    theirs: String,
    pipeline: Value,
    their_pipeline: Value,
}

impl W {
    async fn new() -> Self {
        let t = TestApp::new();
        let ann = t.register("ann@example.com").await;
        let mel = t.register("mel@example.com").await;
        let bob = t.register("bob@example.com").await;
        let ws = t.workspace(&ann, "Ours").await;
        let theirs = t.workspace(&bob, "Theirs").await;
        add_member(&t, &ws, &mel, Role::Member).await;
        let pipeline = t
            .post(&url(&ws, "pipelines"), tok(&ann), json!({"name": "Sales"}))
            .await
            .ok(201)
            .clone();
        let their_pipeline = t
            .post(
                &url(&theirs, "pipelines"),
                tok(&bob),
                json!({"name": "Sales"}),
            )
            .await
            .ok(201)
            .clone();
        W {
            t,
            ann,
            mel,
            bob,
            ws,
            theirs,
            pipeline,
            their_pipeline,
        }
    }

    fn stage(&self, i: usize) -> String {
        self.pipeline["stages"][i]["_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn post(&self, who: &Account, ws: &str, rest: &str, body: Value) -> common::Resp {
        self.t.post(&url(ws, rest), tok(who), body).await
    }

    async fn get(&self, who: &Account, ws: &str, rest: &str) -> Value {
        self.t.get(&url(ws, rest), tok(who)).await.ok(200).clone()
    }

    /// A deal in ours, assigned to mel.
    async fn deal(&self, title: &str, tags: &[&str]) -> String {
        let body = json!({"title": title, "value": 10, "pipelineId": self.pipeline["_id"],
            "assignedTo": self.mel.id, "tags": tags});
        id(self
            .post(&self.ann, &self.ws, "opportunities", body)
            .await
            .ok(201))
    }

    async fn their_deal(&self) -> String {
        let body = json!({"title": "Theirs", "value": 5, "pipelineId": self.their_pipeline["_id"],
            "tags": ["a"]});
        id(self
            .post(&self.bob, &self.theirs, "opportunities", body)
            .await
            .ok(201))
    }

    async fn company(&self, who: &Account, ws: &str, name: &str, tags: &[&str]) -> String {
        let body = json!({"name": name, "tags": tags});
        id(self.post(who, ws, "companies", body).await.ok(201))
    }

    async fn ticket(&self, who: &Account, ws: &str, subject: &str) -> String {
        let body = json!({"subject": subject, "description": "It broke",
            "requesterEmail": "req@example.com"});
        id(self.post(who, ws, "tickets", body).await.ok(201))
    }

    /// The audit entries of one record with one action type.
    async fn audit(&self, record: &str, action: &str) -> usize {
        let q = format!("audit-log?limit=500&resourceId={record}&actionType={action}");
        self.get(&self.ann, &self.ws, &q).await["entries"]
            .as_array()
            .unwrap()
            .len()
    }
}

/// `(id, outcome)` per result, in order.
fn outcomes(body: &Value) -> Vec<(String, String)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn deals_bulk_update_follows_the_patch_rules() {
    let w = W::new().await;
    let d1 = w.deal("One", &["a", "b"]).await;
    let d2 = w.deal("Two", &["vip"]).await;
    let theirs = w.their_deal().await;

    let body = json!({"ids": [d1, d2, theirs, d1], "set": {"status": "won", "priority": "high",
        "tags": {"add": ["vip"], "remove": ["a"]}}});
    let r = w
        .post(&w.ann, &w.ws, "opportunities/bulk/update", body.clone())
        .await;
    let r = r.ok(200);
    assert_eq!(
        outcomes(r),
        pairs(&[(&d1, "changed"), (&d2, "changed"), (&theirs, "notFound")])
    );
    assert_eq!(
        (r["matched"].as_u64(), r["changed"].as_u64()),
        (Some(2), Some(2))
    );
    let one = w.get(&w.ann, &w.ws, &format!("opportunities/{d1}")).await;
    assert_eq!(one["status"], "won");
    assert_eq!(one["priority"], "high");
    assert_eq!(one["tags"], json!(["b", "vip"]));
    assert!(
        one["actualCloseDate"].is_string(),
        "won stamps the close date"
    );
    assert!(one["lastActivityAt"].is_string());
    let two = w.get(&w.ann, &w.ws, &format!("opportunities/{d2}")).await;
    assert_eq!(two["tags"], json!(["vip"]));

    // Theirs is untouched.
    let t = w
        .get(&w.bob, &w.theirs, &format!("opportunities/{theirs}"))
        .await;
    assert_eq!(t["status"], "open");
    assert_eq!(t["tags"], json!(["a"]));
    assert!(t.get("priority").is_none());

    // The assignee hears of each won deal, as after a PATCH.
    let inbox = w.get(&w.mel, &w.ws, "notifications").await;
    let mut won: Vec<&str> = inbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "deal_won")
        .map(|n| n["relatedEntityId"].as_str().unwrap())
        .collect();
    won.sort_unstable();
    let mut want = vec![d1.as_str(), d2.as_str()];
    want.sort_unstable();
    assert_eq!(won, want);

    // Again: nothing left to change, nothing written.
    let r = w
        .post(&w.ann, &w.ws, "opportunities/bulk/update", body)
        .await;
    assert_eq!(r.ok(200)["changed"], 0);
    assert_eq!(
        outcomes(&r.body),
        pairs(&[
            (&d1, "unchanged"),
            (&d2, "unchanged"),
            (&theirs, "notFound")
        ])
    );
    assert_eq!(
        w.audit(&d1, "opportunity.update").await,
        1,
        "one entry per changed deal"
    );
    assert_eq!(w.audit(&d2, "opportunity.update").await, 1);

    // Back to open clears the close date; null unassigns.
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "opportunities/bulk/update",
            json!({"ids": [d1], "set": {"status": "open", "assignedTo": null, "priority": null}}),
        )
        .await;
    assert_eq!(r.ok(200)["changed"], 1);
    let one = w.get(&w.ann, &w.ws, &format!("opportunities/{d1}")).await;
    assert_eq!(one["status"], "open");
    assert!(one.get("actualCloseDate").is_none());
    assert!(one.get("assignedTo").is_none());
    assert!(one.get("priority").is_none());

    // Refused as a whole: an assignee outside the workspace, nothing to set, a bad value.
    for (set, field) in [
        (json!({"assignedTo": w.bob.id}), "assignedTo"),
        (json!({}), "set"),
        (json!({"tags": {"add": [], "remove": []}}), "set.tags"),
        (
            json!({"tags": {"add": ["x"], "remove": ["x"]}}),
            "set.tags.remove",
        ),
    ] {
        let r = w
            .post(
                &w.ann,
                &w.ws,
                "opportunities/bulk/update",
                json!({"ids": [d2], "set": set}),
            )
            .await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{set}");
    }
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "opportunities/bulk/update",
            json!({"ids": [d2], "set": {"status": "sold"}}),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.body);
    let two = w.get(&w.ann, &w.ws, &format!("opportunities/{d2}")).await;
    assert_eq!(two["assignedTo"], w.mel.id.as_str());
    assert_eq!(two["status"], "won");
}

async fn events(t: &TestApp, ws: &str, deal: &str) -> usize {
    let ws: WorkspaceId = ws.parse().unwrap();
    t.state
        .stores
        .workspace(ws)
        .repo::<StageChangeEvent>()
        .find(&Filter::eq("entityId", deal), &FindOptions::default())
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn deals_bulk_move_reports_each_id() {
    let w = W::new().await;
    let a = w.deal("A", &[]).await;
    let b = w.deal("B", &[]).await;
    let theirs = w.their_deal().await;
    // A deal in another pipeline, which lacks the target stage.
    let other = w
        .post(&w.ann, &w.ws, "pipelines", json!({"name": "Other"}))
        .await
        .ok(201)
        .clone();
    let c = id(w
        .post(
            &w.ann,
            &w.ws,
            "opportunities",
            json!({"title": "C", "value": 1, "pipelineId": other["_id"]}),
        )
        .await
        .ok(201));
    w.t.patch(
        &url(&w.ws, &format!("opportunities/{b}/move")),
        tok(&w.ann),
        json!({"stageId": w.stage(4)}),
    )
    .await
    .ok(200);
    assert_eq!(events(&w.t, &w.ws, &a).await, 1);

    let r = w
        .post(
            &w.ann,
            &w.ws,
            "opportunities/bulk/move",
            json!({"ids": [a, b, c, theirs], "stageId": w.stage(4)}),
        )
        .await;
    let r = r.ok(200);
    assert_eq!(
        outcomes(r),
        pairs(&[
            (&a, "changed"),
            (&b, "unchanged"),
            (&c, "failed"),
            (&theirs, "notFound")
        ])
    );
    assert_eq!(r["results"][2]["code"], "invalid");
    assert_eq!(r["results"][2]["field"], "stageId");
    assert_eq!(
        (r["matched"].as_u64(), r["changed"].as_u64()),
        (Some(3), Some(1))
    );

    // The single move's effects: history, event, timeline, won stamping.
    let moved = w.get(&w.ann, &w.ws, &format!("opportunities/{a}")).await;
    assert_eq!(moved["stageId"], w.stage(4).as_str());
    assert_eq!(moved["status"], "won");
    assert!(moved["actualCloseDate"].is_string());
    assert_eq!(moved["stageHistory"].as_array().unwrap().len(), 2);
    assert_eq!(events(&w.t, &w.ws, &a).await, 2);
    assert_eq!(events(&w.t, &w.ws, &b).await, 2, "b moved once, by hand");
    let timeline = w
        .get(&w.ann, &w.ws, &format!("opportunities/{a}/activities"))
        .await;
    assert!(
        timeline
            .to_string()
            .contains("Moved from Lead to Closed Won"),
        "{timeline}"
    );
    let t = w
        .get(&w.bob, &w.theirs, &format!("opportunities/{theirs}"))
        .await;
    assert_eq!(t["stageHistory"].as_array().unwrap().len(), 1);
    assert_eq!(events(&w.t, &w.theirs, &theirs).await, 1);

    // Another workspace's stage or pipeline refuses the whole request; nothing moves.
    let their_stage = w.their_pipeline["stages"][1]["_id"].clone();
    for (body, field) in [
        (json!({"ids": [c], "stageId": their_stage}), "stageId"),
        (
            json!({"ids": [c], "stageId": their_stage, "pipelineId": w.their_pipeline["_id"]}),
            "pipelineId",
        ),
        (
            json!({"ids": [c], "stageId": w.stage(1), "pipelineId": w.their_pipeline["_id"]}),
            "pipelineId",
        ),
    ] {
        let r = w.post(&w.ann, &w.ws, "opportunities/bulk/move", body).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field);
    }
    assert_eq!(events(&w.t, &w.ws, &c).await, 1);

    // Into another pipeline of the workspace, as a single move can.
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "opportunities/bulk/move",
            json!({"ids": [c], "stageId": w.stage(2), "pipelineId": w.pipeline["_id"]}),
        )
        .await;
    assert_eq!(outcomes(r.ok(200)), pairs(&[(&c, "changed")]));
    let moved = w.get(&w.ann, &w.ws, &format!("opportunities/{c}")).await;
    assert_eq!(moved["pipelineId"], w.pipeline["_id"]);
}

#[tokio::test]
async fn deals_bulk_delete_trashes_only_ours() {
    let w = W::new().await;
    let a = w.deal("A", &[]).await;
    let b = w.deal("B", &[]).await;
    let theirs = w.their_deal().await;
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "opportunities/bulk-delete",
            json!({"ids": [a, theirs]}),
        )
        .await;
    assert_eq!(
        outcomes(r.ok(200)),
        pairs(&[(&a, "changed"), (&theirs, "notFound")])
    );
    w.t.get(&url(&w.ws, &format!("opportunities/{a}")), tok(&w.ann))
        .await
        .problem(404, "not_found");
    w.get(&w.ann, &w.ws, &format!("opportunities/{b}")).await;
    w.get(&w.bob, &w.theirs, &format!("opportunities/{theirs}"))
        .await;
    // In the trash already: not found; restorable.
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "opportunities/bulk-delete",
            json!({"ids": [a]}),
        )
        .await;
    assert_eq!(outcomes(r.ok(200)), pairs(&[(&a, "notFound")]));
    w.post(
        &w.ann,
        &w.ws,
        &format!("opportunities/{a}/restore"),
        json!({}),
    )
    .await
    .ok(200);
    assert_eq!(
        w.audit(&a, "opportunity.update").await,
        2,
        "trash and restore"
    );
}

#[tokio::test]
async fn companies_bulk_tags_change_only_what_differs() {
    let w = W::new().await;
    let c1 = w.company(&w.ann, &w.ws, "One", &["old", "keep"]).await;
    let c2 = w.company(&w.ann, &w.ws, "Two", &["vip"]).await;
    let theirs = w.company(&w.bob, &w.theirs, "Theirs", &["old"]).await;
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "companies/bulk/tags",
            json!({"ids": [c1, c2, theirs], "add": ["vip", " vip "], "remove": ["old"]}),
        )
        .await;
    let r = r.ok(200);
    assert_eq!(
        outcomes(r),
        pairs(&[(&c1, "changed"), (&c2, "unchanged"), (&theirs, "notFound")])
    );
    assert_eq!(
        (r["matched"].as_u64(), r["changed"].as_u64()),
        (Some(2), Some(1))
    );
    let one = w.get(&w.ann, &w.ws, &format!("companies/{c1}")).await;
    assert_eq!(one["tags"], json!(["keep", "vip"]));
    let t = w
        .get(&w.bob, &w.theirs, &format!("companies/{theirs}"))
        .await;
    assert_eq!(t["tags"], json!(["old"]));
    assert_eq!(w.audit(&c1, "company.update").await, 1);
    assert_eq!(w.audit(&c2, "company.update").await, 0);

    for (body, field) in [
        (json!({"ids": [c1]}), "add"),
        (
            json!({"ids": [c1], "add": ["x"], "remove": ["x"]}),
            "remove",
        ),
    ] {
        let r = w.post(&w.ann, &w.ws, "companies/bulk/tags", body).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field);
    }
}

#[tokio::test]
async fn tickets_bulk_status_and_assign() {
    let w = W::new().await;
    let t1 = w.ticket(&w.ann, &w.ws, "One").await;
    let t2 = w.ticket(&w.ann, &w.ws, "Two").await;
    let theirs = w.ticket(&w.bob, &w.theirs, "Theirs").await;
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "tickets/bulk/status",
            json!({"ids": [t1, theirs], "status": "resolved"}),
        )
        .await;
    assert_eq!(
        outcomes(r.ok(200)),
        pairs(&[(&t1, "changed"), (&theirs, "notFound")])
    );
    let one = w.get(&w.ann, &w.ws, &format!("tickets/{t1}")).await;
    assert_eq!(one["status"], "resolved");
    assert!(
        one["resolvedAt"].is_string(),
        "resolution stamped as for one"
    );
    let t = w.get(&w.bob, &w.theirs, &format!("tickets/{theirs}")).await;
    assert_eq!(t["status"], "open");
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "tickets/bulk/status",
            json!({"ids": [t1, t2], "status": "resolved"}),
        )
        .await;
    assert_eq!(
        outcomes(r.ok(200)),
        pairs(&[(&t1, "unchanged"), (&t2, "changed")])
    );
    assert_eq!(w.audit(&t1, "ticket.update").await, 1);

    let r = w
        .post(
            &w.ann,
            &w.ws,
            "tickets/bulk/assign",
            json!({"ids": [t1, t2, theirs], "assignedTo": w.mel.id}),
        )
        .await;
    assert_eq!(r.ok(200)["changed"], 2);
    let two = w.get(&w.ann, &w.ws, &format!("tickets/{t2}")).await;
    assert_eq!(two["assignedTo"], w.mel.id.as_str());
    let t = w.get(&w.bob, &w.theirs, &format!("tickets/{theirs}")).await;
    assert!(t.get("assignedTo").is_none());
    // Someone outside the workspace is refused before any write.
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "tickets/bulk/assign",
            json!({"ids": [t1], "assignedTo": w.bob.id}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "assignedTo");
    let r = w
        .post(
            &w.ann,
            &w.ws,
            "tickets/bulk/assign",
            json!({"ids": [t1], "assignedTo": null}),
        )
        .await;
    assert_eq!(r.ok(200)["changed"], 1);
    let one = w.get(&w.ann, &w.ws, &format!("tickets/{t1}")).await;
    assert!(one.get("assignedTo").is_none());
}

/// Each route with a body naming `ids` and otherwise valid for ours.
fn bodies(w: &W, ids: Value) -> Vec<(&'static str, Value)> {
    vec![
        ("opportunities/bulk-delete", json!({"ids": ids})),
        (
            "opportunities/bulk/update",
            json!({"ids": ids, "set": {"priority": "low"}}),
        ),
        (
            "opportunities/bulk/move",
            json!({"ids": ids, "stageId": w.stage(1)}),
        ),
        ("companies/bulk/tags", json!({"ids": ids, "add": ["x"]})),
        (
            "tickets/bulk/status",
            json!({"ids": ids, "status": "closed"}),
        ),
        (
            "tickets/bulk/assign",
            json!({"ids": ids, "assignedTo": null}),
        ),
    ]
}

#[tokio::test]
async fn ids_are_one_to_five_hundred() {
    let w = W::new().await;
    let many: Vec<String> = (0..501).map(|_| ObjectId::new().to_hex()).collect();
    let exactly: Vec<String> = many[..500].to_vec();
    for (ids, field) in [
        (json!([]), "ids"),
        (json!(many), "ids"),
        (json!([exactly[0], "zz"]), "ids[1]"),
    ] {
        for (path, body) in bodies(&w, ids.clone()) {
            let r = w.post(&w.ann, &w.ws, path, body).await;
            r.problem(422, "invalid");
            assert_eq!(r.body["field"], field, "{path}");
        }
    }
    for (path, body) in bodies(&w, json!(exactly)) {
        let r = w.post(&w.ann, &w.ws, path, body).await;
        let r = r.ok(200);
        assert_eq!(r["matched"], 0, "{path}");
        assert_eq!(r["results"].as_array().unwrap().len(), 500, "{path}");
        assert!(outcomes(r).iter().all(|(_, o)| o == "notFound"), "{path}");
    }
}

#[tokio::test]
async fn role_table_and_other_workspaces() {
    let w = W::new().await;
    let viewer = w.t.register("vic@example.com").await;
    let admin = w.t.register("ada@example.com").await;
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    add_member(&w.t, &w.ws, &admin, Role::Admin).await;
    let deal = w.deal("D", &[]).await;
    let company = w.company(&w.ann, &w.ws, "C", &[]).await;
    let ticket = w.ticket(&w.ann, &w.ws, "T").await;
    let target = |path: &str| -> String {
        if path.starts_with("opportunities") {
            deal.clone()
        } else if path.starts_with("companies") {
            company.clone()
        } else {
            ticket.clone()
        }
    };

    for (path, _) in bodies(&w, json!([])) {
        let body = bodies(&w, json!([target(path)]))
            .into_iter()
            .find(|(p, _)| *p == path)
            .unwrap()
            .1;
        // Viewers read only.
        w.post(&viewer, &w.ws, path, body.clone())
            .await
            .problem(403, "forbidden");
        // Members edit but do not delete.
        let r = w.post(&w.mel, &w.ws, path, body.clone()).await;
        if path == "opportunities/bulk-delete" {
            r.problem(403, "forbidden");
        } else {
            assert_eq!(r.ok(200)["matched"], 1, "{path}");
        }
        // Someone else's workspace in the path is not found, whatever the ids.
        w.post(&w.bob, &w.ws, path, body.clone())
            .await
            .problem(404, "not_found");
        w.post(&w.ann, &w.theirs, path, body.clone())
            .await
            .problem(404, "not_found");
    }
    let r = w
        .post(
            &admin,
            &w.ws,
            "opportunities/bulk-delete",
            json!({"ids": [deal]}),
        )
        .await;
    assert_eq!(outcomes(r.ok(200)), pairs(&[(&deal, "changed")]));
}
