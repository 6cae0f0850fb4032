//! API keys over HTTP: the key text shown once, keys as credentials on workspace routes with
//! their role, revocation and expiry, the workspace a key belongs to, who may manage keys, and
//! the routes keys may not call.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, header};
use clianta_api::{ApiConfig, RateLimitConfig};
use common::{Account, Resp, TestApp, World, add_member, world, world_with};
use crm_core::accounts::Role;
use crm_core::entities::user_action::UserAction;
use crm_core::services::ratelimit::Limit;
use crm_core::{Filter, FindOptions, WorkspaceId};
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

/// Creates a key as `who`; returns (key text, key id).
async fn key(t: &TestApp, ws: &str, who: &Account, role: &str) -> (String, String) {
    let r = t
        .post(
            &url(ws, "api-keys"),
            Some(&who.access),
            json!({"name": format!("{role} key"), "role": role}),
        )
        .await;
    let b = r.ok(201);
    (
        b["key"].as_str().unwrap().to_owned(),
        b["_id"].as_str().unwrap().to_owned(),
    )
}

/// A request carrying `key` in `X-Api-Key` instead of `Authorization`.
async fn with_header(
    t: &TestApp,
    method: Method,
    uri: &str,
    key: &str,
    body: Option<Value>,
) -> Resp {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-api-key", key);
    let req = match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    t.send(req).await
}

/// `secs` from the app's clock, as RFC 3339.
fn in_secs(t: &TestApp, secs: i64) -> String {
    t.state
        .stores
        .clock()
        .now()
        .plus_seconds(secs)
        .to_canonical()
}

async fn last_used(w: &World, key_url: &str) -> Value {
    w.t.get(key_url, w.tok()).await.ok(200)["lastUsedAt"].clone()
}

/// The actors of the audit entries about record `id`.
async fn audit_actors(w: &World, id: &str) -> Vec<Value> {
    let ws: WorkspaceId = w.ws.parse().unwrap();
    let entries =
        w.t.state
            .stores
            .workspace(ws)
            .repo::<UserAction>()
            .find(&Filter::eq("resourceId", id), &FindOptions::default())
            .await
            .unwrap();
    entries
        .into_iter()
        .map(|e| e.metadata["actor"].clone())
        .collect()
}

#[tokio::test]
async fn the_key_is_shown_once_and_lists_show_its_prefix_only() {
    let w = world().await;
    let r =
        w.t.post(
            &url(&w.ws, "api-keys"),
            w.tok(),
            json!({"name": " Zapier ", "role": "member"}),
        )
        .await;
    let created = r.ok(201).clone();
    let text = created["key"].as_str().unwrap();
    assert!(text.starts_with(&format!("clk_{}_", w.ws)), "{text}");
    assert_eq!(text.len(), 4 + 24 + 1 + 43);
    assert_eq!(created["name"], "Zapier");
    assert_eq!(created["role"], "member");
    assert_eq!(created["createdBy"], w.owner.id.as_str());
    let prefix = created["prefix"].as_str().unwrap();
    assert!(text.starts_with(prefix) && prefix.len() < text.len() - 32);
    assert!(created.get("keyHash").is_none());

    let list = w.t.get(&url(&w.ws, "api-keys"), w.tok()).await;
    let list = list.ok(200);
    assert_eq!(list["pagination"]["total"], 1);
    let listed = &list["apiKeys"][0];
    assert_eq!(listed["prefix"], prefix);
    assert_eq!(listed["_id"], created["_id"]);
    let id = created["_id"].as_str().unwrap();
    let one =
        w.t.get(&url(&w.ws, &format!("api-keys/{id}")), w.tok())
            .await;
    for shown in [list, one.ok(200)] {
        let s = shown.to_string();
        assert!(!s.contains(text), "the key text is shown again: {s}");
        assert!(!s.contains("keyHash") && !s.contains("\"key\""), "{s}");
    }

    // Validation.
    for (body, field) in [
        (json!({"name": "", "role": "viewer"}), "name"),
        (json!({"name": "x", "role": "owner"}), "role"),
        (
            json!({"name": "x", "role": "viewer", "expiresAt": "2000-01-01T00:00:00Z"}),
            "expiresAt",
        ),
        (
            json!({"name": "x", "role": "viewer", "workspaceId": w.ws}),
            "workspaceId",
        ),
    ] {
        let r = w.t.post(&url(&w.ws, "api-keys"), w.tok(), body).await;
        r.problem(422, "invalid");
        assert!(r.body.to_string().contains(field), "{field}: {}", r.body);
    }
}

#[tokio::test]
async fn a_key_acts_with_its_role_on_workspace_routes() {
    let w = world().await;
    let contacts = url(&w.ws, "contacts");
    let (viewer, _) = key(&w.t, &w.ws, &w.owner, "viewer").await;
    let (member, member_id) = key(&w.t, &w.ws, &w.owner, "member").await;
    let (admin, _) = key(&w.t, &w.ws, &w.owner, "admin").await;

    let r =
        w.t.post(&contacts, Some(&member), json!({"firstName": "Ada"}))
            .await;
    let ada = r.ok(201)["_id"].as_str().unwrap().to_owned();
    // The key acts for its creator, and the audit log names the key.
    assert_eq!(r.body["userId"], w.owner.id.as_str());
    let actors = audit_actors(&w, &ada).await;
    assert_eq!(
        actors,
        [json!({"type": "apiKey", "apiKeyId": member_id, "userId": w.owner.id})]
    );
    let one = format!("{contacts}/{ada}");
    w.t.patch(&one, Some(&member), json!({"lastName": "L"}))
        .await
        .ok(200);
    w.t.delete(&one, Some(&member))
        .await
        .problem(403, "forbidden");

    let r = w.t.get(&contacts, Some(&viewer)).await;
    assert_eq!(r.ok(200)["pagination"]["total"], 1);
    w.t.get(&one, Some(&viewer)).await.ok(200);
    w.t.post(&contacts, Some(&viewer), json!({"firstName": "B"}))
        .await
        .problem(403, "forbidden");
    w.t.patch(&one, Some(&viewer), json!({"lastName": "X"}))
        .await
        .problem(403, "forbidden");

    // The same through `X-Api-Key`.
    let r = with_header(&w.t, Method::GET, &contacts, &viewer, None).await;
    r.ok(200);
    let r = with_header(
        &w.t,
        Method::POST,
        &contacts,
        &viewer,
        Some(json!({"firstName": "C"})),
    )
    .await;
    r.problem(403, "forbidden");
    let r = with_header(
        &w.t,
        Method::POST,
        &contacts,
        &member,
        Some(json!({"firstName": "D"})),
    )
    .await;
    r.ok(201);

    // Admin keys delete but never act as owner.
    let r = w.t.delete(&one, Some(&admin)).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.body);
    w.t.delete(&format!("/api/v1/workspaces/{}", w.ws), Some(&admin))
        .await
        .problem(403, "forbidden");
    let ws =
        w.t.get(&format!("/api/v1/workspaces/{}", w.ws), Some(&admin))
            .await;
    assert_eq!(ws.ok(200)["role"], "admin");
}

#[tokio::test]
async fn revoked_expired_unknown_and_malformed_keys_are_401() {
    let w = world().await;
    let contacts = url(&w.ws, "contacts");
    let (k, id) = key(&w.t, &w.ws, &w.owner, "viewer").await;
    w.t.get(&contacts, Some(&k)).await.ok(200);

    let r =
        w.t.delete(&url(&w.ws, &format!("api-keys/{id}")), w.tok())
            .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.body);
    w.t.get(&contacts, Some(&k))
        .await
        .problem(401, "unauthenticated");
    with_header(&w.t, Method::GET, &contacts, &k, None)
        .await
        .problem(401, "unauthenticated");
    let listed =
        w.t.get(&url(&w.ws, &format!("api-keys/{id}")), w.tok())
            .await;
    assert!(listed.ok(200)["revokedAt"].is_string());
    assert_eq!(listed.body["revokedBy"], w.owner.id.as_str());
    // Revoking again changes nothing.
    let again =
        w.t.delete(&url(&w.ws, &format!("api-keys/{id}")), w.tok())
            .await;
    assert_eq!(again.status.as_u16(), 204);

    let soon =
        w.t.post(
            &url(&w.ws, "api-keys"),
            w.tok(),
            json!({"name": "Temp", "role": "viewer",
                "expiresAt": in_secs(&w.t, 3600)}),
        )
        .await;
    let soon = soon.ok(201)["key"].as_str().unwrap().to_owned();
    let (live, _) = key(&w.t, &w.ws, &w.owner, "viewer").await;
    w.t.get(&contacts, Some(&soon)).await.ok(200);
    w.t.clock.advance_secs(3601);
    w.t.get(&contacts, Some(&soon))
        .await
        .problem(401, "unauthenticated");

    // One character changed, cut short, or naming no workspace.
    let mut forged = live.clone();
    let last = if forged.ends_with('a') { 'b' } else { 'a' };
    forged.pop();
    forged.push(last);
    for bad in [
        forged.as_str(),
        &live[..live.len() - 1],
        "clk_nonsense",
        &live.replacen(&w.ws, "000000000000000000000000", 1),
    ] {
        w.t.get(&contacts, Some(bad))
            .await
            .problem(401, "unauthenticated");
    }
    w.t.get(&contacts, Some(&live)).await.ok(200);
}

#[tokio::test]
async fn a_key_reaches_only_its_own_workspace() {
    let w = world().await;
    let other = w.t.workspace(&w.owner, "Second").await;
    let stranger = w.t.register("stranger@example.com").await;
    let theirs = w.t.workspace(&stranger, "Theirs").await;
    let (k, _) = key(&w.t, &w.ws, &w.owner, "admin").await;
    let (their_key, their_key_id) = key(&w.t, &theirs, &stranger, "admin").await;

    // The key's creator owns `other`, but the key belongs to `w.ws`.
    for ws in [&other, &theirs, "000000000000000000000000", "nope"] {
        w.t.get(&url(ws, "contacts"), Some(&k))
            .await
            .problem(404, "not_found");
        w.t.post(&url(ws, "contacts"), Some(&k), json!({"firstName": "X"}))
            .await
            .problem(404, "not_found");
    }
    w.t.get(&url(&w.ws, "contacts"), Some(&their_key))
        .await
        .problem(404, "not_found");
    // Another workspace's key id is unknown here.
    for r in [
        w.t.get(&url(&w.ws, &format!("api-keys/{their_key_id}")), w.tok())
            .await,
        w.t.delete(&url(&w.ws, &format!("api-keys/{their_key_id}")), w.tok())
            .await,
    ] {
        r.problem(404, "not_found");
    }
    w.t.get(&url(&theirs, "contacts"), Some(&their_key))
        .await
        .ok(200);
    let list = w.t.get(&url(&w.ws, "api-keys"), w.tok()).await;
    assert_eq!(list.ok(200)["pagination"]["total"], 1);
}

#[tokio::test]
async fn only_owners_and_admins_manage_keys_and_never_above_their_role() {
    let w = world().await;
    let (adam, mel, vic) = (
        w.t.register("adam@example.com").await,
        w.t.register("mel@example.com").await,
        w.t.register("vic@example.com").await,
    );
    add_member(&w.t, &w.ws, &adam, Role::Admin).await;
    add_member(&w.t, &w.ws, &mel, Role::Member).await;
    add_member(&w.t, &w.ws, &vic, Role::Viewer).await;
    let (_, owner_key) = key(&w.t, &w.ws, &w.owner, "viewer").await;
    let keys = url(&w.ws, "api-keys");

    for who in [&mel, &vic] {
        let tok = Some(who.access.as_str());
        w.t.post(&keys, tok, json!({"name": "k", "role": "viewer"}))
            .await
            .problem(403, "forbidden");
        w.t.get(&keys, tok).await.problem(403, "forbidden");
        w.t.get(&format!("{keys}/{owner_key}"), tok)
            .await
            .problem(403, "forbidden");
        w.t.delete(&format!("{keys}/{owner_key}"), tok)
            .await
            .problem(403, "forbidden");
    }

    // An admin manages every key of the workspace.
    let (admin_key, _) = key(&w.t, &w.ws, &adam, "admin").await;
    let r = w.t.get(&keys, Some(&adam.access)).await;
    assert_eq!(r.ok(200)["pagination"]["total"], 2);
    let r =
        w.t.delete(&format!("{keys}/{owner_key}"), Some(&adam.access))
            .await;
    assert_eq!(r.status.as_u16(), 204);

    // A key never outranks its creator: demoted, the admin's key can no longer write.
    w.t.post(
        &url(&w.ws, "contacts"),
        Some(&admin_key),
        json!({"firstName": "A"}),
    )
    .await
    .ok(201);
    let members = w.t.get(&url(&w.ws, "members"), w.tok()).await;
    let adam_member = members.ok(200)["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["userId"] == adam.id.as_str())
        .unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.t.patch(
        &url(&w.ws, &format!("members/{adam_member}")),
        w.tok(),
        json!({"role": "viewer"}),
    )
    .await
    .ok(200);
    w.t.post(
        &url(&w.ws, "contacts"),
        Some(&admin_key),
        json!({"firstName": "B"}),
    )
    .await
    .problem(403, "forbidden");
    w.t.get(&url(&w.ws, "contacts"), Some(&admin_key))
        .await
        .ok(200);
    // Removed from the workspace, the creator takes the key's access along.
    let r =
        w.t.delete(&url(&w.ws, &format!("members/{adam_member}")), w.tok())
            .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.body);
    w.t.get(&url(&w.ws, "contacts"), Some(&admin_key))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn keys_cannot_call_account_routes_nor_manage_keys() {
    let w = world().await;
    let (k, id) = key(&w.t, &w.ws, &w.owner, "admin").await;
    let tok = Some(k.as_str());
    w.t.get("/api/v1/auth/me", tok)
        .await
        .problem(401, "unauthenticated");
    with_header(&w.t, Method::GET, "/api/v1/auth/me", &k, None)
        .await
        .problem(401, "unauthenticated");
    w.t.get("/api/v1/workspaces", tok)
        .await
        .problem(401, "unauthenticated");
    w.t.post("/api/v1/workspaces", tok, json!({"name": "Mine"}))
        .await
        .problem(401, "unauthenticated");

    let keys = url(&w.ws, "api-keys");
    w.t.post(&keys, tok, json!({"name": "child", "role": "viewer"}))
        .await
        .problem(403, "forbidden");
    w.t.get(&keys, tok).await.problem(403, "forbidden");
    w.t.delete(&format!("{keys}/{id}"), tok)
        .await
        .problem(403, "forbidden");
    let list = w.t.get(&keys, w.tok()).await;
    assert_eq!(list.ok(200)["pagination"]["total"], 1);
    assert!(list.body["apiKeys"][0].get("revokedAt").is_none());
}

#[tokio::test]
async fn last_used_is_written_at_most_once_a_minute() {
    let w = world().await;
    let (k, id) = key(&w.t, &w.ws, &w.owner, "viewer").await;
    let one = url(&w.ws, &format!("api-keys/{id}"));
    assert_eq!(last_used(&w, &one).await, Value::Null);
    w.t.get(&url(&w.ws, "contacts"), Some(&k)).await.ok(200);
    let first = last_used(&w, &one).await;
    assert!(first.is_string());
    w.t.clock.advance_secs(30);
    w.t.get(&url(&w.ws, "contacts"), Some(&k)).await.ok(200);
    assert_eq!(last_used(&w, &one).await, first);
    w.t.clock.advance_secs(31);
    w.t.get(&url(&w.ws, "contacts"), Some(&k)).await.ok(200);
    let later = last_used(&w, &one).await;
    assert!(later.is_string() && later != first, "{later} vs {first}");
}

#[tokio::test]
async fn a_key_is_its_own_rate_limit_credential() {
    let config = ApiConfig {
        rate_limit: RateLimitConfig {
            per_credential: Limit::new(3, 60),
            ..RateLimitConfig::default()
        },
        ..ApiConfig::default()
    };
    // Registering and creating the workspace and key use the owner's own budget.
    let w = world_with(TestApp::with(common::storage(), config)).await;
    w.t.clock.advance_secs(60);
    let (k, _) = key(&w.t, &w.ws, &w.owner, "viewer").await;
    let contacts = url(&w.ws, "contacts");
    for _ in 0..3 {
        w.t.get(&contacts, Some(&k)).await.ok(200);
    }
    let r = w.t.get(&contacts, Some(&k)).await;
    r.problem(429, "rate_limited");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    // The creator's session has a budget of its own.
    w.t.get(&contacts, w.tok()).await.ok(200);
}
