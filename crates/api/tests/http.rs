//! The router in process (`oneshot`, no socket): ops routes, the OpenAPI document, the error
//! envelope end to end, the extractors and the layers.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::routing::{get, post};
use clianta_api::{ApiConfig, ApiError, ApiJson, ApiQuery, AppState, PROBLEM_JSON, router};
use crm_core::store::AppliedMigration;
use crm_core::{
    Document, DocumentStore, EntityDef, Error, Filter, FindOptions, GroupBy, GroupRow, ObjectId,
    Result, Storage, StoreAdmin, Tenant, Update,
};
use serde::Deserialize;
use serde_json::{Value, json};
use storage_memory::MemoryStore;
use tower::ServiceExt;

fn memory() -> Storage {
    Storage::new(Arc::new(MemoryStore::new()))
}

async fn send(app: Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, headers, body)
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[track_caller]
fn assert_problem(headers: &HeaderMap, body: &Value, status: u16, code: &str) {
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:clianta:problem:{code}"));
    for k in ["title", "detail", "field"] {
        assert!(body.get(k).is_some(), "{k} missing in {body}");
    }
}

/// A store whose every call fails as an unreachable database would, or never returns.
#[derive(Debug)]
struct BrokenStore {
    hang: bool,
}

impl BrokenStore {
    async fn fail<T>(&self) -> Result<T> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(Error::Unavailable("connection refused".into()))
    }
}

#[async_trait]
impl DocumentStore for BrokenStore {
    async fn insert(&self, _: Tenant, _: &'static EntityDef, _: Document) -> Result<Document> {
        self.fail().await
    }
    async fn insert_many(&self, _: Tenant, _: &'static EntityDef, _: Vec<Document>) -> Result<u64> {
        self.fail().await
    }
    async fn get(&self, _: Tenant, _: &'static EntityDef, _: ObjectId) -> Result<Document> {
        self.fail().await
    }
    async fn find(
        &self,
        _: Tenant,
        _: &'static EntityDef,
        _: &Filter,
        _: &FindOptions,
    ) -> Result<Vec<Document>> {
        self.fail().await
    }
    async fn count(&self, _: Tenant, _: &'static EntityDef, _: &Filter) -> Result<u64> {
        self.fail().await
    }
    async fn update_one(
        &self,
        _: Tenant,
        _: &'static EntityDef,
        _: ObjectId,
        _: &Update,
    ) -> Result<Document> {
        self.fail().await
    }
    async fn update_many(
        &self,
        _: Tenant,
        _: &'static EntityDef,
        _: &Filter,
        _: &Update,
    ) -> Result<u64> {
        self.fail().await
    }
    async fn find_one_and_update(
        &self,
        _: Tenant,
        _: &'static EntityDef,
        _: &Filter,
        _: &Update,
        _: bool,
    ) -> Result<Option<Document>> {
        self.fail().await
    }
    async fn delete_one(&self, _: Tenant, _: &'static EntityDef, _: ObjectId) -> Result<()> {
        self.fail().await
    }
    async fn delete_many(&self, _: Tenant, _: &'static EntityDef, _: &Filter) -> Result<u64> {
        self.fail().await
    }
    async fn aggregate(
        &self,
        _: Tenant,
        _: &'static EntityDef,
        _: &GroupBy,
    ) -> Result<Vec<GroupRow>> {
        self.fail().await
    }
}

#[async_trait]
impl StoreAdmin for BrokenStore {
    async fn ping(&self) -> Result<()> {
        self.fail().await
    }
    async fn ensure_schema(&self, _: &[&'static EntityDef]) -> Result<()> {
        self.fail().await
    }
    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        self.fail().await
    }
    async fn record_migration(&self, _: &AppliedMigration) -> Result<()> {
        self.fail().await
    }
    async fn forget_migration(&self, _: u32) -> Result<()> {
        self.fail().await
    }
    async fn update_all_tenants(
        &self,
        _: &'static EntityDef,
        _: &Filter,
        _: &Update,
    ) -> Result<u64> {
        self.fail().await
    }
    fn backend(&self) -> &'static str {
        "broken"
    }
}

#[tokio::test]
async fn health_is_ok_and_gets_a_request_id() {
    let app = router(AppState::new(memory(), ApiConfig::default()));
    let (status, headers, body) = send(app.clone(), get_req("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    assert_eq!(headers["x-request-id"].len(), 36, "a generated uuid");

    let req = Request::get("/health")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = send(app.clone(), req).await;
    assert_eq!(headers["x-request-id"], "abc-123");

    let req = Request::get("/health")
        .header("x-request-id", "x".repeat(500))
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = send(app, req).await;
    assert_eq!(
        headers["x-request-id"].len(),
        36,
        "an oversized id is replaced"
    );
}

#[tokio::test]
async fn health_does_not_touch_storage() {
    let storage = Storage::new(Arc::new(BrokenStore { hang: false }));
    let app = router(AppState::new(storage, ApiConfig::default()));
    let (status, _, body) = send(app, get_req("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn ready_when_the_store_pings() {
    let app = router(AppState::new(memory(), ApiConfig::default()));
    let (status, _, body) = send(app, get_req("/ready")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok", "storage": "memory"}));
}

#[tokio::test]
async fn not_ready_when_the_ping_fails() {
    let storage = Storage::new(Arc::new(BrokenStore { hang: false }));
    let app = router(AppState::new(storage, ApiConfig::default()));
    let (status, headers, body) = send(app, get_req("/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_problem(&headers, &body, 503, "not_ready");
    assert!(!body.to_string().contains("refused"), "cause not leaked");
}

#[tokio::test]
async fn not_ready_when_the_ping_hangs() {
    let storage = Storage::new(Arc::new(BrokenStore { hang: true }));
    let config = ApiConfig {
        ready_timeout: Duration::from_millis(50),
        ..ApiConfig::default()
    };
    let app = router(AppState::new(storage, config));
    let started = std::time::Instant::now();
    let (status, headers, body) = send(app, get_req("/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_problem(&headers, &body, 503, "not_ready");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problems() {
    let app = router(AppState::new(memory(), ApiConfig::default()));
    let (status, headers, body) = send(app.clone(), get_req("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&headers, &body, 404, "route_not_found");

    let req = Request::delete("/health").body(Body::empty()).unwrap();
    let (status, headers, body) = send(app, req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_problem(&headers, &body, 405, "method_not_allowed");
    assert!(headers.contains_key(header::ALLOW));
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn openapi_is_served_and_matches_the_router() {
    let app = router(AppState::new(memory(), ApiConfig::default()));
    let (status, headers, body) = send(app, get_req("/api/v1/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body["openapi"], "3.1.0");
    for path in ["/health", "/ready", "/api/v1/openapi.json"] {
        assert!(body["paths"][path]["get"].is_object(), "{path} missing");
    }
    assert!(body["components"]["schemas"]["Problem"].is_object());
    assert_eq!(body, serde_json::to_value(clianta_api::openapi()).unwrap());
}

#[test]
fn openapi_snapshot() {
    let mut doc = clianta_api::openapi();
    // A release bump alone should not fail this test.
    doc.info.version = "[version]".into();
    insta::assert_json_snapshot!("openapi", doc);
}

/// Routes that fail on purpose, behind the same layers as the real router.
fn failing_app(config: ApiConfig) -> Router {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct NewThing {
        name: String,
        size: u32,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct ListQuery {
        limit: Option<u32>,
    }

    async fn fail(Path(kind): Path<String>) -> std::result::Result<(), ApiError> {
        Err(match kind.as_str() {
            "not_found" => Error::NotFound,
            "conflict" => Error::conflict("email"),
            "invalid" => Error::invalid("name", "must not be empty"),
            "forbidden" => Error::Forbidden("not a member of this workspace".into()),
            "unavailable" => Error::Unavailable("pool timed out".into()),
            _ => Error::internal("invariant broken: secret detail"),
        }
        .into())
    }
    async fn create(ApiJson(t): ApiJson<NewThing>) -> ApiJson<Value> {
        ApiJson(json!({"name": t.name}))
    }
    async fn list(ApiQuery(q): ApiQuery<ListQuery>) -> ApiJson<Value> {
        ApiJson(json!({"limit": q.limit}))
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "late"
    }
    async fn boom() -> &'static str {
        panic!("handler bug")
    }
    let routes = Router::new()
        .route("/fail/{kind}", get(fail))
        .route("/things", post(create).get(list))
        .route("/slow", get(slow))
        .route("/boom", get(boom));
    clianta_api::with_middleware(routes, &config)
}

#[tokio::test]
async fn every_core_error_maps_to_its_status_through_the_stack() {
    let app = failing_app(ApiConfig::default());
    for (kind, status, field) in [
        ("not_found", 404, Value::Null),
        ("conflict", 409, json!("email")),
        ("invalid", 422, json!("name")),
        ("forbidden", 403, Value::Null),
        ("unavailable", 503, Value::Null),
        ("internal", 500, Value::Null),
    ] {
        let (s, headers, body) = send(app.clone(), get_req(&format!("/fail/{kind}"))).await;
        assert_eq!(s.as_u16(), status, "{kind}");
        assert_problem(&headers, &body, status, kind);
        assert_eq!(body["field"], field, "{kind}");
        assert!(!body.to_string().contains("secret"), "{body}");
        assert!(!body.to_string().contains("pool"), "{body}");
    }
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn json_bodies_are_checked_with_the_envelope() {
    let app = failing_app(ApiConfig::default());

    let (s, _, body) = send(
        app.clone(),
        post_json("/things", r#"{"name":"a","size":3}"#),
    )
    .await;
    assert_eq!((s, body), (StatusCode::OK, json!({"name": "a"})));

    let (s, headers, body) = send(app.clone(), post_json("/things", r#"{"name": "a", "#)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_problem(&headers, &body, 400, "malformed_json");

    let (s, headers, body) = send(
        app.clone(),
        post_json("/things", r#"{"name":"a","size":"big"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&headers, &body, 422, "invalid");
    assert_eq!(body["field"], "size");

    let req = Request::post("/things")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let (s, headers, body) = send(app, req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_problem(&headers, &body, 415, "unsupported_media_type");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let config = ApiConfig {
        body_limit: 64,
        ..ApiConfig::default()
    };
    let app = failing_app(config);
    let big = format!(r#"{{"name":"{}","size":1}}"#, "x".repeat(200));

    // Declared length: refused by the limit layer before the handler runs.
    let mut req = post_json("/things", &big);
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, big.len().into());
    let (s, headers, body) = send(app.clone(), req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_problem(&headers, &body, 413, "payload_too_large");

    // No declared length: refused while the extractor reads.
    let (s, headers, body) = send(app, post_json("/things", &big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_problem(&headers, &body, 413, "payload_too_large");
}

#[tokio::test]
async fn bad_query_is_400_naming_the_key() {
    let app = failing_app(ApiConfig::default());
    let (s, _, body) = send(app.clone(), get_req("/things?limit=5")).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"limit": 5})));

    let (s, headers, body) = send(app, get_req("/things?limit=-1")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_problem(&headers, &body, 400, "invalid_query");
    assert_eq!(body["field"], "limit");
}

#[tokio::test]
async fn slow_requests_time_out_and_panics_are_500() {
    let config = ApiConfig {
        request_timeout: Duration::from_millis(50),
        ..ApiConfig::default()
    };
    let app = failing_app(config);
    let (s, headers, body) = send(app.clone(), get_req("/slow")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_problem(&headers, &body, 503, "timeout");

    let (s, headers, body) = send(app, get_req("/boom")).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_problem(&headers, &body, 500, "internal");
}
