//! The one error type handlers return, and its RFC 7807 `application/problem+json` rendering.
//! `crm_core::Error` is mapped to a status here and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The error body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// `urn:clianta:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary, the same for every occurrence of this code.
    pub title: String,
    /// The HTTP status, repeated for clients that only keep the body.
    pub status: u16,
    /// Stable machine-readable code (`not_found`, `conflict`, `invalid`, ...).
    pub code: String,
    /// What happened in this occurrence; never internal details.
    #[schema(required = true)]
    pub detail: Option<String>,
    /// The request field (JSON path, query key or unique key) the problem is about.
    #[schema(required = true)]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str) -> Self {
        Self {
            kind: format!("urn:clianta:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            code: code.to_owned(),
            detail: None,
            field: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The generic problem for a bare status (unknown method, panics, layer rejections).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, title) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "Bad request"),
            StatusCode::UNAUTHORIZED => ("unauthenticated", "Authentication required"),
            StatusCode::FORBIDDEN => ("forbidden", "Forbidden"),
            StatusCode::NOT_FOUND => ("not_found", "Not found"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed"),
            StatusCode::CONFLICT => ("conflict", "Conflict"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "Payload too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "Unsupported media type")
            }
            StatusCode::UNPROCESSABLE_ENTITY => ("invalid", "Invalid input"),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "Too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "Service unavailable"),
            s if s.is_server_error() => ("internal", "Internal server error"),
            _ => ("error", status.canonical_reason().unwrap_or("Error")),
        };
        Self::new(status, code, title)
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut res = (status, axum::Json(self)).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

/// Everything a handler or extractor can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Core(#[from] crm_core::Error),
    /// The body is not JSON at all (syntax, truncated, unreadable).
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    /// Well-formed JSON of the wrong shape; `field` is the JSON path (none for the root).
    #[error("invalid JSON body: {detail}")]
    InvalidJson {
        detail: String,
        field: Option<String>,
    },
    #[error("a JSON body with content type application/json is required")]
    NotJson,
    /// A multipart body that does not parse (framing, truncation).
    #[error("malformed multipart body: {0}")]
    MalformedMultipart(String),
    #[error("a multipart/form-data body is required")]
    NotMultipart,
    #[error("invalid query string: {detail}")]
    InvalidQuery {
        detail: String,
        field: Option<String>,
    },
    #[error("authentication required")]
    Unauthenticated,
    #[error("request body larger than the limit")]
    PayloadTooLarge,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: Option<u64> },
    #[error("no route for this path")]
    RouteNotFound,
    #[error("the request took too long")]
    Timeout,
    /// `/ready` when the store does not answer; the cause is logged, not returned.
    #[error("storage not ready: {0}")]
    NotReady(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The body and status, logging server-side failures once, here.
    pub fn to_problem(&self) -> Problem {
        use crm_core::Error as E;
        match self {
            ApiError::Core(E::NotFound) => {
                Problem::new(StatusCode::NOT_FOUND, "not_found", "Not found")
                    .detail("The resource does not exist.")
            }
            ApiError::Core(E::Conflict { key }) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict")
                    .detail(format!("A record with the same `{key}` already exists."))
                    .field(key)
            }
            ApiError::Core(E::Stale) => Problem::new(StatusCode::CONFLICT, "stale", "Conflict")
                .detail("The record changed while this request was writing it; retry."),
            ApiError::Core(E::Invalid { field, reason }) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid input")
                    .detail(reason)
                    .field(field)
            }
            ApiError::Core(E::Forbidden(why)) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(why)
            }
            ApiError::Core(E::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "storage unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                )
                .detail("The storage is unavailable; retry later.")
            }
            ApiError::Core(E::Internal(cause)) => {
                tracing::error!(error = %cause, "internal error");
                Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::MalformedJson(detail) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "Malformed JSON body",
            )
            .detail(detail),
            ApiError::InvalidJson { detail, field } => {
                let p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid input")
                    .detail(detail);
                match field {
                    Some(f) => p.field(f),
                    None => p,
                }
            }
            ApiError::NotJson => Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .detail("Send the body as JSON with `Content-Type: application/json`."),
            ApiError::MalformedMultipart(detail) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_multipart",
                "Malformed multipart body",
            )
            .detail(detail),
            ApiError::NotMultipart => Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .detail("Send the body as `multipart/form-data`."),
            ApiError::InvalidQuery { detail, field } => {
                let p = Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    "Invalid query string",
                )
                .detail(detail);
                match field {
                    Some(f) => p.field(f),
                    None => p,
                }
            }
            ApiError::Unauthenticated => Problem::for_status(StatusCode::UNAUTHORIZED),
            ApiError::PayloadTooLarge => Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE)
                .detail("The request body is larger than the server accepts."),
            ApiError::TooManyRequests { .. } => Problem::for_status(StatusCode::TOO_MANY_REQUESTS),
            ApiError::RouteNotFound => {
                Problem::new(StatusCode::NOT_FOUND, "route_not_found", "Route not found")
                    .detail("No route matches this method and path.")
            }
            ApiError::Timeout => {
                tracing::warn!("request timed out");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "Request timed out",
                )
                .detail("The server did not finish in time; retry later.")
            }
            ApiError::NotReady(cause) => {
                tracing::warn!(error = %cause, "readiness check failed");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Not ready")
                    .detail("The storage does not answer.")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.to_problem().into_response();
        let headers = res.headers_mut();
        match &self {
            ApiError::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests {
                retry_after_secs: Some(s),
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*s));
            }
            _ => {}
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use crm_core::Error as E;

    use super::*;

    async fn render(e: impl Into<ApiError>) -> (StatusCode, axum::http::HeaderMap, Problem) {
        let res = e.into().into_response();
        let status = res.status();
        let headers = res.headers().clone();
        let body = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn core_errors_map_to_one_status_each() {
        let cases = [
            (E::NotFound, 404, "not_found", None),
            (E::conflict("email"), 409, "conflict", Some("email")),
            (
                E::invalid("name", "must not be empty"),
                422,
                "invalid",
                Some("name"),
            ),
            (E::Forbidden("not a member".into()), 403, "forbidden", None),
            (
                E::Unavailable("pool closed".into()),
                503,
                "unavailable",
                None,
            ),
            (E::internal("boom"), 500, "internal", None),
        ];
        for (err, status, code, field) in cases {
            let (s, headers, p) = render(err.clone()).await;
            assert_eq!(s.as_u16(), status, "{err:?}");
            assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
            assert_eq!(p.status, status);
            assert_eq!(p.code, code);
            assert_eq!(p.kind, format!("urn:clianta:problem:{code}"));
            assert_eq!(p.field.as_deref(), field);
        }
    }

    #[tokio::test]
    async fn invalid_carries_the_reason() {
        let (_, _, p) = render(E::invalid("email", "is not an address")).await;
        assert_eq!(p.detail.as_deref(), Some("is not an address"));
    }

    #[tokio::test]
    async fn server_side_causes_are_not_leaked() {
        for e in [
            E::internal("SELECT secret FROM t"),
            E::Unavailable("mongodb://u:pw@h".into()),
        ] {
            let (_, _, p) = render(e).await;
            let text = serde_json::to_string(&p).unwrap();
            assert!(!text.contains("secret") && !text.contains("pw@"), "{text}");
        }
        let (_, _, p) = render(ApiError::NotReady("connection refused".into())).await;
        assert!(!serde_json::to_string(&p).unwrap().contains("refused"));
    }

    #[tokio::test]
    async fn later_variants_are_ready() {
        let (s, h, p) = render(ApiError::Unauthenticated).await;
        assert_eq!((s.as_u16(), p.code.as_str()), (401, "unauthenticated"));
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");

        let (s, h, p) = render(ApiError::TooManyRequests {
            retry_after_secs: Some(7),
        })
        .await;
        assert_eq!((s.as_u16(), p.code.as_str()), (429, "rate_limited"));
        assert_eq!(h[header::RETRY_AFTER], "7");

        let (s, _, p) = render(ApiError::PayloadTooLarge).await;
        assert_eq!((s.as_u16(), p.code.as_str()), (413, "payload_too_large"));

        let (s, _, p) = render(ApiError::Timeout).await;
        assert_eq!((s.as_u16(), p.code.as_str()), (503, "timeout"));
    }

    #[test]
    fn problem_always_has_all_members() {
        let v = serde_json::to_value(Problem::for_status(StatusCode::NOT_FOUND)).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["code", "detail", "field", "status", "title", "type"]);
    }
}
