//! Opportunities over HTTP: validation and references inside the workspace, denormalised names,
//! list filters and expand, stage moves (history, StageChangeEvent, won/lost stamping), the
//! kanban board (one aggregation), the role table and other workspaces' ids.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::Arc;

use common::{Account, SlowStore, TestApp, add_member, seed};
use crm_core::accounts::Role;
use crm_core::entities::activity::{Activity, ActivityType};
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::entities::stage_change_event::StageChangeEvent;
use crm_core::{Filter, FindOptions, ObjectId, SortKey, Storage, WorkspaceId};
use serde_json::{Value, json};

async fn contact(t: &TestApp, ws: &str, owner: &Account, first: &str, last: &str) -> String {
    let mut c = Contact::new(ws.parse().unwrap(), owner.id.parse().unwrap(), first);
    c.last_name = last.to_owned();
    seed(t, ws, &c).await
}

async fn company(t: &TestApp, ws: &str, owner: &Account, name: &str) -> String {
    let c = Company::new(ws.parse().unwrap(), owner.id.parse().unwrap(), name);
    seed(t, ws, &c).await
}

async fn events(t: &TestApp, ws: &str, deal: &str) -> Vec<StageChangeEvent> {
    let ws: WorkspaceId = ws.parse().unwrap();
    t.state
        .stores
        .workspace(ws)
        .repo::<StageChangeEvent>()
        .find(
            &Filter::eq("entityId", deal),
            &FindOptions {
                sort: vec![SortKey::asc("timestamp")],
                ..FindOptions::default()
            },
        )
        .await
        .unwrap()
}

struct World {
    t: TestApp,
    owner: Account,
    ws: String,
    /// The default pipeline: Lead, Qualified, Proposal, Negotiation, Closed Won, Closed Lost.
    pipeline: Value,
}

impl World {
    fn deals(&self) -> String {
        format!("/api/v1/workspaces/{}/opportunities", self.ws)
    }
    fn deal(&self, id: &str) -> String {
        format!("{}/{id}", self.deals())
    }
    fn tok(&self) -> Option<&str> {
        Some(self.owner.access.as_str())
    }
    fn pid(&self) -> &str {
        self.pipeline["_id"].as_str().unwrap()
    }
    fn stage(&self, i: usize) -> &str {
        self.pipeline["stages"][i]["_id"].as_str().unwrap()
    }
    async fn create(&self, body: Value) -> Value {
        self.t
            .post(&self.deals(), self.tok(), body)
            .await
            .ok(201)
            .clone()
    }
}

async fn world_on(t: TestApp) -> World {
    let owner = t.register("owner@example.com").await;
    let ws = t.workspace(&owner, "Acme Sales").await;
    let pipeline = t
        .post(
            &format!("/api/v1/workspaces/{ws}/pipelines"),
            Some(&owner.access),
            json!({"name": "Sales"}),
        )
        .await
        .ok(201)
        .clone();
    World {
        t,
        owner,
        ws,
        pipeline,
    }
}

async fn world() -> World {
    world_on(TestApp::new()).await
}

#[tokio::test]
async fn create_with_defaults_names_history_and_event() {
    let w = world().await;
    let ada = contact(&w.t, &w.ws, &w.owner, "Ada", "Lovelace").await;
    let acme = company(&w.t, &w.ws, &w.owner, "Acme Ltd").await;
    let d = w
        .create(json!({
            "title": "  Big deal ", "value": 1200.5, "currency": "eur", "probability": 40,
            "contactId": ada, "companyId": acme, "associatedContacts": [ada, ada],
            "tags": ["a", " a ", "b"], "priority": "high", "expectedCloseDate": "2026-12-01T00:00:00Z"
        }))
        .await;
    assert_eq!(d["title"], "Big deal");
    assert_eq!(d["currency"], "EUR");
    assert_eq!(d["value"], 1200.5);
    assert_eq!(d["status"], "open");
    assert_eq!(d["pipelineId"], w.pid(), "the default pipeline");
    assert_eq!(d["stageId"], w.stage(0), "its first stage");
    assert_eq!(d["contactName"], "Ada Lovelace");
    assert_eq!(d["companyName"], "Acme Ltd");
    assert_eq!(d["associatedContacts"], json!([ada]));
    assert_eq!(d["tags"], json!(["a", "b"]));
    assert_eq!(
        d["assignedTo"],
        w.owner.id.as_str(),
        "assigned to the caller"
    );
    assert_eq!(d["expectedCloseDate"], "2026-12-01T00:00:00.000Z");
    assert!(d.get("actualCloseDate").is_none());
    let history = d["stageHistory"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["stageName"], "Lead");
    assert!(history[0].get("exitedAt").is_none());

    let id = d["_id"].as_str().unwrap();
    let ev = events(&w.t, &w.ws, id).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].new_stage_name, "Lead");
    assert_eq!(ev[0].old_stage_id, None);
    assert_eq!(ev[0].user_id.unwrap().to_string(), w.owner.id);

    let got = w.t.get(&w.deal(id), w.tok()).await.ok(200).clone();
    assert_eq!(got, d);

    // Created straight into a won stage: won, with a close date.
    let won = w
        .create(json!({"title": "Signed", "value": 5, "stageId": w.stage(4)}))
        .await;
    assert_eq!(won["status"], "won");
    assert!(won["actualCloseDate"].is_string());
}

#[tokio::test]
async fn create_validation_and_references() {
    let w = world().await;
    let eve = w.t.register("eve@example.com").await;
    let theirs = w.t.workspace(&eve, "Elsewhere").await;
    let their_contact = contact(&w.t, &theirs, &eve, "Eve", "E").await;
    let their_company = company(&w.t, &theirs, &eve, "Evil").await;
    let their_pipeline =
        w.t.post(
            &format!("/api/v1/workspaces/{theirs}/pipelines"),
            Some(&eve.access),
            json!({"name": "Theirs"}),
        )
        .await
        .ok(201)
        .clone();
    let other =
        w.t.post(
            &format!("/api/v1/workspaces/{}/pipelines", w.ws),
            w.tok(),
            json!({"name": "Other"}),
        )
        .await
        .ok(201)
        .clone();
    let ok = json!({"title": "T", "value": 1});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases = [
        (json!({"value": 1}), "title"),
        (with("title", json!(" ")), "title"),
        (with("title", json!("x".repeat(201))), "title"),
        (json!({"title": "T"}), "value"),
        (with("value", json!(-1)), "value"),
        (with("currency", json!("EURO")), "currency"),
        (with("probability", json!(101)), "probability"),
        (with("description", json!("x".repeat(2001))), "description"),
        (with("stageId", json!(ObjectId::new().to_hex())), "stageId"),
        // A stage of another pipeline of mine.
        (
            with("stageId", other["stages"][0]["_id"].clone()),
            "stageId",
        ),
        (
            with("pipelineId", their_pipeline["_id"].clone()),
            "pipelineId",
        ),
        (with("contactId", json!(their_contact)), "contactId"),
        (with("companyId", json!(their_company)), "companyId"),
        (
            with("associatedContacts", json!([their_contact])),
            "associatedContacts",
        ),
        (with("assignedTo", json!(eve.id)), "assignedTo"),
    ];
    for (body, field) in cases {
        let r = w.t.post(&w.deals(), w.tok(), body.clone()).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{body}");
    }
    // Malformed ids and enums are 422 naming the field too.
    let r =
        w.t.post(&w.deals(), w.tok(), with("contactId", json!("nope")))
            .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "contactId");
    let r =
        w.t.post(&w.deals(), w.tok(), with("status", json!("maybe")))
            .await;
    r.problem(422, "invalid");
    // Nothing was written.
    let list = w.t.get(&w.deals(), w.tok()).await.ok(200).clone();
    assert_eq!(list["pagination"]["total"], 0);
    // A member of the workspace may be assigned.
    let mia = w.t.register("mia@example.com").await;
    add_member(&w.t, &w.ws, &mia, Role::Member).await;
    let d = w.create(with("assignedTo", json!(mia.id))).await;
    assert_eq!(d["assignedTo"], mia.id.as_str());
}

#[tokio::test]
async fn list_filters_sort_paging_expand() {
    let w = world().await;
    let ada = contact(&w.t, &w.ws, &w.owner, "Ada", "Lovelace").await;
    let acme = company(&w.t, &w.ws, &w.owner, "Acme Ltd").await;
    let a = w
        .create(
            json!({"title": "Alpha rocket", "value": 30, "contactId": ada, "companyId": acme,
            "tags": ["hot"], "priority": "high"}),
        )
        .await;
    w.t.clock.advance_secs(1);
    let b = w
        .create(json!({"title": "Beta", "value": 10, "stageId": w.stage(1), "tags": ["cold"]}))
        .await;
    w.t.clock.advance_secs(1);
    let c = w
        .create(json!({"title": "Gamma rocket", "value": 20, "stageId": w.stage(4)}))
        .await;
    let ids = |v: &Value| -> Vec<String> {
        v["opportunities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let id = |v: &Value| v["_id"].as_str().unwrap().to_owned();
    let list = |q: String| {
        let w = &w;
        async move {
            w.t.get(&format!("{}?{q}", w.deals()), w.tok())
                .await
                .ok(200)
                .clone()
        }
    };
    assert_eq!(ids(&list(String::new()).await), [id(&c), id(&b), id(&a)]);
    assert_eq!(
        ids(&list(format!("stageId={}", w.stage(1))).await),
        [id(&b)]
    );
    assert_eq!(ids(&list(format!("pipelineId={}", w.pid())).await).len(), 3);
    assert_eq!(ids(&list("status=won".into()).await), [id(&c)]);
    assert_eq!(ids(&list(format!("contactId={ada}")).await), [id(&a)]);
    assert_eq!(ids(&list(format!("companyId={acme}")).await), [id(&a)]);
    assert_eq!(
        ids(&list(format!("assignedTo={}", w.owner.id)).await).len(),
        3
    );
    assert_eq!(ids(&list("priority=high".into()).await), [id(&a)]);
    assert_eq!(ids(&list("tags=cold,hot".into()).await), [id(&b), id(&a)]);
    assert_eq!(ids(&list("search=rocket".into()).await), [id(&c), id(&a)]);
    assert_eq!(
        ids(&list("sort=value".into()).await),
        [id(&b), id(&c), id(&a)]
    );
    // Another workspace's ids in filters find nothing.
    let eve = w.t.register("eve@example.com").await;
    let theirs = w.t.workspace(&eve, "Elsewhere").await;
    let their_contact = contact(&w.t, &theirs, &eve, "Eve", "E").await;
    assert!(ids(&list(format!("contactId={their_contact}")).await).is_empty());
    // Bad filters.
    w.t.get(&format!("{}?status=maybe", w.deals()), w.tok())
        .await
        .problem(400, "invalid_query");
    w.t.get(&format!("{}?sort=contactName", w.deals()), w.tok())
        .await
        .problem(422, "invalid");
    w.t.get(&format!("{}?expand=user", w.deals()), w.tok())
        .await
        .problem(422, "invalid");

    // Offset and cursor paging.
    let p1 = list("limit=2&sort=-value".into()).await;
    assert_eq!(ids(&p1), [id(&a), id(&c)]);
    assert_eq!(
        p1["pagination"],
        json!({"page": 1, "limit": 2, "total": 3, "pages": 2})
    );
    let c1 = list("limit=2&sort=-value&cursor=".into()).await;
    assert_eq!(ids(&c1), [id(&a), id(&c)]);
    let next = c1["pagination"]["nextCursor"].as_str().unwrap().to_owned();
    let c2 = list(format!("limit=2&sort=-value&cursor={next}")).await;
    assert_eq!(ids(&c2), [id(&b)]);

    // Expand with field selection: contact and company inline, null when unset.
    let e = list("expand=contact,company&fields=title&sort=value".into()).await;
    let items = e["opportunities"].as_array().unwrap();
    assert_eq!(items[2]["contact"]["firstName"], "Ada");
    assert_eq!(items[2]["company"]["name"], "Acme Ltd");
    assert_eq!(items[0]["contact"], Value::Null);
    assert!(items[0].get("value").is_none(), "fields applies");
    let one =
        w.t.get(&format!("{}?expand=company", w.deal(&id(&a))), w.tok())
            .await
            .ok(200)
            .clone();
    assert_eq!(one["company"]["name"], "Acme Ltd");
    assert!(one.get("contact").is_none());
}

#[tokio::test]
async fn patch_fields_names_and_status_stamping() {
    let w = world().await;
    let ada = contact(&w.t, &w.ws, &w.owner, "Ada", "Lovelace").await;
    let bob = contact(&w.t, &w.ws, &w.owner, "Bob", "Builder").await;
    let d = w
        .create(json!({"title": "Deal", "value": 1, "contactId": ada}))
        .await;
    let url = w.deal(d["_id"].as_str().unwrap());
    let p =
        w.t.patch(
            &url,
            w.tok(),
            json!({"title": "Renamed", "value": 9, "contactId": bob, "probability": 50,
                "customFields": {}}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(p["title"], "Renamed");
    assert_eq!(p["value"], 9.0);
    assert_eq!(p["contactName"], "Bob Builder");
    assert_eq!(p["probability"], 50.0);
    let p =
        w.t.patch(
            &url,
            w.tok(),
            json!({"contactId": null, "probability": null}),
        )
        .await
        .ok(200)
        .clone();
    assert!(p.get("contactId").is_none() && p.get("contactName").is_none());
    assert!(p.get("probability").is_none());

    let p =
        w.t.patch(
            &url,
            w.tok(),
            json!({"status": "lost", "lostReason": "price"}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(p["status"], "lost");
    assert_eq!(p["lostReason"], "price");
    assert!(p["actualCloseDate"].is_string());
    let p =
        w.t.patch(&url, w.tok(), json!({"status": "open"}))
            .await
            .ok(200)
            .clone();
    assert!(p.get("actualCloseDate").is_none());

    for (body, field) in [
        (json!({"value": -3}), "value"),
        (json!({"title": ""}), "title"),
        (json!({"currency": "12"}), "currency"),
        (json!({"contactId": ObjectId::new().to_hex()}), "contactId"),
        (
            json!({"customFields": {"custom_x": 1}}),
            "customFields.custom_x",
        ),
    ] {
        let r = w.t.patch(&url, w.tok(), body.clone()).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{body}");
    }
    // The stage moves only through /move.
    w.t.patch(&url, w.tok(), json!({"stageId": w.stage(1)}))
        .await
        .problem(422, "invalid");
}

#[tokio::test]
async fn move_writes_history_event_and_stamps_won_lost() {
    let w = world().await;
    let acme = company(&w.t, &w.ws, &w.owner, "Acme Ltd").await;
    let d = w
        .create(json!({"title": "Deal", "value": 100, "companyId": acme}))
        .await;
    let id = d["_id"].as_str().unwrap();
    let mv = format!("{}/move", w.deal(id));

    w.t.clock.advance_secs(60);
    let m =
        w.t.patch(&mv, w.tok(), json!({"stageId": w.stage(2)}))
            .await
            .ok(200)
            .clone();
    assert_eq!(m["stageId"], w.stage(2));
    let h = m["stageHistory"].as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["duration"], 60_000.0);
    assert!(h[0]["exitedAt"].is_string());
    assert_eq!(h[1]["stageName"], "Proposal");
    assert!(h[1].get("exitedAt").is_none());
    assert_eq!(m["status"], "open");
    let ev = events(&w.t, &w.ws, id).await;
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1].old_stage_name.as_deref(), Some("Lead"));
    assert_eq!(ev[1].new_stage_name, "Proposal");
    assert_eq!(ev[1].user_id.unwrap().to_string(), w.owner.id);
    assert_eq!(ev[1].metadata.value, Some(100.0));
    // Timeline entries on the deal and on its company.
    let acts =
        w.t.state
            .stores
            .workspace(w.ws.parse().unwrap())
            .repo::<Activity>()
            .find(&Filter::eq("opportunityId", id), &FindOptions::default())
            .await
            .unwrap();
    let mut kinds: Vec<_> = acts
        .iter()
        .map(|a| {
            assert_eq!(a.kind, ActivityType::StageChange);
            (
                serde_json::to_value(a.entity_type).unwrap(),
                a.title.clone(),
            )
        })
        .collect();
    kinds.sort_by_key(|k| k.1.clone());
    assert_eq!(
        kinds,
        [
            (
                json!("company"),
                "Deal: Moved from Lead to Proposal".to_owned()
            ),
            (
                json!("opportunity"),
                "Moved from Lead to Proposal".to_owned()
            ),
        ]
    );
    assert_eq!(m["activityCount"], 0);

    // Same stage: nothing happens.
    let same =
        w.t.patch(&mv, w.tok(), json!({"stageId": w.stage(2)}))
            .await
            .ok(200)
            .clone();
    assert_eq!(same["stageHistory"].as_array().unwrap().len(), 2);
    assert_eq!(events(&w.t, &w.ws, id).await.len(), 2);

    // Into the won stage: won and closed.
    w.t.clock.advance_secs(5);
    let won =
        w.t.patch(&mv, w.tok(), json!({"stageId": w.stage(4)}))
            .await
            .ok(200)
            .clone();
    assert_eq!(won["status"], "won");
    let closed = won["actualCloseDate"].as_str().unwrap().to_owned();
    assert_eq!(
        closed,
        won["stageHistory"][2]["enteredAt"].as_str().unwrap()
    );
    // Won to lost: lost, closed again.
    let lost =
        w.t.patch(&mv, w.tok(), json!({"stageId": w.stage(5)}))
            .await
            .ok(200)
            .clone();
    assert_eq!(lost["status"], "lost");
    assert!(lost["actualCloseDate"].is_string());
    // Out to an open stage: reopened, close date cleared.
    let open =
        w.t.patch(&mv, w.tok(), json!({"stageId": w.stage(3)}))
            .await
            .ok(200)
            .clone();
    assert_eq!(open["status"], "open");
    assert!(open.get("actualCloseDate").is_none());
    assert_eq!(open["stageHistory"].as_array().unwrap().len(), 5);
    assert_eq!(events(&w.t, &w.ws, id).await.len(), 5);

    // A stage of another pipeline needs that pipeline named.
    let other =
        w.t.post(
            &format!("/api/v1/workspaces/{}/pipelines", w.ws),
            w.tok(),
            json!({"name": "Other", "stages": [{"name": "X"}, {"name": "Y"}]}),
        )
        .await
        .ok(201)
        .clone();
    let y = other["stages"][1]["_id"].as_str().unwrap();
    let r = w.t.patch(&mv, w.tok(), json!({"stageId": y})).await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "stageId");
    let moved =
        w.t.patch(
            &mv,
            w.tok(),
            json!({"stageId": y, "pipelineId": other["_id"]}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(moved["pipelineId"], other["_id"]);
    assert_eq!(moved["stageId"], y);
    let ev = events(&w.t, &w.ws, id).await;
    assert_eq!(
        ev.last().unwrap().pipeline_id.to_string(),
        other["_id"].as_str().unwrap()
    );
    assert_eq!(
        ev.last().unwrap().old_stage_name.as_deref(),
        Some("Negotiation")
    );

    // Purging takes the deal's timeline with it; the stage-change log stays.
    let scope = w.t.state.stores.workspace(w.ws.parse().unwrap());
    let timeline = Filter::eq("opportunityId", id);
    assert!(scope.repo::<Activity>().count(&timeline).await.unwrap() > 0);
    w.t.delete(&format!("{}?purge=true", w.deal(id)), w.tok())
        .await
        .ok(204);
    assert_eq!(scope.repo::<Activity>().count(&timeline).await.unwrap(), 0);
    assert_eq!(events(&w.t, &w.ws, id).await.len(), ev.len());
}

#[tokio::test]
async fn role_table_and_other_workspaces() {
    let w = world().await;
    let member = w.t.register("member@example.com").await;
    let viewer = w.t.register("viewer@example.com").await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    let d = w.create(json!({"title": "Deal", "value": 1})).await;
    let url = w.deal(d["_id"].as_str().unwrap());

    let v = Some(viewer.access.as_str());
    w.t.get(&w.deals(), v).await.ok(200);
    w.t.get(&url, v).await.ok(200);
    w.t.post(&w.deals(), v, json!({"title": "V", "value": 1}))
        .await
        .problem(403, "forbidden");
    w.t.patch(&url, v, json!({"title": "V"}))
        .await
        .problem(403, "forbidden");
    w.t.patch(&format!("{url}/move"), v, json!({"stageId": w.stage(1)}))
        .await
        .problem(403, "forbidden");
    w.t.delete(&url, v).await.problem(403, "forbidden");

    let m = Some(member.access.as_str());
    w.t.post(&w.deals(), m, json!({"title": "M", "value": 1}))
        .await
        .ok(201);
    w.t.patch(&url, m, json!({"title": "M"})).await.ok(200);
    w.t.patch(&format!("{url}/move"), m, json!({"stageId": w.stage(1)}))
        .await
        .ok(200);
    w.t.delete(&url, m).await.problem(403, "forbidden");

    // Another workspace's deal in my paths, and my deal in theirs.
    let eve = w.t.register("eve@example.com").await;
    let theirs = w.t.workspace(&eve, "Elsewhere").await;
    w.t.post(
        &format!("/api/v1/workspaces/{theirs}/pipelines"),
        Some(&eve.access),
        json!({"name": "Theirs"}),
    )
    .await
    .ok(201);
    let their_deal =
        w.t.post(
            &format!("/api/v1/workspaces/{theirs}/opportunities"),
            Some(&eve.access),
            json!({"title": "Secret", "value": 1}),
        )
        .await
        .ok(201)
        .clone();
    let their_url = w.deal(their_deal["_id"].as_str().unwrap());
    w.t.get(&their_url, w.tok()).await.problem(404, "not_found");
    w.t.patch(&their_url, w.tok(), json!({"title": "Mine"}))
        .await
        .problem(404, "not_found");
    w.t.patch(
        &format!("{their_url}/move"),
        w.tok(),
        json!({"stageId": w.stage(1)}),
    )
    .await
    .problem(404, "not_found");
    w.t.delete(&their_url, w.tok())
        .await
        .problem(404, "not_found");
    w.t.get(
        &format!(
            "/api/v1/workspaces/{theirs}/opportunities/{}",
            d["_id"].as_str().unwrap()
        ),
        Some(&eve.access),
    )
    .await
    .problem(404, "not_found");
    // Eve moving her deal into my stage.
    w.t.patch(
        &format!(
            "/api/v1/workspaces/{theirs}/opportunities/{}/move",
            their_deal["_id"].as_str().unwrap()
        ),
        Some(&eve.access),
        json!({"stageId": w.stage(1), "pipelineId": w.pid()}),
    )
    .await
    .problem(422, "invalid");

    // Trash, restore and purge: owner and admins only.
    w.t.post(&format!("{url}/restore"), m, json!({}))
        .await
        .problem(403, "forbidden");
    w.t.delete(&format!("{url}?purge=true"), m)
        .await
        .problem(403, "forbidden");
    w.t.delete(&url, w.tok()).await.ok(204);
    w.t.get(&url, w.tok()).await.problem(404, "not_found");
    w.t.delete(&url, w.tok()).await.problem(404, "not_found");
    w.t.patch(&url, w.tok(), json!({"title": "X"}))
        .await
        .problem(404, "not_found");
    let list = w.t.get(&w.deals(), w.tok()).await.ok(200).clone();
    assert!(
        list["opportunities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["_id"] != d["_id"]),
        "trashed deals are not listed"
    );
    let back =
        w.t.post(&format!("{url}/restore"), w.tok(), json!({}))
            .await
            .ok(200)
            .clone();
    assert!(back.get("deletedAt").is_none());
    w.t.get(&url, w.tok()).await.ok(200);
    w.t.post(&format!("{their_url}/restore"), w.tok(), json!({}))
        .await
        .problem(404, "not_found");
    w.t.delete(&format!("{their_url}?purge=true"), w.tok())
        .await
        .problem(404, "not_found");
    w.t.delete(&format!("{url}?purge=true"), w.tok())
        .await
        .ok(204);
    w.t.post(&format!("{url}/restore"), w.tok(), json!({}))
        .await
        .problem(404, "not_found");
    w.t.delete(&format!("{url}?purge=true"), w.tok())
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn kanban_columns_totals_and_bounds_with_one_aggregation() {
    let store = Arc::new(SlowStore::counting());
    let w = world_on(TestApp::with(
        Storage::new(store.clone()),
        clianta_api::ApiConfig::default(),
    ))
    .await;
    for (stage, value) in [(0, 10.0), (0, 15.5), (0, 4.5), (2, 100.0), (4, 7.0)] {
        w.create(json!({"title": "D", "value": value, "stageId": w.stage(stage)}))
            .await;
        w.t.clock.advance_secs(1);
    }
    // Another pipeline's deals are not on this board.
    let other =
        w.t.post(
            &format!("/api/v1/workspaces/{}/pipelines", w.ws),
            w.tok(),
            json!({"name": "Other"}),
        )
        .await
        .ok(201)
        .clone();
    w.create(json!({"title": "X", "value": 999, "pipelineId": other["_id"]}))
        .await;

    let board = format!("/api/v1/workspaces/{}/pipelines/{}/kanban", w.ws, w.pid());
    let (aggs, finds) = (
        store.calls_of_op("aggregate"),
        store.calls("find", "opportunities"),
    );
    let k = w.t.get(&board, w.tok()).await.ok(200).clone();
    assert_eq!(store.calls_of_op("aggregate") - aggs, 1, "one aggregation");
    assert_eq!(
        store.calls("find", "opportunities") - finds,
        1,
        "one find when all fit"
    );
    let cols = k["columns"].as_array().unwrap();
    let names: Vec<_> = cols
        .iter()
        .map(|c| c["stage"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Lead",
            "Qualified",
            "Proposal",
            "Negotiation",
            "Closed Won",
            "Closed Lost"
        ]
    );
    let summary: Vec<(u64, f64, usize)> = cols
        .iter()
        .map(|c| {
            (
                c["count"].as_u64().unwrap(),
                c["totalValue"].as_f64().unwrap(),
                c["opportunities"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (3, 30.0, 3),
            (0, 0.0, 0),
            (1, 100.0, 1),
            (0, 0.0, 0),
            (1, 7.0, 1),
            (0, 0.0, 0)
        ]
    );
    assert_eq!(cols[4]["opportunities"][0]["status"], "won");
    // Newest first within a column.
    let lead: Vec<f64> = cols[0]["opportunities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_f64().unwrap())
        .collect();
    assert_eq!(lead, [4.5, 15.5, 10.0]);

    // Bounded columns keep their full count and total.
    let k =
        w.t.get(&format!("{board}?perStage=2"), w.tok())
            .await
            .ok(200)
            .clone();
    assert_eq!(k["columns"][0]["count"], 3);
    assert_eq!(k["columns"][0]["totalValue"], 30.0);
    assert_eq!(
        k["columns"][0]["opportunities"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        k["columns"][2]["opportunities"].as_array().unwrap().len(),
        1
    );
    w.t.get(&format!("{board}?perStage=0"), w.tok())
        .await
        .problem(422, "invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_moves_lose_no_history() {
    let w = world_on(TestApp::with(
        Storage::new(Arc::new(SlowStore::yielding_before(&[
            "get",
            "find_one_and_update",
        ]))),
        clianta_api::ApiConfig::default(),
    ))
    .await;
    let d = w.create(json!({"title": "Deal", "value": 1})).await;
    let id = d["_id"].as_str().unwrap().to_owned();
    let mv = format!("{}/move", w.deal(&id));
    let mv_to = |i: usize| w.t.patch(&mv, w.tok(), json!({"stageId": w.stage(i)}));
    let (a, b, c, d2, e, f) =
        tokio::join!(mv_to(1), mv_to(2), mv_to(3), mv_to(4), mv_to(5), mv_to(1));
    // Each move either applied or gave up with 409 after colliding; none was lost silently.
    for r in [a, b, c, d2, e, f] {
        assert!(
            r.status.as_u16() == 200 || r.status.as_u16() == 409,
            "{}",
            r.body
        );
    }
    let now = w.t.get(&w.deal(&id), w.tok()).await.ok(200).clone();
    let history = now["stageHistory"].as_array().unwrap();
    let ev = events(&w.t, &w.ws, &id).await;
    assert_eq!(ev.len(), history.len(), "one event per visit");
    assert!(history.len() >= 2);
    // The visits chain: every one but the last is closed, and the last is the current stage.
    assert!(
        history[..history.len() - 1]
            .iter()
            .all(|v| v["exitedAt"].is_string())
    );
    assert_eq!(history.last().unwrap()["stageId"], now["stageId"]);
    let mut visited: Vec<String> = history
        .iter()
        .map(|v| v["stageId"].as_str().unwrap().to_owned())
        .collect();
    let mut logged: Vec<String> = ev.iter().map(|e| e.new_stage_id.to_string()).collect();
    visited.sort();
    logged.sort();
    assert_eq!(visited, logged);
}
