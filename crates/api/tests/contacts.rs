//! Contacts over HTTP: CRUD, validation, the email key (409 with field, many email-less contacts),
//! custom fields, the role table, cross-workspace isolation (path 404, body 422, filter empty),
//! lists (filters, sort, both pagings, fields, expand in one query), the trash and bulk routes.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::Arc;

use clianta_api::ApiConfig;
use common::{SlowStore, TestApp, World, add_member, seed, world, world_with};
use crm_core::accounts::Role;
use crm_core::entities::contact::Contact;
use crm_core::entities::custom_field::{CustomFieldDefinition, CustomFieldEntity, CustomFieldType};
use crm_core::{Filter, ObjectId, Storage, UserId, WorkspaceId};
use serde_json::{Value, json};

fn contacts(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/contacts")
}

fn companies(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/companies")
}

async fn define(t: &TestApp, ws: &str, d: CustomFieldDefinition) {
    seed(t, ws, &d).await;
}

impl World {
    async fn contact(&self, body: Value) -> Value {
        let r = self.t.post(&contacts(&self.ws), self.tok(), body).await;
        r.ok(201).clone()
    }

    async fn company(&self, name: &str) -> String {
        let r = self
            .t
            .post(&companies(&self.ws), self.tok(), json!({ "name": name }))
            .await;
        r.ok(201)["_id"].as_str().unwrap().to_owned()
    }

    async fn list(&self, query: &str) -> Value {
        let r = self
            .t
            .get(&format!("{}?{query}", contacts(&self.ws)), self.tok())
            .await;
        r.ok(200).clone()
    }
}

fn names(list: &Value) -> Vec<String> {
    list["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["firstName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_get_patch_with_normalised_fields_and_defaults() {
    let w = world().await;
    let c = w
        .contact(json!({
            "firstName": "  Ada ",
            "lastName": "Lovelace",
            "email": "  Ada@Example.COM ",
            "tags": ["vip", " vip", "math"],
            "address": {"city": "London"},
            "jobTitle": "Analyst",
            "phone": "+44 1",
        }))
        .await;
    assert_eq!(c["firstName"], "Ada");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["tags"], json!(["vip", "math"]));
    assert_eq!(c["status"], "lead");
    assert_eq!(c["lifecycleStage"], "lead");
    assert_eq!(c["intentScore"], 0.0);
    assert_eq!(c["userId"], w.owner.id.as_str());
    assert_eq!(c["workspaceId"], w.ws.as_str());
    assert!(c["createdAt"].is_string());
    let id = c["_id"].as_str().unwrap();
    let url = format!("{}/{id}", contacts(&w.ws));

    let got = w.t.get(&url, w.tok()).await;
    assert_eq!(got.ok(200), &c);

    let r =
        w.t.patch(
            &url,
            w.tok(),
            json!({"jobTitle": "Engineer", "phone": null, "lifecycleStage": "mql", "lastName": ""}),
        )
        .await;
    let p = r.ok(200);
    assert_eq!(p["jobTitle"], "Engineer");
    assert!(p.get("phone").is_none(), "{p}");
    assert_eq!(p["lastName"], "");
    assert_eq!(p["lifecycleStage"], "mql");
    assert_eq!(p["previousLifecycleStage"], "lead");
    assert!(p["lifecycleStageUpdatedAt"].is_string());
    assert_eq!(p["email"], "ada@example.com");

    // An empty patch changes nothing.
    let r = w.t.patch(&url, w.tok(), json!({})).await;
    assert_eq!(r.ok(200)["jobTitle"], "Engineer");
}

#[tokio::test]
async fn invalid_bodies_name_the_field() {
    let w = world().await;
    let url = contacts(&w.ws);
    let cases = [
        (json!({}), "firstName"),
        (json!({"firstName": " "}), "firstName"),
        (json!({"firstName": "x".repeat(51)}), "firstName"),
        (
            json!({"firstName": "A", "lastName": "y".repeat(51)}),
            "lastName",
        ),
        (json!({"firstName": "A", "email": "nope@"}), "email"),
        (json!({"firstName": "A", "status": "vip"}), "status"),
        (
            json!({"firstName": "A", "lifecycleStage": "hot"}),
            "lifecycleStage",
        ),
        (
            json!({"firstName": "A", "workspaceId": "000000000000000000000001"}),
            "workspaceId",
        ),
        (
            json!({"firstName": "A", "favouriteColour": "teal"}),
            "favouriteColour",
        ),
        (json!({"firstName": "A", "tags": "vip"}), "tags"),
    ];
    for (body, field) in cases {
        let r = w.t.post(&url, w.tok(), body.clone()).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{body}");
    }
    let c = w.contact(json!({"firstName": "A"})).await;
    let r =
        w.t.patch(
            &format!("{url}/{}", c["_id"].as_str().unwrap()),
            w.tok(),
            json!({"firstName": null}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "firstName");
}

#[tokio::test]
async fn duplicate_email_is_409_and_missing_emails_are_many() {
    let w = world().await;
    w.contact(json!({"firstName": "A", "email": "a@example.com"}))
        .await;
    let r =
        w.t.post(
            &contacts(&w.ws),
            w.tok(),
            json!({"firstName": "B", "email": " A@EXAMPLE.com"}),
        )
        .await;
    r.problem(409, "conflict");
    assert_eq!(r.body["field"], "email");

    // Patching another contact onto the taken email is refused the same way.
    let b = w
        .contact(json!({"firstName": "B", "email": "b@example.com"}))
        .await;
    let r =
        w.t.patch(
            &format!("{}/{}", contacts(&w.ws), b["_id"].as_str().unwrap()),
            w.tok(),
            json!({"email": "a@example.com"}),
        )
        .await;
    r.problem(409, "conflict");
    assert_eq!(r.body["field"], "email");

    // Any number without an email, blank counting as none.
    for body in [
        json!({"firstName": "N1"}),
        json!({"firstName": "N2"}),
        json!({"firstName": "N3", "email": ""}),
        json!({"firstName": "N4", "email": null}),
    ] {
        let c = w.contact(body).await;
        assert!(c.get("email").is_none(), "{c}");
    }
    // Removing an email frees it.
    let r =
        w.t.patch(
            &format!("{}/{}", contacts(&w.ws), b["_id"].as_str().unwrap()),
            w.tok(),
            json!({"email": null}),
        )
        .await;
    assert!(r.ok(200).get("email").is_none());
    w.contact(json!({"firstName": "C", "email": "b@example.com"}))
        .await;

    // The same email in another workspace is fine.
    let other = w.t.workspace(&w.owner, "Other Co").await;
    let r =
        w.t.post(
            &contacts(&other),
            w.tok(),
            json!({"firstName": "A", "email": "a@example.com"}),
        )
        .await;
    r.ok(201);
}

#[tokio::test]
async fn custom_fields_are_checked_defaulted_and_merged() {
    let w = world().await;
    let ws: WorkspaceId = w.ws.parse().unwrap();
    let mut tier = CustomFieldDefinition::new(
        ws,
        CustomFieldEntity::Contact,
        "custom_tier",
        "Tier",
        CustomFieldType::Select,
    );
    tier.select_options = vec!["gold".into(), "silver".into()];
    tier.default_value = Some(json!("silver"));
    tier.is_required = true;
    define(&w.t, &w.ws, tier).await;
    define(
        &w.t,
        &w.ws,
        CustomFieldDefinition::new(
            ws,
            CustomFieldEntity::Contact,
            "custom_score",
            "Score",
            CustomFieldType::Number,
        ),
    )
    .await;
    // A company field is not a contact field.
    define(
        &w.t,
        &w.ws,
        CustomFieldDefinition::new(
            ws,
            CustomFieldEntity::Company,
            "custom_region",
            "Region",
            CustomFieldType::Text,
        ),
    )
    .await;

    let mut partner = CustomFieldDefinition::new(
        ws,
        CustomFieldEntity::Contact,
        "custom_partner",
        "Partner",
        CustomFieldType::Relation,
    );
    partner.relation_config.target_entity = Some(CustomFieldEntity::Company);
    define(&w.t, &w.ws, partner).await;

    let c = w.contact(json!({"firstName": "A"})).await;
    assert_eq!(c["customFields"], json!({"custom_tier": "silver"}));
    let url = format!("{}/{}", contacts(&w.ws), c["_id"].as_str().unwrap());

    let r =
        w.t.patch(&url, w.tok(), json!({"customFields": {"custom_score": 7}}))
            .await;
    assert_eq!(
        r.ok(200)["customFields"],
        json!({"custom_tier": "silver", "custom_score": 7})
    );
    let r =
        w.t.patch(
            &url,
            w.tok(),
            json!({"customFields": {"custom_score": null, "custom_tier": "gold"}}),
        )
        .await;
    assert_eq!(r.ok(200)["customFields"], json!({"custom_tier": "gold"}));

    for (body, field) in [
        (
            json!({"customFields": {"custom_tier": "bronze"}}),
            "customFields.custom_tier",
        ),
        (
            json!({"customFields": {"custom_tier": null}}),
            "customFields.custom_tier",
        ),
        (
            json!({"customFields": {"custom_region": "EU"}}),
            "customFields.custom_region",
        ),
        (
            json!({"customFields": {"custom_score": "high"}}),
            "customFields.custom_score",
        ),
        (json!({"customFields": null}), "customFields"),
    ] {
        let r = w.t.patch(&url, w.tok(), body.clone()).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{body}");
    }
    let r =
        w.t.post(
            &contacts(&w.ws),
            w.tok(),
            json!({"firstName": "B", "customFields": {"custom_tier": "bronze"}}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "customFields.custom_tier");

    // Relation values must name a company of this workspace.
    let mine = w.company("Mine").await;
    let other = w.t.workspace(&w.owner, "Other Co").await;
    let theirs =
        w.t.post(&companies(&other), w.tok(), json!({"name": "Theirs"}))
            .await
            .ok(201)["_id"]
            .clone();
    let r =
        w.t.patch(
            &url,
            w.tok(),
            json!({"customFields": {"custom_partner": theirs}}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "customFields.custom_partner");
    let r =
        w.t.patch(
            &url,
            w.tok(),
            json!({"customFields": {"custom_partner": mine}}),
        )
        .await;
    assert_eq!(r.ok(200)["customFields"]["custom_partner"], mine.as_str());
}

#[tokio::test]
async fn role_table() {
    let w = world().await;
    let (viewer, member, admin) = (
        w.t.register("viewer@example.com").await,
        w.t.register("member@example.com").await,
        w.t.register("admin@example.com").await,
    );
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    add_member(&w.t, &w.ws, &admin, Role::Admin).await;
    let url = contacts(&w.ws);
    let c = w.contact(json!({"firstName": "A"})).await;
    let one = format!("{url}/{}", c["_id"].as_str().unwrap());
    let ids = json!({"ids": [c["_id"]]});

    // Viewer reads only.
    let v = Some(viewer.access.as_str());
    w.t.get(&url, v).await.ok(200);
    w.t.get(&one, v).await.ok(200);
    w.t.post(&url, v, json!({"firstName": "V"}))
        .await
        .problem(403, "forbidden");
    w.t.patch(&one, v, json!({"firstName": "V"}))
        .await
        .problem(403, "forbidden");
    w.t.patch(
        &format!("{url}/bulk/tags"),
        v,
        json!({"ids": [c["_id"]], "add": ["x"]}),
    )
    .await
    .problem(403, "forbidden");
    w.t.delete(&one, v).await.problem(403, "forbidden");

    // Member creates and edits, never deletes, purges or restores.
    let m = Some(member.access.as_str());
    let mine = w.t.post(&url, m, json!({"firstName": "M"})).await;
    assert_eq!(mine.ok(201)["userId"], member.id.as_str());
    w.t.patch(&one, m, json!({"jobTitle": "CTO"})).await.ok(200);
    w.t.patch(
        &format!("{url}/bulk/tags"),
        m,
        json!({"ids": [c["_id"]], "add": ["x"]}),
    )
    .await
    .ok(200);
    w.t.delete(&one, m).await.problem(403, "forbidden");
    w.t.delete(&format!("{one}?purge=true"), m)
        .await
        .problem(403, "forbidden");
    w.t.post(&format!("{one}/restore"), m, json!({}))
        .await
        .problem(403, "forbidden");
    w.t.post(&format!("{url}/bulk-delete"), m, ids.clone())
        .await
        .problem(403, "forbidden");

    // Admin deletes, restores and purges.
    let a = Some(admin.access.as_str());
    assert_eq!(w.t.delete(&one, a).await.status, 204);
    w.t.post(&format!("{one}/restore"), a, json!({}))
        .await
        .ok(200);
    assert_eq!(
        w.t.delete(&format!("{one}?purge=true"), a).await.status,
        204
    );

    // A stranger sees no workspace at all.
    let stranger = w.t.register("stranger@example.com").await;
    w.t.get(&url, Some(&stranger.access))
        .await
        .problem(404, "not_found");
    w.t.get(&url, None).await.problem(401, "unauthenticated");
}

#[tokio::test]
async fn assignee_must_be_an_active_member_or_the_owner() {
    let w = world().await;
    let member = w.t.register("member@example.com").await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    let outsider = w.t.register("outsider@example.com").await;
    for who in [&w.owner.id, &member.id] {
        let c = w
            .contact(json!({"firstName": "A", "assignedTo": who}))
            .await;
        assert_eq!(c["assignedTo"], who.as_str());
    }
    let r =
        w.t.post(
            &contacts(&w.ws),
            w.tok(),
            json!({"firstName": "A", "assignedTo": outsider.id}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "assignedTo");
    let list = w.list(&format!("assignedTo={}", member.id)).await;
    assert_eq!(list["pagination"]["total"], 1);
}

#[tokio::test]
async fn another_workspace_is_invisible() {
    let w = world().await;
    let b_ws = w.t.workspace(&w.owner, "Workspace B").await;
    let b_contact =
        w.t.post(&contacts(&b_ws), w.tok(), json!({"firstName": "InB"}))
            .await
            .ok(201)
            .clone();
    let b_company =
        w.t.post(&companies(&b_ws), w.tok(), json!({"name": "B Corp"}))
            .await
            .ok(201)
            .clone();
    let b_id = b_contact["_id"].as_str().unwrap();
    let b_co = b_company["_id"].as_str().unwrap();

    // Path: 404 whatever the verb.
    let in_a = format!("{}/{b_id}", contacts(&w.ws));
    w.t.get(&in_a, w.tok()).await.problem(404, "not_found");
    w.t.patch(&in_a, w.tok(), json!({"firstName": "X"}))
        .await
        .problem(404, "not_found");
    w.t.delete(&in_a, w.tok()).await.problem(404, "not_found");
    w.t.delete(&format!("{in_a}?purge=true"), w.tok())
        .await
        .problem(404, "not_found");
    w.t.post(&format!("{in_a}/restore"), w.tok(), json!({}))
        .await
        .problem(404, "not_found");
    w.t.get(&format!("{}/not-an-id", contacts(&w.ws)), w.tok())
        .await
        .problem(404, "not_found");

    // Body: 422 on the reference.
    let r =
        w.t.post(
            &contacts(&w.ws),
            w.tok(),
            json!({"firstName": "A", "companyId": b_co}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "companyId");
    let a = w.contact(json!({"firstName": "A"})).await;
    let r =
        w.t.patch(
            &format!("{}/{}", contacts(&w.ws), a["_id"].as_str().unwrap()),
            w.tok(),
            json!({"companyId": b_co}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "companyId");

    // Filter: empty.
    let list = w.list(&format!("companyId={b_co}")).await;
    assert_eq!(list["contacts"], json!([]));
    assert_eq!(list["pagination"]["total"], 0);

    // Expand: a stored reference to B's company (as imported data could hold) resolves to null.
    let ws: WorkspaceId = w.ws.parse().unwrap();
    let owner: UserId = w.owner.id.parse().unwrap();
    let mut forged = Contact::new(ws, owner, "Forged");
    forged.company_id = Some(b_co.parse().unwrap());
    seed(&w.t, &w.ws, &forged).await;
    let list = w.list("expand=company").await;
    let item = list["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["firstName"] == "Forged")
        .unwrap();
    assert_eq!(item["companyId"], Value::Null);
    let got =
        w.t.get(
            &format!("{}/{}?expand=company", contacts(&w.ws), forged.id),
            w.tok(),
        )
        .await;
    assert_eq!(got.ok(200)["companyId"], Value::Null);

    // Bulk: B's ids are skipped, B's contact untouched.
    let r =
        w.t.post(
            &format!("{}/bulk-delete", contacts(&w.ws)),
            w.tok(),
            json!({"ids": [b_id]}),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 0);
    let r =
        w.t.patch(
            &format!("{}/bulk/tags", contacts(&w.ws)),
            w.tok(),
            json!({"ids": [b_id], "add": ["x"]}),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 0);
    let still =
        w.t.get(&format!("{}/{b_id}", contacts(&b_ws)), w.tok())
            .await;
    assert_eq!(still.ok(200)["tags"], json!([]));
}

#[tokio::test]
async fn offset_and_cursor_paging_sort_and_fields() {
    let w = world().await;
    for i in 0..25 {
        w.contact(json!({"firstName": format!("P{i:02}")})).await;
        w.t.clock.advance_secs(1);
    }
    let first = w.list("").await;
    assert_eq!(
        first["pagination"],
        json!({"page": 1, "limit": 20, "total": 25, "pages": 2})
    );
    let n = names(&first);
    assert_eq!(n.len(), 20);
    assert_eq!(n[0], "P24", "newest first");
    let second = w.list("page=2").await;
    assert_eq!(names(&second).len(), 5);
    assert_eq!(names(&second)[4], "P00");

    // Cursor paging walks everything once, in order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = w
            .list(&format!("cursor={cursor}&limit=10&sort=firstName"))
            .await;
        seen.extend(names(&page));
        match page["pagination"]["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let want: Vec<String> = (0..25).map(|i| format!("P{i:02}")).collect();
    assert_eq!(seen, want);

    let desc = w.list("sort=-firstName&limit=3").await;
    assert_eq!(names(&desc), ["P24", "P23", "P22"]);
    let r =
        w.t.get(&format!("{}?sort=password", contacts(&w.ws)), w.tok())
            .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "sort");
    let r =
        w.t.get(&format!("{}?limit=501", contacts(&w.ws)), w.tok())
            .await;
    r.problem(422, "invalid");

    let slim = w.list("fields=firstName&limit=1").await;
    let item = slim["contacts"][0].as_object().unwrap();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["_id", "firstName"]);
}

#[tokio::test]
async fn list_filters() {
    let w = world().await;
    let co = w.company("Initech").await;
    w.contact(json!({"firstName": "Ann", "lastName": "Lee", "status": "customer", "tags": ["vip"], "companyId": co}))
        .await;
    w.contact(json!({"firstName": "Bob", "status": "prospect", "lifecycleStage": "mql", "tags": ["cold", "eu"]}))
        .await;
    w.contact(json!({"firstName": "Cy", "email": "cy@initech.com", "tags": ["eu"]}))
        .await;
    let count = |v: &Value| v["pagination"]["total"].as_u64().unwrap();
    assert_eq!(count(&w.list("status=customer").await), 1);
    assert_eq!(count(&w.list("status=customer,prospect").await), 2);
    assert_eq!(names(&w.list("lifecycleStage=mql").await), ["Bob"]);
    assert_eq!(count(&w.list("tags=vip,eu").await), 3);
    assert_eq!(count(&w.list("tags=cold").await), 1);
    assert_eq!(names(&w.list(&format!("companyId={co}")).await), ["Ann"]);
    assert_eq!(names(&w.list("search=lee").await), ["Ann"]);
    assert_eq!(names(&w.list("search=cy%40initech.com").await), ["Cy"]);
    assert_eq!(count(&w.list("status=lead&tags=eu").await), 1);
    let r =
        w.t.get(&format!("{}?status=vip", contacts(&w.ws)), w.tok())
            .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "status");
    let r =
        w.t.get(&format!("{}?companyId=xyz", contacts(&w.ws)), w.tok())
            .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "companyId");
}

#[tokio::test]
async fn trash_restore_and_purge() {
    let w = world().await;
    let c = w
        .contact(json!({"firstName": "T", "email": "t@example.com"}))
        .await;
    w.contact(json!({"firstName": "Keep"})).await;
    let one = format!("{}/{}", contacts(&w.ws), c["_id"].as_str().unwrap());

    assert_eq!(w.t.delete(&one, w.tok()).await.status, 204);
    w.t.get(&one, w.tok()).await.problem(404, "not_found");
    w.t.patch(&one, w.tok(), json!({"firstName": "X"}))
        .await
        .problem(404, "not_found");
    w.t.delete(&one, w.tok()).await.problem(404, "not_found");
    assert_eq!(names(&w.list("").await), ["Keep"]);
    let trash = w.list("deleted=true").await;
    assert_eq!(names(&trash), ["T"]);
    assert!(trash["contacts"][0]["deletedAt"].is_string());

    let r =
        w.t.post(&format!("{one}/restore"), w.tok(), json!({}))
            .await;
    let back = r.ok(200);
    assert!(back.get("deletedAt").is_none(), "{back}");
    assert_eq!(back["email"], "t@example.com");
    w.t.get(&one, w.tok()).await.ok(200);
    // Restoring a live contact returns it unchanged.
    w.t.post(&format!("{one}/restore"), w.tok(), json!({}))
        .await
        .ok(200);

    // Purge works from the trash too, and is final.
    assert_eq!(w.t.delete(&one, w.tok()).await.status, 204);
    assert_eq!(
        w.t.delete(&format!("{one}?purge=true"), w.tok())
            .await
            .status,
        204
    );
    w.t.post(&format!("{one}/restore"), w.tok(), json!({}))
        .await
        .problem(404, "not_found");
    assert_eq!(w.list("deleted=true").await["contacts"], json!([]));
    // The email is free again once purged.
    w.contact(json!({"firstName": "T2", "email": "t@example.com"}))
        .await;
}

#[tokio::test]
async fn bulk_delete_and_tags() {
    let w = world().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let c = w
            .contact(json!({"firstName": format!("B{i}"), "tags": ["old"]}))
            .await;
        ids.push(c["_id"].as_str().unwrap().to_owned());
    }
    let url = contacts(&w.ws);
    let r =
        w.t.patch(
            &format!("{url}/bulk/tags"),
            w.tok(),
            json!({"ids": ids[..3], "add": ["new", "vip"], "remove": ["old"]}),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 3);
    let got = w.t.get(&format!("{url}/{}", ids[0]), w.tok()).await;
    assert_eq!(got.ok(200)["tags"], json!(["new", "vip"]));
    // Adding is set-like.
    w.t.patch(
        &format!("{url}/bulk/tags"),
        w.tok(),
        json!({"ids": [ids[0]], "add": ["vip"]}),
    )
    .await
    .ok(200);
    let got = w.t.get(&format!("{url}/{}", ids[0]), w.tok()).await;
    assert_eq!(got.ok(200)["tags"], json!(["new", "vip"]));
    let got = w.t.get(&format!("{url}/{}", ids[3]), w.tok()).await;
    assert_eq!(got.ok(200)["tags"], json!(["old"]));

    let r =
        w.t.post(
            &format!("{url}/bulk-delete"),
            w.tok(),
            json!({"ids": ids[..2]}),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 2);
    assert_eq!(w.list("").await["pagination"]["total"], 2);
    assert_eq!(w.list("deleted=true").await["pagination"]["total"], 2);

    // Limits: 1 to 500 ids, each well-formed.
    let many: Vec<String> = (0..501).map(|_| ObjectId::new().to_hex()).collect();
    for (path, body, field) in [
        (
            format!("{url}/bulk-delete"),
            json!({"ids": many.clone()}),
            "ids",
        ),
        (format!("{url}/bulk-delete"), json!({"ids": []}), "ids"),
        (
            format!("{url}/bulk-delete"),
            json!({"ids": [ids[2], "zz"]}),
            "ids[1]",
        ),
    ] {
        let r = w.t.post(&path, w.tok(), body).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field);
    }
    let r =
        w.t.patch(
            &format!("{url}/bulk/tags"),
            w.tok(),
            json!({"ids": many, "add": ["x"]}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "ids");
    let exactly: Vec<String> = (0..500).map(|_| ObjectId::new().to_hex()).collect();
    let r =
        w.t.post(
            &format!("{url}/bulk-delete"),
            w.tok(),
            json!({ "ids": exactly }),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 0);
}

#[tokio::test]
async fn expand_company_reads_the_page_companies_in_one_query() {
    let store = Arc::new(SlowStore::counting());
    let w = world_with(TestApp::with(
        Storage::new(store.clone()),
        ApiConfig::default(),
    ))
    .await;
    let cos = [
        w.company("Alpha").await,
        w.company("Beta").await,
        w.company("Gamma").await,
    ];
    for i in 0..20_usize {
        let mut body = json!({"firstName": format!("E{i:02}")});
        if !i.is_multiple_of(5) {
            body["companyId"] = json!(cos[i % 3]);
        }
        w.contact(body).await;
    }
    // A trashed company expands to null.
    let gone = w.company("Gone").await;
    let orphan = w
        .contact(json!({"firstName": "Orphan", "companyId": gone}))
        .await;
    assert_eq!(
        w.t.delete(&format!("{}/{gone}", companies(&w.ws)), w.tok())
            .await
            .status,
        204
    );

    store.reset();
    let list = w.list("expand=company&limit=50").await;
    assert_eq!(store.reads_of("companies"), [("find", 1)]);
    let items = list["contacts"].as_array().unwrap();
    assert_eq!(items.len(), 21);
    let mut expanded = 0;
    for c in items {
        let n: usize = c["firstName"].as_str().unwrap()[1..].parse().unwrap_or(99);
        match c.get("companyId") {
            None => assert!(n.is_multiple_of(5), "{c}"),
            Some(Value::Null) => assert_eq!(c["firstName"], "Orphan"),
            Some(co) => {
                let want = ["Alpha", "Beta", "Gamma"][n % 3];
                assert_eq!(co["name"], want, "{c}");
                assert_eq!(co["_id"], cos[n % 3].as_str());
                expanded += 1;
            }
        }
    }
    assert_eq!(expanded, 16);

    // Without expand the id stays an id, and no company is read.
    store.reset();
    let plain = w.list("limit=50").await;
    assert!(store.reads_of("companies").is_empty());
    assert!(
        plain["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["companyId"].is_string())
    );

    // One contact expands the same way; unknown expansions are refused.
    let one = format!("{}/{}", contacts(&w.ws), orphan["_id"].as_str().unwrap());
    let got = w.t.get(&format!("{one}?expand=company"), w.tok()).await;
    assert_eq!(got.ok(200)["companyId"], Value::Null);
    let r =
        w.t.get(&format!("{}?expand=owner", contacts(&w.ws)), w.tok())
            .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "expand");
}

#[tokio::test]
async fn renames_and_purges_reach_deals_and_timelines() {
    let w = world().await;
    let acme = w.company("Acme").await;
    let ada = w
        .contact(json!({"firstName": "Ada", "lastName": "Lovelace", "companyId": acme}))
        .await;
    let ada_id = ada["_id"].as_str().unwrap();
    w.t.post(
        &format!("/api/v1/workspaces/{}/pipelines", w.ws),
        w.tok(),
        json!({"name": "Sales"}),
    )
    .await
    .ok(201);
    let deals = format!("/api/v1/workspaces/{}/opportunities", w.ws);
    let deal =
        w.t.post(
            &deals,
            w.tok(),
            json!({"title": "Big", "value": 10, "contactId": ada_id, "companyId": acme,
                   "associatedContacts": [ada_id]}),
        )
        .await
        .ok(201)["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let deal_url = format!("{deals}/{deal}");
    for (path, body) in [
        (
            format!("{}/{ada_id}/activities", contacts(&w.ws)),
            json!({"type": "note", "title": "Met Ada"}),
        ),
        (
            format!("{}/{acme}/activities", companies(&w.ws)),
            json!({"type": "note", "title": "Met Acme"}),
        ),
    ] {
        w.t.post(&path, w.tok(), body).await.ok(201);
    }

    // Renames reach the deal's denormalised names; other patches leave them.
    let one = format!("{}/{ada_id}", contacts(&w.ws));
    w.t.patch(&one, w.tok(), json!({"lastName": "King"}))
        .await
        .ok(200);
    w.t.patch(
        &format!("{}/{acme}", companies(&w.ws)),
        w.tok(),
        json!({"name": "Acme Corp"}),
    )
    .await
    .ok(200);
    let d = w.t.get(&deal_url, w.tok()).await.ok(200).clone();
    assert_eq!(d["contactName"], "Ada King");
    assert_eq!(d["companyName"], "Acme Corp");

    assert_eq!(timeline_left(&w, &[ada_id, &acme]).await, 2);

    // Trashing keeps everything (it can be restored); purging clears the references.
    assert_eq!(w.t.delete(&one, w.tok()).await.status, 204);
    assert_eq!(
        w.t.get(&deal_url, w.tok()).await.ok(200)["contactId"],
        ada_id
    );
    assert_eq!(
        w.t.delete(&format!("{one}?purge=true"), w.tok())
            .await
            .status,
        204
    );
    assert_eq!(
        w.t.delete(&format!("{}/{acme}?purge=true", companies(&w.ws)), w.tok())
            .await
            .status,
        204
    );
    let d = w.t.get(&deal_url, w.tok()).await.ok(200).clone();
    for k in ["contactId", "contactName", "companyId", "companyName"] {
        assert!(d.get(k).is_none(), "{k}: {d}");
    }
    assert_eq!(d["associatedContacts"], json!([]));
    assert_eq!(timeline_left(&w, &[ada_id, &acme]).await, 0);
}

/// Activities still on the timelines of these records.
async fn timeline_left(w: &World, ids: &[&str]) -> u64 {
    let ws: WorkspaceId = w.ws.parse().unwrap();
    w.t.state
        .stores
        .workspace(ws)
        .repo::<crm_core::entities::activity::Activity>()
        .count(&Filter::In(
            "entityId".into(),
            ids.iter().map(|i| json!(i)).collect(),
        ))
        .await
        .unwrap()
}
