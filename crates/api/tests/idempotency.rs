//! `Idempotency-Key` on POST: replay of the first answer, 422 on another body, 409 while the
//! first request runs; kept in the store, so a second router over it replays too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use clianta_api::{ApiConfig, AppState, router};
use common::{Account, Resp, SlowStore, TestApp};
use crm_core::Clock;
use crm_core::services::idempotency::{self, Begin};
use serde_json::{Value, json};
use storage_memory::MemoryStore;

fn contacts(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/contacts")
}

async fn post_with_key(t: &TestApp, uri: &str, who: &Account, key: &str, body: &Value) -> Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", who.access))
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_string()))
        .unwrap();
    t.send(req).await
}

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

async fn count(t: &TestApp, ws: &str, who: &Account) -> u64 {
    let r = t.get(&contacts(ws), Some(&who.access)).await;
    r.ok(200)["pagination"]["total"].as_u64().unwrap()
}

#[tokio::test]
async fn a_retry_replays_the_first_answer_and_creates_one_record() {
    let a = TestApp::new();
    let b = twin(&a);
    let u = a.register("u@example.com").await;
    let ws = a.workspace(&u, "Acme").await;
    let body = json!({"firstName": "Ada", "email": "ada@example.com"});

    let first = post_with_key(&a, &contacts(&ws), &u, "key-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());

    // The retry reaches another server process over the same store.
    let again = post_with_key(&b, &contacts(&ws), &u, "key-1", &body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(
        again.headers[header::CONTENT_TYPE],
        first.headers[header::CONTENT_TYPE]
    );
    assert_eq!(count(&a, &ws, &u).await, 1);

    // Without a key, or with another key, the same body is a new request (409 on the email).
    let other = post_with_key(&a, &contacts(&ws), &u, "key-2", &body).await;
    other.problem(409, "conflict");
    // A 4xx is an answer too, and is replayed.
    let other_again = post_with_key(&a, &contacts(&ws), &u, "key-2", &body).await;
    other_again.problem(409, "conflict");
    assert_eq!(other_again.headers["idempotent-replayed"], "true");

    // After 24 hours the key is forgotten.
    a.clock.advance_secs(24 * 60 * 60 + 1);
    let login = a
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "u@example.com", "password": common::PASSWORD}),
        )
        .await;
    let u = Account {
        access: login.ok(200)["tokens"]["accessToken"]
            .as_str()
            .unwrap()
            .to_owned(),
        ..u
    };
    let late = post_with_key(&a, &contacts(&ws), &u, "key-1", &body).await;
    late.problem(409, "conflict");
    assert!(late.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let t = TestApp::new();
    let u = t.register("u@example.com").await;
    let ws = t.workspace(&u, "Acme").await;
    let r = post_with_key(&t, &contacts(&ws), &u, "k", &json!({"firstName": "A"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = post_with_key(&t, &contacts(&ws), &u, "k", &json!({"firstName": "B"})).await;
    r.problem(422, "idempotency_key_reused");
    assert_eq!(r.body["field"], "Idempotency-Key");
    assert_eq!(count(&t, &ws, &u).await, 1);

    // Keys are per caller: another member's same key is its own.
    let v = t.register("v@example.com").await;
    let ws2 = t.workspace(&v, "Other").await;
    let r = post_with_key(&t, &contacts(&ws2), &v, "k", &json!({"firstName": "B"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn a_retry_while_the_first_runs_is_409_until_its_lock_expires() {
    let t = TestApp::new();
    let u = t.register("u@example.com").await;
    let ws = t.workspace(&u, "Acme").await;
    let path = contacts(&ws);
    let body = json!({"firstName": "A"});
    // Another process holds the key and has not answered yet.
    let scope = idempotency::scope_of(&format!("user:{}", u.id), "k", "POST", &path);
    let fp = idempotency::fingerprint("", body.to_string().as_bytes());
    let now = t.clock.now();
    let began = idempotency::begin(&*t.state.storage.docs, &scope, &fp, now, 30)
        .await
        .unwrap();
    assert_eq!(began, Begin::Started);

    let r = post_with_key(&t, &path, &u, "k", &body).await;
    r.problem(409, "idempotency_in_progress");
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    assert_eq!(count(&t, &ws, &u).await, 0);

    // The holder died: after its lock the retry runs.
    t.clock.advance_secs(31);
    let r = post_with_key(&t, &path, &u, "k", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(count(&t, &ws, &u).await, 1);
}

#[tokio::test]
async fn a_malformed_key_is_400() {
    let t = TestApp::new();
    let u = t.register("u@example.com").await;
    let ws = t.workspace(&u, "Acme").await;
    let r = post_with_key(
        &t,
        &contacts(&ws),
        &u,
        "two words",
        &json!({"firstName": "A"}),
    )
    .await;
    r.problem(400, "invalid_idempotency_key");
    assert_eq!(count(&t, &ws, &u).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_run_once() {
    let mem = Arc::new(MemoryStore::new());
    let storage = SlowStore::storage(mem, Duration::from_millis(2));
    let t = Arc::new(TestApp::with(storage, ApiConfig::default()));
    let u = t.register("u@example.com").await;
    let ws = t.workspace(&u, "Acme").await;
    let body = json!({"firstName": "Ada", "email": "ada@example.com"});
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (t, u, ws, body) = (t.clone(), u.clone(), ws.clone(), body.clone());
            tokio::spawn(async move { post_with_key(&t, &contacts(&ws), &u, "dup", &body).await })
        })
        .collect();
    let mut fresh = 0;
    for h in handles {
        let r = h.await.unwrap();
        match r.status.as_u16() {
            201 if r.headers.get("idempotent-replayed").is_none() => fresh += 1,
            201 => {}
            409 => {
                r.problem(409, "idempotency_in_progress");
            }
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    assert_eq!(fresh, 1);
    assert_eq!(count(&t, &ws, &u).await, 1);
}
