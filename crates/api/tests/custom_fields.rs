//! Custom-field definitions over HTTP: CRUD, the role table (Settings), another workspace's ids,
//! duplicate keys, immutable types, and `deleteData` stripping values from records.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Account, TestApp, add_member, seed};
use crm_core::accounts::Role;
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::services::custom_fields as service;
use crm_core::{Error, ObjectId, WorkspaceId};
use serde_json::{Value, json};

fn base(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/custom-fields")
}

async fn setup() -> (TestApp, Account, String) {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Acme Sales").await;
    (t, ann, ws)
}

fn keys(list: &Value) -> Vec<&str> {
    list["customFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["fieldKey"].as_str().unwrap())
        .collect()
}

/// Inserts a contact holding `custom` through the typed repository, as the contacts routes would.
async fn contact_with(t: &TestApp, ws: &str, owner: &Account, custom: Value) -> String {
    let mut c = Contact::new(ws.parse().unwrap(), owner.id.parse().unwrap(), "Ada");
    c.custom_fields = custom.as_object().unwrap().clone();
    seed(t, ws, &c).await
}

async fn contact_fields(t: &TestApp, ws: &str, id: &str) -> Value {
    let ws: WorkspaceId = ws.parse().unwrap();
    let c = t
        .state
        .stores
        .workspace(ws)
        .repo::<Contact>()
        .get(
            id.parse::<crm_core::entities::contact::ContactId>()
                .unwrap(),
        )
        .await
        .unwrap();
    Value::Object(c.custom_fields)
}

#[tokio::test]
async fn create_get_list_patch() {
    let (t, ann, ws) = setup().await;
    let tok = Some(ann.access.as_str());
    let r = t
        .post(
            &base(&ws),
            tok,
            json!({"entityType": "contact", "fieldLabel": "Lead source", "fieldType": "select",
                   "selectOptions": ["web", " event "], "defaultValue": "web"}),
        )
        .await;
    let created = r.ok(201).clone();
    assert_eq!(created["fieldKey"], "custom_lead_source");
    assert_eq!(created["selectOptions"], json!(["web", "event"]));
    assert_eq!(created["isActive"], true);
    assert_eq!(created["order"], 0);
    assert_eq!(created["workspaceId"], ws.as_str());
    assert!(created["createdAt"].is_string());
    let id = created["_id"].as_str().unwrap();

    let r = t
        .post(
            &base(&ws),
            tok,
            json!({"entityType": "contact", "fieldKey": "score", "fieldLabel": "Score",
                   "fieldType": "number", "validation": {"min": 0, "max": 100}}),
        )
        .await;
    let score = r.ok(201).clone();
    // Goes after the existing active definitions.
    assert_eq!(score["order"], 1);
    assert_eq!(score["validation"], json!({"min": 0.0, "max": 100.0}));
    t.post(
        &base(&ws),
        tok,
        json!({"entityType": "company", "fieldLabel": "Tier", "fieldType": "text"}),
    )
    .await
    .ok(201);

    let got = t.get(&format!("{}/{id}", base(&ws)), tok).await;
    assert_eq!(got.ok(200), &created);

    // Contact is the default entity type; the list is in display order.
    let list = t.get(&base(&ws), tok).await;
    assert_eq!(keys(list.ok(200)), ["custom_lead_source", "score"]);
    assert_eq!(list.body["pagination"]["total"], 2);
    let list = t
        .get(&format!("{}?entityType=company", base(&ws)), tok)
        .await;
    assert_eq!(keys(list.ok(200)), ["custom_tier"]);
    t.get(&format!("{}?entityType=lead", base(&ws)), tok)
        .await
        .problem(422, "invalid");

    let r = t
        .patch(
            &format!("{}/{id}", base(&ws)),
            tok,
            json!({"fieldLabel": "Source", "isRequired": true, "order": 5,
                   "defaultValue": null, "fieldType": "select"}),
        )
        .await;
    let patched = r.ok(200).clone();
    assert_eq!(patched["fieldLabel"], "Source");
    assert_eq!(patched["isRequired"], true);
    assert_eq!(patched["order"], 5);
    assert!(patched.get("defaultValue").is_none(), "{patched}");
    assert_eq!(patched["fieldKey"], "custom_lead_source");
    let list = t.get(&base(&ws), tok).await;
    assert_eq!(keys(list.ok(200)), ["score", "custom_lead_source"]);
}

#[tokio::test]
async fn definition_rules_answer_422_with_the_field() {
    let (t, ann, ws) = setup().await;
    let tok = Some(ann.access.as_str());
    for (body, field) in [
        (
            json!({"fieldLabel": "X", "fieldType": "text"}),
            "entityType",
        ),
        (
            json!({"entityType": "contact", "fieldLabel": "X", "fieldType": "select"}),
            "selectOptions",
        ),
        (
            json!({"entityType": "contact", "fieldKey": "9lives", "fieldLabel": "X",
                   "fieldType": "text"}),
            "fieldKey",
        ),
        (
            json!({"entityType": "contact", "fieldKey": "a.b", "fieldLabel": "X",
                   "fieldType": "text"}),
            "fieldKey",
        ),
        (
            json!({"entityType": "contact", "fieldLabel": "X", "fieldType": "text",
                   "validation": {"pattern": "(unclosed"}}),
            "validation.pattern",
        ),
        (
            json!({"entityType": "contact", "fieldLabel": "X", "fieldType": "relation"}),
            "relationConfig.targetEntity",
        ),
        (
            json!({"entityType": "contact", "fieldLabel": "X", "fieldType": "number",
                   "defaultValue": "ten"}),
            "defaultValue",
        ),
    ] {
        let r = t.post(&base(&ws), tok, body.clone()).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{body}");
    }
    // Unknown types and fields are refused by the body decoder.
    t.post(
        &base(&ws),
        tok,
        json!({"entityType": "contact", "fieldLabel": "X", "fieldType": "colour"}),
    )
    .await
    .problem(422, "invalid");
    t.post(
        &base(&ws),
        tok,
        json!({"entityType": "contact", "fieldLabel": "X", "fieldType": "text", "bogus": 1}),
    )
    .await
    .problem(422, "invalid");
}

#[tokio::test]
async fn duplicate_key_is_409_and_type_is_immutable() {
    let (t, ann, ws) = setup().await;
    let tok = Some(ann.access.as_str());
    let body = json!({"entityType": "contact", "fieldLabel": "Renewal", "fieldType": "date"});
    let id = t.post(&base(&ws), tok, body.clone()).await.ok(201)["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t.post(&base(&ws), tok, body).await;
    r.problem(409, "conflict");
    assert_eq!(r.body["field"], "fieldKey");
    // Same key on another entity type, or in another workspace, is fine.
    t.post(
        &base(&ws),
        tok,
        json!({"entityType": "deal", "fieldLabel": "Renewal", "fieldType": "date"}),
    )
    .await
    .ok(201);
    let other = t.workspace(&ann, "Other Co").await;
    t.post(
        &base(&other),
        tok,
        json!({"entityType": "contact", "fieldLabel": "Renewal", "fieldType": "date"}),
    )
    .await
    .ok(201);

    let url = format!("{}/{id}", base(&ws));
    let r = t.patch(&url, tok, json!({"fieldType": "text"})).await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "fieldType");
    let r = t.patch(&url, tok, json!({"fieldKey": "other"})).await;
    assert_eq!(r.body["field"], "fieldKey");
    let r = t.patch(&url, tok, json!({"entityType": "company"})).await;
    assert_eq!(r.body["field"], "entityType");
    let got = t.get(&url, tok).await;
    assert_eq!(got.ok(200)["fieldType"], "date");
}

#[tokio::test]
async fn delete_deactivates_unless_delete_data() {
    let (t, ann, ws) = setup().await;
    let tok = Some(ann.access.as_str());
    let mk =
        |label: &str| json!({"entityType": "contact", "fieldLabel": label, "fieldType": "text"});
    let a = t.post(&base(&ws), tok, mk("Alpha")).await.ok(201)["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = t.post(&base(&ws), tok, mk("Beta")).await.ok(201)["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c1 = contact_with(
        &t,
        &ws,
        &ann,
        json!({"custom_alpha": "x", "custom_beta": "y", "other": 1}),
    )
    .await;
    let c2 = contact_with(&t, &ws, &ann, json!({"custom_beta": "z"})).await;
    // A company holding the same key is another entity type and keeps it.
    let wsid: WorkspaceId = ws.parse().unwrap();
    let mut co = Company::new(wsid, ann.id.parse().unwrap(), "Initech");
    co.custom_fields = json!({"custom_beta": "keep"}).as_object().unwrap().clone();
    let co = t
        .state
        .stores
        .workspace(wsid)
        .repo::<Company>()
        .insert(&co)
        .await
        .unwrap();
    // Another workspace's contact with the key keeps it too.
    let bob = t.register("bob@example.com").await;
    let other = t.workspace(&bob, "Other Co").await;
    let foreign = contact_with(&t, &other, &bob, json!({"custom_beta": "theirs"})).await;

    // Plain delete: deactivated, values kept, listed only with includeInactive.
    let r = t.delete(&format!("{}/{a}", base(&ws)), tok).await;
    assert_eq!(r.status.as_u16(), 204);
    let got = t.get(&format!("{}/{a}", base(&ws)), tok).await;
    assert_eq!(got.ok(200)["isActive"], false);
    assert_eq!(keys(t.get(&base(&ws), tok).await.ok(200)), ["custom_beta"]);
    let all = t
        .get(&format!("{}?includeInactive=true", base(&ws)), tok)
        .await;
    assert_eq!(keys(all.ok(200)), ["custom_alpha", "custom_beta"]);
    assert_eq!(contact_fields(&t, &ws, &c1).await["custom_alpha"], "x");

    // deleteData: the definition is gone and the key stripped from this workspace's contacts.
    let r = t
        .delete(&format!("{}/{b}?deleteData=true", base(&ws)), tok)
        .await;
    assert_eq!(r.status.as_u16(), 204);
    t.get(&format!("{}/{b}", base(&ws)), tok)
        .await
        .problem(404, "not_found");
    assert_eq!(
        contact_fields(&t, &ws, &c1).await,
        json!({"custom_alpha": "x", "other": 1})
    );
    assert_eq!(contact_fields(&t, &ws, &c2).await, json!({}));
    let co = t
        .state
        .stores
        .workspace(wsid)
        .repo::<Company>()
        .get(co.id)
        .await
        .unwrap();
    assert_eq!(co.custom_fields["custom_beta"], "keep");
    assert_eq!(
        contact_fields(&t, &other, &foreign).await,
        json!({"custom_beta": "theirs"})
    );
    // The key is free again.
    t.post(&base(&ws), tok, mk("Beta")).await.ok(201);
}

#[tokio::test]
async fn roles_follow_the_settings_row() {
    let (t, ann, ws) = setup().await;
    let tok = Some(ann.access.as_str());
    let id = t
        .post(
            &base(&ws),
            tok,
            json!({"entityType": "contact", "fieldLabel": "Alpha", "fieldType": "text"}),
        )
        .await
        .ok(201)["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/{id}", base(&ws));
    let new =
        |label: &str| json!({"entityType": "contact", "fieldLabel": label, "fieldType": "boolean"});

    for (email, role) in [
        ("vic@example.com", Role::Viewer),
        ("mel@example.com", Role::Member),
    ] {
        let who = t.register(email).await;
        add_member(&t, &ws, &who, role).await;
        let tok = Some(who.access.as_str());
        assert_eq!(keys(t.get(&base(&ws), tok).await.ok(200)), ["custom_alpha"]);
        t.get(&url, tok).await.ok(200);
        t.post(&base(&ws), tok, new("Beta"))
            .await
            .problem(403, "forbidden");
        t.patch(&url, tok, json!({"fieldLabel": "Nope"}))
            .await
            .problem(403, "forbidden");
        t.delete(&url, tok).await.problem(403, "forbidden");
    }

    let adm = t.register("adm@example.com").await;
    add_member(&t, &ws, &adm, Role::Admin).await;
    let tok = Some(adm.access.as_str());
    t.post(&base(&ws), tok, new("Gamma")).await.ok(201);
    t.patch(&url, tok, json!({"fieldLabel": "Alpha 2"}))
        .await
        .ok(200);
    assert_eq!(t.delete(&url, tok).await.status.as_u16(), 204);

    t.get(&base(&ws), None)
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn another_workspaces_definition_is_not_found() {
    let (t, ann, ws) = setup().await;
    let tok = Some(ann.access.as_str());
    let id = t
        .post(
            &base(&ws),
            tok,
            json!({"entityType": "contact", "fieldLabel": "Alpha", "fieldType": "text"}),
        )
        .await
        .ok(201)["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bob owns another workspace and uses Ann's definition id under it.
    let bob = t.register("bob@example.com").await;
    let theirs = t.workspace(&bob, "Other Co").await;
    let btok = Some(bob.access.as_str());
    let url = format!("{}/{id}", base(&theirs));
    t.get(&url, btok).await.problem(404, "not_found");
    t.patch(&url, btok, json!({"fieldLabel": "Mine"}))
        .await
        .problem(404, "not_found");
    t.delete(&format!("{url}?deleteData=true"), btok)
        .await
        .problem(404, "not_found");
    assert_eq!(
        keys(t.get(&base(&theirs), btok).await.ok(200)),
        Vec::<&str>::new()
    );
    // Bob is no member of Ann's workspace at all.
    t.get(&format!("{}/{id}", base(&ws)), btok)
        .await
        .problem(404, "not_found");
    // Ann's definition is untouched.
    let got = t.get(&format!("{}/{id}", base(&ws)), tok).await;
    assert_eq!(got.ok(200)["fieldLabel"], "Alpha");
    assert_eq!(got.body["isActive"], true);
    // A malformed id is simply unknown.
    t.get(&format!("{}/nope", base(&ws)), tok)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn record_values_are_checked_against_stored_definitions() {
    let (t, ann, ws) = setup().await;
    let tok = Some(ann.access.as_str());
    for body in [
        json!({"entityType": "contact", "fieldKey": "employer", "fieldLabel": "Employer",
               "fieldType": "relation", "relationConfig": {"targetEntity": "company"}}),
        json!({"entityType": "contact", "fieldKey": "tier", "fieldLabel": "Tier",
               "fieldType": "select", "selectOptions": ["a", "b"], "defaultValue": "a"}),
        json!({"entityType": "contact", "fieldKey": "gone", "fieldLabel": "Gone",
               "fieldType": "text", "isActive": false}),
    ] {
        t.post(&base(&ws), tok, body).await.ok(201);
    }
    let wsid: WorkspaceId = ws.parse().unwrap();
    let scope = t.state.stores.workspace(wsid);
    let co = scope
        .repo::<Company>()
        .insert(&Company::new(wsid, ann.id.parse().unwrap(), "Initech"))
        .await
        .unwrap();
    let bob = t.register("bob@example.com").await;
    let other: WorkspaceId = t.workspace(&bob, "Other Co").await.parse().unwrap();
    let theirs = t
        .state
        .stores
        .workspace(other)
        .repo::<Company>()
        .insert(&Company::new(other, bob.id.parse().unwrap(), "Globex"))
        .await
        .unwrap();
    let check = |v: Value, partial: bool| {
        let scope = scope.clone();
        async move {
            service::check_record_values(&scope, "contact", v.as_object().unwrap(), partial).await
        }
    };

    let ok = check(json!({"employer": co.id.to_string()}), false).await;
    assert_eq!(
        Value::Object(ok.unwrap()),
        json!({"employer": co.id.to_string(), "tier": "a"})
    );
    // Another workspace's company is as unknown as a missing one.
    let r = check(json!({"employer": theirs.id.to_string()}), true).await;
    assert_eq!(
        r.unwrap_err(),
        Error::invalid("customFields.employer", "no such company in this workspace")
    );
    let r = check(json!({"employer": ObjectId::new().to_hex()}), true).await;
    assert!(r.is_err());
    // Inactive definitions do not accept values.
    let r = check(json!({"gone": "x"}), true).await;
    assert!(matches!(r, Err(Error::Invalid { field, .. }) if field == "customFields.gone"));
    let r = check(json!({"tier": "c"}), true).await;
    assert!(matches!(r, Err(Error::Invalid { field, .. }) if field == "customFields.tier"));
}
