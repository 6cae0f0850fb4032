//! Attachments: multipart upload (file and metadata), list, metadata, content download, delete.
//! The rules and the write order live in `crm_core::services::attachments`; the bytes go to the
//! state's `BlobStore`.
//!
//! The file is read in chunks and refused with 413 as soon as it passes 25 MB, so the global
//! body limit is lifted on the upload route only (see `UPLOAD_BODY_LIMIT`).

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::attachment::{Attachment, AttachmentCategory, AttachmentId, MAX_FILE_SIZE};
use crm_core::services::attachments::{self, NewAttachment};
use crm_core::{Error, SortKey};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::auth::Member;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;
const SORTABLE: &[&str] = &["createdAt", "updatedAt", "fileName", "fileSize"];

/// The file limit plus room for the metadata parts and the multipart framing. The outermost
/// body limit is at least this, so an upload can reach the handler.
pub const UPLOAD_BODY_LIMIT: usize = MAX_FILE_SIZE as usize + 1024 * 1024;

/// Longest metadata part accepted (ids, category, a 500-character description).
const META_MAX: usize = 8 * 1024;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_attachment))
        .layer(DefaultBodyLimit::disable());
    r.merge(upload)
        .routes(routes!(list_attachments))
        .routes(routes!(get_attachment, delete_attachment))
        .routes(routes!(attachment_content))
}

/// The multipart form of an upload. Exactly one of the four references is given.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(
    dead_code,
    reason = "documents the form; the handler reads the parts one by one"
)]
pub struct UploadForm {
    /// The file (at most 25 MB): PDF, Word, Excel, PowerPoint, JPEG, PNG, GIF, plain text or
    /// CSV. Its part's filename and Content-Type are kept.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// A deal of the workspace.
    pub opportunity_id: Option<String>,
    /// A contact of the workspace.
    pub contact_id: Option<String>,
    /// A company of the workspace.
    pub company_id: Option<String>,
    /// A ticket of the workspace.
    pub ticket_id: Option<String>,
    /// proposal, contract, presentation, other (default).
    pub category: Option<String>,
    /// Up to 500 characters.
    pub description: Option<String>,
}

/// Filters of the attachment list (besides paging, sort and fields).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentFilters {
    pub opportunity_id: Option<String>,
    pub contact_id: Option<String>,
    pub company_id: Option<String>,
    pub ticket_id: Option<String>,
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::MalformedMultipart(e.body_text())
    }
}

/// Reads a part, answering 413 once it passes `max` bytes.
async fn read_part(field: &mut Field<'_>, max: usize) -> ApiResult<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

async fn read_text(field: &mut Field<'_>, name: &str) -> ApiResult<String> {
    String::from_utf8(read_part(field, META_MAX).await?)
        .map_err(|_| Error::invalid(name, "is not UTF-8 text").into())
}

#[derive(Default)]
struct Upload {
    file: Option<(String, String, Vec<u8>)>,
    opportunity_id: Option<String>,
    contact_id: Option<String>,
    company_id: Option<String>,
    ticket_id: Option<String>,
    category: Option<String>,
    description: Option<String>,
}

async fn read_upload(mut mp: Multipart) -> ApiResult<Upload> {
    let mut u = Upload::default();
    while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        let slot = match name.as_str() {
            "file" => {
                if u.file.is_some() {
                    return Err(Error::invalid("file", "send one file per request").into());
                }
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let file_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let bytes = read_part(&mut field, MAX_FILE_SIZE as usize).await?;
                u.file = Some((file_name, file_type, bytes));
                continue;
            }
            "opportunityId" => &mut u.opportunity_id,
            "contactId" => &mut u.contact_id,
            "companyId" => &mut u.company_id,
            "ticketId" => &mut u.ticket_id,
            "category" => &mut u.category,
            "description" => &mut u.description,
            _ => return Err(Error::invalid(name, "unknown field").into()),
        };
        *slot = Some(read_text(&mut field, &name).await?);
    }
    Ok(u)
}

/// Uploads a file onto a deal, contact, company or ticket of the workspace.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/attachments",
    tag = "attachments",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The attachment's metadata", body = Object),
        (status = 403, description = "The role may not add files", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "The file is over 25 MB", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Missing file, refused type, bad field or unknown record",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn upload_attachment(
    State(state): State<AppState>,
    member: Member,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Deals, Action::Create)?;
    let mp = multipart.map_err(|_| ApiError::NotMultipart)?;
    let u = read_upload(mp).await?;
    let Some((file_name, file_type, bytes)) = u.file else {
        return Err(Error::invalid("file", "is required").into());
    };
    let parent = attachments::parent_of(
        u.opportunity_id.as_deref(),
        u.contact_id.as_deref(),
        u.company_id.as_deref(),
        u.ticket_id.as_deref(),
    )?;
    let category = u
        .category
        .filter(|c| !c.trim().is_empty())
        .map(|c| {
            serde_json::from_value::<AttachmentCategory>(serde_json::Value::String(
                c.trim().to_owned(),
            ))
            .map_err(|_| Error::invalid("category", format!("unknown value `{c}`")))
        })
        .transpose()?;
    let cmd = NewAttachment {
        parent,
        file_name,
        file_type,
        category,
        description: u.description,
    };
    let a = attachments::create(scope, state.blobs.as_ref(), member.user.id, cmd, bytes).await?;
    Ok((StatusCode::CREATED, ApiJson(a)).into_response())
}

/// Attachments, newest first, by the record they are on.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/attachments",
    tag = "attachments",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        AttachmentFilters),
    responses(
        (status = 200, description = "`{attachments, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_attachments(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<AttachmentFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Deals, Action::View)?;
    for (name, v) in [("search", &p.search), ("tags", &p.tags)] {
        if v.is_some() {
            return Err(Error::invalid(name, "attachments cannot be filtered by it").into());
        }
    }
    let filter = attachments::list_filter(
        f.opportunity_id.as_deref(),
        f.contact_id.as_deref(),
        f.company_id.as_deref(),
        f.ticket_id.as_deref(),
    )?;
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let body = list_without_expand(
        scope.repo::<Attachment>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "attachments",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/attachments/{id}",
    tag = "attachments",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The attachment id")),
    responses(
        (status = 200, description = "The attachment's metadata", body = Object),
        (status = 404, description = "No such attachment in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_attachment(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Attachment>> {
    let scope = member.can(Resource::Deals, Action::View)?;
    let id: AttachmentId = path_id(&id)?;
    Ok(ApiJson(scope.repo::<Attachment>().get(id).await?))
}

/// `filename` for old clients (ASCII, no quotes or backslashes) and `filename*` (RFC 5987) with
/// the full name.
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len());
    for b in name.bytes() {
        // RFC 5987 attr-char; everything else is percent-encoded.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The file's bytes, as a download.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/attachments/{id}/content",
    tag = "attachments",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The attachment id")),
    responses(
        (status = 200, description = "The bytes, with the stored Content-Type and \
            `Content-Disposition: attachment`", content_type = "application/octet-stream"),
        (status = 404, description = "No such attachment (or no bytes) in this workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn attachment_content(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Deals, Action::View)?;
    let id: AttachmentId = path_id(&id)?;
    let (a, bytes) = attachments::content(scope, state.blobs.as_ref(), id).await?;
    // Old documents may carry any type; one that is not a valid header becomes plain bytes.
    let kind = HeaderValue::from_str(&a.file_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(&a.file_name))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let headers = [
        (header::CONTENT_TYPE, kind),
        (header::CONTENT_DISPOSITION, disposition),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("private")),
    ];
    Ok((headers, bytes).into_response())
}

/// Deletes the record, then the bytes.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/attachments/{id}",
    tag = "attachments",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The attachment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete files", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such attachment in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_attachment(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Deals, Action::Delete)?;
    let id: AttachmentId = path_id(&id)?;
    attachments::delete(scope, state.blobs.as_ref(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_keeps_headers_safe() {
        assert_eq!(
            content_disposition("a b.pdf"),
            "attachment; filename=\"a b.pdf\"; filename*=UTF-8''a%20b.pdf"
        );
        let d = content_disposition("résumé\"x.pdf");
        assert!(
            d.starts_with("attachment; filename=\"r_sum__x.pdf\";"),
            "{d}"
        );
        assert!(d.ends_with("r%C3%A9sum%C3%A9%22x.pdf"), "{d}");
    }
}
