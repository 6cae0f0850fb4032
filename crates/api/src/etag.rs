//! `ETag` on single-record answers and `If-Match` on writes, for every route at once.
//!
//! A record is a JSON object with `_id` and `updatedAt`; its tag is a hash of the two, so it does
//! not depend on `fields=`/`expand=`. A PATCH, PUT or DELETE with `If-Match` first reads the
//! record with a GET of the same path (same credentials) and answers 412 when the tag differs.
//! The read and the write are two steps: a write landing between them is not detected, because
//! the services' updates filter on the id only.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use crate::error::Problem;

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

/// `routes` is the router the layer wraps; it answers the read that checks `If-Match`.
pub(crate) async fn layer(State(routes): State<Router>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(if_match) = if_match
        && matches!(method, Method::PATCH | Method::PUT | Method::DELETE)
    {
        let mut probe = Request::new(Body::empty());
        *probe.method_mut() = Method::GET;
        *probe.uri_mut() = req.uri().path().parse().unwrap_or_default();
        for name in [header::AUTHORIZATION, header::ACCEPT] {
            if let Some(v) = req.headers().get(&name) {
                probe.headers_mut().insert(name, v.clone());
            }
        }
        if let Ok(res) = routes.oneshot(probe).await
            && res.status() == StatusCode::OK
        {
            let body = to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            match etag_of(&body) {
                Some(current) if !if_match_allows(&if_match, &current) => {
                    return precondition_failed();
                }
                _ => {}
            }
        }
        // Otherwise the write answers for itself (404, 403, ...).
    }
    let res = next.run(req).await;
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
