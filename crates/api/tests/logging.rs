//! The request span and the error log. Alone in its own test binary: a thread-local subscriber
//! races with other tests that hit the same callsites first.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use clianta_api::{ApiConfig, ApiError};
use tower::ServiceExt;

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn fail(Path(_kind): Path<String>) -> Result<(), ApiError> {
    Err(crm_core::Error::internal("invariant broken: secret detail").into())
}

#[tokio::test]
async fn each_request_is_logged_in_one_span_with_route_id_and_status() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = clianta_api::with_middleware(
        Router::new().route("/fail/{kind}", get(fail)),
        &ApiConfig::default(),
    );
    let req = Request::get("/fail/internal?token=hidden")
        .header("x-request-id", "rid-42")
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("secret"));

    let out = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let error_line = out.lines().find(|l| l.contains("internal error")).unwrap();
    assert!(error_line.contains("ERROR"), "{out}");
    assert!(
        error_line.contains("secret detail"),
        "the cause is logged: {out}"
    );
    assert!(
        error_line.contains("request_id=rid-42"),
        "inside the span: {out}"
    );
    let done = out
        .lines()
        .find(|l| l.contains("request completed"))
        .unwrap();
    for part in [
        "http.method=GET",
        "http.route=/fail/{kind}",
        "url.path=/fail/internal",
        "request_id=rid-42",
        "http.status=500",
        "latency_ms=",
    ] {
        assert!(done.contains(part), "{part} missing in {done}");
    }
    assert!(
        !out.contains("hidden"),
        "query strings are not logged: {out}"
    );
}
