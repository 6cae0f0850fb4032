//! Contact lists over HTTP: static membership, dynamic lists (AND/OR, custom fields), condition
//! checks naming their path, the trash, the role table and workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use axum::http::Method;
use common::{Account, TestApp, World, add_member, seed, world};
use crm_core::accounts::Role;
use crm_core::entities::contact_list::{
    ContactList, ListCondition, ListFilters, ListOperator, ListType, Logic,
};
use crm_core::entities::custom_field::{CustomFieldDefinition, CustomFieldEntity, CustomFieldType};
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

async fn contact(t: &TestApp, ws: &str, tok: Option<&str>, body: Value) -> String {
    let r = t.post(&url(ws, "contacts"), tok, body).await;
    id(r.ok(201))
}

async fn list(t: &TestApp, ws: &str, tok: Option<&str>, body: Value) -> Value {
    let r = t.post(&url(ws, "contact-lists"), tok, body).await;
    r.ok(201).clone()
}

async fn members(t: &TestApp, ws: &str, tok: Option<&str>, list: &str, q: &str) -> Vec<String> {
    let r = t
        .get(&url(ws, &format!("contact-lists/{list}/contacts{q}")), tok)
        .await;
    let mut v: Vec<String> = r.ok(200)["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["firstName"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

async fn add(t: &TestApp, ws: &str, tok: Option<&str>, list: &str, ids: &[&str]) -> common::Resp {
    t.post(
        &url(ws, &format!("contact-lists/{list}/members")),
        tok,
        json!({"contactIds": ids}),
    )
    .await
}

async fn remove(
    t: &TestApp,
    ws: &str,
    tok: Option<&str>,
    list: &str,
    ids: &[&str],
) -> common::Resp {
    t.call(
        Method::DELETE,
        &url(ws, &format!("contact-lists/{list}/members")),
        tok,
        Some(json!({"contactIds": ids})),
    )
    .await
}

async fn define(w: &World, key: &str, ty: CustomFieldType) {
    let d = CustomFieldDefinition::new(
        w.ws.parse().unwrap(),
        CustomFieldEntity::Contact,
        key,
        key.trim_start_matches("custom_"),
        ty,
    );
    seed(&w.t, &w.ws, &d).await;
}

#[tokio::test]
async fn static_lists_add_remove_and_list_members() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let ada = contact(t, ws, tok, json!({"firstName": "Ada", "tags": ["vip"]})).await;
    let bob = contact(t, ws, tok, json!({"firstName": "Bob"})).await;
    let cyd = contact(t, ws, tok, json!({"firstName": "Cyd"})).await;

    let l = list(
        t,
        ws,
        tok,
        json!({"name": " Newsletter ", "contacts": [ada]}),
    )
    .await;
    assert_eq!(l["name"], "Newsletter");
    assert_eq!(l["type"], "static");
    assert_eq!(l["cachedCount"], 1);
    assert_eq!(l["userId"], w.owner.id.as_str());
    let lid = id(&l);

    // Adding twice is a no-op.
    let r = add(t, ws, tok, &lid, &[&bob, &ada, &bob]).await;
    let r = r.ok(200);
    assert_eq!(r["contacts"], json!([ada, bob]));
    assert_eq!(r["cachedCount"], 2);
    let r = add(t, ws, tok, &lid, &[&bob]).await;
    assert_eq!(r.ok(200)["contacts"], json!([ada, bob]));
    assert_eq!(members(t, ws, tok, &lid, "").await, ["Ada", "Bob"]);

    // The member page takes the contact list's parameters.
    assert_eq!(members(t, ws, tok, &lid, "?tags=vip").await, ["Ada"]);
    assert_eq!(members(t, ws, tok, &lid, "?search=bob").await, ["Bob"]);
    let r = t
        .get(
            &url(
                ws,
                &format!("contact-lists/{lid}/contacts?sort=firstName&limit=1&fields=firstName"),
            ),
            tok,
        )
        .await;
    let r = r.ok(200);
    assert_eq!(r["contacts"], json!([{"_id": ada, "firstName": "Ada"}]));
    assert_eq!(r["pagination"]["total"], 2);
    t.get(
        &url(ws, &format!("contact-lists/{lid}/contacts?sort=notes")),
        tok,
    )
    .await
    .problem(422, "invalid");

    // Removing: members go, non-members are ignored.
    let r = remove(t, ws, tok, &lid, &[&ada, &cyd]).await;
    assert_eq!(r.ok(200)["contacts"], json!([bob]));
    assert_eq!(members(t, ws, tok, &lid, "").await, ["Bob"]);

    // Unknown ids are named; nothing is added.
    let ghost = crm_core::ObjectId::new().to_hex();
    let r = add(t, ws, tok, &lid, &[&cyd, &ghost]).await;
    let p = r.problem(422, "invalid");
    assert_eq!(p.body["field"], "contactIds");
    assert!(p.body["detail"].as_str().unwrap().contains(&ghost));
    assert!(!p.body["detail"].as_str().unwrap().contains(&cyd));
    add(t, ws, tok, &lid, &["nope"])
        .await
        .problem(422, "invalid");
    let too_many: Vec<String> = (0..501)
        .map(|_| crm_core::ObjectId::new().to_hex())
        .collect();
    let refs: Vec<&str> = too_many.iter().map(String::as_str).collect();
    add(t, ws, tok, &lid, &refs).await.problem(422, "invalid");
    let r = t.get(&url(ws, &format!("contact-lists/{lid}")), tok).await;
    assert_eq!(r.ok(200)["contacts"], json!([bob]));

    // Patch, list, count, delete.
    let r = t
        .patch(
            &url(ws, &format!("contact-lists/{lid}")),
            tok,
            json!({"name": "Renamed", "description": "d", "color": "#ff0000"}),
        )
        .await;
    assert_eq!(r.ok(200)["name"], "Renamed");
    t.patch(
        &url(ws, &format!("contact-lists/{lid}")),
        tok,
        json!({"type": "dynamic"}),
    )
    .await
    .problem(422, "invalid");
    t.patch(
        &url(ws, &format!("contact-lists/{lid}")),
        tok,
        json!({"filters": {"conditions": [{"field": "status", "operator": "exists"}]}}),
    )
    .await
    .problem(422, "invalid");
    list(t, ws, tok, json!({"name": "Other"})).await;
    let r = t.get(&url(ws, "contact-lists?sort=name"), tok).await;
    let r = r.ok(200);
    assert_eq!(r["pagination"]["total"], 2);
    assert_eq!(r["contactLists"][0]["name"], "Other");
    let r = t.get(&url(ws, "contact-lists?search=renam"), tok).await;
    assert_eq!(r.ok(200)["pagination"]["total"], 1);
    let r = t.get(&url(ws, "contact-lists?type=dynamic"), tok).await;
    assert_eq!(r.ok(200)["pagination"]["total"], 0);
    let r = t
        .get(&url(ws, &format!("contact-lists/{lid}/count")), tok)
        .await;
    assert_eq!(r.ok(200)["count"], 1);
    let r = t
        .delete(&url(ws, &format!("contact-lists/{lid}")), tok)
        .await;
    assert_eq!(r.status, 204);
    t.get(&url(ws, &format!("contact-lists/{lid}")), tok)
        .await
        .problem(404, "not_found");
    // The contacts stay.
    let r = t.get(&url(ws, "contacts"), tok).await;
    assert_eq!(r.ok(200)["pagination"]["total"], 3);
}

#[tokio::test]
async fn trashed_contacts_are_not_members() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let ada = contact(
        t,
        ws,
        tok,
        json!({"firstName": "Ada", "status": "customer"}),
    )
    .await;
    let bob = contact(
        t,
        ws,
        tok,
        json!({"firstName": "Bob", "status": "customer"}),
    )
    .await;
    let fixed = id(&list(t, ws, tok, json!({"name": "S", "contacts": [ada, bob]})).await);
    let dynamic = id(&list(
        t,
        ws,
        tok,
        json!({"name": "D", "type": "dynamic", "filters": {"conditions": [
            {"field": "status", "operator": "equals", "value": "customer"}]}}),
    )
    .await);
    let r = t.delete(&url(ws, &format!("contacts/{bob}")), tok).await;
    assert_eq!(r.status, 204);
    for l in [&fixed, &dynamic] {
        assert_eq!(members(t, ws, tok, l, "").await, ["Ada"]);
        let r = t
            .get(&url(ws, &format!("contact-lists/{l}/count")), tok)
            .await;
        assert_eq!(r.ok(200)["count"], 1);
    }
    // A trashed contact cannot be added.
    let r = add(t, ws, tok, &fixed, &[&bob]).await;
    let p = r.problem(422, "invalid");
    assert!(p.body["detail"].as_str().unwrap().contains(&bob));
    // Restored, it is a member again.
    let r = t
        .post(&url(ws, &format!("contacts/{bob}/restore")), tok, json!({}))
        .await;
    r.ok(200);
    assert_eq!(members(t, ws, tok, &fixed, "").await, ["Ada", "Bob"]);
}

#[tokio::test]
async fn dynamic_lists_with_and_or_and_custom_fields() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    define(&w, "custom_plan", CustomFieldType::Text).await;
    define(&w, "custom_seats", CustomFieldType::Number).await;
    contact(
        t,
        ws,
        tok,
        json!({"firstName": "Ada", "status": "customer", "email": "ada@acme.com",
            "tags": ["vip"], "customFields": {"custom_plan": "Pro", "custom_seats": 40}}),
    )
    .await;
    contact(
        t,
        ws,
        tok,
        json!({"firstName": "Bob", "status": "lead", "email": "bob@initech.com",
            "customFields": {"custom_plan": "Free", "custom_seats": 2}}),
    )
    .await;
    contact(
        t,
        ws,
        tok,
        json!({"firstName": "Cyd", "status": "customer"}),
    )
    .await;

    let dynamic = |conds: Value, logic: &str| {
        json!({"name": "D", "type": "dynamic",
            "filters": {"conditions": conds, "logic": logic}})
    };
    let cases: Vec<(Value, &str, Vec<&str>)> = vec![
        (
            json!([{"field": "status", "operator": "equals", "value": "customer"}]),
            "AND",
            vec!["Ada", "Cyd"],
        ),
        (
            json!([{"field": "status", "operator": "equals", "value": "customer"},
                {"field": "email", "operator": "exists"}]),
            "AND",
            vec!["Ada"],
        ),
        (
            json!([{"field": "customFields.custom_seats", "operator": "greater_than", "value": 10},
                {"field": "firstName", "operator": "equals", "value": "Cyd"}]),
            "OR",
            vec!["Ada", "Cyd"],
        ),
        (
            json!([{"field": "customFields.custom_plan", "operator": "contains", "value": "pr"}]),
            "AND",
            vec!["Ada"],
        ),
        (
            json!([{"field": "customFields.custom_plan", "operator": "in", "value": ["Free", "Team"]}]),
            "AND",
            vec!["Bob"],
        ),
        (
            json!([{"field": "email", "operator": "not_contains", "value": "ACME"},
                {"field": "tags", "operator": "not_in", "value": ["vip"]}]),
            "AND",
            vec!["Bob", "Cyd"],
        ),
        (
            json!([{"field": "email", "operator": "not_exists"}]),
            "AND",
            vec!["Cyd"],
        ),
        (
            json!([{"field": "customFields.custom_seats", "operator": "less_than", "value": 10},
                {"field": "status", "operator": "not_equals", "value": "lead"}]),
            "AND",
            vec![],
        ),
    ];
    for (conds, logic, want) in cases {
        let l = list(t, ws, tok, dynamic(conds.clone(), logic)).await;
        assert_eq!(l["cachedCount"], want.len(), "{conds}");
        assert_eq!(members(t, ws, tok, &id(&l), "").await, want, "{conds}");
    }

    // The conditions are the list: a new matching contact is a member at once, and a patch
    // replaces them (and recounts).
    let l = list(
        t,
        ws,
        tok,
        dynamic(
            json!([{"field": "status", "operator": "equals", "value": "prospect"}]),
            "AND",
        ),
    )
    .await;
    let lid = id(&l);
    assert_eq!(members(t, ws, tok, &lid, "").await, Vec::<String>::new());
    contact(
        t,
        ws,
        tok,
        json!({"firstName": "Dee", "status": "prospect"}),
    )
    .await;
    assert_eq!(members(t, ws, tok, &lid, "").await, ["Dee"]);
    let r = t
        .patch(
            &url(ws, &format!("contact-lists/{lid}")),
            tok,
            json!({"filters": {"logic": "OR", "conditions": [
                {"field": "firstName", "operator": "in", "value": ["Ada", "Bob"]}]}}),
        )
        .await;
    let r = r.ok(200);
    assert_eq!(r["cachedCount"], 2);
    assert_eq!(r["filters"]["logic"], "OR");
    assert_eq!(members(t, ws, tok, &lid, "").await, ["Ada", "Bob"]);
    // Members cannot be added to a dynamic list.
    let ada = contact(t, ws, tok, json!({"firstName": "Eve"})).await;
    add(t, ws, tok, &lid, &[&ada]).await.problem(422, "invalid");
}

#[tokio::test]
async fn invalid_conditions_name_their_path() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    define(&w, "custom_seats", CustomFieldType::Number).await;
    let ok = json!({"field": "status", "operator": "equals", "value": "lead"});
    let cases = [
        (
            json!({"field": "nickname", "operator": "equals", "value": "x"}),
            "filters.conditions[2].field",
        ),
        (
            json!({"field": "workspaceId", "operator": "equals", "value": ws}),
            "filters.conditions[2].field",
        ),
        (
            json!({"field": "customFields.custom_nope", "operator": "exists"}),
            "filters.conditions[2].field",
        ),
        (
            json!({"field": "status", "operator": "resembles", "value": "x"}),
            "filters.conditions[2].operator",
        ),
        (
            json!({"field": "status", "operator": "equals", "value": "vip"}),
            "filters.conditions[2].value",
        ),
        (
            json!({"field": "customFields.custom_seats", "operator": "greater_than", "value": "many"}),
            "filters.conditions[2].value",
        ),
        (
            json!({"field": "email", "operator": "greater_than", "value": "a"}),
            "filters.conditions[2].operator",
        ),
        (
            json!({"field": "tags", "operator": "in", "value": "vip"}),
            "filters.conditions[2].value",
        ),
        (
            json!({"field": "createdAt", "operator": "less_than", "value": "soon"}),
            "filters.conditions[2].value",
        ),
    ];
    for (bad, path) in cases {
        let r = t
            .post(
                &url(ws, "contact-lists"),
                tok,
                json!({"name": "D", "type": "dynamic",
                    "filters": {"conditions": [ok, ok, bad]}}),
            )
            .await;
        assert_eq!(r.problem(422, "invalid").body["field"], path, "{bad}");
    }
    for (body, field) in [
        (json!({"name": "D", "type": "dynamic"}), "filters"),
        (
            json!({"name": "D", "type": "dynamic", "filters": {"conditions": []}}),
            "filters.conditions",
        ),
        (
            json!({"name": "D", "type": "dynamic", "filters": {"conditions": [ok], "logic": "XOR"}}),
            "filters.logic",
        ),
        (
            json!({"name": "S", "filters": {"conditions": [ok]}}),
            "filters",
        ),
        (json!({"name": "", "type": "static"}), "name"),
        (json!({"name": "S", "type": "smart"}), "type"),
        (json!({"name": "S", "members": []}), "members"),
    ] {
        let r = t.post(&url(ws, "contact-lists"), tok, body.clone()).await;
        assert_eq!(r.problem(422, "invalid").body["field"], field, "{body}");
    }
    let r = t.get(&url(ws, "contact-lists"), tok).await;
    assert_eq!(r.ok(200)["pagination"]["total"], 0);
}

#[tokio::test]
async fn lists_stay_in_their_workspace() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let other = t.workspace(&w.owner, "Other").await;
    let mine = contact(t, ws, tok, json!({"firstName": "Ada", "status": "lead"})).await;
    let theirs = contact(
        t,
        &other,
        tok,
        json!({"firstName": "Zed", "status": "lead"}),
    )
    .await;
    let their_list = id(&list(
        t,
        &other,
        tok,
        json!({"name": "Theirs", "contacts": [theirs]}),
    )
    .await);
    let my_list = id(&list(t, ws, tok, json!({"name": "Mine"})).await);

    // Another workspace's list id under this workspace's path.
    for (m, rest) in [
        (Method::GET, format!("contact-lists/{their_list}")),
        (Method::GET, format!("contact-lists/{their_list}/contacts")),
        (Method::GET, format!("contact-lists/{their_list}/count")),
        (Method::DELETE, format!("contact-lists/{their_list}")),
    ] {
        t.call(m, &url(ws, &rest), tok, None)
            .await
            .problem(404, "not_found");
    }
    t.patch(
        &url(ws, &format!("contact-lists/{their_list}")),
        tok,
        json!({"name": "x"}),
    )
    .await
    .problem(404, "not_found");
    add(t, ws, tok, &their_list, &[&mine])
        .await
        .problem(404, "not_found");
    remove(t, ws, tok, &their_list, &[&theirs])
        .await
        .problem(404, "not_found");

    // Another workspace's contact in a body.
    let r = add(t, ws, tok, &my_list, &[&theirs]).await;
    let p = r.problem(422, "invalid");
    assert!(p.body["detail"].as_str().unwrap().contains(&theirs));
    t.post(
        &url(ws, "contact-lists"),
        tok,
        json!({"name": "S", "contacts": [theirs]}),
    )
    .await
    .problem(422, "invalid");

    // A stored condition naming the workspace cannot reach past it: the scope adds its own.
    let mut sneaky = ContactList::new(
        ws.parse().unwrap(),
        w.owner.id.parse().unwrap(),
        "Sneaky",
        ListType::Dynamic,
    );
    sneaky.filters = ListFilters {
        conditions: vec![
            ListCondition {
                field: "workspaceId".into(),
                operator: ListOperator::Equals,
                value: json!(other),
            },
            ListCondition {
                field: "workspaceId".into(),
                operator: ListOperator::NotEquals,
                value: json!(ws),
            },
            ListCondition {
                field: "status".into(),
                operator: ListOperator::Equals,
                value: json!("lead"),
            },
        ],
        logic: Logic::Or,
    };
    let sneaky = seed(t, ws, &sneaky).await;
    assert_eq!(members(t, ws, tok, &sneaky, "").await, ["Ada"]);
    let r = t
        .get(&url(ws, &format!("contact-lists/{sneaky}/count")), tok)
        .await;
    assert_eq!(r.ok(200)["count"], 1);

    // The other workspace's list is untouched.
    let r = t
        .get(&url(&other, &format!("contact-lists/{their_list}")), tok)
        .await;
    assert_eq!(r.ok(200)["contacts"], json!([theirs]));
    let r = t.get(&url(ws, "contact-lists"), tok).await;
    assert_eq!(r.ok(200)["pagination"]["total"], 2);
}

async fn as_role(t: &TestApp, ws: &str, email: &str, role: Role) -> Account {
    let a = t.register(email).await;
    add_member(t, ws, &a, role).await;
    a
}

#[tokio::test]
async fn role_table() {
    let w = world().await;
    let (t, ws) = (&w.t, w.ws.as_str());
    let ada = contact(t, ws, w.tok(), json!({"firstName": "Ada"})).await;
    let lid = id(&list(t, ws, w.tok(), json!({"name": "L"})).await);
    let vic = as_role(t, ws, "vic@example.com", Role::Viewer).await;
    let mel = as_role(t, ws, "mel@example.com", Role::Member).await;
    let adm = as_role(t, ws, "adm@example.com", Role::Admin).await;
    let one = url(ws, &format!("contact-lists/{lid}"));

    // Viewer: reads only.
    let v = Some(vic.access.as_str());
    t.get(&url(ws, "contact-lists"), v).await.ok(200);
    t.get(&one, v).await.ok(200);
    t.get(&format!("{one}/contacts"), v).await.ok(200);
    t.get(&format!("{one}/count"), v).await.ok(200);
    t.post(&url(ws, "contact-lists"), v, json!({"name": "x"}))
        .await
        .problem(403, "forbidden");
    t.patch(&one, v, json!({"name": "x"}))
        .await
        .problem(403, "forbidden");
    add(t, ws, v, &lid, &[&ada]).await.problem(403, "forbidden");
    remove(t, ws, v, &lid, &[&ada])
        .await
        .problem(403, "forbidden");
    t.delete(&one, v).await.problem(403, "forbidden");

    // Member: creates and edits, no delete.
    let m = Some(mel.access.as_str());
    let mine = id(&list(t, ws, m, json!({"name": "Mel's"})).await);
    t.patch(&one, m, json!({"name": "Edited"})).await.ok(200);
    add(t, ws, m, &lid, &[&ada]).await.ok(200);
    remove(t, ws, m, &lid, &[&ada]).await.ok(200);
    t.delete(&one, m).await.problem(403, "forbidden");

    // Admin: everything.
    let a = Some(adm.access.as_str());
    add(t, ws, a, &mine, &[&ada]).await.ok(200);
    let r = t
        .delete(&url(ws, &format!("contact-lists/{mine}")), a)
        .await;
    assert_eq!(r.status, 204);
    let r = t.delete(&one, a).await;
    assert_eq!(r.status, 204);

    // Not a member: the workspace does not exist.
    let out = t.register("out@example.com").await;
    t.get(&url(ws, "contact-lists"), Some(&out.access))
        .await
        .problem(404, "not_found");
    t.get(&url(ws, "contact-lists"), None)
        .await
        .problem(401, "unauthenticated");
}
