//! Rate limits over HTTP, with the counters in the store (shared by every router over it) and in
//! process (what the server picks for the embedded store, ADR 0016): the same answers, but only
//! the store's are shared.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use clianta_api::ratelimit::RateLimitCounters;
use clianta_api::{ApiConfig, AppState, RateLimitConfig, router};
use common::{PASSWORD, Resp, TestApp};
use crm_core::services::ratelimit::Limit;
use serde_json::{Value, json};

fn config(
    counters: RateLimitCounters,
    per_credential: Limit,
    per_workspace: Limit,
    auth: Limit,
) -> ApiConfig {
    ApiConfig {
        rate_limit_counters: counters,
        rate_limit: RateLimitConfig {
            enabled: true,
            per_credential,
            per_workspace,
            auth,
            trust_forwarded_for: false,
        },
        ..ApiConfig::default()
    }
}

/// Runs each scenario once per counter backend.
macro_rules! on_both_counters {
    ($($name:ident),* $(,)?) => {
        mod in_store {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::RateLimitCounters::Store).await
            })*
        }
        mod in_process {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::RateLimitCounters::Process).await
            })*
        }
    };
}

on_both_counters!(
    a_credential_over_its_limit_gets_429_until_the_window_ends,
    login_is_limited_per_ip_and_per_email,
    a_workspace_budget_counts_only_its_members,
    disabled_limits_count_nothing,
);

fn app(config: ApiConfig) -> TestApp {
    TestApp::with(common::storage(), config)
}

/// A second router over the same store and clock.
fn twin(a: &TestApp) -> TestApp {
    let state = AppState::with_clock(
        a.state.storage.clone(),
        a.clock.clone(),
        a.state.config.clone(),
    );
    TestApp {
        app: router(state.clone()),
        state,
        clock: a.clock.clone(),
    }
}

fn assert_limited(r: &Resp, max_wait: u64) {
    r.problem(429, "rate_limited");
    let wait: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=max_wait).contains(&wait), "Retry-After {wait}");
}

async fn login_from(t: &TestApp, ip: [u8; 4], email: &str, password: &str) -> Resp {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"email": email, "password": password}).to_string(),
        ))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 4000))));
    t.send(req).await
}

async fn a_credential_over_its_limit_gets_429_until_the_window_ends(counters: RateLimitCounters) {
    let t = app(config(
        counters,
        Limit::new(3, 60),
        Limit::new(1000, 60),
        Limit::new(100, 60),
    ));
    let a = t.register("a@example.com").await;
    for _ in 0..3 {
        t.get("/api/v1/auth/me", Some(&a.access)).await.ok(200);
    }
    let r = t.get("/api/v1/auth/me", Some(&a.access)).await;
    assert_limited(&r, 60);
    // Another caller has its own budget.
    let b = t.register("b@example.com").await;
    t.get("/api/v1/auth/me", Some(&b.access)).await.ok(200);
    // Ops routes are not limited.
    assert_eq!(t.get("/health", None).await.status, StatusCode::OK);

    t.clock.advance_secs(60);
    t.get("/api/v1/auth/me", Some(&a.access)).await.ok(200);
}

#[tokio::test]
async fn two_routers_over_one_store_share_store_counters() {
    let a = app(config(
        RateLimitCounters::Store,
        Limit::new(4, 300),
        Limit::new(1000, 300),
        Limit::new(100, 300),
    ));
    let b = twin(&a);
    let u = a.register("u@example.com").await;
    for t in [&a, &b, &a, &b] {
        t.get("/api/v1/auth/me", Some(&u.access)).await.ok(200);
    }
    assert_limited(&b.get("/api/v1/auth/me", Some(&u.access)).await, 300);
    assert_limited(&a.get("/api/v1/auth/me", Some(&u.access)).await, 300);
}

async fn login_is_limited_per_ip_and_per_email(counters: RateLimitCounters) {
    let t = app(config(
        counters,
        Limit::new(1000, 900),
        Limit::new(1000, 900),
        Limit::new(3, 900),
    ));
    t.register("v@example.com").await;
    for _ in 0..2 {
        let r = login_from(&t, [10, 0, 0, 1], "v@example.com", "Wrong-passw0rd").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // The third attempt from this IP is the last allowed one.
    let r = login_from(&t, [10, 0, 0, 1], "w@example.com", "Wrong-passw0rd").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_limited(
        &login_from(&t, [10, 0, 0, 1], "x@example.com", PASSWORD).await,
        900,
    );
    // The email's budget (register + two logins) is spent too, whatever the IP.
    assert_limited(
        &login_from(&t, [10, 0, 0, 2], "v@example.com", PASSWORD).await,
        900,
    );
    // Other IPs and emails are untouched.
    let r = login_from(&t, [10, 0, 0, 4], "y@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

async fn a_workspace_budget_counts_only_its_members(counters: RateLimitCounters) {
    let t = app(config(
        counters,
        Limit::new(1000, 300),
        Limit::new(3, 300),
        Limit::new(100, 300),
    ));
    let owner = t.register("o@example.com").await;
    let outsider = t.register("x@example.com").await;
    let ws = t.workspace(&owner, "Acme").await;
    let url = format!("/api/v1/workspaces/{ws}");
    for _ in 0..5 {
        let r = t.get(&url, Some(&outsider.access)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
    for _ in 0..3 {
        t.get(&url, Some(&owner.access)).await.ok(200);
    }
    assert_limited(&t.get(&url, Some(&owner.access)).await, 300);
}

async fn disabled_limits_count_nothing(counters: RateLimitCounters) {
    let mut c = config(
        counters,
        Limit::new(1, 300),
        Limit::new(1, 300),
        Limit::new(1, 300),
    );
    c.rate_limit.enabled = false;
    let t = app(c);
    let u = t.register("u@example.com").await;
    for _ in 0..5 {
        t.get("/api/v1/auth/me", Some(&u.access)).await.ok(200);
    }
    let body: Value = t.get("/api/v1/auth/me", Some(&u.access)).await.body;
    assert_eq!(body["email"], "u@example.com", "{body}");
}

#[tokio::test]
async fn two_routers_over_one_store_count_apart_in_process() {
    let a = app(config(
        RateLimitCounters::Process,
        Limit::new(4, 300),
        Limit::new(1000, 300),
        Limit::new(100, 300),
    ));
    let b = twin(&a);
    let u = a.register("u@example.com").await;
    // Each router allows the whole budget of 4.
    for t in [&a, &b, &a, &b, &a, &b, &a, &b] {
        t.get("/api/v1/auth/me", Some(&u.access)).await.ok(200);
    }
    assert_limited(&b.get("/api/v1/auth/me", Some(&u.access)).await, 300);
    assert_limited(&a.get("/api/v1/auth/me", Some(&u.access)).await, 300);
    // Nothing was written to the store for them.
    let n = a
        .state
        .storage
        .docs
        .count(
            crm_core::Tenant::Global,
            &crm_core::services::ratelimit::RATE_LIMIT_BUCKET,
            &crm_core::Filter::all(),
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
}
