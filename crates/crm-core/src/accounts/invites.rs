//! Team invites (pending `TeamMember` rows) and the workspace join link.
//!
//! Tokens are `<workspaceId>.<32 random bytes hex>`: the public routes that redeem them carry no
//! workspace, and the prefix lets them look the token up inside one workspace instead of across
//! all of them. Only the SHA-256 of a token is stored.

use serde_json::Value;

use crate::entities::invite_link::{LinkRole, WorkspaceInviteLink};
use crate::entities::project::Project;
use crate::entities::team_member::{MemberStatus, TeamMember, TeamMemberId};
use crate::entities::user::User;
use crate::error::{Error, Result};
use crate::id::{UserId, WorkspaceId};
use crate::query::{Filter, FindOptions, SortKey, Update};
use crate::repo::{Stores, WorkspaceScope};

use super::email::Email;
use super::membership;
use super::permissions::Role;
use super::tokens::hash_token;

/// A token that names its workspace.
pub fn new_token(ws: WorkspaceId) -> String {
    format!("{ws}.{}", super::tokens::new_token())
}

/// The workspace a token belongs to, if it has the right shape.
pub fn token_workspace(token: &str) -> Option<WorkspaceId> {
    let (ws, secret) = token.split_once('.')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    ws.parse().ok()
}

fn role_value(r: Role) -> Result<Value> {
    serde_json::to_value(r).map_err(Error::internal)
}

/// The workspace, unless it is unknown or deleted.
pub async fn live_project(stores: &Stores, ws: WorkspaceId) -> Result<Project> {
    let p = stores.global::<Project>().get(ws).await?;
    if p.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    Ok(p)
}

async fn user_by_email(stores: &Stores, email: &str) -> Result<Option<User>> {
    let found = stores
        .global::<User>()
        .find(
            &Filter::eq("email", email.to_owned()),
            &FindOptions {
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .await?;
    Ok(found.into_iter().next())
}

/// Invites `email` with `role` (not owner). Active members and live invites of the same email
/// are a conflict; a removed member or an expired invite is re-invited in place. Returns the
/// pending row and the token to mail.
pub async fn invite(
    scope: &WorkspaceScope,
    stores: &Stores,
    project: &Project,
    inviter: UserId,
    email: &Email,
    role: Role,
) -> Result<(TeamMember, String)> {
    if role == Role::Owner {
        return Err(Error::invalid("role", "must be admin, member or viewer"));
    }
    let now = stores.clock().now();
    let user = user_by_email(stores, email.as_str()).await?;
    if user.as_ref().is_some_and(|u| u.id == project.user_id) {
        return Err(Error::conflict("email"));
    }
    let mut same = vec![Filter::eq("inviteEmail", email.as_str().to_owned())];
    if let Some(u) = &user {
        same.push(Filter::eq("userId", u.id.to_string()));
    }
    let repo = scope.repo::<TeamMember>();
    let rows = repo
        .find(&Filter::Or(same), &FindOptions::default())
        .await?;
    let live = |m: &TeamMember| match m.status {
        MemberStatus::Active => true,
        MemberStatus::Pending => m.invite_expires_at.is_some_and(|t| t > now),
        MemberStatus::Removed => false,
    };
    if rows.iter().any(live) {
        return Err(Error::conflict("email"));
    }
    let token = new_token(scope.id());
    let fresh = TeamMember::invite(
        scope.id(),
        email.as_str(),
        role,
        inviter,
        hash_token(&token),
        now,
    );
    // Prefer the row that holds the user id: the unique key allows only one per user.
    let reuse = rows
        .iter()
        .find(|m| m.user_id.is_some())
        .or_else(|| rows.first());
    let row = match reuse {
        Some(old) => {
            let mut u = Update::new()
                .set("status", "pending")
                .set("role", role_value(role)?)
                .set("invitedBy", inviter.to_string())
                .set("invitedAt", now.to_canonical())
                .set("inviteEmail", email.as_str().to_owned())
                .unset("joinedAt");
            if let (Some(t), Some(exp)) = (&fresh.invite_token, fresh.invite_expires_at) {
                u = u
                    .set("inviteToken", t.clone())
                    .set("inviteExpiresAt", exp.to_canonical());
            }
            repo.update(old.id, &u).await?
        }
        None => repo.insert(&fresh).await?,
    };
    Ok((row, token))
}

/// A live pending invite by its token.
pub async fn find_invite(stores: &Stores, token: &str) -> Result<(Project, TeamMember)> {
    let ws = token_workspace(token).ok_or(Error::NotFound)?;
    let project = live_project(stores, ws).await?;
    let now = stores.clock().now();
    let found = stores
        .workspace(ws)
        .repo::<TeamMember>()
        .find(
            &Filter::eq("inviteToken", hash_token(token))
                .and(Filter::eq("status", "pending"))
                .and(Filter::Gt(
                    "inviteExpiresAt".into(),
                    Value::String(now.to_canonical()),
                )),
            &FindOptions {
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .await?;
    let row = found.into_iter().next().ok_or(Error::NotFound)?;
    Ok((project, row))
}

/// Refuses users who already belong to the workspace; returns their inactive (removed, or
/// re-invited in place) row, if any.
async fn not_yet_member(
    scope: &WorkspaceScope,
    project: &Project,
    user: UserId,
) -> Result<Option<TeamMember>> {
    if project.user_id == user {
        return Err(Error::conflict("member"));
    }
    let rows = scope
        .repo::<TeamMember>()
        .find(
            &Filter::eq("userId", user.to_string()),
            &FindOptions::default(),
        )
        .await?;
    match rows.into_iter().next() {
        Some(m) if m.status != MemberStatus::Active => Ok(Some(m)),
        Some(_) => Err(Error::conflict("member")),
        None => Ok(None),
    }
}

/// Accepts an invite as `caller`, whose email must be the invited one (403 otherwise).
pub async fn accept(stores: &Stores, token: &str, caller: &User) -> Result<(Project, TeamMember)> {
    let (project, row) = find_invite(stores, token).await?;
    if row.invite_email.as_deref() != Some(caller.email.as_str()) {
        return Err(Error::Forbidden(
            "this invite was sent to another email".into(),
        ));
    }
    let scope = stores.workspace(project.id);
    let repo = scope.repo::<TeamMember>();
    let stale = not_yet_member(&scope, &project, caller.id).await?;
    if let Some(old) = stale.filter(|old| old.id != row.id) {
        // That row holds the user id the invite row is about to take.
        repo.delete(old.id).await?;
    }
    let now = stores.clock().now();
    let claimed = repo
        .find_one_and_update(
            &Filter::eq("_id", row.id.to_string())
                .and(Filter::eq("inviteToken", hash_token(token)))
                .and(Filter::eq("status", "pending")),
            &Update::new()
                .set("status", "active")
                .set("userId", caller.id.to_string())
                .set("joinedAt", now.to_canonical())
                .unset("inviteToken")
                .unset("inviteExpiresAt"),
            false,
        )
        .await?
        .ok_or(Error::NotFound)?;
    membership::record(stores, caller.id, project.id, claimed.role).await?;
    Ok((project, claimed))
}

/// Withdraws a pending invite.
pub async fn revoke(scope: &WorkspaceScope, id: TeamMemberId) -> Result<()> {
    let repo = scope.repo::<TeamMember>();
    let row = repo.get(id).await?;
    if row.status != MemberStatus::Pending {
        return Err(Error::NotFound);
    }
    repo.delete(id).await
}

fn link_role(r: LinkRole) -> Role {
    match r {
        LinkRole::Member => Role::Member,
        LinkRole::Viewer => Role::Viewer,
    }
}

/// Creates the workspace's join link and deactivates every other one (one active link per
/// workspace, enforced here as ADR 0006 says). Returns the link and its token, shown once.
pub async fn create_link(
    scope: &WorkspaceScope,
    creator: UserId,
    role: LinkRole,
    expires_at: Option<crate::time::Timestamp>,
) -> Result<(WorkspaceInviteLink, String)> {
    let repo = scope.repo::<WorkspaceInviteLink>();
    let token = new_token(scope.id());
    let mut link = WorkspaceInviteLink::new(scope.id(), hash_token(&token), role, creator);
    link.expires_at = expires_at;
    let link = repo.insert(&link).await?;
    // After the insert: two concurrent creates may deactivate each other (no link active), never
    // leave two active.
    repo.update_many(
        &Filter::eq("isActive", true).and(Filter::Ne("_id".into(), link.id.to_string().into())),
        &Update::new().set("isActive", false),
    )
    .await?;
    Ok((link, token))
}

/// The active link, if any.
pub async fn active_link(scope: &WorkspaceScope) -> Result<Option<WorkspaceInviteLink>> {
    let found = scope
        .repo::<WorkspaceInviteLink>()
        .find(
            &Filter::eq("isActive", true),
            &FindOptions {
                sort: vec![SortKey::desc("createdAt")],
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .await?;
    Ok(found.into_iter().next())
}

/// Deactivates the link; `false` when there was none.
pub async fn deactivate_links(scope: &WorkspaceScope) -> Result<bool> {
    let n = scope
        .repo::<WorkspaceInviteLink>()
        .update_many(
            &Filter::eq("isActive", true),
            &Update::new().set("isActive", false),
        )
        .await?;
    Ok(n > 0)
}

/// Joins the link's workspace as `user` with the link's role.
pub async fn join(stores: &Stores, token: &str, user: UserId) -> Result<(Project, Role)> {
    let ws = token_workspace(token).ok_or(Error::NotFound)?;
    let project = live_project(stores, ws).await?;
    let scope = stores.workspace(ws);
    let now = stores.clock().now();
    let links = scope.repo::<WorkspaceInviteLink>();
    let link = links
        .find(
            &Filter::eq("token", hash_token(token)).and(Filter::eq("isActive", true)),
            &FindOptions {
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .await?
        .into_iter()
        .next()
        .filter(|l| l.expires_at.is_none_or(|t| t > now))
        .ok_or(Error::NotFound)?;
    let role = link_role(link.role);
    let members = scope.repo::<TeamMember>();
    match not_yet_member(&scope, &project, user).await? {
        Some(old) => {
            members
                .update(
                    old.id,
                    &Update::new()
                        .set("status", "active")
                        .set("role", role_value(role)?)
                        .set("joinedAt", now.to_canonical())
                        .unset("inviteToken")
                        .unset("inviteExpiresAt"),
                )
                .await?;
        }
        None => {
            let mut m = TeamMember::new(ws, role, now);
            m.user_id = Some(user);
            m.status = MemberStatus::Active;
            m.joined_at = Some(now);
            // A concurrent join by the same user loses on the unique key (409).
            members.insert(&m).await?;
        }
    }
    links
        .update(link.id, &Update::new().inc("usageCount", 1))
        .await?;
    membership::record(stores, user, ws, role).await?;
    Ok((project, role))
}
