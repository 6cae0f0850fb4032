//! A database as the original Node/Mongoose backend writes it, built by hand as BSON from the
//! spec (not from this project's serializer), served in place (issue 7, ADR 0025): read, list,
//! filter, update and read back; documents the server writes checked against the original's
//! schema rules; `doctor` on a damaged copy; the contact email index migration on clean and on
//! conflicting data. Needs the MongoDB test server, like `mongo.rs`.
// Helpers outside `#[test]` functions panic on purpose, as the tests do. The raw collection
// calls are the point: the fixtures are written, and the results read, as another program would.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crm_core::entities::activity::{Activity, ActivityType};
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::entities::opportunity::Opportunity;
use crm_core::entities::pipeline::{Pipeline, Stage};
use crm_core::entities::task::Task;
use crm_core::migrate::{self, MIGRATIONS};
use crm_core::migrations::doctor;
use crm_core::paging::PageRequest;
use crm_core::repo::Stores;
use crm_core::{
    Filter, ObjectId as CrmId, SortKey, StoreAdmin, SystemClock, Update, UserId, WorkspaceId,
};
use futures::FutureExt;
use mongodb::bson::{self, Bson, DateTime, Document, doc, oid::ObjectId};
use mongodb::options::IndexOptions;
use mongodb::{Client, Database, IndexModel};
use serde_json::json;
use storage_mongo::MongoStore;

const DEFAULT_URI: &str = "mongodb://127.0.0.1:27017/?directConnection=true";

fn uri() -> String {
    std::env::var("CLIANTA_TEST_MONGODB_URI").unwrap_or_else(|_| DEFAULT_URI.to_owned())
}

/// A fresh database: the raw driver handle (to write as the original does) and the store over
/// it (not yet given the schema: start-up does that over the original's data). Dropped after.
async fn with_db<F, Fut>(body: F)
where
    F: FnOnce(Database, MongoStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let name = format!("clianta_orig_{:016x}", rand::random::<u64>());
    let client = Client::with_uri_str(uri()).await.unwrap();
    let db = client.database(&name);
    let store = match MongoStore::connect_db(&uri(), &name).await {
        Ok(s) => s,
        Err(e) => panic!(
            "cannot reach the MongoDB test server at {}: {e}\n\
             Start one with `scripts/mongo-test-server.sh start`.",
            uri()
        ),
    };
    let outcome = AssertUnwindSafe(body(db.clone(), store.clone()))
        .catch_unwind()
        .await;
    db.drop().await.unwrap();
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}

fn date(s: &str) -> Bson {
    Bson::DateTime(DateTime::parse_rfc3339_str(s).unwrap())
}

/// The ids one fixture uses.
struct Ids {
    ws: ObjectId,
    other_ws: ObjectId,
    gone_ws: ObjectId,
    owner: ObjectId,
    company: ObjectId,
    pipeline: ObjectId,
    stage_a: ObjectId,
    stage_b: ObjectId,
    ada: ObjectId,
    no_email: ObjectId,
    vip: ObjectId,
    int_deal: ObjectId,
    double_deal: ObjectId,
}

impl Ids {
    fn new() -> Self {
        let n = ObjectId::new;
        Self {
            ws: n(),
            other_ws: n(),
            gone_ws: n(),
            owner: n(),
            company: n(),
            pipeline: n(),
            stage_a: n(),
            stage_b: n(),
            ada: n(),
            no_email: n(),
            vip: n(),
            int_deal: n(),
            double_deal: n(),
        }
    }
}

fn ws(i: &Ids) -> WorkspaceId {
    WorkspaceId(crm(i.ws))
}

fn crm(o: ObjectId) -> CrmId {
    CrmId::parse_str(&o.to_hex()).unwrap()
}

/// Mongoose's shapes: `__v`, Maps as embedded documents, optional fields absent or null, int32
/// and double in one field, ObjectId refs, BSON dates, enum strings, fields this server does not
/// know, lowercased emails.
async fn seed_original(db: &Database, i: &Ids) {
    let t0 = date("2024-03-01T09:00:00.000Z");
    let t1 = date("2024-03-02T10:30:00.250Z");
    let coll = |n: &str| db.collection::<Document>(n);
    coll("users")
        .insert_one(doc! {
            "_id": i.owner, "email": "owner@example.com",
            "password": "$2b$12$abcdefghijklmnopqrstuu0wYw0a5M5n1o6c3T1kqZ8K3u7mW2yYq",
            "name": "Owner", "isVerified": true, "authProvider": "email",
            "timezone": "Europe/Berlin", "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0,
        })
        .await
        .unwrap();
    coll("projects")
        .insert_many([
            doc! { "_id": i.ws, "userId": i.owner, "name": "Acme", "timezone": "UTC",
            "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0 },
            doc! { "_id": i.other_ws, "userId": i.owner, "name": "Other",
            "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0 },
        ])
        .await
        .unwrap();
    coll("companies")
        .insert_one(doc! {
            "_id": i.company, "workspaceId": i.ws, "userId": i.owner, "name": "Initech",
            "status": "customer", "tags": [], "isTargetAccount": false, "customFields": {},
            "address": { "city": "Austin" }, "createdAt": t0.clone(), "updatedAt": t0.clone(),
            "__v": 0,
        })
        .await
        .unwrap();
    coll("pipelines")
        .insert_one(doc! {
            "_id": i.pipeline, "workspaceId": i.ws, "userId": i.owner, "name": "Sales",
            "stages": [
                { "_id": i.stage_a, "name": "Lead", "order": 0, "color": "#3B82F6" },
                { "_id": i.stage_b, "name": "Won", "order": 1, "color": "#10B981" },
            ],
            "isDefault": true, "isActive": true,
            "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0,
        })
        .await
        .unwrap();
    coll("contacts")
        .insert_many([
            doc! {
                "_id": i.ada, "workspaceId": i.ws, "userId": i.owner, "firstName": "Ada",
                "lastName": "Lovelace", "email": "ada@example.com", "companyId": i.company,
                "tags": ["vip", "beta"], "status": "customer", "lifecycleStage": "customer",
                "customFields": { "custom_size": 3, "custom_region": "EMEA" },
                "qualityScore": 87.5, "intentScore": 40,
                "socialProfiles": { "linkedin": "https://linkedin.example/ada" },
                "lastContactedAt": t1.clone(),
                // Fields of features this server does not have.
                "zapierId": "zap-1", "legacyScore": { "v": 7, "at": t1.clone() },
                "createdAt": t0.clone(), "updatedAt": t1.clone(), "__v": 2,
            },
            doc! {
                "_id": i.no_email, "workspaceId": i.ws, "userId": i.owner, "firstName": "Nemo",
                "lastName": Bson::Null, "phone": Bson::Null, "jobTitle": Bson::Null, "tags": [], "status": "lead",
                "lifecycleStage": "lead", "customFields": {},
                "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0,
            },
            // An enum value the original's schema never allowed (written by a script).
            doc! {
                "_id": i.vip, "workspaceId": i.ws, "userId": i.owner, "firstName": "Vic",
                "email": "vic@example.com", "tags": [], "status": "vip", "customFields": {},
                "createdAt": t1.clone(), "updatedAt": t1.clone(), "__v": 0,
            },
        ])
        .await
        .unwrap();
    coll("opportunities")
        .insert_many([
            doc! {
                "_id": i.int_deal, "workspaceId": i.ws, "userId": i.owner,
                "pipelineId": i.pipeline, "stageId": i.stage_a, "title": "Int deal",
                "value": 5000_i32, "currency": "USD", "status": "open", "contactId": i.ada,
                "companyId": i.company, "associatedContacts": [i.ada], "tags": [],
                "activityCount": 0, "emailCount": 0, "callCount": 0, "meetingCount": 0,
                "stageHistory": [{ "stageId": i.stage_a, "stageName": "Lead", "enteredAt": t0.clone() }],
                "customFields": {}, "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0,
            },
            doc! {
                "_id": i.double_deal, "workspaceId": i.ws, "userId": i.owner,
                "pipelineId": i.pipeline, "stageId": i.stage_b, "title": "Double deal",
                "value": 1234.5_f64, "currency": "EUR", "status": "won", "probability": 100,
                "actualCloseDate": t1.clone(), "tags": ["q1"],
                "stageHistory": [
                    { "stageId": i.stage_a, "stageName": "Lead", "enteredAt": t0.clone(),
                      "exitedAt": t1.clone(), "duration": 91_800_250_i64 },
                    { "stageId": i.stage_b, "stageName": "Won", "enteredAt": t1.clone() },
                ],
                "createdAt": t0.clone(), "updatedAt": t1.clone(), "__v": 1,
            },
        ])
        .await
        .unwrap();
    coll("counters")
        .insert_one(doc! { "_id": format!("ticket_{}", i.ws.to_hex()), "seq": 3 })
        .await
        .unwrap();
}

/// The original's `{workspaceId: 1, email: 1}` unique sparse index, as Mongoose builds it.
async fn original_email_index(db: &Database) {
    db.collection::<Document>("contacts")
        .create_index(
            IndexModel::builder()
                .keys(doc! { "workspaceId": 1, "email": 1 })
                .options(
                    IndexOptions::builder()
                        .name("workspaceId_1_email_1".to_owned())
                        .unique(true)
                        .sparse(true)
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
}

async fn raw(db: &Database, coll: &str, id: ObjectId) -> Document {
    db.collection::<Document>(coll)
        .find_one(doc! { "_id": id })
        .await
        .unwrap()
        .unwrap()
}

fn first_page() -> PageRequest {
    PageRequest::Cursor {
        after: None,
        limit: 50,
    }
}

#[tokio::test]
async fn original_documents_are_read_listed_filtered_and_updated_in_place() {
    with_db(|db, store| async move {
        let i = Ids::new();
        seed_original(&db, &i).await;
        original_email_index(&db).await;
        // What start-up does on an existing database.
        store
            .ensure_schema(&crm_core::entities::all())
            .await
            .unwrap();
        let stores = Stores::new(Arc::new(store.clone()), Arc::new(SystemClock));
        let scope = stores.workspace(ws(&i));

        let ada = scope.repo::<Contact>().get(crm(i.ada)).await.unwrap();
        assert_eq!(ada.email.as_deref(), Some("ada@example.com"));
        assert_eq!(ada.custom_fields["custom_size"], json!(3));
        assert_eq!(ada.custom_fields["custom_region"], json!("EMEA"));
        assert_eq!(
            ada.company_id.map(|c| c.to_string()),
            Some(i.company.to_hex())
        );
        assert_eq!(
            ada.last_contacted_at.unwrap().to_canonical(),
            "2024-03-02T10:30:00.250Z"
        );
        let nemo = scope.repo::<Contact>().get(crm(i.no_email)).await.unwrap();
        assert_eq!(
            (nemo.email, nemo.phone, nemo.last_name.as_str()),
            (None, None, "")
        );

        // The list survives the document that does not fit, and names it.
        let page = scope
            .repo::<Contact>()
            .page(&Filter::all(), &[SortKey::asc("createdAt")], &first_page())
            .await
            .unwrap();
        let names: Vec<&str> = page.items.iter().map(|c| c.first_name.as_str()).collect();
        assert_eq!(names, ["Ada", "Nemo"]);
        assert_eq!(page.skipped.len(), 1, "{:?}", page.skipped);
        let s = &page.skipped[0];
        assert_eq!(
            (s.collection.as_str(), s.id.as_str(), s.field.as_str()),
            ("contacts", i.vip.to_hex().as_str(), "status")
        );

        let leads = scope
            .repo::<Contact>()
            .page(
                &Filter::eq("status", json!("lead")),
                &[SortKey::asc("createdAt")],
                &first_page(),
            )
            .await
            .unwrap();
        assert_eq!(leads.items.len(), 1);
        assert_eq!(leads.items[0].first_name, "Nemo");
        let by_custom = scope
            .repo::<Contact>()
            .count(&Filter::eq("customFields.custom_region", json!("EMEA")))
            .await
            .unwrap();
        assert_eq!(by_custom, 1);

        // int32 and double in one field, both read as numbers.
        let deals = scope
            .repo::<Opportunity>()
            .page(&Filter::all(), &[SortKey::desc("value")], &first_page())
            .await
            .unwrap();
        let values: Vec<f64> = deals.items.iter().map(|d| d.value).collect();
        assert_eq!(values, [5000.0, 1234.5]);
        assert!(deals.skipped.is_empty(), "{:?}", deals.skipped);
        let big = scope
            .repo::<Opportunity>()
            .count(&Filter::Gt("value".into(), json!(2000)))
            .await
            .unwrap();
        assert_eq!(big, 1);
        let pipeline = scope.repo::<Pipeline>().get(crm(i.pipeline)).await.unwrap();
        assert_eq!(pipeline.stages.len(), 2);
        let company = scope.repo::<Company>().get(crm(i.company)).await.unwrap();
        assert_eq!(company.name, "Initech");

        // A partial update: what the server does not know survives, untouched types stay.
        scope
            .repo::<Contact>()
            .update(
                crm(i.ada),
                &Update::new().set("jobTitle", json!("Countess")),
            )
            .await
            .unwrap();
        let after = raw(&db, "contacts", i.ada).await;
        assert_eq!(after.get_str("jobTitle").unwrap(), "Countess");
        assert_eq!(after.get("__v"), Some(&Bson::Int32(2)));
        assert_eq!(after.get_str("zapierId").unwrap(), "zap-1");
        assert_eq!(
            after.get_document("legacyScore").unwrap().get("v"),
            Some(&Bson::Int32(7))
        );
        assert_eq!(
            after
                .get_document("customFields")
                .unwrap()
                .get("custom_size"),
            Some(&Bson::Int32(3))
        );
        assert!(matches!(after.get("updatedAt"), Some(Bson::DateTime(_))));
        assert!(matches!(after.get("workspaceId"), Some(Bson::ObjectId(_))));
        assert!(matches!(after.get("companyId"), Some(Bson::ObjectId(_))));

        scope
            .repo::<Opportunity>()
            .update(
                crm(i.int_deal),
                &Update::new().set("priority", json!("high")),
            )
            .await
            .unwrap();
        let deal = raw(&db, "opportunities", i.int_deal).await;
        assert_eq!(deal.get("value"), Some(&Bson::Int32(5000)), "untouched");
        assert_eq!(deal.get_str("priority").unwrap(), "high");
        let read_back = scope
            .repo::<Opportunity>()
            .get(crm(i.int_deal))
            .await
            .unwrap();
        assert_eq!(read_back.value, 5000.0);

        // Another workspace sees none of it.
        let other = stores.workspace(WorkspaceId(crm(i.other_ws)));
        assert_eq!(
            other.repo::<Contact>().count(&Filter::all()).await.unwrap(),
            0
        );
    })
    .await;
}

/// One rule of the original's Mongoose schema, over the stored BSON.
enum Rule {
    /// Present, not null, of this BSON type.
    Required(&'static str, &'static str),
    /// When present and not null, of this BSON type.
    Typed(&'static str, &'static str),
    /// When present, one of these strings (required too when `true`).
    OneOf(&'static str, &'static [&'static str], bool),
    /// A number at least this.
    Min(&'static str, f64),
}

fn type_name(b: &Bson) -> &'static str {
    match b {
        Bson::ObjectId(_) => "objectId",
        Bson::DateTime(_) => "date",
        Bson::String(_) => "string",
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => "number",
        Bson::Boolean(_) => "bool",
        Bson::Array(_) => "array",
        Bson::Document(_) => "object",
        Bson::Null => "null",
        _ => "other",
    }
}

fn check(coll: &str, d: &Document, rules: &[Rule]) -> Vec<String> {
    let mut bad = Vec::new();
    for r in rules {
        match r {
            Rule::Required(f, t) => match d.get(*f) {
                Some(v) if type_name(v) == *t => {}
                other => bad.push(format!("{coll}.{f}: required {t}, found {other:?}")),
            },
            Rule::Typed(f, t) => match d.get(*f) {
                None | Some(Bson::Null) => {}
                Some(v) if type_name(v) == *t => {}
                Some(v) => bad.push(format!("{coll}.{f}: {t} expected, found {v:?}")),
            },
            Rule::OneOf(f, allowed, required) => match d.get(*f) {
                Some(Bson::String(s)) if allowed.contains(&s.as_str()) => {}
                None if !required => {}
                other => bad.push(format!("{coll}.{f}: one of {allowed:?}, found {other:?}")),
            },
            Rule::Min(f, min) => {
                let n = match d.get(*f) {
                    Some(Bson::Int32(x)) => f64::from(*x),
                    Some(Bson::Int64(x)) => *x as f64,
                    Some(Bson::Double(x)) => *x,
                    _ => continue,
                };
                if n < *min {
                    bad.push(format!("{coll}.{f}: at least {min}, found {n}"));
                }
            }
        }
    }
    bad
}

const TIMESTAMPS: [Rule; 2] = [
    Rule::Required("createdAt", "date"),
    Rule::Required("updatedAt", "date"),
];

#[tokio::test]
async fn documents_the_server_writes_pass_the_original_schemas() {
    use Rule::*;
    with_db(|db, store| async move {
        store
            .ensure_schema(&crm_core::entities::all())
            .await
            .unwrap();
        let stores = Stores::new(Arc::new(store.clone()), Arc::new(SystemClock));
        let w = WorkspaceId::new();
        let owner = UserId::new();
        let scope = stores.workspace(w);
        let mut bad = Vec::new();

        let mut c = Contact::new(w, owner, "Grace");
        c.email = Some("grace@example.com".into());
        let c = scope.repo::<Contact>().insert(&c).await.unwrap();
        let mut rules = vec![
            Required("workspaceId", "objectId"),
            Required("userId", "objectId"),
            Required("firstName", "string"),
            Typed("email", "string"),
            Typed("companyId", "objectId"),
            Required("tags", "array"),
            OneOf(
                "status",
                &[
                    "lead",
                    "prospect",
                    "customer",
                    "inactive",
                    "disqualified",
                    "nurture",
                ],
                true,
            ),
            OneOf(
                "lifecycleStage",
                &[
                    "subscriber",
                    "lead",
                    "mql",
                    "sql",
                    "sal",
                    "opportunity",
                    "customer",
                    "evangelist",
                    "churned",
                    "disqualified",
                ],
                true,
            ),
            Required("customFields", "object"),
        ];
        rules.extend(TIMESTAMPS);
        let d = raw(
            &db,
            "contacts",
            bson::oid::ObjectId::parse_str(c.id.to_string()).unwrap(),
        )
        .await;
        bad.extend(check("contacts", &d, &rules));
        assert_eq!(d.get_str("email").unwrap(), "grace@example.com");

        let co = scope
            .repo::<Company>()
            .insert(&Company::new(w, owner, "Globex"))
            .await
            .unwrap();
        let mut rules = vec![
            Required("workspaceId", "objectId"),
            Required("userId", "objectId"),
            Required("name", "string"),
            OneOf("status", &["lead", "prospect", "customer", "churned"], true),
            OneOf(
                "companySize",
                &["1-10", "11-50", "51-200", "201-500", "501-1000", "1000+"],
                false,
            ),
            Min("annualRevenue", 0.0),
            Min("employeeCount", 0.0),
        ];
        rules.extend(TIMESTAMPS);
        let d = raw(
            &db,
            "companies",
            ObjectId::parse_str(co.id.to_string()).unwrap(),
        )
        .await;
        bad.extend(check("companies", &d, &rules));

        let p = Pipeline::new(
            w,
            owner,
            "Sales",
            vec![
                Stage::new("Lead", 0, "#3B82F6"),
                Stage::new("Won", 1, "#10B981"),
            ],
        );
        let p = scope.repo::<Pipeline>().insert(&p).await.unwrap();
        let d = raw(
            &db,
            "pipelines",
            ObjectId::parse_str(p.id.to_string()).unwrap(),
        )
        .await;
        let mut rules = vec![
            Required("workspaceId", "objectId"),
            Required("userId", "objectId"),
            Required("name", "string"),
            Required("stages", "array"),
            Required("isDefault", "bool"),
            Required("isActive", "bool"),
        ];
        rules.extend(TIMESTAMPS);
        bad.extend(check("pipelines", &d, &rules));
        for s in d.get_array("stages").unwrap() {
            let s = s.as_document().unwrap();
            bad.extend(check(
                "pipelines.stages",
                s,
                &[
                    Required("_id", "objectId"),
                    Required("name", "string"),
                    Required("order", "number"),
                    Required("color", "string"),
                ],
            ));
        }

        let o = Opportunity::new(w, owner, p.id, p.stages[0].id, "Big one", 1200.0);
        let o = scope.repo::<Opportunity>().insert(&o).await.unwrap();
        let d = raw(
            &db,
            "opportunities",
            ObjectId::parse_str(o.id.to_string()).unwrap(),
        )
        .await;
        let mut rules = vec![
            Required("workspaceId", "objectId"),
            Required("userId", "objectId"),
            Required("pipelineId", "objectId"),
            Required("stageId", "objectId"),
            Required("title", "string"),
            Required("value", "number"),
            Min("value", 0.0),
            Required("currency", "string"),
            OneOf("status", &["open", "won", "lost", "abandoned"], true),
            OneOf("priority", &["low", "medium", "high"], false),
            OneOf("dealTemperature", &["hot", "warm", "cold"], false),
            Min("activityCount", 0.0),
            Min("emailCount", 0.0),
            Min("callCount", 0.0),
            Min("meetingCount", 0.0),
        ];
        rules.extend(TIMESTAMPS);
        bad.extend(check("opportunities", &d, &rules));
        assert_eq!(d.get_str("currency").unwrap(), "USD");

        let t = scope
            .repo::<Task>()
            .insert(&Task::new(w, owner, "Call back"))
            .await
            .unwrap();
        let d = raw(&db, "tasks", ObjectId::parse_str(t.id.to_string()).unwrap()).await;
        let mut rules = vec![
            Required("workspaceId", "objectId"),
            Required("userId", "objectId"),
            Required("createdBy", "objectId"),
            Required("title", "string"),
            OneOf(
                "status",
                &["todo", "in_progress", "completed", "cancelled"],
                true,
            ),
            OneOf("priority", &["low", "medium", "high", "urgent"], true),
        ];
        rules.extend(TIMESTAMPS);
        bad.extend(check("tasks", &d, &rules));

        let a = scope
            .repo::<Activity>()
            .insert(&Activity::new(w, ActivityType::Call, "Called"))
            .await
            .unwrap();
        let d = raw(
            &db,
            "activities",
            ObjectId::parse_str(a.id.to_string()).unwrap(),
        )
        .await;
        let mut rules = vec![
            Required("workspaceId", "objectId"),
            OneOf(
                "type",
                &[
                    "email",
                    "call",
                    "meeting",
                    "note",
                    "stage_change",
                    "file_upload",
                    "task",
                    "ai_suggestion",
                    "workflow_action",
                ],
                true,
            ),
            Required("title", "string"),
            OneOf(
                "entityType",
                &["contact", "deal", "company", "opportunity"],
                false,
            ),
            OneOf("direction", &["inbound", "outbound"], false),
        ];
        rules.extend(TIMESTAMPS);
        bad.extend(check("activities", &d, &rules));

        // An update writes the same shapes.
        scope
            .repo::<Contact>()
            .update(c.id, &Update::new().set("status", json!("customer")))
            .await
            .unwrap();
        let d = raw(
            &db,
            "contacts",
            ObjectId::parse_str(c.id.to_string()).unwrap(),
        )
        .await;
        bad.extend(check("contacts (updated)", &d, &TIMESTAMPS));

        assert!(bad.is_empty(), "{bad:#?}");
    })
    .await;
}

/// The fixture, damaged as real databases are: the email index never built (duplicates), a
/// deal whose contact was deleted, a contact of a deleted workspace, an unfit document.
async fn seed_damaged(db: &Database, i: &Ids) {
    seed_original(db, i).await;
    let t0 = date("2024-04-01T00:00:00.000Z");
    let coll = |n: &str| db.collection::<Document>(n);
    coll("contacts")
        .insert_many([
            doc! { "_id": ObjectId::new(), "workspaceId": i.ws, "userId": i.owner,
            "firstName": "Ada again", "email": "ada@example.com", "tags": [],
            "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0 },
            doc! { "_id": ObjectId::new(), "workspaceId": i.gone_ws, "userId": i.owner,
            "firstName": "Stray", "tags": [],
            "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0 },
        ])
        .await
        .unwrap();
    coll("opportunities")
        .insert_one(doc! {
            "_id": ObjectId::new(), "workspaceId": i.ws, "userId": i.owner,
            "pipelineId": i.pipeline, "stageId": i.stage_a, "title": "Lost contact",
            "value": 10, "contactId": ObjectId::new(), "status": "open",
            "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0,
        })
        .await
        .unwrap();
    coll("deals")
        .insert_one(doc! {
            "_id": ObjectId::new(), "workspaceId": i.ws, "userId": i.owner, "name": "Legacy",
            "stage": "qualified", "value": 100, "createdAt": t0.clone(), "updatedAt": t0,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn doctor_reports_a_damaged_database_and_changes_nothing() {
    with_db(|db, store| async move {
        let i = Ids::new();
        seed_damaged(&db, &i).await;
        let before: Vec<String> = db.list_collection_names().await.unwrap();
        let legacy = store.legacy().unwrap();
        let mut calls = 0;
        let mut progress = |_: &str, _: u64| calls += 1;
        let report = doctor::run(legacy, "mongo", &crm_core::entities::all(), &mut progress)
            .await
            .unwrap();
        println!("{report}");
        assert!(calls > 0, "progress is reported");

        let contacts = report.get("contacts").unwrap();
        assert_eq!(contacts.read, 5);
        assert_eq!(contacts.unfit, 1);
        assert_eq!(contacts.unfit_first[0].id, i.vip.to_hex());
        assert_eq!(contacts.unfit_first[0].field, "status");
        assert_eq!(contacts.orphans, 1, "{:?}", contacts.orphans_first);
        assert!(
            contacts.orphans_first[0].contains(&i.gone_ws.to_hex()),
            "{:?}",
            contacts.orphans_first
        );
        assert_eq!(contacts.conflicts, 1, "{:?}", contacts.conflicts_first);
        assert!(contacts.conflicts_first[0].contains(&i.ada.to_hex()));
        let ix = contacts.indexes.as_ref().unwrap();
        assert!(
            ix.missing.iter().any(|m| m.contains("unique partial")),
            "{ix:?}"
        );

        let deals = report.get("opportunities").unwrap();
        assert_eq!((deals.read, deals.unfit, deals.orphans), (3, 0, 1));
        assert!(deals.orphans_first[0].contains("contactId"));
        assert_eq!(report.get("companies").unwrap().findings(), 0);
        assert_eq!(report.legacy_deals, Some(1));
        let plan = report.deals_fold.clone().unwrap();
        assert_eq!((plan.deals, plan.folded, plan.already), (1, 1, 0));
        assert!(plan.blocked.is_empty(), "{plan:?}");
        assert_eq!(report.findings(), 4);

        // Read-only: no index, no collection, no document changed.
        let after: Vec<String> = db.list_collection_names().await.unwrap();
        assert_eq!(before.len(), after.len());
        let idx: Vec<String> = db
            .collection::<Document>("contacts")
            .list_index_names()
            .await
            .unwrap();
        assert_eq!(idx, ["_id_"]);
    })
    .await;
}

async fn email_indexes(db: &Database) -> Vec<(String, bool, bool)> {
    use futures::TryStreamExt;
    let models: Vec<IndexModel> = db
        .collection::<Document>("contacts")
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut out: Vec<(String, bool, bool)> = models
        .into_iter()
        .filter(|m| m.keys == doc! { "workspaceId": 1, "email": 1 })
        .map(|m| {
            let o = m.options.unwrap_or_default();
            (
                o.name.unwrap_or_default(),
                o.sparse.unwrap_or(false),
                o.partial_filter_expression.is_some(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_email_index_migration_replaces_the_sparse_index_and_goes_back() {
    with_db(|db, store| async move {
        let i = Ids::new();
        seed_original(&db, &i).await;
        original_email_index(&db).await;
        store
            .ensure_schema(&crm_core::entities::all())
            .await
            .unwrap();
        let report = doctor::run(
            store.legacy().unwrap(),
            "mongo",
            &crm_core::entities::all(),
            &mut |_, _| {},
        )
        .await
        .unwrap();
        let ix = report.get("contacts").unwrap().indexes.clone().unwrap();
        assert_eq!(ix.replace.len(), 1, "{ix:?}");

        let done = migrate::up(&store, MIGRATIONS, None, &SystemClock)
            .await
            .unwrap();
        assert!(done.contains(&3), "{done:?}");
        assert_eq!(
            email_indexes(&db).await,
            [("uniq_contacts_email".to_owned(), false, true)]
        );
        // A second contact without an email in the workspace: the original's bug is gone.
        let stores = Stores::new(Arc::new(store.clone()), Arc::new(SystemClock));
        let scope = stores.workspace(ws(&i));
        scope
            .repo::<Contact>()
            .insert(&Contact::new(ws(&i), UserId::new(), "Second no-email"))
            .await
            .unwrap();
        let dup = scope
            .repo::<Contact>()
            .insert(&{
                let mut c = Contact::new(ws(&i), UserId::new(), "Dup");
                c.email = Some("ada@example.com".into());
                c
            })
            .await;
        assert!(
            matches!(dup, Err(crm_core::Error::Conflict { .. })),
            "{dup:?}"
        );

        // While two contacts lack an email the original's index cannot come back: down keeps
        // the partial one (emails stay unique).
        migrate::down(&store, MIGRATIONS, 2).await.unwrap();
        assert_eq!(
            email_indexes(&db).await,
            [("uniq_contacts_email".to_owned(), false, true)]
        );
        migrate::up(&store, MIGRATIONS, None, &SystemClock)
            .await
            .unwrap();
        scope
            .repo::<Contact>()
            .delete_many(&Filter::eq("firstName", json!("Second no-email")))
            .await
            .unwrap();
        migrate::down(&store, MIGRATIONS, 2).await.unwrap();
        assert_eq!(
            email_indexes(&db).await,
            [("workspaceId_1_email_1".to_owned(), true, false)]
        );
        let st = migrate::status(&store, MIGRATIONS).await.unwrap();
        assert!(!st.iter().find(|m| m.version == 3).unwrap().applied);
    })
    .await;
}

#[tokio::test]
async fn the_email_index_migration_stops_on_conflicting_data_and_changes_nothing() {
    with_db(|db, store| async move {
        let i = Ids::new();
        seed_damaged(&db, &i).await;
        let dup_id = db
            .collection::<Document>("contacts")
            .find_one(doc! { "firstName": "Ada again" })
            .await
            .unwrap()
            .unwrap()
            .get_object_id("_id")
            .unwrap();
        let err = migrate::up(&store, MIGRATIONS, None, &SystemClock)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("nothing was changed"), "{msg}");
        assert!(msg.contains(&i.ada.to_hex()), "{msg}");
        assert!(msg.contains(&dup_id.to_hex()), "{msg}");
        assert!(email_indexes(&db).await.is_empty());
        let st = migrate::status(&store, MIGRATIONS).await.unwrap();
        assert!(!st.iter().find(|m| m.version == 3).unwrap().applied);

        // Resolved (the duplicate's email changed), it runs.
        db.collection::<Document>("contacts")
            .update_one(
                doc! { "_id": dup_id },
                doc! { "$set": { "email": "ada.two@example.com" } },
            )
            .await
            .unwrap();
        migrate::up(&store, MIGRATIONS, None, &SystemClock)
            .await
            .unwrap();
        assert_eq!(
            email_indexes(&db).await,
            [("uniq_contacts_email".to_owned(), false, true)]
        );
    })
    .await;
}

#[tokio::test]
async fn legacy_deals_fold_into_opportunities_once_after_a_dry_run() {
    use crm_core::migrations::deals;
    with_db(|db, store| async move {
        let i = Ids::new();
        seed_original(&db, &i).await;
        store
            .ensure_schema(&crm_core::entities::all())
            .await
            .unwrap();
        let t0 = date("2023-06-01T12:00:00.000Z");
        let (won, early, stray) = (ObjectId::new(), ObjectId::new(), ObjectId::new());
        db.collection::<Document>("deals")
            .insert_many([
                doc! { "_id": won, "workspaceId": i.ws, "userId": i.owner, "name": "Big win",
                "stage": "closed_won", "value": 900_i32, "currency": "eur",
                "contacts": [i.ada], "companyId": i.company, "probability": 100,
                "tags": ["legacy"], "customFields": { "custom_src": "fair" },
                "stageHistory": [{ "stage": "lead", "changedAt": t0.clone() }],
                "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0 },
                doc! { "_id": early, "workspaceId": i.ws, "userId": i.owner, "name": "Early",
                "stage": "qualified", "value": 12.5,
                "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0 },
                doc! { "_id": stray, "workspaceId": i.other_ws, "userId": i.owner,
                "name": "No pipeline", "stage": "lead", "value": 0,
                "createdAt": t0.clone(), "updatedAt": t0.clone(), "__v": 0 },
            ])
            .await
            .unwrap();
        let legacy = store.legacy().unwrap();

        let plan = deals::fold(legacy, true).await.unwrap();
        assert_eq!((plan.deals, plan.folded, plan.already), (3, 2, 0));
        assert_eq!(plan.blocked.len(), 1, "{plan:?}");
        assert!(plan.blocked[0].contains(&stray.to_hex()));
        // Blocked: the migration stops before writing anything.
        let err = migrate::up(&store, MIGRATIONS, None, &SystemClock)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nothing was changed"), "{err}");
        let opps = db.collection::<Document>("opportunities");
        assert_eq!(
            opps.count_documents(doc! {}).await.unwrap(),
            2,
            "only the fixture's"
        );

        db.collection::<Document>("deals")
            .delete_one(doc! { "_id": stray })
            .await
            .unwrap();
        migrate::up(&store, MIGRATIONS, None, &SystemClock)
            .await
            .unwrap();
        assert_eq!(opps.count_documents(doc! {}).await.unwrap(), 4);
        let o = raw(&db, "opportunities", won).await;
        assert_eq!(o.get_str("title").unwrap(), "Big win");
        assert_eq!(o.get_str("status").unwrap(), "won");
        assert_eq!(
            o.get_object_id("stageId").unwrap(),
            i.stage_b,
            "the Won stage"
        );
        assert_eq!(o.get_object_id("pipelineId").unwrap(), i.pipeline);
        assert_eq!(o.get_object_id("contactId").unwrap(), i.ada);
        assert_eq!(o.get_str("currency").unwrap(), "EUR");
        assert!(matches!(o.get("createdAt"), Some(Bson::DateTime(_))));
        let e = raw(&db, "opportunities", early).await;
        assert_eq!(
            e.get_object_id("stageId").unwrap(),
            i.stage_a,
            "no match: first stage"
        );
        assert_eq!(e.get_str("status").unwrap(), "open");
        // Served as opportunities, typed.
        let stores = Stores::new(Arc::new(store.clone()), Arc::new(SystemClock));
        let folded = stores
            .workspace(ws(&i))
            .repo::<Opportunity>()
            .get(crm(won))
            .await
            .unwrap();
        assert_eq!(folded.value, 900.0);
        assert_eq!(folded.custom_fields["custom_src"], json!("fair"));

        // Idempotent: a second fold finds them folded.
        let again = deals::fold(legacy, false).await.unwrap();
        assert_eq!((again.folded, again.already), (0, 2));
        assert_eq!(opps.count_documents(doc! {}).await.unwrap(), 4);

        // Down removes what it made and leaves the deals.
        migrate::down(&store, MIGRATIONS, 3).await.unwrap();
        assert_eq!(opps.count_documents(doc! {}).await.unwrap(), 2);
        assert_eq!(
            db.collection::<Document>("deals")
                .count_documents(doc! {})
                .await
                .unwrap(),
            2
        );
    })
    .await;
}

/// The original's Agent models carry the tenant as `workspace` (here as `agentmemorydatas` is
/// declared: `{workspace, agent, key}`).
static AGENT_MEMORY: crm_core::EntityDef = crm_core::EntityDef {
    name: "AgentMemoryData",
    collection: "agentmemorydatas",
    tenancy: crm_core::Tenancy::Workspace { field: "workspace" },
    timestamps: true,
    fields: &[
        crm_core::schema::f("agent", crm_core::FieldKind::Id).required(),
        crm_core::schema::f("key", crm_core::FieldKind::Text).required(),
        crm_core::schema::f("value", crm_core::FieldKind::Any),
        crm_core::schema::f("expiresAt", crm_core::FieldKind::Date),
    ],
    unique: &[],
    indexes: &[],
    text: &[],
};

#[tokio::test]
async fn agent_models_keep_their_workspace_tenant_field() {
    use crm_core::{DocumentStore, Tenant};
    with_db(|db, store| async move {
        let (ws, other, agent) = (ObjectId::new(), ObjectId::new(), ObjectId::new());
        let id = ObjectId::new();
        db.collection::<Document>("agentmemorydatas")
            .insert_one(doc! {
                "_id": id, "workspace": ws, "agent": agent, "key": "tone",
                "value": { "style": "brief", "n": 2 }, "expiresAt": date("2030-01-01T00:00:00.000Z"),
                "createdAt": date("2024-01-01T00:00:00.000Z"),
                "updatedAt": date("2024-01-01T00:00:00.000Z"), "__v": 0,
            })
            .await
            .unwrap();
        let mine = Tenant::Workspace(WorkspaceId(crm(ws)));
        let found = store
            .find(mine, &AGENT_MEMORY, &Filter::eq("key", json!("tone")), &Default::default())
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["workspace"], json!(ws.to_hex()));
        assert_eq!(found[0]["value"], json!({"style": "brief", "n": 2}));
        let theirs = Tenant::Workspace(WorkspaceId(crm(other)));
        let none = store
            .find(theirs, &AGENT_MEMORY, &Filter::all(), &Default::default())
            .await
            .unwrap();
        assert!(none.is_empty());
        store
            .update_one(mine, &AGENT_MEMORY, crm(id), &Update::new().set("key", json!("voice")))
            .await
            .unwrap();
        let after = raw(&db, "agentmemorydatas", id).await;
        assert_eq!(after.get_object_id("workspace").unwrap(), ws);
        assert_eq!(after.get("__v"), Some(&Bson::Int32(0)));
        assert_eq!(after.get_str("key").unwrap(), "voice");
        let doctor = doctor::run(store.legacy().unwrap(), "mongo", &[&AGENT_MEMORY], &mut |_, _| {})
            .await
            .unwrap();
        let c = doctor.get("agentmemorydatas").unwrap();
        assert_eq!((c.read, c.unfit), (1, 0));
        // No `projects` collection here: the workspace check has nothing to compare with.
        assert_eq!(c.orphans, 0);
    })
    .await;
}
