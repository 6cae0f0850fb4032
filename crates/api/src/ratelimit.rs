//! Request rate limits: counted in the store (`crm_core::services::ratelimit`) so every server
//! process over the same store enforces the same budget, or, for a store only one process uses
//! (the embedded one), in this process without a store write per request (ADR 0016).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_core::services::ratelimit::{self, Decision, Limit};
use crm_core::{DocumentStore, ObjectId, Timestamp};
use moka::sync::Cache;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// Limits per fixed window; see docs/CONFIGURATION.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Off: no counting at all (benchmarks, tests of other features).
    pub enabled: bool,
    /// Per caller: the API key, or the user of a valid bearer token, else the client IP.
    pub per_credential: Limit,
    /// Per workspace in the path, counted only for requests its members made.
    pub per_workspace: Limit,
    /// `POST /api/v1/auth/login` and `/register`, per client IP and per email.
    pub auth: Limit,
    /// Take the client IP from the last `X-Forwarded-For` entry (behind one trusted proxy).
    pub trust_forwarded_for: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_credential: Limit::new(1000, 300),
            per_workspace: Limit::new(5000, 300),
            auth: Limit::new(20, 900),
            trust_forwarded_for: false,
        }
    }
}

impl RateLimitConfig {
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// Where the counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitCounters {
    /// In the store: shared by every process over it, one store write per counted request.
    #[default]
    Store,
    /// In this process: for a store no other process serves from (embedded SQLite, memory).
    /// Two processes over one store would each allow the full budget.
    Process,
}

/// Most counters kept in process; past it the least used are dropped, which restarts their
/// count (at worst one extra budget for a caller among more than this many).
const LOCAL_CAPACITY: u64 = 500_000;

/// Fixed-window counters with the store's semantics: the same windows (aligned on the epoch),
/// the same decisions and `Retry-After`.
pub(crate) struct LocalCounters {
    counts: Cache<(String, i64), Arc<AtomicU64>>,
}

impl std::fmt::Debug for LocalCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCounters")
            .field("entries", &self.counts.entry_count())
            .finish()
    }
}

/// The window containing `now`: its number and its end, in milliseconds.
fn window_of(limit: Limit, now: Timestamp) -> (i64, i64) {
    let window_ms = i64::try_from(limit.window_secs.max(1))
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let window = now.millis().div_euclid(window_ms);
    (window, window.saturating_add(1).saturating_mul(window_ms))
}

fn decide(count: u64, max: u64, now: Timestamp, window_end_ms: i64) -> Decision {
    if count <= max {
        return Decision::Allowed {
            remaining: max - count,
        };
    }
    let left_ms = (window_end_ms - now.millis()).max(0);
    Decision::Limited {
        retry_after_secs: u64::try_from((left_ms + 999) / 1000).unwrap_or(1).max(1),
    }
}

impl LocalCounters {
    pub(crate) fn new(cfg: &RateLimitConfig) -> Self {
        // A counter outlives its window: it is created inside it and kept one window long.
        let longest = [cfg.per_credential, cfg.per_workspace, cfg.auth]
            .iter()
            .map(|l| l.window_secs.max(1))
            .max()
            .unwrap_or(1);
        Self {
            counts: Cache::builder()
                .max_capacity(LOCAL_CAPACITY)
                .time_to_live(Duration::from_secs(longest))
                .build(),
        }
    }

    fn hit(&self, bucket: &str, limit: Limit, now: Timestamp) -> Decision {
        let (window, end) = window_of(limit, now);
        let n = self
            .counts
            .get_with((bucket.to_owned(), window), Arc::default)
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        decide(n, limit.max, now, end)
    }

    fn peek(&self, bucket: &str, limit: Limit, now: Timestamp) -> Decision {
        let (window, end) = window_of(limit, now);
        let n = self
            .counts
            .get(&(bucket.to_owned(), window))
            .map_or(0, |c| c.load(Ordering::Relaxed));
        decide(n.saturating_add(1), limit.max, now, end)
    }
}

/// The counters a request is counted in.
#[derive(Clone, Copy)]
enum Counters<'a> {
    Store(&'a dyn DocumentStore),
    Local(&'a LocalCounters),
}

impl Counters<'_> {
    async fn hit(self, bucket: &str, limit: Limit, now: Timestamp) -> crm_core::Result<Decision> {
        match self {
            Self::Store(s) => ratelimit::hit(s, bucket, limit, now).await,
            Self::Local(c) => Ok(c.hit(bucket, limit, now)),
        }
    }

    async fn peek(self, bucket: &str, limit: Limit, now: Timestamp) -> crm_core::Result<Decision> {
        match self {
            Self::Store(s) => ratelimit::peek(s, bucket, limit, now).await,
            Self::Local(c) => Ok(c.peek(bucket, limit, now)),
        }
    }
}

// The public waitlist sign-up shares the budget of login and register.
const AUTH_PATHS: [&str; 3] = [
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/waitlist",
];

fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(ip) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return ip.to_string();
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// The workspace id of `/api/v1/workspaces/{id}...`, when it is a well-formed id.
fn workspace_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/v1/workspaces/")?;
    let id = rest.split('/').next()?;
    id.parse::<ObjectId>().is_ok().then_some(id)
}

#[derive(serde::Deserialize)]
struct EmailOnly {
    email: Option<String>,
}

/// The caller as the limits and idempotency keys see it. A valid token is verified once here
/// and left in the extensions for the handler.
pub(crate) async fn credential(parts: &mut Parts, state: &AppState) -> String {
    // A live API key is a credential of its own; a dead one counts against the client IP.
    if let Ok(Some(key)) = crate::auth::api_key::api_key(parts, state).await {
        return format!("key:{}", key.id);
    }
    match AuthUser::from_request_parts(parts, state).await {
        Ok(u) => format!("user:{}", u.id),
        Err(_) => format!(
            "ip:{}",
            client_ip(parts, state.config.rate_limit.trust_forwarded_for)
        ),
    }
}

fn limited(retry_after_secs: u64) -> Response {
    ApiError::TooManyRequests {
        retry_after_secs: Some(retry_after_secs),
    }
    .into_response()
}

/// Counts the request against its buckets; 429 with `Retry-After` over a limit. A store failure
/// lets the request through (logged): the limiter must not take the API down with it.
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let cfg = state.config.rate_limit;
    let path = req.uri().path();
    if !cfg.enabled || !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" {
        return next.run(req).await;
    }
    let counters = match &state.counters {
        Some(c) => Counters::Local(c),
        None => Counters::Store(&*state.storage.docs),
    };
    let now = state.stores.clock().now();
    let (mut parts, mut body) = req.into_parts();
    let mut buckets = Vec::with_capacity(3);
    if parts.method == Method::POST && AUTH_PATHS.contains(&parts.uri.path()) {
        let ip = client_ip(&parts, cfg.trust_forwarded_for);
        buckets.push((format!("auth-ip:{ip}"), cfg.auth));
        let Ok(bytes) = to_bytes(body, state.config.body_limit).await else {
            return ApiError::PayloadTooLarge.into_response();
        };
        if let Some(email) = serde_json::from_slice::<EmailOnly>(&bytes)
            .ok()
            .and_then(|b| b.email)
        {
            buckets.push((
                format!("auth-email:{}", email.trim().to_lowercase()),
                cfg.auth,
            ));
        }
        body = Body::from(bytes);
    }
    buckets.push((credential(&mut parts, &state).await, cfg.per_credential));
    for (bucket, limit) in &buckets {
        match counters.hit(bucket, *limit, now).await {
            Ok(Decision::Allowed { .. }) => {}
            Ok(Decision::Limited { retry_after_secs }) => return limited(retry_after_secs),
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter unavailable; request let through");
                return next.run(Request::from_parts(parts, body)).await;
            }
        }
    }
    // Anyone can name any workspace, so only its members' requests are counted against it,
    // after the fact; the check before is a read, so outsiders cannot exhaust its budget.
    let Some(ws) = workspace_of(parts.uri.path()).map(|w| format!("ws:{w}")) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    match counters.peek(&ws, cfg.per_workspace, now).await {
        Ok(Decision::Limited { retry_after_secs }) => return limited(retry_after_secs),
        Ok(Decision::Allowed { .. }) => {}
        Err(e) => tracing::warn!(error = %e, "rate limiter unavailable; request let through"),
    }
    let res = next.run(Request::from_parts(parts, body)).await;
    let outsider = matches!(
        res.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    );
    if !outsider && let Err(e) = counters.hit(&ws, cfg.per_workspace, now).await {
        tracing::warn!(error = %e, "rate limiter unavailable");
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_counters_decide_as_the_store_does() {
        let limit = Limit::new(2, 60);
        let c = LocalCounters::new(&RateLimitConfig {
            per_credential: limit,
            ..RateLimitConfig::default()
        });
        let now = Timestamp::from_millis(60_000 * 10 + 59_500);
        assert_eq!(
            c.peek("user:a", limit, now),
            Decision::Allowed { remaining: 1 }
        );
        assert_eq!(
            c.hit("user:a", limit, now),
            Decision::Allowed { remaining: 1 }
        );
        assert_eq!(
            c.hit("user:a", limit, now),
            Decision::Allowed { remaining: 0 }
        );
        // Half a second left in the window: rounded up to one.
        assert_eq!(
            c.hit("user:a", limit, now),
            Decision::Limited {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            c.peek("user:a", limit, now),
            Decision::Limited {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            c.hit("user:b", limit, now),
            Decision::Allowed { remaining: 1 }
        );
        let next = Timestamp::from_millis(60_000 * 11);
        assert_eq!(
            c.hit("user:a", limit, next),
            Decision::Allowed { remaining: 1 }
        );
    }
}
