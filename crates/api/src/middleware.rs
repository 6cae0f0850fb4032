//! The layers around every route: request id, one tracing span per request, the problem envelope
//! for answers produced outside handlers, panic catching, a timeout and a body limit.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{Span, field};

use crate::error::{ApiError, PROBLEM_JSON, Problem};
use crate::state::{ApiConfig, AppState};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied request id we keep; longer or odd ones are replaced, so logs stay sane.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Wraps `router` (routes and fallback already added) in the standard layers.
pub fn apply(router: Router, config: &ApiConfig) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(make_span)
        .on_request(())
        .on_response(on_response)
        // 5xx causes are logged once where the error is rendered.
        .on_failure(());
    router.layer(
        // Outermost first.
        ServiceBuilder::new()
            .layer(middleware::map_request(drop_bad_request_id))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(middleware::from_fn(problem_envelope))
            .layer(CatchPanicLayer::custom(on_panic))
            .layer(middleware::from_fn_with_state(
                config.request_timeout,
                timeout,
            ))
            .layer(DefaultBodyLimit::max(config.body_limit))
            // Uploads lift the extractor limit on their route and count the file themselves.
            .layer(RequestBodyLimitLayer::new(
                config
                    .body_limit
                    .max(crate::routes::attachments::UPLOAD_BODY_LIMIT),
            )),
    )
}

/// The layers whose state lives in the store: rate limits (outermost, so a limited request costs
/// nothing more), then idempotency, then ETag/If-Match (whose check reads through `routes`).
pub fn shared_limits(routes: Router, state: AppState) -> Router {
    routes
        .clone()
        .layer(middleware::from_fn_with_state(
            (routes, state.clone()),
            crate::etag::layer,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
        .layer(middleware::from_fn_with_state(
            state,
            crate::ratelimit::layer,
        ))
}

async fn drop_bad_request_id(mut req: Request) -> Request {
    let ok = req.headers().get(&REQUEST_ID).is_some_and(|v| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= MAX_REQUEST_ID_LEN && b.iter().all(u8::is_ascii_graphic)
    });
    if !ok {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

fn make_span(req: &Request) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The query string is left out: it may carry tokens.
    tracing::info_span!(
        "request",
        http.method = %req.method(),
        http.route = %route,
        url.path = %req.uri().path(),
        request_id = %request_id,
        http.status = field::Empty,
        latency_ms = field::Empty,
    )
}

fn on_response(res: &Response, latency: Duration, span: &Span) {
    span.record("http.status", res.status().as_u16());
    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
    tracing::info!("request completed");
}

/// Gives answers made outside handlers (405 from routing, 413 from the body limit, panics) the
/// same problem body as handler errors, keeping their other headers (e.g. `Allow`).
async fn problem_envelope(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let (_, body) = Problem::for_status(status).into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, body)
}

fn on_panic(err: Box<dyn Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %msg, "handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

pub async fn fallback() -> ApiError {
    ApiError::RouteNotFound
}
