//! The extractors that guard routes. [`Member`] is the only way a handler gets a
//! [`WorkspaceScope`], and only after naming the permission it needs.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;
use crm_core::accounts::{Action, Resource, Role, allows};
use crm_core::entities::api_key::ApiKeyId;
use crm_core::entities::project::Project;
use crm_core::entities::team_member::TeamMember;
use crm_core::repo::WorkspaceScope;
use crm_core::{Error, Filter, FindOptions, ObjectId, UserId, WorkspaceId};

use super::{api_key, jwt};
use crate::error::ApiError;
use crate::state::AppState;

/// The caller, from a valid `Authorization: Bearer <access token>`; 401 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub id: UserId,
    /// The token's `jti`, or the API key's id.
    pub token_id: String,
    /// Set when an API key acts for this user (its creator); only [`Member`] accepts keys.
    pub api_key: Option<ApiKeyId>,
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(u) = parts.extensions.get::<AuthUser>() {
            return Ok(u.clone());
        }
        let token = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let key = state.signing_key().await?;
        let now = state.stores.clock().now().millis() / 1000;
        let claims = jwt::verify(&key, token, now).ok_or(ApiError::Unauthenticated)?;
        let id = claims
            .sub
            .parse::<UserId>()
            .map_err(|_| ApiError::Unauthenticated)?;
        let user = AuthUser {
            id,
            token_id: claims.jti,
            api_key: None,
        };
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// The caller acting in the workspace named by the `{workspaceId}` path segment, as an active
/// member (or the workspace's owner). A workspace that does not exist, is deleted, or of which
/// the caller is not an active member answers 404: its existence is not revealed.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: AuthUser,
    pub role: Role,
    pub workspace: Project,
    scope: WorkspaceScope,
}

impl Member {
    /// The workspace scope, if the role allows `action` on `resource`; 403 otherwise.
    pub fn can(&self, resource: Resource, action: Action) -> Result<&WorkspaceScope, ApiError> {
        if allows(self.role, resource, action) {
            Ok(&self.scope)
        } else {
            Err(Error::Forbidden(format!(
                "the {} role may not {} {}",
                role_name(self.role),
                action_name(action),
                resource_name(resource)
            ))
            .into())
        }
    }

    pub fn workspace_id(&self) -> WorkspaceId {
        self.scope.id()
    }
}

pub(crate) fn role_name(r: Role) -> &'static str {
    match r {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
        Role::Viewer => "viewer",
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::View => "view",
        Action::Create => "create",
        Action::Edit => "edit",
        Action::Delete => "delete",
    }
}

fn resource_name(r: Resource) -> &'static str {
    match r {
        Resource::Workspace => "the workspace",
        Resource::Team => "team members",
        Resource::Contacts => "contacts",
        Resource::Companies => "companies",
        Resource::Deals => "deals",
        Resource::Tasks => "tasks",
        Resource::Tickets => "tickets",
        Resource::Workflows => "workflows",
        Resource::Campaigns => "campaigns",
        Resource::Settings => "settings",
        Resource::Integrations => "integrations",
        Resource::Billing => "billing",
        Resource::AuditLog => "the audit log",
        Resource::Analytics => "analytics",
        Resource::Ai => "AI memory and agents",
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(key) = api_key::api_key(parts, state).await? else {
            let user = AuthUser::from_request_parts(parts, state).await?;
            return Member::of(parts, state, user).await;
        };
        let member = Member::of(parts, state, api_key::acting_user(&key)).await?;
        api_key::narrow(member, &key, state).await
    }
}

impl Member {
    /// `user` in the path's workspace, with their own role.
    async fn of(parts: &mut Parts, state: &AppState, user: AuthUser) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::internal("Member used on a route without path parameters"))?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "workspaceId")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| Error::internal("Member used on a route without {workspaceId}"))?;
        // A malformed id is as unknown as a missing one.
        let ws: WorkspaceId = raw.parse().map_err(|_| Error::NotFound)?;
        let scope = state.stores.workspace_as(ws, user.actor());
        if let Some((role, workspace)) = state.members.get(user.id, ws) {
            return Ok(Member {
                user,
                role,
                workspace,
                scope,
            });
        }
        let generation = state.members.generation();
        let projects = state.stores.global::<Project>();
        let members = scope.repo::<TeamMember>();
        let active = Filter::eq("userId", user.id.to_string()).and(Filter::eq("status", "active"));
        let one = FindOptions {
            limit: Some(1),
            ..FindOptions::default()
        };
        let (project, membership) = tokio::join!(
            projects.get(ObjectId::from(ws)),
            members.find(&active, &one)
        );
        let project = match project {
            Ok(p) if p.deleted_at.is_none() => p,
            Ok(_) | Err(Error::NotFound) => return Err(Error::NotFound.into()),
            Err(e) => return Err(e.into()),
        };
        // The original's owner is `Project.userId` and has no TeamMember row; it stays owner.
        let role = if project.user_id == user.id {
            Role::Owner
        } else {
            match membership?.into_iter().next() {
                Some(m) => m.role,
                None => return Err(Error::NotFound.into()),
            }
        };
        state.members.put(user.id, ws, generation, role, &project);
        Ok(Member {
            user,
            role,
            workspace: project,
            scope,
        })
    }
}
