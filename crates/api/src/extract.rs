//! JSON body and query extractors whose rejections are [`ApiError`]s, so a bad request gets the
//! same problem envelope as every other error and names the field that was wrong.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like `axum::Json`, rejecting with: 415 without a JSON content type, 400 `malformed_json` for
/// syntax errors, 422 `invalid` (with the JSON path as `field`) for a well-formed body of the
/// wrong shape, 413 over the body limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

fn is_json(req: &Request) -> bool {
    let Some(ct) = req
        .headers()
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
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Decodes a JSON body, classifying the failure the way [`ApiJson`] documents.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.classify() == serde_json::error::Category::Data {
            ApiError::InvalidJson {
                field: (path != ".").then_some(path),
                detail: inner.to_string(),
            }
        } else {
            ApiError::MalformedJson(inner.to_string())
        }
    })?;
    de.end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::NotJson);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedJson(r.body_text())
            }
        })?;
        decode_json(&bytes).map(ApiJson)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Like `axum::extract::Query`, rejecting with 400 `invalid_query` naming the key.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

/// Decodes a URL query string (without the `?`).
pub fn decode_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::InvalidQuery {
            field: (path != ".").then_some(path),
            detail: e.into_inner().to_string(),
        }
    })
}

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        decode_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        name: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Q {
        limit: Option<u32>,
        q: Option<String>,
    }

    #[test]
    fn json_syntax_is_malformed_and_shape_is_invalid_with_path() {
        assert!(matches!(
            decode_json::<Body>(b"{\"name\": "),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            decode_json::<Body>(b"{\"name\": \"a\"} trailing"),
            Err(ApiError::MalformedJson(_))
        ));
        match decode_json::<Body>(br#"{"name": "a", "tags": ["x", 3]}"#) {
            Err(ApiError::InvalidJson { field, .. }) => {
                assert_eq!(field.as_deref(), Some("tags[1]"))
            }
            other => panic!("{other:?}"),
        }
        match decode_json::<Body>(b"[]") {
            Err(ApiError::InvalidJson { field, .. }) => assert_eq!(field, None),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decode_json::<Body>(br#"{"name":"a"}"#).unwrap(),
            Body {
                name: "a".into(),
                tags: vec![]
            }
        );
    }

    #[test]
    fn query_errors_name_the_key() {
        assert_eq!(
            decode_query::<Q>("limit=5&q=a%20b").unwrap(),
            Q {
                limit: Some(5),
                q: Some("a b".into())
            }
        );
        match decode_query::<Q>("limit=lots") {
            Err(ApiError::InvalidQuery { field, .. }) => {
                assert_eq!(field.as_deref(), Some("limit"))
            }
            other => panic!("{other:?}"),
        }
    }
}
