//! The audit log: every write to the core records (contacts, companies, deals, pipelines,
//! activities, tasks, tickets, custom field definitions), who made it and the record before and
//! after, newest first. Entries are written by `crm_core::repo` (ADR 0009); a record's history is
//! this list filtered by `resourceId`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::user_action::{AUDIT_PAGE, USER_ACTION_TTL_SECONDS, UserAction};
use crm_core::services::tasks::id_filter;
use crm_core::{Error, Filter, SortKey, Timestamp};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_audit_log))
}

/// Filters of the audit log (besides paging and `fields`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AuditFilters {
    /// contact, company, opportunity, pipeline, activity, task, ticket, customFieldDefinition.
    pub resource_type: Option<String>,
    /// One record's history.
    pub resource_id: Option<String>,
    /// The acting user (for an API key, the user it acts for).
    pub user_id: Option<String>,
    /// `<resourceType>.create`, `.update` or `.delete`, e.g. `contact.update`.
    pub action_type: Option<String>,
    /// Entries at or after this RFC 3339 time.
    pub from: Option<String>,
    /// Entries before this RFC 3339 time.
    pub to: Option<String>,
}

fn time(field: &'static str, raw: Option<&str>) -> Result<Option<String>, Error> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    Timestamp::parse(raw)
        .map(|t| Some(t.to_canonical()))
        .map_err(|_| Error::invalid(field, "must be an RFC 3339 timestamp"))
}

fn text(field: &'static str, raw: Option<&str>) -> Option<Filter> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|v| Filter::eq(field, v))
}

impl AuditFilters {
    /// Audit entries only (not the original's page tracking), within the 90 days they are kept
    /// for: stores other than MongoDB do not expire them.
    fn filter(&self, now: Timestamp) -> Result<Filter, Error> {
        let oldest = now
            .plus_seconds(-(USER_ACTION_TTL_SECONDS as i64))
            .to_canonical();
        let mut f =
            Filter::eq("page", AUDIT_PAGE).and(Filter::Gte("timestamp".into(), oldest.into()));
        let parts = [
            text("resourceType", self.resource_type.as_deref()),
            id_filter("resourceId", self.resource_id.as_deref())?,
            id_filter("userId", self.user_id.as_deref())?,
            text("actionType", self.action_type.as_deref()),
            time("from", self.from.as_deref())?.map(|t| Filter::Gte("timestamp".into(), t.into())),
            time("to", self.to.as_deref())?.map(|t| Filter::Lt("timestamp".into(), t.into())),
        ];
        for p in parts.into_iter().flatten() {
            f = f.and(p);
        }
        Ok(f)
    }
}

/// Audit entries of the workspace, newest first: `{entries, pagination}`. Each entry has
/// `actionType` (`contact.update`), `resourceType`, `resourceId`, `userId` (absent for system
/// writes), `timestamp` and `metadata` {`actor`, `before` (not on create), `after` (not on
/// delete), `changed` (the paths that differ)}. `resourceId=` gives one record's history.
/// Entries are kept 90 days. Owner and admins only.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/audit-log",
    tag = "audit",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        AuditFilters),
    responses(
        (status = 200, description = "`{entries, pagination}`", body = Object),
        (status = 403, description = "Only the owner and admins read the audit log",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter, paging, or a search/tags/sort the log does \
            not support", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list_audit_log(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<AuditFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::AuditLog, Action::View)?;
    for (name, given) in [
        ("search", p.search.is_some()),
        ("tags", p.tags.is_some()),
        ("sort", p.sort.is_some()),
    ] {
        if given {
            return Err(Error::invalid(name, "not supported by the audit log").into());
        }
    }
    let filter = f.filter(state.stores.clock().now())?;
    let sort = [SortKey::desc("timestamp"), SortKey::desc("_id")];
    let body = list_without_expand(
        scope.repo::<UserAction>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "entries",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}
