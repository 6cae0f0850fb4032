//! The `Member` extractor remembers roles for a few seconds (ADR 0016); every change made
//! through this process applies to the very next request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use clianta_api::ApiConfig;
use common::TestApp;
use crm_core::accounts::Role;
use serde_json::json;

const WS: &str = "/api/v1/workspaces";

/// A cache long enough that only invalidation can explain a fresh answer.
fn app() -> TestApp {
    TestApp::with(
        common::storage(),
        ApiConfig {
            member_cache_ttl: std::time::Duration::from_secs(3600),
            ..ApiConfig::default()
        },
    )
}

fn member_id(members: &serde_json::Value, user: &str) -> String {
    members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["userId"] == user)
        .and_then(|m| m["_id"].as_str())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn role_changes_and_removals_apply_to_the_next_request() {
    let t = app();
    let ann = t.register("ann@example.com").await;
    let bob = t.register("bob@example.com").await;
    let ws = t.workspace(&ann, "Team").await;
    common::add_member(&t, &ws, &bob, Role::Member).await;
    let contacts = format!("{WS}/{ws}/contacts");
    let body = json!({"firstName": "Ada", "email": "ada@example.com"});
    t.post(&contacts, Some(&bob.access), body.clone())
        .await
        .ok(201);

    let members = t
        .get(&format!("{WS}/{ws}/members"), Some(&ann.access))
        .await;
    let id = member_id(members.ok(200), &bob.id);
    let one = format!("{WS}/{ws}/members/{id}");
    t.patch(&one, Some(&ann.access), json!({"role": "viewer"}))
        .await
        .ok(200);
    t.post(
        &contacts,
        Some(&bob.access),
        json!({"firstName": "Bo", "email": "bo@example.com"}),
    )
    .await
    .problem(403, "forbidden");
    t.get(&contacts, Some(&bob.access)).await.ok(200);

    let r = t.delete(&one, Some(&ann.access)).await;
    assert!(r.status.is_success(), "{}", r.body);
    t.get(&contacts, Some(&bob.access))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn a_deleted_workspace_is_gone_at_once() {
    let t = app();
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Doomed").await;
    let contacts = format!("{WS}/{ws}/contacts");
    t.get(&contacts, Some(&ann.access)).await.ok(200);
    let r = t.delete(&format!("{WS}/{ws}"), Some(&ann.access)).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.body);
    t.get(&contacts, Some(&ann.access))
        .await
        .problem(404, "not_found");
}
