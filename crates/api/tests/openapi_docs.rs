//! The API page at `/api/v1/docs` and the completeness of the OpenAPI document: every answer the
//! shared layers give (401, 403, 404, 413, 422, 429, ...) is documented on the operations that
//! get it, checked by asking each documented operation for it.
//!
//! These tests are about the router and the document, not storage, so they run on the memory
//! store whatever `CLIANTA_TEST_API_STORE` says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use clianta_api::{ApiConfig, PROBLEM_JSON, RateLimitConfig};
use common::{Account, TestApp, add_member};
use crm_core::accounts::Role;
use crm_core::services::ratelimit::Limit;
use crm_core::{ObjectId, Storage};
use serde_json::{Value, json};
use storage_memory::MemoryStore;
use tower::ServiceExt;

struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map_or("", |v| v.to_str().unwrap())
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    fn code(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

async fn raw(
    t: &TestApp,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
    extra: &[(&str, &str)],
) -> Raw {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(tok) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {tok}"));
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let req = match body {
        Some(bytes) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(bytes))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let res = t.app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Raw {
        status,
        headers,
        body,
    }
}

fn memory_app(config: ApiConfig) -> TestApp {
    TestApp::with(Storage::new(Arc::new(MemoryStore::new())), config)
}

/// The `src` and `href` values of an HTML page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

#[tokio::test]
async fn the_api_page_and_everything_it_loads_come_from_this_server() {
    let t = memory_app(ApiConfig::default());

    let r = raw(&t, Method::GET, "/api/v1/docs", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/api/v1/docs/");

    let page = raw(&t, Method::GET, "/api/v1/docs/", None, None, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.content_type().starts_with("text/html"),
        "{page:?}",
        page = page.content_type()
    );
    let html = page.text();
    let assets = links(&html);
    assert!(
        assets.iter().any(|a| a.ends_with("swagger-ui-bundle.js")),
        "{assets:?}"
    );
    for a in &assets {
        // Relative to /api/v1/docs/: nothing from another host, nothing outside the page.
        assert!(
            !a.contains("://") && !a.starts_with("//") && !a.starts_with('/'),
            "{a} in {html}"
        );
        let file = a.trim_start_matches("./");
        let r = raw(
            &t,
            Method::GET,
            &format!("/api/v1/docs/{file}"),
            None,
            None,
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{file}");
        assert!(!r.body.is_empty(), "{file}");
        let want = match file.rsplit('.').next().unwrap() {
            "js" => "javascript",
            "css" => "text/css",
            "png" => "image/png",
            other => panic!("unexpected asset type {other}: {file}"),
        };
        assert!(
            r.content_type().contains(want),
            "{file}: {}",
            r.content_type()
        );
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    // The initializer points Swagger UI at this server's document, not the petstore, and turns
    // off the online validator (which would send the document elsewhere).
    let init = raw(
        &t,
        Method::GET,
        "/api/v1/docs/swagger-initializer.js",
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(init.status, StatusCode::OK);
    let js = init.text();
    assert!(js.contains("\"url\": \"/api/v1/openapi.json\""), "{js}");
    assert!(js.contains("\"validatorUrl\": \"none\""), "{js}");
    assert!(!js.contains("http://") && !js.contains("https://"), "{js}");

    let doc = raw(&t, Method::GET, "/api/v1/openapi.json", None, None, &[]).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.content_type().starts_with("application/json"));

    let missing = raw(&t, Method::GET, "/api/v1/docs/nope.js", None, None, &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.content_type(), PROBLEM_JSON);
}

/// One documented operation.
#[derive(Debug, Clone)]
struct Op {
    method: Method,
    path: String,
    op: Value,
}

impl Op {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
    fn has_body(&self) -> bool {
        self.op.get("requestBody").is_some()
    }
    fn json_body(&self) -> bool {
        self.op["requestBody"]["content"]
            .get("application/json")
            .is_some()
    }
    fn secured(&self) -> bool {
        self.op["security"].as_array().is_some_and(|s| {
            s.iter()
                .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
        })
    }
    fn statuses(&self) -> BTreeSet<u16> {
        self.op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter_map(|k| k.parse().ok())
            .collect()
    }
    fn header_params(&self, doc: &Value) -> BTreeSet<String> {
        self.op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(doc, p))
            .filter(|p| p["in"] == "header")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    }
    /// The path with `{workspaceId}` = `ws` and every other parameter a fresh id.
    fn uri(&self, ws: &str) -> String {
        let mut out = String::new();
        let mut rest = self.path.as_str();
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let end = rest.find('}').unwrap();
            match &rest[i + 1..end] {
                "workspaceId" => out.push_str(ws),
                _ => out.push_str(&ObjectId::new().to_hex()),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
    fn probe_body(&self) -> Option<Vec<u8>> {
        (self.has_body() || matches!(self.method, Method::POST | Method::PATCH | Method::PUT))
            .then(|| b"{}".to_vec())
    }
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => {
            let mut cur = doc;
            for part in r.trim_start_matches("#/").split('/') {
                cur = &cur[part];
            }
            cur
        }
        None => v,
    }
}

fn document() -> Value {
    serde_json::to_value(clianta_api::openapi()).unwrap()
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, method) in [
            ("get", Method::GET),
            ("post", Method::POST),
            ("put", Method::PUT),
            ("patch", Method::PATCH),
            ("delete", Method::DELETE),
        ] {
            if let Some(op) = item.get(m) {
                ops.push(Op {
                    method,
                    path: path.clone(),
                    op: op.clone(),
                });
            }
        }
    }
    ops
}

/// Statuses only the shared layers or the problem envelope give, which the document must list
/// wherever they are answered.
const SHARED: [u16; 10] = [400, 401, 403, 404, 409, 412, 413, 415, 422, 429];

/// Collects every operation whose answer in a probe is undocumented or wrong.
#[derive(Default)]
struct Findings(BTreeMap<String, Vec<String>>);

impl Findings {
    fn check(&mut self, probe: &str, op: &Op, r: &Raw) {
        let s = r.status.as_u16();
        let mut why = Vec::new();
        if s == 405 || r.code() == "route_not_found" {
            why.push(format!("{s} {}: the router does not serve it", r.code()));
        }
        if r.status.is_server_error() {
            why.push(format!("{s} {}", r.code()));
        }
        if SHARED.contains(&s) && !op.statuses().contains(&s) {
            why.push(format!("{s} {} is not documented", r.code()));
        }
        if (r.status.is_client_error() || r.status.is_server_error())
            && r.content_type() != PROBLEM_JSON
        {
            why.push(format!("{s} without a problem body"));
        }
        for w in why {
            self.0
                .entry(op.name())
                .or_default()
                .push(format!("{probe}: {w}"));
        }
    }
    fn fail(&mut self, op: &Op, what: String) {
        self.0.entry(op.name()).or_default().push(what);
    }
    fn assert_none(self) {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(op, why)| format!("{op}: {}", why.join("; ")))
            .collect();
        assert!(lines.is_empty(), "\n{}", lines.join("\n"));
    }
}

#[tokio::test]
async fn every_operation_documents_the_answers_of_the_shared_layers() {
    let doc = document();
    let ops = operations(&doc);
    assert!(ops.len() > 50, "{}", ops.len());
    let mut f = Findings::default();
    for op in &ops {
        let statuses = op.statuses();
        let headers = op.header_params(&doc);
        let mut need: Vec<u16> = Vec::new();
        if op.secured() {
            need.push(401);
        }
        if op.secured() && op.path.starts_with("/api/v1/workspaces/{workspaceId}") {
            need.push(403);
        }
        if op.path.contains('{') {
            need.push(404);
        }
        if op.has_body() {
            need.extend([400, 413, 422]);
        }
        if op.method == Method::POST {
            need.extend([400, 409, 422]);
            if !headers.contains("Idempotency-Key") {
                f.fail(op, "no Idempotency-Key header parameter".into());
            }
        }
        if op.path.starts_with("/api/v1/") && op.path != "/api/v1/openapi.json" {
            need.push(429);
        }
        let item = &doc["paths"][&op.path];
        let record = item.get("get").is_some()
            && ["patch", "put", "delete"]
                .iter()
                .any(|m| item.get(*m).is_some());
        if record && matches!(op.method, Method::PATCH | Method::PUT | Method::DELETE) {
            need.extend([409, 412]);
            if !headers.contains("If-Match") {
                f.fail(op, "no If-Match header parameter".into());
            }
        }
        for s in need {
            if !statuses.contains(&s) {
                f.fail(op, format!("{s} not documented"));
            }
        }
        // Every error answer is the shared problem schema.
        for (status, resp) in op.op["responses"].as_object().unwrap() {
            let resp = resolve(&doc, resp);
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &resp["content"][PROBLEM_JSON]["schema"]["$ref"];
                if schema != "#/components/schemas/Problem" {
                    f.fail(op, format!("{status} is not a Problem: {resp}"));
                }
            }
            if status == "429" && resolve(&doc, &resp["headers"]["Retry-After"]).is_null() {
                f.fail(op, "429 without Retry-After".into());
            }
        }
        if record && matches!(op.method, Method::GET | Method::PATCH) {
            let ok = resolve(&doc, &op.op["responses"]["200"]);
            if ok["content"].get("application/json").is_some() && ok["headers"]["ETag"].is_null() {
                f.fail(op, "200 without ETag".into());
            }
        }
    }
    f.assert_none();
}

/// An app whose limits stay out of the way, an owner, their workspace and a viewer in it.
async fn probe_world(config: ApiConfig) -> (TestApp, Account, Account, String) {
    let t = memory_app(config);
    let owner = t.register("owner@example.com").await;
    let ws = t.workspace(&owner, "Acme Sales").await;
    let viewer = t.register("viewer@example.com").await;
    add_member(&t, &ws, &viewer, Role::Viewer).await;
    (t, owner, viewer, ws)
}

/// Deletes last, and deleting the workspace (or leaving it) very last, so the owner's probes
/// keep a workspace to probe.
fn owner_order(ops: &[Op]) -> Vec<Op> {
    let mut ops = ops.to_vec();
    ops.sort_by_key(|o| {
        (
            o.path.starts_with("/api/v1/auth"),
            o.method == Method::DELETE,
            o.path.ends_with("{workspaceId}"),
        )
    });
    ops
}

#[tokio::test]
async fn every_answer_the_api_gives_to_probes_is_documented() {
    let doc = document();
    let ops = operations(&doc);
    let config = ApiConfig {
        rate_limit: RateLimitConfig::disabled(),
        body_limit: 4096,
        ..ApiConfig::default()
    };
    let (t, owner, viewer, ws) = probe_world(config).await;
    let mut f = Findings::default();

    // Anonymous: every secured operation answers 401.
    for op in &ops {
        let r = raw(
            &t,
            op.method.clone(),
            &op.uri(&ws),
            None,
            op.probe_body(),
            &[],
        )
        .await;
        f.check("anonymous", op, &r);
        if op.secured() && r.status != StatusCode::UNAUTHORIZED {
            f.fail(op, format!("secured, but anonymous got {}", r.status));
        }
        if op.secured() && r.headers.get(header::WWW_AUTHENTICATE).is_none() {
            f.fail(op, "401 without WWW-Authenticate".into());
        }
    }
    // A viewer: 403 on writes, 404 on unknown ids.
    for op in &ops {
        let r = raw(
            &t,
            op.method.clone(),
            &op.uri(&ws),
            Some(&viewer.access),
            op.probe_body(),
            &[],
        )
        .await;
        f.check("viewer", op, &r);
    }
    // Bodies over the limit.
    for op in ops.iter().filter(|o| o.json_body()) {
        let big = serde_json::to_vec(&json!({"name": "x".repeat(8192)})).unwrap();
        let r = raw(
            &t,
            op.method.clone(),
            &op.uri(&ws),
            Some(&owner.access),
            Some(big),
            &[],
        )
        .await;
        f.check("oversized body", op, &r);
        if r.status != StatusCode::PAYLOAD_TOO_LARGE {
            f.fail(op, format!("oversized body got {}", r.status));
        }
    }
    // An invalid Idempotency-Key on every POST.
    for op in ops.iter().filter(|o| o.method == Method::POST) {
        let r = raw(
            &t,
            Method::POST,
            &op.uri(&ws),
            Some(&owner.access),
            op.probe_body(),
            &[("idempotency-key", "not a valid key")],
        )
        .await;
        f.check("bad Idempotency-Key", op, &r);
        if r.status != StatusCode::BAD_REQUEST {
            f.fail(op, format!("bad Idempotency-Key got {}", r.status));
        }
    }
    // The owner, with unknown ids and empty bodies.
    for op in owner_order(&ops) {
        let r = raw(
            &t,
            op.method.clone(),
            &op.uri(&ws),
            Some(&owner.access),
            op.probe_body(),
            &[],
        )
        .await;
        f.check("owner", &op, &r);
    }
    f.assert_none();
}

#[tokio::test]
async fn every_rate_limited_operation_documents_429_and_no_other_does() {
    let doc = document();
    let ops = operations(&doc);
    let one = Limit::new(1, 3600);
    let t = memory_app(ApiConfig {
        rate_limit: RateLimitConfig {
            enabled: true,
            per_credential: one,
            per_workspace: one,
            auth: one,
            trust_forwarded_for: false,
        },
        ..ApiConfig::default()
    });
    let ws = ObjectId::new().to_hex();
    // Spends the anonymous caller's one request.
    raw(&t, Method::GET, "/api/v1/auth/me", None, None, &[]).await;
    let mut f = Findings::default();
    for op in &ops {
        let r = raw(
            &t,
            op.method.clone(),
            &op.uri(&ws),
            None,
            op.probe_body(),
            &[],
        )
        .await;
        f.check("over the limit", op, &r);
        let limited = r.status == StatusCode::TOO_MANY_REQUESTS;
        if limited && r.headers.get(header::RETRY_AFTER).is_none() {
            f.fail(op, "429 without Retry-After".into());
        }
        if !limited && op.statuses().contains(&429) {
            f.fail(
                op,
                format!("documents 429 but was not limited ({})", r.status),
            );
        }
    }
    f.assert_none();
}
