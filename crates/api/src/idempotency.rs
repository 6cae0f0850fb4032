//! `Idempotency-Key` on POST: the first answer is kept in the store for 24 hours
//! (`crm_core::services::idempotency`) and replayed to a retry with the same body. The same key
//! with another body answers 422 `idempotency_key_reused`; a retry while the first request is
//! still running answers 409 `idempotency_in_progress` with `Retry-After: 1`.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_core::services::idempotency::{self, Begin, StoredResponse};

use crate::error::{ApiError, Problem};
use crate::ratelimit::credential;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed answer.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Limits of the idempotency layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// Answers with a larger body are not kept (the key is freed, a retry runs again).
    pub max_response_bytes: usize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            max_response_bytes: 64 * 1024,
        }
    }
}

/// Response headers a replay repeats.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

fn problem(status: StatusCode, code: &str, title: &str, detail: &str) -> Problem {
    Problem::new(status, code, title)
        .detail(detail)
        .field("Idempotency-Key")
}

fn replay(s: StoredResponse) -> Response {
    let mut res = Response::new(Body::from(s.body));
    *res.status_mut() = StatusCode::from_u16(s.status).unwrap_or(StatusCode::OK);
    for (k, v) in s.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            res.headers_mut().insert(k, v);
        }
    }
    res.headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    res
}

pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(&IDEMPOTENCY_KEY) else {
        return next.run(req).await;
    };
    let Some(key) = raw
        .to_str()
        .ok()
        .filter(|k| idempotency::check_key(k).is_ok())
        .map(str::to_owned)
    else {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "Invalid Idempotency-Key",
            "The key must be 1 to 255 visible ASCII characters.",
        )
        .into_response();
    };
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, state.config.body_limit).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let who = credential(&mut parts, &state).await;
    let scope = idempotency::scope_of(&who, &key, parts.method.as_str(), parts.uri.path());
    let fingerprint = idempotency::fingerprint(parts.uri.query().unwrap_or_default(), &bytes);
    let store = &*state.storage.docs;
    let now = state.stores.clock().now();
    // Held a little longer than a request may run, so a dead owner frees the key.
    let lock_secs = i64::try_from(state.config.request_timeout.as_secs())
        .unwrap_or(i64::MAX / 2)
        .saturating_add(5);
    // Failing closed: running the request without the record could do it twice.
    match idempotency::begin(store, &scope, &fingerprint, now, lock_secs).await {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Begin::Replay(s)) => return replay(s),
        Ok(Begin::Mismatch) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency-Key reused",
                "This key was used with a different request body.",
            )
            .into_response();
        }
        Ok(Begin::InFlight) => {
            let mut res = problem(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "Request in progress",
                "A request with this key is still running; retry later.",
            )
            .into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return res;
        }
        Ok(Begin::Started) => {}
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let abandon = |why: &'static str| {
        let scope = scope.clone();
        async move {
            if let Err(e) = idempotency::abandon(store, &scope).await {
                tracing::warn!(error = %e, why, "could not free an idempotency key");
            }
        }
    };
    // A server error may be transient: let the retry run again.
    if res.status().is_server_error() {
        abandon("server error").await;
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        abandon("unreadable body").await;
        return ApiError::Core(crm_core::Error::internal("response body unreadable"))
            .into_response();
    };
    let text = std::str::from_utf8(&bytes).ok();
    match text.filter(|_| bytes.len() <= state.config.idempotency.max_response_bytes) {
        None => abandon("answer too large to keep").await,
        Some(text) => {
            let stored = StoredResponse {
                status: parts.status.as_u16(),
                headers: KEPT_HEADERS
                    .iter()
                    .filter_map(|h| {
                        let v = parts.headers.get(h)?.to_str().ok()?;
                        Some((h.as_str().to_owned(), v.to_owned()))
                    })
                    .collect(),
                body: text.to_owned(),
            };
            if let Err(e) = idempotency::complete(store, &scope, &stored).await {
                tracing::warn!(error = %e, "could not keep an idempotent answer");
                abandon("not kept").await;
            }
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}
