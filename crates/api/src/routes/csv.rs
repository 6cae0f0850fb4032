//! CSV import and export of contacts and companies. The rules live in
//! `crm_core::services::csv_io`; imports are validated whole before anything is written, exports
//! stream page by page.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::paging::{PageRequest, Pagination};
use crm_core::repo::{Repo, WorkspaceScope};
use crm_core::services::companies::CompanyFilter;
use crm_core::services::contacts::ContactFilter;
use crm_core::services::csv_io::{
    self, Column, CsvEntity, CsvError, ImportOptions, ImportOutcome, ImportReport, OnDuplicate,
};
use crm_core::services::custom_fields;
use crm_core::{Filter, SortKey};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::companies::CompanyFilters;
use super::contacts::{ContactFilters, write_ctx};
use crate::auth::Member;
use crate::error::{ApiError, PROBLEM_JSON, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::ListParams;
use crate::state::AppState;

/// Records per export page.
const EXPORT_PAGE: u64 = 500;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(import_contacts))
        .routes(routes!(import_companies))
        .routes(routes!(export_contacts))
        .routes(routes!(export_companies))
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateMode {
    #[default]
    Skip,
    Fail,
    Update,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportParams {
    /// `skip` (default): duplicates are skipped; `fail`: any duplicate or invalid row rejects
    /// the whole file (422, nothing written); `update`: duplicates patch the existing record.
    /// Contacts are duplicates by email, companies by name (any case) or website domain.
    #[param(value_type = Option<String>)]
    pub on_duplicate: Option<DuplicateMode>,
    /// `true` validates and reports without writing.
    pub dry_run: Option<bool>,
    /// JSON object `{"CSV header": "fieldPath"}` (`firstName`, `address.city`,
    /// `custom.<key>`; `""` or null ignores the column). Other headers are matched to fields by
    /// name, any case and spacing ("First Name" is `firstName`); unknown ones are custom fields.
    pub mapping: Option<String>,
}

/// Filters of an export: those of the list route.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Full-text search (every word must occur).
    pub search: Option<String>,
    /// Comma-separated tags; records with any of them.
    pub tags: Option<String>,
}

impl ExportParams {
    fn base_filter(&self) -> Filter {
        ListParams {
            search: self.search.clone(),
            tags: self.tags.clone(),
            ..ListParams::default()
        }
        .base_filter()
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ImportRowError)]
pub struct RowErrorDoc {
    /// The field path (`email`, `customFields.plan`, `address.city`).
    pub field: Option<String>,
    /// `invalid`, `duplicate` or `not_found`.
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ImportRow)]
pub struct RowDoc {
    /// The line the row starts on (the header is line 1).
    pub row: u64,
    /// created, updated, skipped, failed, or valid (checked but not written: rejected import).
    pub status: String,
    pub errors: Vec<RowErrorDoc>,
    /// The record created, updated, or (skipped) duplicated.
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ImportReport)]
#[serde(rename_all = "camelCase")]
pub struct ReportDoc {
    pub total: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    pub dry_run: bool,
    pub rows: Vec<RowDoc>,
}

/// Failures of the CSV routes besides [`ApiError`]: unreadable files and rejected imports.
#[derive(Debug, thiserror::Error)]
pub enum CsvRouteError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Csv(#[from] CsvError),
    #[error("the body is not text/csv")]
    NotCsv,
    #[error("the import was rejected")]
    Rejected(ImportReport),
}

impl From<crm_core::Error> for CsvRouteError {
    fn from(e: crm_core::Error) -> Self {
        Self::Api(e.into())
    }
}

/// `problem` with extra members, as RFC 7807 allows.
fn extended(problem: Problem, extra: Value) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut body = serde_json::to_value(&problem).unwrap_or(Value::Null);
    if let (Value::Object(b), Value::Object(x)) = (&mut body, extra) {
        b.extend(x);
    }
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    res
}

impl IntoResponse for CsvRouteError {
    fn into_response(self) -> Response {
        match self {
            CsvRouteError::Api(e) => e.into_response(),
            CsvRouteError::Csv(CsvError::Core(e)) => ApiError::from(e).into_response(),
            CsvRouteError::Csv(CsvError::Malformed { line, detail }) => extended(
                Problem::new(StatusCode::BAD_REQUEST, "malformed_csv", "Malformed CSV")
                    .detail(format!("line {line}: {detail}")),
                serde_json::json!({ "line": line }),
            ),
            CsvRouteError::NotCsv => Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .detail("Send the file with `Content-Type: text/csv`.")
                .into_response(),
            CsvRouteError::Rejected(report) => extended(
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "import_rejected",
                    "Import rejected",
                )
                .detail(
                    "Some rows are duplicates or invalid (onDuplicate=fail); nothing was written.",
                ),
                serde_json::to_value(&report).unwrap_or(Value::Null),
            ),
        }
    }
}

fn is_csv(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "text/csv" | "application/csv" | "text/plain"
    )
}

fn import_options(q: ImportParams) -> Result<ImportOptions, ApiError> {
    let mut mapping = HashMap::new();
    if let Some(raw) = q.mapping.as_deref().filter(|m| !m.trim().is_empty()) {
        let bad = |detail: String| ApiError::InvalidQuery {
            detail,
            field: Some("mapping".into()),
        };
        let m: serde_json::Map<String, Value> =
            serde_json::from_str(raw).map_err(|e| bad(format!("not a JSON object: {e}")))?;
        for (k, v) in m {
            let path = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                _ => return Err(bad(format!("`{k}` must map to a field path or null"))),
            };
            mapping.insert(k, path);
        }
    }
    Ok(ImportOptions {
        on_duplicate: match q.on_duplicate.unwrap_or_default() {
            DuplicateMode::Skip => OnDuplicate::Skip,
            DuplicateMode::Fail => OnDuplicate::Fail,
            DuplicateMode::Update => OnDuplicate::Update,
        },
        dry_run: q.dry_run.unwrap_or(false),
        mapping,
    })
}

async fn import<E: CsvEntity>(
    state: &AppState,
    member: &Member,
    resource: Resource,
    q: ImportParams,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, CsvRouteError> {
    let mut scope = member.can(resource, Action::Create)?;
    let opts = import_options(q)?;
    if opts.on_duplicate == OnDuplicate::Update {
        scope = member.can(resource, Action::Edit)?;
    }
    if !is_csv(headers) {
        return Err(CsvRouteError::NotCsv);
    }
    let ctx = write_ctx(member, scope, state);
    match csv_io::import::<E>(&ctx, body, &opts).await? {
        ImportOutcome::Done(report) => Ok(ApiJson(report).into_response()),
        ImportOutcome::Rejected(report) => Err(CsvRouteError::Rejected(report)),
    }
}

/// Imports contacts from a CSV file (first line: headers). Every row is checked as the create
/// route checks a body; the report lists each row's outcome and errors. At most 10,000 rows.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/contacts/import",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ImportParams),
    request_body(content = String, content_type = "text/csv",
        description = "CSV with a header line (RFC 4180)"),
    responses(
        (status = 200, description = "The report (also for a dry run)", body = ReportDoc),
        (status = 400, description = "Malformed CSV (`line` names where) or bad parameters",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not create contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the body limit", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Not text/csv", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad mapping or too many rows; or, with onDuplicate=fail, \
            problem `import_rejected` carrying the report", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn import_contacts(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(q): ApiQuery<ImportParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, CsvRouteError> {
    import::<Contact>(&state, &member, Resource::Contacts, q, &headers, &body).await
}

/// Imports companies from a CSV file, as contacts are imported.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/companies/import",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ImportParams),
    request_body(content = String, content_type = "text/csv",
        description = "CSV with a header line (RFC 4180)"),
    responses(
        (status = 200, description = "The report (also for a dry run)", body = ReportDoc),
        (status = 400, description = "Malformed CSV (`line` names where) or bad parameters",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not create companies", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the body limit", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Not text/csv", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad mapping or too many rows; or, with onDuplicate=fail, \
            problem `import_rejected` carrying the report", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn import_companies(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(q): ApiQuery<ImportParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, CsvRouteError> {
    import::<Company>(&state, &member, Resource::Companies, q, &headers, &body).await
}

fn next_cursor(p: &Pagination) -> Option<String> {
    match p {
        Pagination::Cursor { next_cursor, .. } => next_cursor.clone(),
        Pagination::Offset { .. } => None,
    }
}

struct Pager<E> {
    repo: Repo<E>,
    filter: Filter,
    cols: Vec<Column>,
}

impl<E: CsvEntity> Pager<E> {
    async fn page(&self, after: Option<String>) -> crm_core::Result<(Vec<u8>, Option<String>)> {
        let page = self
            .repo
            .page(
                &self.filter,
                &[SortKey::asc("createdAt")],
                &PageRequest::Cursor {
                    after,
                    limit: EXPORT_PAGE,
                },
            )
            .await?;
        let lines = csv_io::record_lines(&self.cols, &page.items)?;
        Ok((lines, next_cursor(&page.pagination)))
    }
}

/// The header and first page are read before answering, so a failing store still gets a
/// problem answer; later pages stream.
async fn export<E: CsvEntity>(
    state: &AppState,
    scope: &WorkspaceScope,
    filter: Filter,
    plural: &str,
) -> Result<Response, CsvRouteError> {
    let defs = custom_fields::active_definitions(scope, E::CUSTOM).await?;
    let cols = csv_io::export_columns::<E>(&defs);
    let pager = Pager {
        repo: scope.repo::<E>(),
        filter,
        cols,
    };
    let mut head = csv_io::header_line(&pager.cols)?;
    let (first, next) = pager.page(None).await?;
    head.extend(first);
    let rest = stream::unfold(next.map(|c| (pager, c)), |st| async move {
        let (pager, cursor) = st?;
        Some(match pager.page(Some(cursor)).await {
            Ok((bytes, next)) => (Ok(Bytes::from(bytes)), next.map(|c| (pager, c))),
            Err(e) => {
                tracing::error!(error = %e, "CSV export stopped");
                (Err(e), None)
            }
        })
    });
    let body = Body::from_stream(stream::once(async { Ok(Bytes::from(head)) }).chain(rest));
    let date = state.stores.clock().now().to_canonical();
    let disposition = format!(
        "attachment; filename=\"{plural}-{}.csv\"",
        date.get(..10).unwrap_or("export")
    );
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// The contacts the list route would show for the same filters, as CSV (oldest first): `_id`,
/// the writable fields, `createdAt`, `updatedAt`, then `custom.<key>` per active custom field.
/// Lists are joined with `;`; cells starting with `=`, `+`, `-` or `@` get a leading `'`.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/contacts/export",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ExportParams,
        ContactFilters),
    responses(
        (status = 200, description = "The CSV file", body = String, content_type = "text/csv"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn export_contacts(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(p): ApiQuery<ExportParams>,
    ApiQuery(f): ApiQuery<ContactFilters>,
) -> Result<Response, CsvRouteError> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let filter = ContactFilter {
        status: f.status,
        lifecycle_stage: f.lifecycle_stage,
        assigned_to: f.assigned_to,
        company_id: f.company_id,
        deleted: f.deleted.unwrap_or(false),
    }
    .to_filter()?
    .and(p.base_filter());
    export::<Contact>(&state, scope, filter, "contacts").await
}

/// The companies the list route would show for the same filters, as CSV (see the contact
/// export for the format).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/companies/export",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ExportParams,
        CompanyFilters),
    responses(
        (status = 200, description = "The CSV file", body = String, content_type = "text/csv"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn export_companies(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(p): ApiQuery<ExportParams>,
    ApiQuery(f): ApiQuery<CompanyFilters>,
) -> Result<Response, CsvRouteError> {
    let scope = member.can(Resource::Companies, Action::View)?;
    let filter = CompanyFilter {
        status: f.status,
        assigned_to: f.assigned_to,
        industry: f.industry,
        company_size: f.company_size,
        parent_company_id: f.parent_company_id,
        deleted: f.deleted.unwrap_or(false),
    }
    .to_filter()?
    .and(p.base_filter());
    export::<Company>(&state, scope, filter, "companies").await
}
