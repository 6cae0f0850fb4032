//! The public waitlist over HTTP: sign-up without a token, the same answer for a repeated email,
//! no public read, and the login/register rate limit per client IP and per email.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, header};
use clianta_api::{ApiConfig, RateLimitConfig};
use common::{Resp, TestApp};
use crm_core::entities::waitlist::Waitlist;
use crm_core::services::ratelimit::Limit;
use crm_core::{Filter, FindOptions};
use serde_json::{Value, json};

const URL: &str = "/api/v1/waitlist";

async fn entries(t: &TestApp) -> Vec<Waitlist> {
    t.state
        .stores
        .global::<Waitlist>()
        .find(&Filter::all(), &FindOptions::default())
        .await
        .unwrap()
}

async fn join_from(t: &TestApp, ip: [u8; 4], body: Value) -> Resp {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(URL)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 4000))));
    t.send(req).await
}

#[tokio::test]
async fn joining_twice_answers_the_same_and_keeps_the_first_entry() {
    let t = TestApp::new();
    let first = t
        .post(
            URL,
            None,
            json!({"email": " Ada@Example.COM ", "companyName": "Acme", "teamSize": "6-20",
                "role": "CTO", "source": "landing"}),
        )
        .await;
    let first_body = first.ok(200).clone();
    assert_eq!(first_body, json!({"joined": true}));
    let again = t
        .post(
            URL,
            None,
            json!({"email": "ada@example.com", "companyName": "Evil Corp"}),
        )
        .await;
    assert_eq!(again.ok(200), &first_body);

    let all = entries(&t).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].email, "ada@example.com");
    assert_eq!(all[0].company_name.as_deref(), Some("Acme"));
    assert_eq!(all[0].role.as_deref(), Some("CTO"));

    t.post(URL, None, json!({"email": "bob@example.com"}))
        .await
        .ok(200);
    assert_eq!(entries(&t).await.len(), 2);
}

#[tokio::test]
async fn bad_sign_ups_are_refused_and_nothing_is_readable() {
    let t = TestApp::new();
    for (body, field) in [
        (json!({"email": "not-an-email"}), "email"),
        (
            json!({"email": "a@example.com", "teamSize": "huge"}),
            "teamSize",
        ),
        (json!({"email": "a@example.com", "name": "Ada"}), "name"),
        (
            json!({"email": "a@example.com", "role": "x".repeat(201)}),
            "role",
        ),
    ] {
        let r = t.post(URL, None, body.clone()).await;
        assert_eq!(r.problem(422, "invalid").body["field"], field, "{body}");
    }
    assert!(entries(&t).await.is_empty());
    // No public read of the list.
    t.post(URL, None, json!({"email": "a@example.com"}))
        .await
        .ok(200);
    let r = t.get(URL, None).await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert!(!r.body.to_string().contains("a@example.com"));
}

#[tokio::test]
async fn sign_ups_are_rate_limited_per_address_and_per_email() {
    let config = ApiConfig {
        rate_limit: RateLimitConfig {
            auth: Limit::new(3, 900),
            ..RateLimitConfig::default()
        },
        ..ApiConfig::default()
    };
    let t = TestApp::with(common::storage(), config);
    for i in 0..3 {
        join_from(
            &t,
            [10, 0, 0, 1],
            json!({"email": format!("u{i}@example.com")}),
        )
        .await
        .ok(200);
    }
    let r = join_from(&t, [10, 0, 0, 1], json!({"email": "u9@example.com"})).await;
    r.problem(429, "rate_limited");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    // Another address may still sign up; one email from many addresses may not.
    join_from(&t, [10, 0, 0, 2], json!({"email": "v@example.com"}))
        .await
        .ok(200);
    for ip in 3..5 {
        join_from(&t, [10, 0, 0, ip], json!({"email": "v@example.com"}))
            .await
            .ok(200);
    }
    join_from(&t, [10, 0, 0, 9], json!({"email": "V@example.com"}))
        .await
        .problem(429, "rate_limited");
    t.clock.advance_secs(901);
    join_from(&t, [10, 0, 0, 1], json!({"email": "u9@example.com"}))
        .await
        .ok(200);
}
