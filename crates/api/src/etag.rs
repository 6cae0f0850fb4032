//! `ETag` on single-record answers and `If-Match` on writes, for every route at once.
//!
//! A record is a JSON object with `_id` and `updatedAt`; its tag is a hash of the two, so it does
//! not depend on `fields=`/`expand=`. A PATCH, PUT or DELETE with `If-Match` first reads the
//! record with a GET of the same path (same credentials) and answers 412 when the tag differs.
//! The read and the write are two steps, so conditional writes to one record take turns: each
//! holds a store-kept marker (an idempotency record on the path) from its read to its answer,
//! across server processes. A write without `If-Match` takes no turn and may still land between
//! another's read and write; closing that needs the services' updates to filter on `updatedAt`.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_core::services::idempotency::{self, Begin};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// How long a conditional write waits for its turn before answering 409.
const TURN_TRIES: u32 = 100;
const TURN_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

#[derive(serde::Deserialize)]
struct Version {
    #[serde(rename = "_id", alias = "id")]
    id: String,
    #[serde(rename = "updatedAt")]
    updated_at: String,
}

/// The strong validator of a record body, quoted; `None` when the body is not one record.
pub fn etag_of(body: &[u8]) -> Option<String> {
    if !body.starts_with(b"{") {
        return None;
    }
    let v: Version = serde_json::from_slice(body).ok()?;
    let mut h = Sha256::new();
    h.update(v.id.as_bytes());
    h.update(b"\0");
    h.update(v.updated_at.as_bytes());
    Some(format!("\"{}\"", hex::encode(&h.finalize()[..16])))
}

/// Whether an `If-Match` value names `current` (`*` names any current record).
pub fn if_match_allows(if_match: &str, current: &str) -> bool {
    if_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == current)
}

fn precondition_failed() -> Response {
    Problem::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        "Precondition failed",
    )
    .detail("The record changed since the given ETag; read it again.")
    .field("If-Match")
    .into_response()
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

fn busy() -> Response {
    let mut res = Problem::new(StatusCode::CONFLICT, "record_busy", "Record busy")
        .detail("Another conditional write to this record is running; retry.")
        .field("If-Match")
        .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// Waits for this path's turn; `Ok(false)` when it did not come.
async fn take_turn(state: &AppState, scope: &str) -> crm_core::Result<bool> {
    let lock_secs = i64::try_from(state.config.request_timeout.as_secs())
        .unwrap_or(i64::MAX / 2)
        .saturating_add(5);
    for _ in 0..TURN_TRIES {
        let now = state.stores.clock().now();
        match idempotency::begin(&*state.storage.docs, scope, "if-match", now, lock_secs).await? {
            Begin::Started => return Ok(true),
            _ => tokio::time::sleep(TURN_PAUSE).await,
        }
    }
    Ok(false)
}

/// A GET of `req`'s path as its caller.
fn probe_of(req: &Request) -> Request {
    let mut probe = Request::new(Body::empty());
    *probe.method_mut() = Method::GET;
    *probe.uri_mut() = req.uri().path().parse().unwrap_or_default();
    for name in [header::AUTHORIZATION, header::ACCEPT] {
        if let Some(v) = req.headers().get(&name) {
            probe.headers_mut().insert(name, v.clone());
        }
    }
    probe
}

/// Reads the record with `probe` and says whether `If-Match` still holds.
async fn still_matches(routes: Router, probe: Request, if_match: &str) -> bool {
    let Ok(res) = routes.oneshot(probe).await;
    // Otherwise the write answers for itself (404, 403, ...).
    if res.status() != StatusCode::OK {
        return true;
    }
    let body = to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    etag_of(&body).is_none_or(|current| if_match_allows(if_match, &current))
}

/// `routes` is the router the layer wraps; it answers the read that checks `If-Match`.
pub(crate) async fn layer(
    State((routes, state)): State<(Router, AppState)>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let res = match if_match {
        Some(if_match) if matches!(method, Method::PATCH | Method::PUT | Method::DELETE) => {
            let scope = idempotency::scope_of("if-match", "", "WRITE", req.uri().path());
            match take_turn(&state, &scope).await {
                Err(e) => return ApiError::from(e).into_response(),
                Ok(false) => return busy(),
                Ok(true) => {}
            }
            let probe = probe_of(&req);
            let res = if still_matches(routes, probe, &if_match).await {
                next.run(req).await
            } else {
                precondition_failed()
            };
            if let Err(e) = idempotency::abandon(&*state.storage.docs, &scope).await {
                tracing::warn!(error = %e, "could not release a conditional-write turn");
            }
            res
        }
        _ => next.run(req).await,
    };
    let tagged = matches!(method, Method::GET | Method::PATCH | Method::PUT)
        && res.status() == StatusCode::OK
        && is_json(&res);
    if !tagged {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    };
    if let Some(tag) = etag_of(&bytes)
        && let Ok(v) = HeaderValue::try_from(tag)
    {
        parts.headers.insert(header::ETAG, v);
    }
    Response::from_parts(parts, Body::from(bytes))
}
