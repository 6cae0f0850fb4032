//! `ETag` on single records and `If-Match` on PATCH/DELETE (412 when stale), through contacts
//! and companies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use clianta_api::{ApiConfig, AppState, router};
use common::{Account, Resp, SlowStore, TestApp, TestClock};
use serde_json::{Value, json};
use storage_memory::MemoryStore;

async fn with_if_match(
    t: &TestApp,
    method: Method,
    uri: &str,
    who: &Account,
    tag: &str,
    body: Option<Value>,
) -> Resp {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", who.access))
        .header(header::IF_MATCH, tag);
    let req = match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .unwrap();
    t.send(req).await
}

fn etag(r: &Resp) -> String {
    r.headers[header::ETAG].to_str().unwrap().to_owned()
}

/// GET, PATCH with the current tag, PATCH and DELETE with the stale one (412, nothing changed),
/// DELETE with the current one.
async fn check(resource: &str, create: Value, patch: Value, changed: &str) {
    let t = TestApp::new();
    let u = t.register("u@example.com").await;
    let ws = t.workspace(&u, "Acme").await;
    let list = format!("/api/v1/workspaces/{ws}/{resource}");
    let created = t.post(&list, Some(&u.access), create.clone()).await;
    let id = created.ok(201)["_id"].as_str().unwrap().to_owned();
    let url = format!("{list}/{id}");

    let got = t.get(&url, Some(&u.access)).await;
    got.ok(200);
    let v1 = etag(&got);
    assert!(v1.starts_with('"') && v1.ends_with('"'), "{v1}");
    // Lists carry no tag.
    assert!(
        t.get(&list, Some(&u.access))
            .await
            .headers
            .get(header::ETAG)
            .is_none()
    );

    t.clock.advance_secs(1);
    let ok = with_if_match(&t, Method::PATCH, &url, &u, &v1, Some(patch.clone())).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let v2 = etag(&ok);
    assert_ne!(v1, v2);
    assert_eq!(etag(&t.get(&url, Some(&u.access)).await), v2);

    t.clock.advance_secs(1);
    let stale = with_if_match(
        &t,
        Method::PATCH,
        &url,
        &u,
        &v1,
        Some(json!({changed: "zzz"})),
    )
    .await;
    stale.problem(412, "precondition_failed");
    assert_eq!(stale.body["field"], "If-Match");
    let now = t.get(&url, Some(&u.access)).await;
    assert_eq!(etag(&now), v2);
    assert_ne!(now.body[changed], "zzz");

    let stale = with_if_match(&t, Method::DELETE, &url, &u, &v1, None).await;
    stale.problem(412, "precondition_failed");
    t.get(&url, Some(&u.access)).await.ok(200);

    // A list of tags matches if any does; `*` matches any version.
    let r = with_if_match(
        &t,
        Method::PATCH,
        &url,
        &u,
        &format!("{v1}, {v2}"),
        Some(patch),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = with_if_match(&t, Method::DELETE, &url, &u, "*", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Another workspace's id stays a 404, whatever the tag.
    let v = t.register("v@example.com").await;
    let ws2 = t.workspace(&v, "Other").await;
    let theirs = t
        .post(
            &format!("/api/v1/workspaces/{ws2}/{resource}"),
            Some(&v.access),
            create,
        )
        .await;
    let their_id = theirs.ok(201)["_id"].as_str().unwrap();
    let r = with_if_match(
        &t,
        Method::DELETE,
        &format!("{list}/{their_id}"),
        &u,
        &v2,
        None,
    )
    .await;
    r.problem(404, "not_found");
}

#[tokio::test]
async fn contacts_carry_etags_and_honour_if_match() {
    check(
        "contacts",
        json!({"firstName": "Ada"}),
        json!({"firstName": "Grace"}),
        "firstName",
    )
    .await;
}

#[tokio::test]
async fn companies_carry_etags_and_honour_if_match() {
    check(
        "companies",
        json!({"name": "Initech"}),
        json!({"name": "Initrode"}),
        "name",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_with_one_tag_let_exactly_one_through() {
    let mem = Arc::new(MemoryStore::new());
    let storage = SlowStore::storage(mem, Duration::from_millis(2));
    // The system clock: each write stamps a later `updatedAt`.
    let state = AppState::new(storage, ApiConfig::default());
    let t = Arc::new(TestApp {
        app: router(state.clone()),
        state,
        clock: TestClock::new(),
    });
    let u = t.register("u@example.com").await;
    let ws = t.workspace(&u, "Acme").await;
    let list = format!("/api/v1/workspaces/{ws}/contacts");
    let created = t
        .post(&list, Some(&u.access), json!({"firstName": "Ada"}))
        .await;
    let url = format!("{list}/{}", created.ok(201)["_id"].as_str().unwrap());
    let v1 = etag(&t.get(&url, Some(&u.access)).await);

    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (t, u, url, v1) = (t.clone(), u.clone(), url.clone(), v1.clone());
            tokio::spawn(async move {
                let body = json!({"firstName": format!("Writer {i}")});
                with_if_match(&t, Method::PATCH, &url, &u, &v1, Some(body))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.unwrap().as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412, 412, 412]);
}
