//! Team invites and the workspace join link over HTTP: email match on accept, 7-day expiry,
//! single use, revoke, the role table, the memberships listing, one active link.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use clianta_api::{ApiConfig, router};
use common::{Account, TestApp};
use crm_core::accounts::{Mail, MailKind, Mailer};
use serde_json::{Value, json};

#[derive(Default)]
struct Outbox(Mutex<Vec<Mail>>);

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: Mail) -> crm_core::Result<()> {
        self.0.lock().unwrap().push(mail);
        Ok(())
    }
}

fn app() -> (TestApp, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::default());
    let mut t = TestApp::with(common::storage(), ApiConfig::default());
    t.state = t.state.clone().with_mailer(outbox.clone());
    t.app = router(t.state.clone());
    (t, outbox)
}

fn invites(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/invites")
}

fn link(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/invite-link")
}

async fn invite(t: &TestApp, by: &Account, ws: &str, email: &str, role: &str) -> Value {
    let r = t
        .post(
            &invites(ws),
            Some(&by.access),
            json!({"email": email, "role": role}),
        )
        .await;
    r.ok(201).clone()
}

async fn accept(t: &TestApp, who: &Account, token: &str) -> common::Resp {
    t.post(
        &format!("/api/v1/invites/{token}/accept"),
        Some(&who.access),
        json!({}),
    )
    .await
}

/// Access tokens outlive no clock jump of days.
async fn relogin(t: &TestApp, email: &str) -> Account {
    let r = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": common::PASSWORD}),
        )
        .await;
    let b = r.ok(200);
    Account {
        id: b["user"]["_id"].as_str().unwrap().to_owned(),
        access: b["tokens"]["accessToken"].as_str().unwrap().to_owned(),
        refresh: b["tokens"]["refreshToken"].as_str().unwrap().to_owned(),
    }
}

async fn workspace_ids(t: &TestApp, who: &Account) -> Vec<(String, String)> {
    let r = t.get("/api/v1/workspaces", Some(&who.access)).await;
    r.ok(200)["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["_id"].as_str().unwrap().to_owned(),
                w["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn invite_accept_by_the_invited_email_only() {
    let (t, mail) = app();
    let owner = t.register("owner@example.com").await;
    let bob = t.register("bob@example.com").await;
    let eve = t.register("eve@example.com").await;
    let ws = t.workspace(&owner, "Acme").await;
    let inv = invite(&t, &owner, &ws, " Bob@Example.COM ", "member").await;
    assert_eq!(inv["email"], "bob@example.com");
    let token = inv["token"].as_str().unwrap().to_owned();
    // The mail carries the same token.
    let sent = mail.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent.to, "bob@example.com");
    assert!(matches!(&sent.kind, MailKind::Invite { token: t, .. } if *t == token));
    // Public view.
    let r = t.get(&format!("/api/v1/invites/{token}"), None).await;
    let v = r.ok(200);
    assert_eq!(v["workspaceName"], "Acme");
    assert_eq!(v["role"], "member");
    assert_eq!(v["email"], "bob@example.com");
    // The listing shows the pending invite.
    let members = t
        .get(
            &format!("/api/v1/workspaces/{ws}/members"),
            Some(&owner.access),
        )
        .await;
    assert!(
        members.ok(200)["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["status"] == "pending" && m["email"] == "bob@example.com")
    );
    // Somebody else cannot take it; not logged in is 401.
    accept(&t, &eve, &token).await.problem(403, "forbidden");
    t.post(&format!("/api/v1/invites/{token}/accept"), None, json!({}))
        .await
        .problem(401, "unauthenticated");
    t.get(&format!("/api/v1/workspaces/{ws}"), Some(&bob.access))
        .await
        .problem(404, "not_found");
    let r = accept(&t, &bob, &token).await;
    assert_eq!(r.ok(200)["role"], "member");
    assert_eq!(
        workspace_ids(&t, &bob).await,
        vec![(ws.clone(), "member".into())]
    );
    t.get(&format!("/api/v1/workspaces/{ws}"), Some(&bob.access))
        .await
        .ok(200);
    // Used up.
    accept(&t, &bob, &token).await.problem(404, "not_found");
    t.get(&format!("/api/v1/invites/{token}"), None)
        .await
        .problem(404, "not_found");
    // Members and live invites cannot be invited again.
    t.post(
        &invites(&ws),
        Some(&owner.access),
        json!({"email": "bob@example.com", "role": "viewer"}),
    )
    .await
    .problem(409, "conflict");
    invite(&t, &owner, &ws, "new@example.com", "viewer").await;
    t.post(
        &invites(&ws),
        Some(&owner.access),
        json!({"email": "new@example.com", "role": "viewer"}),
    )
    .await
    .problem(409, "conflict");
    t.post(
        &invites(&ws),
        Some(&owner.access),
        json!({"email": "owner@example.com", "role": "admin"}),
    )
    .await
    .problem(409, "conflict");
}

#[tokio::test]
async fn invites_expire_after_seven_days() {
    let (t, _) = app();
    let owner = t.register("owner@example.com").await;
    t.register("bob@example.com").await;
    let ws = t.workspace(&owner, "Acme").await;
    let inv = invite(&t, &owner, &ws, "bob@example.com", "viewer").await;
    let token = inv["token"].as_str().unwrap();
    t.clock.advance_secs(7 * 24 * 3600 + 1);
    let (owner, bob) = (
        relogin(&t, "owner@example.com").await,
        relogin(&t, "bob@example.com").await,
    );
    t.get(&format!("/api/v1/invites/{token}"), None)
        .await
        .problem(404, "not_found");
    accept(&t, &bob, token).await.problem(404, "not_found");
    // An expired invite can be renewed in place.
    let again = invite(&t, &owner, &ws, "bob@example.com", "viewer").await;
    assert_eq!(again["_id"], inv["_id"]);
    accept(&t, &bob, again["token"].as_str().unwrap())
        .await
        .ok(200);
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_404() {
    let (t, _) = app();
    let bob = t.register("bob@example.com").await;
    let fake = format!("{}.{}", "0".repeat(24), "a".repeat(64));
    for token in ["nope", "x.y", fake.as_str()] {
        t.get(&format!("/api/v1/invites/{token}"), None)
            .await
            .problem(404, "not_found");
        accept(&t, &bob, token).await.problem(404, "not_found");
        t.post(
            &format!("/api/v1/join/{token}"),
            Some(&bob.access),
            json!({}),
        )
        .await
        .problem(404, "not_found");
    }
}

#[tokio::test]
async fn role_table_for_invites() {
    let (t, _) = app();
    let owner = t.register("owner@example.com").await;
    let admin = t.register("admin@example.com").await;
    let member = t.register("member@example.com").await;
    let viewer = t.register("viewer@example.com").await;
    let ws = t.workspace(&owner, "Acme").await;
    for (who, role) in [(&admin, "admin"), (&member, "member"), (&viewer, "viewer")] {
        let inv = invite(&t, &owner, &ws, &format!("{role}@example.com"), role).await;
        accept(&t, who, inv["token"].as_str().unwrap())
            .await
            .ok(200);
    }
    for who in [&member, &viewer] {
        t.post(
            &invites(&ws),
            Some(&who.access),
            json!({"email": "x@example.com", "role": "viewer"}),
        )
        .await
        .problem(403, "forbidden");
        t.post(&link(&ws), Some(&who.access), json!({}))
            .await
            .problem(403, "forbidden");
    }
    // Admins invite admins and below, never owners.
    invite(&t, &admin, &ws, "a2@example.com", "admin").await;
    t.post(
        &invites(&ws),
        Some(&admin.access),
        json!({"email": "o@example.com", "role": "owner"}),
    )
    .await
    .problem(422, "invalid");
    t.post(
        &invites(&ws),
        Some(&admin.access),
        json!({"email": "not-an-email", "role": "member"}),
    )
    .await
    .problem(422, "invalid");
    let pending = invite(&t, &owner, &ws, "p@example.com", "viewer").await;
    let revoke = format!("{}/{}", invites(&ws), pending["_id"].as_str().unwrap());
    t.delete(&revoke, Some(&member.access))
        .await
        .problem(403, "forbidden");
    t.delete(&revoke, Some(&admin.access)).await.ok(204);
    t.get(
        &format!("/api/v1/invites/{}", pending["token"].as_str().unwrap()),
        None,
    )
    .await
    .problem(404, "not_found");
    t.delete(&revoke, Some(&admin.access))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn revoke_is_scoped_to_the_workspace() {
    let (t, _) = app();
    let owner = t.register("owner@example.com").await;
    let other = t.register("other@example.com").await;
    let ws = t.workspace(&owner, "Acme").await;
    let theirs = t.workspace(&other, "Other").await;
    let inv = invite(&t, &owner, &ws, "bob@example.com", "viewer").await;
    let id = inv["_id"].as_str().unwrap();
    t.delete(&format!("{}/{id}", invites(&theirs)), Some(&other.access))
        .await
        .problem(404, "not_found");
    t.delete(&format!("{}/{id}", invites(&ws)), Some(&other.access))
        .await
        .problem(404, "not_found");
    t.get(
        &format!("/api/v1/invites/{}", inv["token"].as_str().unwrap()),
        None,
    )
    .await
    .ok(200);
    // An active member is not a pending invite.
    let members = t
        .get(
            &format!("/api/v1/workspaces/{ws}/members"),
            Some(&owner.access),
        )
        .await;
    let owner_row = members.ok(200)["members"][0]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.delete(
        &format!("{}/{owner_row}", invites(&ws)),
        Some(&owner.access),
    )
    .await
    .problem(404, "not_found");
}

#[tokio::test]
async fn removed_member_is_reinvited_in_place() {
    let (t, _) = app();
    let owner = t.register("owner@example.com").await;
    let bob = t.register("bob@example.com").await;
    let ws = t.workspace(&owner, "Acme").await;
    let inv = invite(&t, &owner, &ws, "bob@example.com", "member").await;
    accept(&t, &bob, inv["token"].as_str().unwrap())
        .await
        .ok(200);
    let id = inv["_id"].as_str().unwrap();
    t.delete(
        &format!("/api/v1/workspaces/{ws}/members/{id}"),
        Some(&owner.access),
    )
    .await
    .ok(204);
    assert!(workspace_ids(&t, &bob).await.is_empty());
    let again = invite(&t, &owner, &ws, "bob@example.com", "viewer").await;
    assert_eq!(again["_id"], inv["_id"]);
    let r = accept(&t, &bob, again["token"].as_str().unwrap()).await;
    assert_eq!(r.ok(200)["role"], "viewer");
    assert_eq!(workspace_ids(&t, &bob).await, vec![(ws, "viewer".into())]);
}

#[tokio::test]
async fn one_active_join_link() {
    let (t, _) = app();
    let owner = t.register("owner@example.com").await;
    let bob = t.register("bob@example.com").await;
    let carol = t.register("carol@example.com").await;
    let ws = t.workspace(&owner, "Acme").await;
    t.get(&link(&ws), Some(&owner.access))
        .await
        .problem(404, "not_found");
    let first = t.post(&link(&ws), Some(&owner.access), json!({})).await;
    let first = first.ok(201)["token"].as_str().unwrap().to_owned();
    let second = t
        .post(&link(&ws), Some(&owner.access), json!({"role": "viewer"}))
        .await;
    let second_id = second.ok(201)["_id"].clone();
    let second = second.body["token"].as_str().unwrap().to_owned();
    let join = |tok: &str| format!("/api/v1/join/{tok}");
    t.post(&join(&first), Some(&bob.access), json!({}))
        .await
        .problem(404, "not_found");
    let r = t.post(&join(&second), Some(&bob.access), json!({})).await;
    assert_eq!(r.ok(200)["role"], "viewer");
    assert_eq!(
        workspace_ids(&t, &bob).await,
        vec![(ws.clone(), "viewer".into())]
    );
    t.post(&join(&second), Some(&bob.access), json!({}))
        .await
        .problem(409, "conflict");
    t.post(&join(&second), Some(&owner.access), json!({}))
        .await
        .problem(409, "conflict");
    t.post(&join(&second), None, json!({}))
        .await
        .problem(401, "unauthenticated");
    let current = t.get(&link(&ws), Some(&owner.access)).await;
    let current = current.ok(200);
    assert_eq!(current["_id"], second_id);
    assert_eq!(current["usageCount"], 1);
    assert_eq!(current["role"], "viewer");
    assert!(current.get("token").is_none());
    t.delete(&link(&ws), Some(&owner.access)).await.ok(204);
    t.post(&join(&second), Some(&carol.access), json!({}))
        .await
        .problem(404, "not_found");
    t.get(&link(&ws), Some(&owner.access))
        .await
        .problem(404, "not_found");
    t.delete(&link(&ws), Some(&owner.access))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn join_links_expire() {
    let (t, _) = app();
    let owner = t.register("owner@example.com").await;
    t.register("bob@example.com").await;
    let ws = t.workspace(&owner, "Acme").await;
    t.post(&link(&ws), Some(&owner.access), json!({"expiresInDays": 0}))
        .await
        .problem(422, "invalid");
    t.post(&link(&ws), Some(&owner.access), json!({"role": "admin"}))
        .await
        .problem(422, "invalid");
    let r = t
        .post(&link(&ws), Some(&owner.access), json!({"expiresInDays": 1}))
        .await;
    let token = r.ok(201)["token"].as_str().unwrap().to_owned();
    t.clock.advance_secs(24 * 3600 + 1);
    let bob = relogin(&t, "bob@example.com").await;
    t.post(
        &format!("/api/v1/join/{token}"),
        Some(&bob.access),
        json!({}),
    )
    .await
    .problem(404, "not_found");
}
