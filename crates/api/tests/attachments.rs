//! Attachments over HTTP: multipart upload and byte-exact download, the 25 MB limit, validation,
//! references within the workspace, the role table, workspace isolation of records and bytes,
//! and no orphaned bytes when the record write fails.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use clianta_api::{ApiConfig, AppState, router};
use common::{Account, TestApp, TestClock, add_member, seed};
use crm_core::accounts::Role;
use crm_core::blob::MemoryBlobStore;
use crm_core::entities::attachment::MAX_FILE_SIZE;
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::entities::opportunity::Opportunity;
use crm_core::entities::pipeline::{PipelineId, StageId};
use crm_core::store::AppliedMigration;
use crm_core::{
    Document, DocumentStore, EntityDef, Error, Filter, FindOptions, GroupBy, GroupRow, ObjectId,
    Result, Storage, StoreAdmin, Tenant, Update,
};
use serde_json::Value;
use storage_memory::MemoryStore;
use tower::ServiceExt;

const BOUNDARY: &str = "XyZ-clianta-test-boundary";

/// A multipart body: text parts, then (optionally) the file part.
fn form(texts: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in texts {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, kind, bytes)) = file {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{file_name}\"\r\nContent-Type: {kind}\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(bytes);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap()
    }

    #[track_caller]
    fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&self.bytes)
        );
        if self.bytes.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    #[track_caller]
    fn problem(&self, status: u16, code: &str) -> Value {
        let v = self.ok(status);
        assert_eq!(v["code"], code, "{v}");
        v
    }
}

async fn send(t: &TestApp, method: Method, uri: &str, token: &Account, body: Body) -> Raw {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", token.access))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .unwrap();
    let res = t.app.clone().oneshot(req).await.unwrap();
    Raw {
        status: res.status(),
        headers: res.headers().clone(),
        bytes: to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    }
}

async fn upload(t: &TestApp, ws: &str, who: &Account, body: Vec<u8>) -> Raw {
    send(t, Method::POST, &url(ws, "attachments"), who, body.into()).await
}

async fn get(t: &TestApp, uri: &str, who: &Account) -> Raw {
    send(t, Method::GET, uri, who, Body::empty()).await
}

async fn delete(t: &TestApp, uri: &str, who: &Account) -> Raw {
    send(t, Method::DELETE, uri, who, Body::empty()).await
}

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

/// An app whose blob store the test can inspect.
fn app_over(storage: Storage) -> (TestApp, Arc<MemoryBlobStore>) {
    let blobs = Arc::new(MemoryBlobStore::new());
    let clock = TestClock::new();
    let state = AppState::with_clock(storage, clock.clone(), ApiConfig::default())
        .with_blobs(blobs.clone());
    let t = TestApp {
        app: router(state.clone()),
        state,
        clock,
    };
    (t, blobs)
}

async fn opportunity(t: &TestApp, ws: &str, owner: &Account) -> String {
    let o = Opportunity::new(
        ws.parse().unwrap(),
        owner.id.parse().unwrap(),
        PipelineId::new(),
        StageId::new(),
        "Deal",
        10.0,
    );
    seed(t, ws, &o).await
}

async fn contact(t: &TestApp, ws: &str, owner: &Account) -> String {
    let c = Contact::new(ws.parse().unwrap(), owner.id.parse().unwrap(), "Ada");
    seed(t, ws, &c).await
}

/// Every byte value, and sequences that look like multipart framing (not the boundary itself,
/// which a client never sends inside a part).
fn binary() -> Vec<u8> {
    let mut b: Vec<u8> = (0..=255u8).collect();
    b.extend_from_slice(b"\r\n--XyZ\r\n\r\n\0\xff\0");
    b
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn upload_download_list_and_delete() {
    let (t, blobs) = app_over(common::storage());
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    let o = opportunity(&t, &ws, &ann).await;
    let c = contact(&t, &ws, &ann).await;
    let bytes = binary();

    let a = upload(
        &t,
        &ws,
        &ann,
        form(
            &[
                ("opportunityId", &o),
                ("category", "proposal"),
                ("description", " The offer "),
            ],
            Some(("../../Q3 offer.png", "image/png", &bytes)),
        ),
    )
    .await
    .ok(201);
    assert_eq!(a["fileName"], "Q3 offer.png");
    assert_eq!(a["fileType"], "image/png");
    assert_eq!(a["fileSize"], bytes.len());
    assert_eq!(a["opportunityId"], o.as_str());
    assert_eq!(a["userId"], ann.id.as_str());
    assert_eq!(a["category"], "proposal");
    assert_eq!(a["description"], "The offer");
    assert!(a.get("contactId").is_none());
    let one = url(&ws, &format!("attachments/{}", id(&a)));
    assert_eq!(a["fileUrl"], format!("{one}/content"));

    assert_eq!(get(&t, &one, &ann).await.ok(200), a);
    let r = get(&t, &format!("{one}/content"), &ann).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, bytes, "the bytes come back unchanged");
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"Q3 offer.png\"; filename*=UTF-8''Q3%20offer.png"
    );
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    t.clock.advance_secs(1);
    let b = upload(
        &t,
        &ws,
        &ann,
        form(
            &[("contactId", &c)],
            Some(("notes.txt", "text/plain; charset=utf-8", b"hello")),
        ),
    )
    .await
    .ok(201);
    assert_eq!(b["fileType"], "text/plain");
    assert_eq!(b["category"], "other");
    assert_eq!(blobs.len(), 2);

    let all = get(&t, &url(&ws, "attachments"), &ann).await.ok(200);
    assert_eq!(all["pagination"]["total"], 2);
    assert_eq!(all["attachments"][0]["_id"], b["_id"], "newest first");
    for (q, n) in [
        (format!("opportunityId={o}"), 1),
        (format!("contactId={c}"), 1),
        (format!("contactId={o}"), 0),
        ("sort=fileName".to_owned(), 2),
    ] {
        let r = get(&t, &url(&ws, &format!("attachments?{q}")), &ann).await;
        assert_eq!(r.ok(200)["attachments"].as_array().unwrap().len(), n, "{q}");
    }
    get(&t, &url(&ws, "attachments?contactId=nope"), &ann)
        .await
        .problem(422, "invalid");

    delete(&t, &one, &ann).await.ok(204);
    get(&t, &one, &ann).await.problem(404, "not_found");
    get(&t, &format!("{one}/content"), &ann)
        .await
        .problem(404, "not_found");
    delete(&t, &one, &ann).await.problem(404, "not_found");
    assert_eq!(blobs.len(), 1, "the bytes went with the record");
}

#[tokio::test]
async fn size_limit() {
    let (t, blobs) = app_over(common::storage());
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    let o = opportunity(&t, &ws, &ann).await;
    let limit = usize::try_from(MAX_FILE_SIZE).unwrap();

    // Far over the 1 MiB JSON limit, exactly at the file limit.
    let big = vec![7u8; limit];
    let a = upload(
        &t,
        &ws,
        &ann,
        form(
            &[("opportunityId", &o)],
            Some(("big.pdf", "application/pdf", &big)),
        ),
    )
    .await
    .ok(201);
    assert_eq!(a["fileSize"], limit);
    let r = get(
        &t,
        &url(&ws, &format!("attachments/{}/content", id(&a))),
        &ann,
    )
    .await;
    assert_eq!(r.bytes.len(), limit);

    let over = vec![7u8; limit + 1];
    upload(
        &t,
        &ws,
        &ann,
        form(
            &[("opportunityId", &o)],
            Some(("big.pdf", "application/pdf", &over)),
        ),
    )
    .await
    .problem(413, "payload_too_large");
    assert_eq!(blobs.len(), 1, "nothing kept of the refused upload");
}

#[tokio::test]
async fn validation() {
    let (t, blobs) = app_over(common::storage());
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    let o = opportunity(&t, &ws, &ann).await;
    let c = contact(&t, &ws, &ann).await;
    let png: Option<(&str, &str, &[u8])> = Some(("a.png", "image/png", b"x"));

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (form(&[("opportunityId", &o)], None), "file"),
        (form(&[], png), "opportunityId"),
        (
            form(&[("opportunityId", &o), ("contactId", &c)], png),
            "opportunityId",
        ),
        (form(&[("opportunityId", "zzz")], png), "opportunityId"),
        (
            form(
                &[("opportunityId", &o)],
                Some(("a.html", "text/html", b"<script>")),
            ),
            "file",
        ),
        (
            form(&[("opportunityId", &o)], Some(("", "image/png", b"x"))),
            "file",
        ),
        (
            form(&[("opportunityId", &o), ("category", "memo")], png),
            "category",
        ),
        (
            form(
                &[("opportunityId", &o), ("description", &"d".repeat(501))],
                png,
            ),
            "description",
        ),
        (
            form(&[("opportunityId", &o), ("owner", "me")], png),
            "owner",
        ),
    ];
    for (body, field) in cases {
        let r = upload(&t, &ws, &ann, body).await;
        assert_eq!(r.problem(422, "invalid")["field"], field);
    }
    // Broken framing is malformed input, not a validation failure.
    upload(&t, &ws, &ann, b"not multipart at all".to_vec())
        .await
        .problem(400, "malformed_multipart");
    // Not a multipart request.
    let req = Request::builder()
        .method(Method::POST)
        .uri(url(&ws, "attachments"))
        .header(header::AUTHORIZATION, format!("Bearer {}", ann.access))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let res = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(blobs.is_empty());
}

#[tokio::test]
async fn role_table() {
    let (t, _) = app_over(common::storage());
    let ann = t.register("ann@example.com").await;
    let vic = t.register("vic@example.com").await;
    let mel = t.register("mel@example.com").await;
    let adam = t.register("adam@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    add_member(&t, &ws, &vic, Role::Viewer).await;
    add_member(&t, &ws, &mel, Role::Member).await;
    add_member(&t, &ws, &adam, Role::Admin).await;
    let o = opportunity(&t, &ws, &ann).await;
    let body = || {
        form(
            &[("opportunityId", &o)],
            Some(("a.pdf", "application/pdf", b"%PDF")),
        )
    };

    let a = id(&upload(&t, &ws, &ann, body()).await.ok(201));
    let one = url(&ws, &format!("attachments/{a}"));
    get(&t, &url(&ws, "attachments"), &vic).await.ok(200);
    get(&t, &one, &vic).await.ok(200);
    assert_eq!(
        get(&t, &format!("{one}/content"), &vic).await.bytes,
        b"%PDF"
    );
    upload(&t, &ws, &vic, body())
        .await
        .problem(403, "forbidden");
    delete(&t, &one, &vic).await.problem(403, "forbidden");

    let m = id(&upload(&t, &ws, &mel, body()).await.ok(201));
    delete(&t, &one, &mel).await.problem(403, "forbidden");

    delete(&t, &one, &adam).await.ok(204);
    delete(&t, &url(&ws, &format!("attachments/{m}")), &adam)
        .await
        .ok(204);
}

#[tokio::test]
async fn workspaces_are_isolated() {
    let (t, blobs) = app_over(common::storage());
    let ann = t.register("ann@example.com").await;
    let bob = t.register("bob@example.com").await;
    let mine = t.workspace(&ann, "Mine").await;
    let theirs = t.workspace(&bob, "Theirs").await;
    let their_opp = opportunity(&t, &theirs, &bob).await;
    let their_contact = contact(&t, &theirs, &bob).await;
    let their_company = seed(
        &t,
        &theirs,
        &Company::new(theirs.parse().unwrap(), bob.id.parse().unwrap(), "Globex"),
    )
    .await;
    let secret = b"their secret bytes".to_vec();
    let theirs_a = id(&upload(
        &t,
        &theirs,
        &bob,
        form(
            &[("opportunityId", &their_opp)],
            Some(("s.txt", "text/plain", &secret)),
        ),
    )
    .await
    .ok(201));

    // Their records named in my upload are unknown here.
    for (field, value) in [
        ("opportunityId", &their_opp),
        ("contactId", &their_contact),
        ("companyId", &their_company),
        ("ticketId", &their_contact),
    ] {
        let r = upload(
            &t,
            &mine,
            &ann,
            form(&[(field, value)], Some(("a.txt", "text/plain", b"x"))),
        )
        .await;
        assert_eq!(r.problem(422, "invalid")["field"], field);
    }
    // Their attachment through my workspace: unknown, bytes included.
    let path = url(&mine, &format!("attachments/{theirs_a}"));
    get(&t, &path, &ann).await.problem(404, "not_found");
    let r = get(&t, &format!("{path}/content"), &ann).await;
    r.problem(404, "not_found");
    assert!(!r.bytes.windows(secret.len()).any(|w| w == secret));
    delete(&t, &path, &ann).await.problem(404, "not_found");
    let r = get(
        &t,
        &url(&mine, &format!("attachments?opportunityId={their_opp}")),
        &ann,
    )
    .await;
    assert_eq!(r.ok(200)["attachments"], Value::Array(vec![]));
    // Their workspace with my token.
    get(
        &t,
        &url(&theirs, &format!("attachments/{theirs_a}/content")),
        &ann,
    )
    .await
    .problem(404, "not_found");
    // The blob store itself keys by workspace.
    let key: ObjectId = theirs_a.parse().unwrap();
    assert_eq!(
        t.state.blobs.get(mine.parse().unwrap(), key).await,
        Err(Error::NotFound)
    );
    // Still theirs, intact.
    let r = get(
        &t,
        &url(&theirs, &format!("attachments/{theirs_a}/content")),
        &bob,
    )
    .await;
    assert_eq!(r.bytes, secret);
    assert_eq!(blobs.len(), 1);
}

/// The memory store, except that inserting an attachment record fails.
#[derive(Debug, Default)]
struct NoAttachmentInserts(MemoryStore);

fn refuse(def: &EntityDef) -> Result<()> {
    if def.collection == "attachments" {
        return Err(Error::Unavailable("disk full".into()));
    }
    Ok(())
}

#[async_trait]
impl DocumentStore for NoAttachmentInserts {
    async fn insert(&self, t: Tenant, def: &'static EntityDef, doc: Document) -> Result<Document> {
        refuse(def)?;
        self.0.insert(t, def, doc).await
    }
    async fn insert_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        docs: Vec<Document>,
    ) -> Result<u64> {
        refuse(def)?;
        self.0.insert_many(t, def, docs).await
    }
    async fn get(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<Document> {
        self.0.get(t, def, id).await
    }
    async fn find(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        f: &Filter,
        o: &FindOptions,
    ) -> Result<Vec<Document>> {
        self.0.find(t, def, f, o).await
    }
    async fn count(&self, t: Tenant, def: &'static EntityDef, f: &Filter) -> Result<u64> {
        self.0.count(t, def, f).await
    }
    async fn update_one(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        id: ObjectId,
        u: &Update,
    ) -> Result<Document> {
        self.0.update_one(t, def, id, u).await
    }
    async fn update_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        f: &Filter,
        u: &Update,
    ) -> Result<u64> {
        self.0.update_many(t, def, f, u).await
    }
    async fn find_one_and_update(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        f: &Filter,
        u: &Update,
        upsert: bool,
    ) -> Result<Option<Document>> {
        self.0.find_one_and_update(t, def, f, u, upsert).await
    }
    async fn delete_one(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<()> {
        self.0.delete_one(t, def, id).await
    }
    async fn delete_many(&self, t: Tenant, def: &'static EntityDef, f: &Filter) -> Result<u64> {
        self.0.delete_many(t, def, f).await
    }
    async fn aggregate(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        g: &GroupBy,
    ) -> Result<Vec<GroupRow>> {
        self.0.aggregate(t, def, g).await
    }
}

#[async_trait]
impl StoreAdmin for NoAttachmentInserts {
    async fn ping(&self) -> Result<()> {
        self.0.ping().await
    }
    async fn ensure_schema(&self, defs: &[&'static EntityDef]) -> Result<()> {
        self.0.ensure_schema(defs).await
    }
    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        self.0.applied_migrations().await
    }
    async fn record_migration(&self, m: &AppliedMigration) -> Result<()> {
        self.0.record_migration(m).await
    }
    async fn forget_migration(&self, version: u32) -> Result<()> {
        self.0.forget_migration(version).await
    }
    async fn update_all_tenants(
        &self,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        self.0.update_all_tenants(def, filter, update).await
    }
    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[tokio::test]
async fn a_failed_record_write_leaves_no_bytes() {
    let (t, blobs) = app_over(Storage::new(Arc::new(NoAttachmentInserts::default())));
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    let o = opportunity(&t, &ws, &ann).await;
    let r = upload(
        &t,
        &ws,
        &ann,
        form(
            &[("opportunityId", &o)],
            Some(("a.txt", "text/plain", b"x")),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(blobs.is_empty(), "the bytes were removed again");
}

#[tokio::test]
async fn purging_the_parent_takes_its_attachments_and_bytes() {
    let (t, blobs) = app_over(common::storage());
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Work").await;
    let c = contact(&t, &ws, &ann).await;
    let o = opportunity(&t, &ws, &ann).await;
    let file = |field: &'static str, parent: String| {
        form(&[(field, &parent)], Some(("a.txt", "text/plain", b"x")))
    };
    let on_contact = id(&upload(&t, &ws, &ann, file("contactId", c.clone()))
        .await
        .ok(201));
    upload(&t, &ws, &ann, file("contactId", c.clone()))
        .await
        .ok(201);
    let on_deal = id(&upload(&t, &ws, &ann, file("opportunityId", o.clone()))
        .await
        .ok(201));
    assert_eq!(blobs.len(), 3);

    // The trash keeps them: a restore must find them again.
    delete(&t, &url(&ws, &format!("contacts/{c}")), &ann)
        .await
        .ok(204);
    assert_eq!(blobs.len(), 3);
    delete(&t, &url(&ws, &format!("contacts/{c}?purge=true")), &ann)
        .await
        .ok(204);
    assert_eq!(blobs.len(), 1, "the contact's two files are gone");
    get(&t, &url(&ws, &format!("attachments/{on_contact}")), &ann)
        .await
        .problem(404, "not_found");

    delete(
        &t,
        &url(&ws, &format!("opportunities/{o}?purge=true")),
        &ann,
    )
    .await
    .ok(204);
    assert!(blobs.is_empty());
    get(&t, &url(&ws, &format!("attachments/{on_deal}")), &ann)
        .await
        .problem(404, "not_found");
}
