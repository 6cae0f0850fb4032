//! Workspaces and members over HTTP: create, list, get, patch, delete; the membership check
//! (another workspace answers 404, never data) and the role table (403).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Account, TestApp};
use crm_core::accounts::{Role, membership};
use crm_core::entities::project::Project;
use crm_core::entities::team_member::{MemberStatus, TeamMember};
use crm_core::{UserId, WorkspaceId};
use serde_json::{Value, json};

const WS: &str = "/api/v1/workspaces";

/// Adds `who` to `ws` as an active member with `role`, as an accepted invite would.
async fn add_member(t: &TestApp, ws: &str, who: &Account, role: Role) -> String {
    let ws: WorkspaceId = ws.parse().unwrap();
    let user: UserId = who.id.parse().unwrap();
    let now = t.state.stores.clock().now();
    let mut m = TeamMember::new(ws, role, now);
    m.user_id = Some(user);
    m.status = MemberStatus::Active;
    m.joined_at = Some(now);
    let m = t
        .state
        .stores
        .workspace(ws)
        .repo::<TeamMember>()
        .insert(&m)
        .await
        .unwrap();
    membership::record(&t.state.stores, user, ws, role)
        .await
        .unwrap();
    m.id.to_string()
}

fn ids(list: &Value) -> Vec<&str> {
    list["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn create_list_get_patch() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let r = t
        .post(
            WS,
            Some(&ann.access),
            json!({"name": "  Acme Sales ", "timezone": "Europe/Paris"}),
        )
        .await;
    let ws = r.ok(201).clone();
    assert_eq!(ws["name"], "Acme Sales");
    assert_eq!(ws["timezone"], "Europe/Paris");
    assert_eq!(ws["role"], "owner");
    assert_eq!(ws["isOwner"], true);
    assert_eq!(ws["ownerId"], ann.id.as_str());
    let id = ws["_id"].as_str().unwrap();

    // The creator is an active owner member (the original created none).
    let members = t
        .get(&format!("{WS}/{id}/members"), Some(&ann.access))
        .await;
    let members = members.ok(200)["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["role"], "owner");
    assert_eq!(members[0]["status"], "active");
    assert_eq!(members[0]["email"], "ann@example.com");
    assert!(members[0]["_id"].is_string());

    let second = t.workspace(&ann, "Second").await;
    let list = t.get(WS, Some(&ann.access)).await;
    assert_eq!(ids(list.ok(200)), [second.as_str(), id], "newest first");

    let got = t.get(&format!("{WS}/{id}"), Some(&ann.access)).await;
    assert_eq!(got.ok(200)["name"], "Acme Sales");

    let p = t
        .patch(
            &format!("{WS}/{id}"),
            Some(&ann.access),
            json!({"name": "Acme"}),
        )
        .await;
    assert_eq!(p.ok(200)["name"], "Acme");
    assert_eq!(p.body["timezone"], "Europe/Paris");
}

#[tokio::test]
async fn validation_and_authentication() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    t.post(WS, None, json!({"name": "Nope"}))
        .await
        .problem(401, "unauthenticated");
    t.get(WS, None).await.problem(401, "unauthenticated");
    for name in ["ab", "  a  ", &"x".repeat(101)] {
        let r = t.post(WS, Some(&ann.access), json!({"name": name})).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], "name");
    }
    let r = t
        .post(
            WS,
            Some(&ann.access),
            json!({"name": "Fine", "timezone": "not a zone!"}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "timezone");
    let id = t.workspace(&ann, "Fine").await;
    let r = t
        .patch(
            &format!("{WS}/{id}"),
            Some(&ann.access),
            json!({"name": "x"}),
        )
        .await;
    r.problem(422, "invalid");
    t.get(&format!("{WS}/{id}"), None)
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn another_workspace_is_not_found_never_forbidden() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let bob = t.register("bob@example.com").await;
    let anns = t.workspace(&ann, "Ann's").await;
    let bobs = t.workspace(&bob, "Bob's").await;

    let missing = t
        .get(&format!("{WS}/{}", WorkspaceId::new()), Some(&bob.access))
        .await;
    missing.problem(404, "not_found");
    let malformed = t.get(&format!("{WS}/not-an-id"), Some(&bob.access)).await;
    malformed.problem(404, "not_found");

    let uris = [format!("{WS}/{anns}"), format!("{WS}/{anns}/members")];
    for uri in &uris {
        let r = t.get(uri, Some(&bob.access)).await;
        r.problem(404, "not_found");
        assert_eq!(r.body, missing.body, "same answer as a missing workspace");
    }
    t.patch(
        &format!("{WS}/{anns}"),
        Some(&bob.access),
        json!({"name": "Hijacked"}),
    )
    .await
    .problem(404, "not_found");
    t.delete(&format!("{WS}/{anns}"), Some(&bob.access))
        .await
        .problem(404, "not_found");
    // Bob's own membership id under Ann's workspace is not found either.
    let bob_members = t
        .get(&format!("{WS}/{bobs}/members"), Some(&bob.access))
        .await;
    let bob_member_id = bob_members.ok(200)["members"][0]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.delete(
        &format!("{WS}/{anns}/members/{bob_member_id}"),
        Some(&ann.access),
    )
    .await
    .problem(404, "not_found");

    // Nothing changed, and each sees only their own.
    let got = t.get(&format!("{WS}/{anns}"), Some(&ann.access)).await;
    assert_eq!(got.ok(200)["name"], "Ann's");
    assert_eq!(
        ids(t.get(WS, Some(&bob.access)).await.ok(200)),
        [bobs.as_str()]
    );
    assert_eq!(
        ids(t.get(WS, Some(&ann.access)).await.ok(200)),
        [anns.as_str()]
    );
}

#[tokio::test]
async fn the_role_table_is_enforced() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let vic = t.register("vic@example.com").await;
    let mel = t.register("mel@example.com").await;
    let ws = t.workspace(&ann, "Team").await;
    let vic_id = add_member(&t, &ws, &vic, Role::Viewer).await;
    let mel_id = add_member(&t, &ws, &mel, Role::Member).await;

    // Viewer: reads, nothing else.
    let got = t.get(&format!("{WS}/{ws}"), Some(&vic.access)).await;
    assert_eq!(got.ok(200)["role"], "viewer");
    assert_eq!(got.body["isOwner"], false);
    let list = t.get(WS, Some(&vic.access)).await;
    assert_eq!(ids(list.ok(200)), [ws.as_str()]);
    assert_eq!(list.body["workspaces"][0]["role"], "viewer");
    let members = t
        .get(&format!("{WS}/{ws}/members"), Some(&vic.access))
        .await;
    assert_eq!(members.ok(200)["members"].as_array().unwrap().len(), 3);
    let r = t
        .patch(
            &format!("{WS}/{ws}"),
            Some(&vic.access),
            json!({"name": "Renamed"}),
        )
        .await;
    r.problem(403, "forbidden");
    t.patch(
        &format!("{WS}/{ws}/members/{mel_id}"),
        Some(&vic.access),
        json!({"role": "viewer"}),
    )
    .await
    .problem(403, "forbidden");
    t.delete(&format!("{WS}/{ws}"), Some(&vic.access))
        .await
        .problem(403, "forbidden");

    // Member: no team management, no workspace edits.
    t.patch(
        &format!("{WS}/{ws}/members/{vic_id}"),
        Some(&mel.access),
        json!({"role": "member"}),
    )
    .await
    .problem(403, "forbidden");
    t.delete(&format!("{WS}/{ws}/members/{vic_id}"), Some(&mel.access))
        .await
        .problem(403, "forbidden");
    t.patch(
        &format!("{WS}/{ws}"),
        Some(&mel.access),
        json!({"name": "Renamed"}),
    )
    .await
    .problem(403, "forbidden");

    // The owner promotes the member to admin.
    let r = t
        .patch(
            &format!("{WS}/{ws}/members/{mel_id}"),
            Some(&ann.access),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.ok(200)["role"], "admin");
    assert_eq!(r.body["email"], "mel@example.com");
    let list = t.get(WS, Some(&mel.access)).await;
    assert_eq!(list.ok(200)["workspaces"][0]["role"], "admin");

    // Admin: edits the workspace and the team, but not deletion, and not the owner.
    t.patch(
        &format!("{WS}/{ws}"),
        Some(&mel.access),
        json!({"name": "Renamed"}),
    )
    .await
    .ok(200);
    t.delete(&format!("{WS}/{ws}"), Some(&mel.access))
        .await
        .problem(403, "forbidden");
    let members = t
        .get(&format!("{WS}/{ws}/members"), Some(&mel.access))
        .await;
    let owner_member = members.ok(200)["members"][0].clone();
    assert_eq!(owner_member["role"], "owner");
    let owner_member_id = owner_member["_id"].as_str().unwrap();
    t.patch(
        &format!("{WS}/{ws}/members/{owner_member_id}"),
        Some(&mel.access),
        json!({"role": "viewer"}),
    )
    .await
    .problem(403, "forbidden");
    t.delete(
        &format!("{WS}/{ws}/members/{owner_member_id}"),
        Some(&ann.access),
    )
    .await
    .problem(403, "forbidden");
    let r = t
        .patch(
            &format!("{WS}/{ws}/members/{vic_id}"),
            Some(&mel.access),
            json!({"role": "owner"}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "role");

    // The admin removes the viewer, who loses access at once.
    let r = t
        .delete(&format!("{WS}/{ws}/members/{vic_id}"), Some(&mel.access))
        .await;
    assert_eq!(r.status.as_u16(), 204);
    t.get(&format!("{WS}/{ws}"), Some(&vic.access))
        .await
        .problem(404, "not_found");
    assert!(ids(t.get(WS, Some(&vic.access)).await.ok(200)).is_empty());
    t.delete(&format!("{WS}/{ws}/members/{vic_id}"), Some(&mel.access))
        .await
        .problem(404, "not_found");
    let members = t
        .get(&format!("{WS}/{ws}/members"), Some(&ann.access))
        .await;
    assert_eq!(members.ok(200)["members"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn pending_members_have_no_access() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let pat = t.register("pat@example.com").await;
    let ws = t.workspace(&ann, "Team").await;
    let wsid: WorkspaceId = ws.parse().unwrap();
    let now = t.state.stores.clock().now();
    let mut m = TeamMember::new(wsid, Role::Admin, now);
    m.user_id = Some(pat.id.parse().unwrap());
    t.state
        .stores
        .workspace(wsid)
        .repo::<TeamMember>()
        .insert(&m)
        .await
        .unwrap();
    t.get(&format!("{WS}/{ws}"), Some(&pat.access))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn owner_deletes_and_it_is_gone_for_everyone() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let bob = t.register("bob@example.com").await;
    let ws = t.workspace(&ann, "Doomed").await;
    add_member(&t, &ws, &bob, Role::Admin).await;
    let r = t.delete(&format!("{WS}/{ws}"), Some(&ann.access)).await;
    assert_eq!(r.status.as_u16(), 204);
    for who in [&ann, &bob] {
        t.get(&format!("{WS}/{ws}"), Some(&who.access))
            .await
            .problem(404, "not_found");
        assert!(ids(t.get(WS, Some(&who.access)).await.ok(200)).is_empty());
    }
}

#[tokio::test]
async fn workspaces_of_the_original_keep_their_owner() {
    // The original stored only `Project.userId`: no TeamMember, no membership row.
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let p = Project::new(ann.id.parse().unwrap(), "Legacy");
    let p = t.state.stores.global::<Project>().insert(&p).await.unwrap();
    let ws = p.id.to_string();
    let got = t.get(&format!("{WS}/{ws}"), Some(&ann.access)).await;
    assert_eq!(got.ok(200)["role"], "owner");
    assert_eq!(
        ids(t.get(WS, Some(&ann.access)).await.ok(200)),
        [ws.as_str()]
    );
    let members = t
        .get(&format!("{WS}/{ws}/members"), Some(&ann.access))
        .await;
    let members = members.ok(200)["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["role"], "owner");
    assert!(members[0]["_id"].is_null());
    assert_eq!(members[0]["email"], "ann@example.com");
}
