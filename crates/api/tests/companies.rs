//! Companies over HTTP: CRUD, validation, custom fields, the role table, cross-workspace
//! isolation, lists (filters, sort, both pagings, fields), the trash with a purge that clears
//! references, and bulk delete.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{World, add_member, seed, world};
use crm_core::accounts::Role;
use crm_core::entities::custom_field::{CustomFieldDefinition, CustomFieldEntity, CustomFieldType};
use crm_core::{ObjectId, WorkspaceId};
use serde_json::{Value, json};

fn companies(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/companies")
}

fn contacts(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/contacts")
}

impl World {
    async fn company(&self, body: Value) -> Value {
        let r = self.t.post(&companies(&self.ws), self.tok(), body).await;
        r.ok(201).clone()
    }

    async fn list(&self, query: &str) -> Value {
        let r = self
            .t
            .get(&format!("{}?{query}", companies(&self.ws)), self.tok())
            .await;
        r.ok(200).clone()
    }
}

fn names(list: &Value) -> Vec<String> {
    list["companies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_get_patch() {
    let w = world().await;
    let c = w
        .company(json!({
            "name": "  Initech ",
            "industry": "Software",
            "companySize": "51-200",
            "annualRevenue": 1500000.5,
            "employeeCount": 120,
            "tags": ["target"],
            "isTargetAccount": true,
            "accountTier": "tier1",
        }))
        .await;
    assert_eq!(c["name"], "Initech");
    assert_eq!(c["status"], "lead");
    assert_eq!(c["employeeCount"], 120);
    assert_eq!(c["annualRevenue"], 1500000.5);
    assert_eq!(c["isTargetAccount"], true);
    assert_eq!(c["userId"], w.owner.id.as_str());
    let one = format!("{}/{}", companies(&w.ws), c["_id"].as_str().unwrap());
    assert_eq!(w.t.get(&one, w.tok()).await.ok(200), &c);

    let r = w
        .t
        .patch(
            &one,
            w.tok(),
            json!({"status": "customer", "companySize": null, "industry": "Fintech", "accountTier": ""}),
        )
        .await;
    let p = r.ok(200);
    assert_eq!(p["status"], "customer");
    assert_eq!(p["industry"], "Fintech");
    assert!(p.get("companySize").is_none(), "{p}");
    assert!(p.get("accountTier").is_none(), "{p}");
    assert_eq!(p["employeeCount"], 120);

    // Names are not unique.
    w.company(json!({"name": "Initech"})).await;
}

#[tokio::test]
async fn invalid_bodies_name_the_field() {
    let w = world().await;
    let url = companies(&w.ws);
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(201)}), "name"),
        (
            json!({"name": "A", "industry": "i".repeat(101)}),
            "industry",
        ),
        (json!({"name": "A", "companySize": "10-20"}), "companySize"),
        (json!({"name": "A", "status": "active"}), "status"),
        (json!({"name": "A", "annualRevenue": -5}), "annualRevenue"),
        (json!({"name": "A", "employeeCount": -1}), "employeeCount"),
        (json!({"name": "A", "employeeCount": 3.5}), "employeeCount"),
        (json!({"name": "A", "accountScore": 120}), "accountScore"),
        (json!({"name": "A", "domain": "initech.com"}), "domain"),
        (json!({"name": "A", "website": "not a site"}), "website"),
        (json!({"name": "A", "_id": ObjectId::new().to_hex()}), "_id"),
    ] {
        let r = w.t.post(&url, w.tok(), body.clone()).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{body}");
    }
    let c = w.company(json!({"name": "A"})).await;
    let one = format!("{url}/{}", c["_id"].as_str().unwrap());
    let r = w.t.patch(&one, w.tok(), json!({"name": null})).await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "name");
    // A company cannot be its own parent.
    let r =
        w.t.patch(&one, w.tok(), json!({"parentCompanyId": c["_id"]}))
            .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "parentCompanyId");
}

#[tokio::test]
async fn custom_fields_use_company_definitions() {
    let w = world().await;
    let ws: WorkspaceId = w.ws.parse().unwrap();
    let mut region = CustomFieldDefinition::new(
        ws,
        CustomFieldEntity::Company,
        "custom_region",
        "Region",
        CustomFieldType::Text,
    );
    region.default_value = Some(json!("EU"));
    let contact_only = CustomFieldDefinition::new(
        ws,
        CustomFieldEntity::Contact,
        "custom_tier",
        "Tier",
        CustomFieldType::Text,
    );
    for d in [region, contact_only] {
        seed(&w.t, &w.ws, &d).await;
    }
    let c = w.company(json!({"name": "A"})).await;
    assert_eq!(c["customFields"], json!({"custom_region": "EU"}));
    let one = format!("{}/{}", companies(&w.ws), c["_id"].as_str().unwrap());
    let r =
        w.t.patch(
            &one,
            w.tok(),
            json!({"customFields": {"custom_region": "APAC"}}),
        )
        .await;
    assert_eq!(r.ok(200)["customFields"], json!({"custom_region": "APAC"}));
    let r =
        w.t.patch(
            &one,
            w.tok(),
            json!({"customFields": {"custom_tier": "gold"}}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "customFields.custom_tier");
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
    let url = companies(&w.ws);
    let c = w.company(json!({"name": "A"})).await;
    let one = format!("{url}/{}", c["_id"].as_str().unwrap());

    let v = Some(viewer.access.as_str());
    w.t.get(&url, v).await.ok(200);
    w.t.get(&one, v).await.ok(200);
    w.t.post(&url, v, json!({"name": "V"}))
        .await
        .problem(403, "forbidden");
    w.t.patch(&one, v, json!({"name": "V"}))
        .await
        .problem(403, "forbidden");
    w.t.delete(&one, v).await.problem(403, "forbidden");

    let m = Some(member.access.as_str());
    w.t.post(&url, m, json!({"name": "M", "assignedTo": member.id}))
        .await
        .ok(201);
    w.t.patch(&one, m, json!({"industry": "Retail"}))
        .await
        .ok(200);
    w.t.delete(&one, m).await.problem(403, "forbidden");
    w.t.delete(&format!("{one}?purge=true"), m)
        .await
        .problem(403, "forbidden");
    w.t.post(&format!("{one}/restore"), m, json!({}))
        .await
        .problem(403, "forbidden");
    w.t.post(&format!("{url}/bulk-delete"), m, json!({"ids": [c["_id"]]}))
        .await
        .problem(403, "forbidden");

    let a = Some(admin.access.as_str());
    let r =
        w.t.post(&format!("{url}/bulk-delete"), a, json!({"ids": [c["_id"]]}))
            .await;
    assert_eq!(r.ok(200)["matched"], 1);
    w.t.post(&format!("{one}/restore"), a, json!({}))
        .await
        .ok(200);
    assert_eq!(
        w.t.delete(&format!("{one}?purge=true"), a).await.status,
        204
    );
}

#[tokio::test]
async fn another_workspace_is_invisible() {
    let w = world().await;
    let b_ws = w.t.workspace(&w.owner, "Workspace B").await;
    let b =
        w.t.post(
            &companies(&b_ws),
            w.tok(),
            json!({"name": "B Corp", "industry": "Mining"}),
        )
        .await
        .ok(201)
        .clone();
    let b_id = b["_id"].as_str().unwrap();
    let in_a = format!("{}/{b_id}", companies(&w.ws));
    w.t.get(&in_a, w.tok()).await.problem(404, "not_found");
    w.t.patch(&in_a, w.tok(), json!({"name": "X"}))
        .await
        .problem(404, "not_found");
    w.t.delete(&in_a, w.tok()).await.problem(404, "not_found");
    w.t.delete(&format!("{in_a}?purge=true"), w.tok())
        .await
        .problem(404, "not_found");
    w.t.post(&format!("{in_a}/restore"), w.tok(), json!({}))
        .await
        .problem(404, "not_found");

    let r =
        w.t.post(
            &companies(&w.ws),
            w.tok(),
            json!({"name": "Child", "parentCompanyId": b_id}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "parentCompanyId");
    let outsider = w.t.register("outsider@example.com").await;
    let r =
        w.t.post(
            &companies(&w.ws),
            w.tok(),
            json!({"name": "A", "assignedTo": outsider.id}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "assignedTo");

    assert_eq!(w.list("industry=mining").await["companies"], json!([]));
    assert_eq!(
        w.list(&format!("parentCompanyId={b_id}")).await["companies"],
        json!([])
    );
    let r =
        w.t.post(
            &format!("{}/bulk-delete", companies(&w.ws)),
            w.tok(),
            json!({"ids": [b_id]}),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 0);
    w.t.get(&format!("{}/{b_id}", companies(&b_ws)), w.tok())
        .await
        .ok(200);
}

#[tokio::test]
async fn list_filters_sort_and_paging() {
    let w = world().await;
    let specs = [
        json!({"name": "Alpha", "industry": "Software", "companySize": "1-10", "status": "customer", "tags": ["eu"]}),
        json!({"name": "Beta", "industry": "Enterprise SOFTWARE", "companySize": "11-50", "tags": ["us"]}),
        json!({"name": "Gamma", "industry": "Retail", "companySize": "1-10", "website": "gamma.io"}),
    ];
    for s in specs {
        w.company(s).await;
        w.t.clock.advance_secs(1);
    }
    let total = |v: &Value| v["pagination"]["total"].as_u64().unwrap();
    assert_eq!(names(&w.list("").await), ["Gamma", "Beta", "Alpha"]);
    assert_eq!(
        names(&w.list("industry=software&sort=name").await),
        ["Alpha", "Beta"]
    );
    assert_eq!(total(&w.list("companySize=1-10").await), 2);
    assert_eq!(names(&w.list("status=customer").await), ["Alpha"]);
    assert_eq!(total(&w.list("tags=eu,us").await), 2);
    assert_eq!(names(&w.list("search=gamma.io").await), ["Gamma"]);
    let r =
        w.t.get(&format!("{}?companySize=huge", companies(&w.ws)), w.tok())
            .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "companySize");

    for i in 0..20 {
        w.company(json!({"name": format!("Z{i:02}")})).await;
    }
    let first = w.list("").await;
    assert_eq!(
        first["pagination"],
        json!({"page": 1, "limit": 20, "total": 23, "pages": 2})
    );
    assert_eq!(names(&w.list("page=2").await).len(), 3);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = w.list(&format!("cursor={cursor}&limit=7&sort=-name")).await;
        seen.extend(names(&page));
        match page["pagination"]["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let mut want = names(&w.list("limit=100").await);
    want.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, want);
    let slim = w.list("fields=name,industry&limit=1&sort=name").await;
    assert_eq!(
        slim["companies"][0],
        json!({"_id": slim["companies"][0]["_id"], "name": "Alpha", "industry": "Software"})
    );
}

#[tokio::test]
async fn trash_and_purge_clear_references() {
    let w = world().await;
    let parent = w.company(json!({"name": "Parent"})).await;
    let pid = parent["_id"].as_str().unwrap();
    let child = w
        .company(json!({"name": "Child", "parentCompanyId": pid}))
        .await;
    let contact =
        w.t.post(
            &contacts(&w.ws),
            w.tok(),
            json!({"firstName": "Ann", "companyId": pid}),
        )
        .await
        .ok(201)
        .clone();
    let one = format!("{}/{pid}", companies(&w.ws));

    // In the trash: hidden, not referable, restorable; references are kept.
    assert_eq!(w.t.delete(&one, w.tok()).await.status, 204);
    w.t.get(&one, w.tok()).await.problem(404, "not_found");
    assert_eq!(names(&w.list("").await), ["Child"]);
    assert_eq!(names(&w.list("deleted=true").await), ["Parent"]);
    let r =
        w.t.post(
            &contacts(&w.ws),
            w.tok(),
            json!({"firstName": "Bob", "companyId": pid}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "companyId");
    let r =
        w.t.post(&format!("{one}/restore"), w.tok(), json!({}))
            .await;
    assert_eq!(r.ok(200)["name"], "Parent");

    // Purged: gone for good, and nothing points at it any more.
    assert_eq!(
        w.t.delete(&format!("{one}?purge=true"), w.tok())
            .await
            .status,
        204
    );
    w.t.post(&format!("{one}/restore"), w.tok(), json!({}))
        .await
        .problem(404, "not_found");
    let c =
        w.t.get(
            &format!("{}/{}", contacts(&w.ws), contact["_id"].as_str().unwrap()),
            w.tok(),
        )
        .await;
    assert!(c.ok(200).get("companyId").is_none(), "{}", c.body);
    let ch =
        w.t.get(
            &format!("{}/{}", companies(&w.ws), child["_id"].as_str().unwrap()),
            w.tok(),
        )
        .await;
    assert!(ch.ok(200).get("parentCompanyId").is_none(), "{}", ch.body);
}
