//! Workspaces (the original's projects) and their members. Every route under
//! `/workspaces/{workspaceId}` goes through [`Member`], which checks the caller's membership.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::permissions::may_manage;
use crm_core::accounts::{Action, Resource, Role};
use crm_core::accounts::{Email, Mail, MailKind, invites, membership};
use crm_core::entities::invite_link::{LinkRole, WorkspaceInviteLink};
use crm_core::entities::project::Project;
use crm_core::entities::team_member::{MemberStatus, TeamMember, TeamMemberId};
use crm_core::entities::user::User;
use crm_core::{Error, Filter, FindOptions, ObjectId, SortKey, Update};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AuthUser, Member};
use crate::error::{ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Listings return at most this many workspaces or members.
const LIST_LIMIT: u64 = 1000;

/// A role in a workspace.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = Role)]
#[serde(rename_all = "lowercase")]
pub enum RoleDoc {
    Owner,
    Admin,
    Member,
    Viewer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub timezone: String,
    pub allowed_domains: Vec<String>,
    pub tracking_enabled: bool,
    /// The owner's user id.
    pub owner_id: String,
    /// The caller's role here.
    #[schema(value_type = RoleDoc)]
    pub role: Role,
    pub is_owner: bool,
    #[schema(required = true)]
    pub created_at: Option<String>,
    #[schema(required = true)]
    pub updated_at: Option<String>,
}

impl WorkspaceView {
    fn new(p: &Project, role: Role) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            timezone: p.timezone.clone(),
            allowed_domains: p.allowed_domains.clone(),
            tracking_enabled: p.tracking_enabled,
            owner_id: p.user_id.to_string(),
            role,
            is_owner: role == Role::Owner,
            created_at: p.created_at.map(|t| t.to_canonical()),
            updated_at: p.updated_at.map(|t| t.to_canonical()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceList {
    /// Owned and shared workspaces, newest first.
    pub workspaces: Vec<WorkspaceView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWorkspace {
    /// 3 to 100 characters.
    pub name: String,
    /// IANA time zone, default `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWorkspace {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
}

fn parse_workspace_name(s: &str) -> Result<String, Error> {
    let n = s.trim();
    if !(3..=100).contains(&n.chars().count()) {
        return Err(Error::invalid("name", "must be 3 to 100 characters"));
    }
    Ok(n.to_owned())
}

fn parse_timezone(s: &str) -> Result<String, Error> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    if ok {
        Ok(t.to_owned())
    } else {
        Err(Error::invalid("timezone", "must be an IANA time zone name"))
    }
}

fn role_value(r: Role) -> Result<Value, Error> {
    serde_json::to_value(r).map_err(Error::internal)
}

/// Creates a workspace owned by the caller, with the caller as its active owner member.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces",
    tag = "workspaces",
    security(("bearer" = [])),
    request_body = CreateWorkspace,
    responses(
        (status = 201, description = "Created", body = WorkspaceView),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad name or time zone", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_workspace(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateWorkspace>,
) -> ApiResult<Response> {
    let name = parse_workspace_name(&req.name)?;
    let mut project = Project::new(user.id, name);
    if let Some(tz) = req.timezone.as_deref() {
        project.timezone = parse_timezone(tz)?;
    }
    let projects = state.stores.global::<Project>();
    let project = projects.insert(&project).await?;
    let now = state.stores.clock().now();
    let mut owner = TeamMember::new(project.id, Role::Owner, now);
    owner.user_id = Some(user.id);
    owner.status = MemberStatus::Active;
    owner.joined_at = Some(now);
    let scope = state.stores.workspace(project.id);
    let created = async {
        scope.repo::<TeamMember>().insert(&owner).await?;
        membership::record(&state.stores, user.id, project.id, Role::Owner).await
    }
    .await;
    if let Err(e) = created {
        // Leave no workspace without its owner row; the owner could still reach it, but the
        // listing would not show it.
        let _ = projects.delete(ObjectId::from(project.id)).await;
        return Err(e.into());
    }
    Ok((
        StatusCode::CREATED,
        ApiJson(WorkspaceView::new(&project, Role::Owner)),
    )
        .into_response())
}

/// The caller's workspaces: owned ones and those with an active membership, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces",
    tag = "workspaces",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's workspaces", body = WorkspaceList),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_workspaces(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<ApiJson<WorkspaceList>> {
    let projects = state.stores.global::<Project>();
    let live = Filter::eq("deletedAt", Value::Null);
    let opts = FindOptions {
        sort: vec![SortKey::desc("createdAt")],
        limit: Some(LIST_LIMIT),
        ..FindOptions::default()
    };
    // Owned ones first: the original's owners have no membership row.
    let owned = projects
        .find(
            &Filter::eq("userId", user.id.to_string()).and(live.clone()),
            &opts,
        )
        .await?;
    let memberships = membership::of_user(&state.stores, user.id, LIST_LIMIT).await?;
    let owned_ids: HashSet<_> = owned.iter().map(|p| p.id).collect();
    let roles: HashMap<_, _> = memberships
        .iter()
        .filter(|m| !owned_ids.contains(&m.workspace_id))
        .map(|m| (m.workspace_id, m.role))
        .collect();
    let shared = if roles.is_empty() {
        Vec::new()
    } else {
        let ids = roles
            .keys()
            .map(|id| Value::String(id.to_string()))
            .collect();
        projects
            .find(&Filter::In("_id".into(), ids).and(live), &opts)
            .await?
    };
    let mut out: Vec<_> = owned
        .iter()
        .map(|p| WorkspaceView::new(p, Role::Owner))
        .chain(
            shared
                .iter()
                .filter_map(|p| roles.get(&p.id).map(|r| WorkspaceView::new(p, *r))),
        )
        .collect();
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(ApiJson(WorkspaceList { workspaces: out }))
}

/// One workspace, for any member.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "The workspace", body = WorkspaceView),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace, or the caller is not a member",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_workspace(member: Member) -> ApiResult<ApiJson<WorkspaceView>> {
    member.can(Resource::Workspace, Action::View)?;
    Ok(ApiJson(WorkspaceView::new(&member.workspace, member.role)))
}

/// Renames the workspace or changes its time zone (owner and admins).
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = PatchWorkspace,
    responses(
        (status = 200, description = "The updated workspace", body = WorkspaceView),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The role may not edit the workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace, or the caller is not a member",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad name or time zone", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_workspace(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<PatchWorkspace>,
) -> ApiResult<ApiJson<WorkspaceView>> {
    member.can(Resource::Workspace, Action::Edit)?;
    let mut update = Update::new();
    if let Some(n) = req.name.as_deref() {
        update = update.set("name", parse_workspace_name(n)?);
    }
    if let Some(tz) = req.timezone.as_deref() {
        update = update.set("timezone", parse_timezone(tz)?);
    }
    if update.is_empty() {
        return Ok(ApiJson(WorkspaceView::new(&member.workspace, member.role)));
    }
    let p = state
        .stores
        .global::<Project>()
        .update(ObjectId::from(member.workspace_id()), &update)
        .await?;
    Ok(ApiJson(WorkspaceView::new(&p, member.role)))
}

/// Deletes the workspace (owner only). It disappears at once for everyone; its records are kept
/// (marked by `deletedAt` on the workspace) for a later purge.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Only the owner may delete a workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace, or the caller is not a member",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete_workspace(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<StatusCode> {
    member.can(Resource::Workspace, Action::Delete)?;
    let now = state.stores.clock().now();
    state
        .stores
        .global::<Project>()
        .update(
            ObjectId::from(member.workspace_id()),
            &Update::new().set("deletedAt", now.to_canonical()),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// The membership id; null for the owner of a workspace made by the original, which has no
    /// membership row.
    #[schema(required = true)]
    #[serde(rename = "_id")]
    pub id: Option<String>,
    #[schema(required = true)]
    pub user_id: Option<String>,
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(value_type = RoleDoc)]
    pub role: Role,
    /// `pending` or `active`.
    pub status: String,
    #[schema(required = true)]
    pub joined_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchMember {
    /// `admin`, `member` or `viewer`.
    #[schema(value_type = RoleDoc)]
    pub role: Role,
}

fn status_name(s: MemberStatus) -> &'static str {
    match s {
        MemberStatus::Pending => "pending",
        MemberStatus::Active => "active",
        MemberStatus::Removed => "removed",
    }
}

fn member_view(m: &TeamMember, user: Option<&User>) -> MemberView {
    MemberView {
        id: Some(m.id.to_string()),
        user_id: m.user_id.map(|u| u.to_string()),
        email: user
            .map(|u| u.email.clone())
            .or_else(|| m.invite_email.clone()),
        name: user.map(|u| u.name.clone()),
        role: m.role,
        status: status_name(m.status).into(),
        joined_at: m.joined_at.map(|t| t.to_canonical()),
    }
}

/// Members and pending invites (not removed ones), owner first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/members",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "The members", body = MemberList),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace, or the caller is not a member",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list_members(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<ApiJson<MemberList>> {
    let scope = member.can(Resource::Team, Action::View)?;
    let rows = scope
        .repo::<TeamMember>()
        .find(
            &Filter::Ne("status".into(), Value::String("removed".into())),
            &FindOptions {
                sort: vec![SortKey::asc("createdAt")],
                limit: Some(LIST_LIMIT),
                ..FindOptions::default()
            },
        )
        .await?;
    let owner_id = member.workspace.user_id;
    let mut ids: Vec<Value> = rows
        .iter()
        .filter_map(|m| m.user_id)
        .map(|u| Value::String(u.to_string()))
        .collect();
    ids.push(Value::String(owner_id.to_string()));
    // One batched read for every member's name and email.
    let users: HashMap<_, _> = state
        .stores
        .global::<User>()
        .find(&Filter::In("_id".into(), ids), &FindOptions::default())
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let mut out = Vec::with_capacity(rows.len() + 1);
    if !rows.iter().any(|m| m.user_id == Some(owner_id)) {
        let u = users.get(&owner_id);
        out.push(MemberView {
            id: None,
            user_id: Some(owner_id.to_string()),
            email: u.map(|u| u.email.clone()),
            name: u.map(|u| u.name.clone()),
            role: Role::Owner,
            status: "active".into(),
            joined_at: member.workspace.created_at.map(|t| t.to_canonical()),
        });
    }
    out.extend(
        rows.iter()
            .map(|m| member_view(m, m.user_id.and_then(|u| users.get(&u)))),
    );
    out.sort_by_key(|m| m.role != Role::Owner);
    Ok(ApiJson(MemberList { members: out }))
}

async fn load_target(
    member: &Member,
    scope: &crm_core::repo::WorkspaceScope,
    id: &str,
) -> Result<TeamMember, Error> {
    let id: TeamMemberId = id.parse().map_err(|_| Error::NotFound)?;
    let target = scope.repo::<TeamMember>().get(id).await?;
    if target.status == MemberStatus::Removed {
        return Err(Error::NotFound);
    }
    if target.user_id == Some(member.workspace.user_id) || !may_manage(member.role, target.role) {
        return Err(Error::Forbidden(
            "your role may not change this member".into(),
        ));
    }
    Ok(target)
}

/// Changes a member's role (owner and admins; nobody changes the owner, and admins do not make
/// owners).
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/members/{memberId}",
    tag = "workspaces",
    security(("bearer" = [])),
    params(
        ("workspaceId" = String, Path, description = "The workspace id"),
        ("memberId" = String, Path, description = "The membership id"),
    ),
    request_body = PatchMember,
    responses(
        (status = 200, description = "The updated member", body = MemberView),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The role may not manage this member", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or member", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`owner` cannot be given here", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_member(
    State(state): State<AppState>,
    member: Member,
    Path((_, member_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchMember>,
) -> ApiResult<ApiJson<MemberView>> {
    let scope = member.can(Resource::Team, Action::Edit)?;
    if req.role == Role::Owner {
        return Err(Error::invalid("role", "must be admin, member or viewer").into());
    }
    let target = load_target(&member, scope, &member_id).await?;
    if !may_manage(member.role, req.role) {
        return Err(Error::Forbidden("your role may not grant this role".into()).into());
    }
    let updated = scope
        .repo::<TeamMember>()
        .update(target.id, &Update::new().set("role", role_value(req.role)?))
        .await?;
    if let (Some(u), MemberStatus::Active) = (updated.user_id, updated.status) {
        membership::record(&state.stores, u, member.workspace_id(), req.role).await?;
    }
    let user = match updated.user_id {
        Some(u) => match state.stores.global::<User>().get(u).await {
            Ok(u) => Some(u),
            Err(Error::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    Ok(ApiJson(member_view(&updated, user.as_ref())))
}

/// Removes a member (status `removed`); they lose access at once.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/members/{memberId}",
    tag = "workspaces",
    security(("bearer" = [])),
    params(
        ("workspaceId" = String, Path, description = "The workspace id"),
        ("memberId" = String, Path, description = "The membership id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The role may not remove this member", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or member", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_member(
    State(state): State<AppState>,
    member: Member,
    Path((_, member_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Team, Action::Delete)?;
    let target = load_target(&member, scope, &member_id).await?;
    scope
        .repo::<TeamMember>()
        .update(
            target.id,
            &Update::new().set("status", Value::String("removed".into())),
        )
        .await?;
    if let Some(u) = target.user_id {
        membership::forget(&state.stores, u, member.workspace_id()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Invites and the join link (the workspace, member and listing routes are registered in
/// `routes/mod.rs`).
pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_invite))
        .routes(routes!(revoke_invite))
        .routes(routes!(get_invite))
        .routes(routes!(accept_invite))
        .routes(routes!(
            create_invite_link,
            get_invite_link,
            delete_invite_link
        ))
        .routes(routes!(join))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInvite {
    pub email: String,
    /// `admin`, `member` or `viewer`.
    #[schema(value_type = RoleDoc)]
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteCreated {
    /// The membership id (for revoking).
    #[serde(rename = "_id")]
    pub id: String,
    pub email: String,
    #[schema(value_type = RoleDoc)]
    pub role: Role,
    pub expires_at: String,
    /// Also mailed. Shown once; only the invited email can accept it.
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteView {
    pub workspace_id: String,
    pub workspace_name: String,
    #[schema(value_type = RoleDoc)]
    pub role: Role,
    pub email: String,
    pub expires_at: String,
}

fn canonical(t: Option<crm_core::Timestamp>) -> String {
    t.map(|t| t.to_canonical()).unwrap_or_default()
}

/// Invites an email to the workspace (owner and admins). The invite is a pending member for
/// 7 days; a removed member is re-invited in place.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/invites",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateInvite,
    responses(
        (status = 201, description = "Invited", body = InviteCreated),
        (status = 403, description = "The role may not invite, or not with this role",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace, or the caller is not a member",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already a member or invited (`email`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad email or role", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_invite(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<CreateInvite>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Team, Action::Create)?;
    let email = Email::parse(&req.email)?;
    if req.role == Role::Owner {
        return Err(Error::invalid("role", "must be admin, member or viewer").into());
    }
    if !may_manage(member.role, req.role) {
        return Err(Error::Forbidden("your role may not grant this role".into()).into());
    }
    let (row, token) = invites::invite(
        scope,
        &state.stores,
        &member.workspace,
        member.user.id,
        &email,
        req.role,
    )
    .await?;
    state
        .mailer
        .send_logged(Mail {
            to: email.as_str().to_owned(),
            kind: MailKind::Invite {
                token: token.clone(),
                workspace_name: member.workspace.name.clone(),
                role: role_value(req.role)?
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            },
        })
        .await;
    let body = InviteCreated {
        id: row.id.to_string(),
        email: email.as_str().to_owned(),
        role: row.role,
        expires_at: canonical(row.invite_expires_at),
        token,
    };
    Ok((StatusCode::CREATED, ApiJson(body)).into_response())
}

/// Withdraws a pending invite (owner and admins).
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/invites/{memberId}",
    tag = "workspaces",
    security(("bearer" = [])),
    params(
        ("workspaceId" = String, Path, description = "The workspace id"),
        ("memberId" = String, Path, description = "The pending membership id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "The role may not revoke invites", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or pending invite", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn revoke_invite(
    member: Member,
    Path((_, member_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Team, Action::Delete)?;
    let id: TeamMemberId = member_id.parse().map_err(|_| Error::NotFound)?;
    invites::revoke(scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What an invite is for; public, so the invitee can see it before logging in.
#[utoipa::path(
    get,
    path = "/api/v1/invites/{token}",
    tag = "workspaces",
    params(("token" = String, Path, description = "The invite token")),
    responses(
        (status = 200, description = "The invite", body = InviteView),
        (status = 404, description = "Unknown, used, revoked or expired invite", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_invite(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<ApiJson<InviteView>> {
    let (project, row) = invites::find_invite(&state.stores, &token).await?;
    Ok(ApiJson(InviteView {
        workspace_id: project.id.to_string(),
        workspace_name: project.name,
        role: row.role,
        email: row.invite_email.unwrap_or_default(),
        expires_at: canonical(row.invite_expires_at),
    }))
}

/// Accepts an invite. The caller's email must be the invited one.
#[utoipa::path(
    post,
    path = "/api/v1/invites/{token}/accept",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("token" = String, Path, description = "The invite token")),
    responses(
        (status = 200, description = "Joined; the workspace", body = WorkspaceView),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The invite was sent to another email", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "Unknown, used, revoked or expired invite", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Already a member", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn accept_invite(
    State(state): State<AppState>,
    user: AuthUser,
    Path(token): Path<String>,
) -> ApiResult<ApiJson<WorkspaceView>> {
    let caller = state.stores.global::<User>().get(user.id).await?;
    let (project, row) = invites::accept(&state.stores, &token, &caller).await?;
    Ok(ApiJson(WorkspaceView::new(&project, row.role)))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInviteLink {
    /// `member` (default) or `viewer`.
    #[serde(default)]
    #[schema(value_type = String)]
    pub role: LinkRole,
    /// Days until the link stops working (1 to 365); none: it works until replaced or deleted.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteLinkView {
    #[serde(rename = "_id")]
    pub id: String,
    /// `member` or `viewer`.
    #[schema(value_type = String)]
    pub role: LinkRole,
    #[schema(required = true)]
    pub expires_at: Option<String>,
    pub usage_count: i64,
    #[schema(required = true)]
    pub created_at: Option<String>,
    /// Only in the answer to the creation: the link stores just its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn link_view(l: &WorkspaceInviteLink, token: Option<String>) -> InviteLinkView {
    InviteLinkView {
        id: l.id.to_string(),
        role: l.role,
        expires_at: l.expires_at.map(|t| t.to_canonical()),
        usage_count: l.usage_count,
        created_at: l.created_at.map(|t| t.to_canonical()),
        token,
    }
}

/// Creates the workspace's join link; the previous one stops working (one active link).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/invite-link",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateInviteLink,
    responses(
        (status = 201, description = "Created, with its token (shown once)", body = InviteLinkView),
        (status = 403, description = "The role may not manage links", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace, or the caller is not a member",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad role or expiry", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_invite_link(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<CreateInviteLink>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Team, Action::Create)?;
    let expires_at = match req.expires_in_days {
        None => None,
        Some(d) if (1..=365).contains(&d) => {
            Some(state.stores.clock().now().plus_seconds(d * 24 * 3600))
        }
        Some(_) => return Err(Error::invalid("expiresInDays", "must be 1 to 365").into()),
    };
    let (link, token) = invites::create_link(scope, member.user.id, req.role, expires_at).await?;
    Ok((StatusCode::CREATED, ApiJson(link_view(&link, Some(token)))).into_response())
}

/// The active join link (without its token).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/invite-link",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "The active link", body = InviteLinkView),
        (status = 403, description = "The role may not manage links", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No active link, no such workspace, or not a member",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_invite_link(member: Member) -> ApiResult<ApiJson<InviteLinkView>> {
    let scope = member.can(Resource::Team, Action::Create)?;
    let link = invites::active_link(scope).await?.ok_or(Error::NotFound)?;
    Ok(ApiJson(link_view(&link, None)))
}

/// Deactivates the join link.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/invite-link",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 204, description = "Deactivated"),
        (status = 403, description = "The role may not manage links", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No active link, no such workspace, or not a member",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete_invite_link(member: Member) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Team, Action::Delete)?;
    if !invites::deactivate_links(scope).await? {
        return Err(Error::NotFound.into());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Joins a workspace through its link, with the link's role.
#[utoipa::path(
    post,
    path = "/api/v1/join/{token}",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("token" = String, Path, description = "The link token")),
    responses(
        (status = 200, description = "Joined; the workspace", body = WorkspaceView),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "Unknown, replaced, deleted or expired link", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Already the owner or a member", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    Path(token): Path<String>,
) -> ApiResult<ApiJson<WorkspaceView>> {
    let (project, role) = invites::join(&state.stores, &token, user.id).await?;
    Ok(ApiJson(WorkspaceView::new(&project, role)))
}
