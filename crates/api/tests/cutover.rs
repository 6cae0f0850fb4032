//! Serving a database the original wrote (issue 7, ADR 0025), over HTTP and on whichever store
//! `CLIANTA_TEST_API_STORE` names: documents shaped as Mongoose writes them (inserted raw through
//! the storage port, not through this server's types), old bcrypt passwords, Google-only
//! accounts, lists that survive a document that does not fit, and fields this server does not
//! know surviving its writes. `doctor` and the migrations on the embedded store are at the end.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use clianta_api::router;
use common::{TestApp, world};
use crm_core::accounts::{Mail, MailKind, Mailer};
use crm_core::entities::contact::CONTACT;
use crm_core::entities::opportunity::OPPORTUNITY;
use crm_core::entities::project::PROJECT;
use crm_core::entities::task::TASK;
use crm_core::entities::user::USER;
use crm_core::migrate::{self, MIGRATIONS};
use crm_core::migrations::doctor;
use crm_core::{
    Document, DocumentStore, EntityDef, ObjectId, StoreAdmin, SystemClock, Tenant, WorkspaceId,
};
use serde_json::{Value, json};
use storage_sqlite::SqliteStore;

fn doc(v: Value) -> Document {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

async fn insert_raw(t: &TestApp, tenant: Tenant, def: &'static EntityDef, v: Value) -> String {
    let d = t
        .state
        .storage
        .docs
        .insert(tenant, def, doc(v))
        .await
        .unwrap();
    d["_id"].as_str().unwrap().to_owned()
}

async fn get_raw(t: &TestApp, tenant: Tenant, def: &'static EntityDef, id: &str) -> Value {
    Value::Object(
        t.state
            .storage
            .docs
            .get(tenant, def, id.parse().unwrap())
            .await
            .unwrap(),
    )
}

fn in_ws(ws: &str) -> Tenant {
    Tenant::Workspace(ws.parse().unwrap())
}

#[derive(Default)]
struct Outbox(Mutex<Vec<Mail>>);

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: Mail) -> crm_core::Result<()> {
        self.0.lock().unwrap().push(mail);
        Ok(())
    }
}

fn app_with_outbox() -> (TestApp, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::default());
    let mut t = TestApp::new();
    t.state = t.state.clone().with_mailer(outbox.clone());
    t.app = router(t.state.clone());
    (t, outbox)
}

async fn login(t: &TestApp, email: &str, password: &str) -> u16 {
    t.post(
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
    .status
    .as_u16()
}

#[tokio::test]
async fn an_original_account_logs_in_with_its_cost_12_bcrypt_hash_which_is_then_replaced() {
    let t = TestApp::new();
    let hash = bcrypt::hash("legacy pass", 12).unwrap();
    assert!(hash.starts_with("$2b$12$"), "{hash}");
    let id = insert_raw(
        &t,
        Tenant::Global,
        &USER,
        json!({
            "email": "legacy@example.com", "password": hash, "name": "Legacy",
            "isVerified": true, "authProvider": "email", "timezone": "Europe/Paris",
            "profession": "Engineer", "__v": 0, "onboardingStep": 4,
            "createdAt": "2023-05-01T08:00:00.000Z", "updatedAt": "2023-05-01T08:00:00.000Z"
        }),
    )
    .await;

    assert_eq!(login(&t, "legacy@example.com", "wrong pass").await, 401);
    let stored = get_raw(&t, Tenant::Global, &USER, &id).await;
    assert!(stored["password"].as_str().unwrap().starts_with("$2b$12$"));

    // The original's emails are stored lowercased; a login may type them any way.
    let r = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": " Legacy@Example.com ", "password": "legacy pass"}),
        )
        .await;
    let body = r.ok(200);
    assert_eq!(body["user"]["_id"], id);
    assert_eq!(body["user"]["isVerified"], true);
    assert_eq!(body["user"]["authProvider"], "email");
    let stored = get_raw(&t, Tenant::Global, &USER, &id).await;
    assert!(
        stored["password"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$"),
        "{stored}"
    );
    // Only the hash changed: what this server does not know is still there.
    assert_eq!(stored["__v"], 0);
    assert_eq!(stored["onboardingStep"], 4);
    assert_eq!(stored["timezone"], "Europe/Paris");
    assert_eq!(login(&t, "legacy@example.com", "legacy pass").await, 200);
}

#[tokio::test]
async fn a_google_only_account_cannot_log_in_with_a_password_but_can_set_one_by_reset() {
    let (t, outbox) = app_with_outbox();
    let id = insert_raw(
        &t,
        Tenant::Global,
        &USER,
        json!({
            "email": "gina@example.com", "name": "Gina", "isVerified": true,
            "authProvider": "google", "googleId": "g-123", "profilePicture": "https://p.example/g",
            "__v": 0, "createdAt": "2023-05-01T08:00:00.000Z",
            "updatedAt": "2023-05-01T08:00:00.000Z"
        }),
    )
    .await;
    assert_eq!(login(&t, "gina@example.com", "Anything-1").await, 401);

    t.post(
        "/api/v1/auth/forgot-password",
        None,
        json!({"email": "gina@example.com"}),
    )
    .await
    .ok(202);
    let token = {
        let mails = outbox.0.lock().unwrap();
        match &mails.last().unwrap().kind {
            MailKind::ResetPassword { token } => token.clone(),
            k => panic!("not a reset mail: {k:?}"),
        }
    };
    t.post(
        "/api/v1/auth/reset-password",
        None,
        json!({"token": token, "password": "Brand-new-pw1"}),
    )
    .await
    .ok(204);
    assert_eq!(login(&t, "gina@example.com", "Brand-new-pw1").await, 200);
    let stored = get_raw(&t, Tenant::Global, &USER, &id).await;
    assert_eq!(stored["googleId"], "g-123", "Google sign-in still linked");
    assert_eq!(stored["authProvider"], "google");
}

/// A contact exactly as Mongoose stores it (read back through the port as JSON).
fn original_contact(ws: &str, owner: &str, first: &str, status: &str) -> Value {
    json!({
        "workspaceId": ws, "userId": owner, "firstName": first, "lastName": null,
        "email": format!("{}@example.com", first.to_lowercase()), "tags": ["imported"],
        "status": status, "lifecycleStage": "lead",
        "customFields": {"custom_region": "EMEA", "custom_size": 3},
        "zapierId": "zap-1", "legacyScore": {"v": 7}, "__v": 0,
        "createdAt": "2024-03-01T09:00:00.000Z", "updatedAt": "2024-03-01T09:00:00.000Z"
    })
}

#[tokio::test]
async fn a_list_leaves_out_a_document_that_does_not_fit_and_names_it() {
    let w = world().await;
    let url = format!("/api/v1/workspaces/{}/contacts", w.ws);
    let good = insert_raw(
        &w.t,
        in_ws(&w.ws),
        &CONTACT,
        original_contact(&w.ws, &w.owner.id, "Ada", "customer"),
    )
    .await;
    let bad = insert_raw(
        &w.t,
        in_ws(&w.ws),
        &CONTACT,
        original_contact(&w.ws, &w.owner.id, "Vic", "vip"),
    )
    .await;

    let r = w.t.get(&url, w.tok()).await;
    let body = r.ok(200);
    let ids: Vec<&str> = body["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [good.as_str()]);
    assert_eq!(
        body["warnings"],
        json!([{
            "collection": "contacts", "_id": bad, "field": "status",
            "reason": body["warnings"][0]["reason"]
        }])
    );
    assert!(
        body["warnings"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("vip")
    );
    // The good one reads in full, its Map as an object.
    let one = w.t.get(&format!("{url}/{good}"), w.tok()).await;
    assert_eq!(one.ok(200)["customFields"]["custom_region"], "EMEA");

    // A list of another entity, served by the shared list helper.
    let tasks = format!("/api/v1/workspaces/{}/tasks", w.ws);
    let bad_task = insert_raw(
        &w.t,
        in_ws(&w.ws),
        &TASK,
        json!({"userId": w.owner.id, "createdBy": w.owner.id, "title": "Imported",
               "status": "todo", "priority": "someday", "tags": [], "__v": 0,
               "createdAt": "2024-03-01T09:00:00.000Z",
               "updatedAt": "2024-03-01T09:00:00.000Z"}),
    )
    .await;
    let body = w.t.get(&tasks, w.tok()).await.ok(200).clone();
    assert_eq!(body["tasks"], json!([]));
    assert_eq!(body["warnings"][0]["_id"], bad_task);
    assert_eq!(body["warnings"][0]["field"], "priority");

    // Opportunities with a value the original would never write.
    let deals = format!("/api/v1/workspaces/{}/opportunities", w.ws);
    let ws_id = w.ws.clone();
    let bad_deal = insert_raw(
        &w.t,
        in_ws(&w.ws),
        &OPPORTUNITY,
        json!({"workspaceId": ws_id, "userId": w.owner.id, "pipelineId": ObjectId::new().to_hex(),
               "stageId": ObjectId::new().to_hex(), "title": "Text value", "value": "lots",
               "createdAt": "2024-03-01T09:00:00.000Z",
               "updatedAt": "2024-03-01T09:00:00.000Z"}),
    )
    .await;
    let body = w.t.get(&deals, w.tok()).await.ok(200).clone();
    assert_eq!(body["warnings"][0]["_id"], bad_deal);
    assert_eq!(body["warnings"][0]["field"], "value");

    // Another workspace's misfit is not this workspace's warning.
    let stranger = w.t.register("stranger@example.com").await;
    let their_ws = w.t.workspace(&stranger, "Theirs").await;
    insert_raw(
        &w.t,
        in_ws(&their_ws),
        &CONTACT,
        original_contact(&their_ws, &stranger.id, "Zed", "vip"),
    )
    .await;
    let body = w.t.get(&url, w.tok()).await.ok(200).clone();
    assert_eq!(body["warnings"].as_array().unwrap().len(), 1);
    assert_eq!(body["warnings"][0]["_id"], bad);
    let theirs = format!("/api/v1/workspaces/{their_ws}/contacts");
    w.t.get(&theirs, w.tok()).await.problem(404, "not_found");
}

#[tokio::test]
async fn fields_this_server_does_not_know_survive_its_updates() {
    let w = world().await;
    let id = insert_raw(
        &w.t,
        in_ws(&w.ws),
        &CONTACT,
        original_contact(&w.ws, &w.owner.id, "Ada", "lead"),
    )
    .await;
    let url = format!("/api/v1/workspaces/{}/contacts/{id}", w.ws);
    let r =
        w.t.patch(
            &url,
            w.tok(),
            json!({"jobTitle": "Countess", "tags": ["imported", "vip"]}),
        )
        .await;
    r.ok(200);
    let stored = get_raw(&w.t, in_ws(&w.ws), &CONTACT, &id).await;
    assert_eq!(stored["jobTitle"], "Countess");
    assert_eq!(stored["__v"], 0);
    assert_eq!(stored["zapierId"], "zap-1");
    assert_eq!(stored["legacyScore"], json!({"v": 7}));
    assert_eq!(stored["tags"], json!(["imported", "vip"]));
    assert_eq!(
        stored["customFields"],
        json!({"custom_region": "EMEA", "custom_size": 3})
    );
    assert_eq!(
        stored["lastName"],
        Value::Null,
        "a null stays null: not written"
    );
    assert_eq!(stored["email"], "ada@example.com");
    assert_eq!(stored["createdAt"], "2024-03-01T09:00:00.000Z");
}

/// `doctor` and the migrations on the embedded store, over original-shaped documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_and_migrations_on_the_embedded_store() {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    store
        .ensure_schema(&clianta_catalog::all_entities())
        .await
        .unwrap();
    let ws = WorkspaceId::new();
    let gone = WorkspaceId::new();
    let owner = ObjectId::new().to_hex();
    let project = doc(
        json!({"_id": ws.to_string(), "userId": owner, "name": "Acme",
                             "__v": 0, "createdAt": "2024-01-01T00:00:00.000Z",
                             "updatedAt": "2024-01-01T00:00:00.000Z"}),
    );
    store
        .insert(Tenant::Global, &PROJECT, project)
        .await
        .unwrap();
    let w = ws.to_string();
    let ada = store
        .insert(
            Tenant::Workspace(ws),
            &CONTACT,
            doc(original_contact(&w, &owner, "Ada", "lead")),
        )
        .await
        .unwrap();
    store
        .insert(
            Tenant::Workspace(ws),
            &CONTACT,
            doc(original_contact(&w, &owner, "Vic", "vip")),
        )
        .await
        .unwrap();
    store
        .insert(
            Tenant::Workspace(gone),
            &CONTACT,
            doc(original_contact(&gone.to_string(), &owner, "Stray", "lead")),
        )
        .await
        .unwrap();
    store
        .insert(
            Tenant::Workspace(ws),
            &OPPORTUNITY,
            doc(
                json!({"userId": owner, "pipelineId": ObjectId::new().to_hex(),
                       "stageId": ObjectId::new().to_hex(), "title": "Orphan", "value": 5,
                       "contactId": ObjectId::new().to_hex(), "companyId": null,
                       "createdAt": "2024-03-01T09:00:00.000Z",
                       "updatedAt": "2024-03-01T09:00:00.000Z"}),
            ),
        )
        .await
        .unwrap();

    let legacy = store.legacy().unwrap();
    let mut seen = Vec::new();
    let mut progress = |c: &str, n: u64| seen.push((c.to_owned(), n));
    let report = doctor::run(
        legacy,
        "sqlite",
        &clianta_catalog::all_entities(),
        &mut progress,
    )
    .await
    .unwrap();
    println!("{report}");
    assert!(seen.contains(&("contacts".to_owned(), 3)), "{seen:?}");
    let contacts = report.get("contacts").unwrap();
    assert_eq!((contacts.read, contacts.unfit, contacts.orphans), (3, 1, 1));
    assert_eq!(contacts.unfit_first[0].field, "status");
    assert!(contacts.orphans_first[0].contains(&gone.to_string()));
    assert_eq!(contacts.indexes, None, "SQLite keeps its own indexes");
    let deals = report.get("opportunities").unwrap();
    assert_eq!(deals.orphans, 1, "{:?}", deals.orphans_first);
    assert!(deals.orphans_first[0].contains("contactId"));
    // The pipeline it names is gone too, and it is one document: counted once.
    assert!(deals.orphans_first[0].contains("pipelineId"));
    assert_eq!(report.findings(), 3);
    assert!(report.to_string().contains("summary: "), "{report}");

    // Migrations run up and down here too (the index step has nothing to do on SQLite).
    let admin: &dyn StoreAdmin = store.as_ref();
    let done = migrate::up(admin, MIGRATIONS, None, &SystemClock)
        .await
        .unwrap();
    assert_eq!(
        done,
        MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>()
    );
    let after = store
        .get(
            Tenant::Workspace(ws),
            &CONTACT,
            ada["_id"].as_str().unwrap().parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(after["zapierId"], "zap-1");
    assert_eq!(after["deletedAt"], Value::Null);
    let undone = migrate::down(admin, MIGRATIONS, 0).await.unwrap();
    assert_eq!(undone.len(), MIGRATIONS.len());
    let status = migrate::status(admin, MIGRATIONS).await.unwrap();
    assert!(status.iter().all(|m| !m.applied));
}
