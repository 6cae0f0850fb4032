//! API keys as credentials (ADR 0010): `Authorization: Bearer clk_...` or `X-Api-Key: clk_...`.
//! Only [`super::Member`] accepts them, so they work on workspace routes and nowhere else; the
//! account routes take [`super::AuthUser`], which knows access tokens only and answers 401.

use axum::http::header;
use axum::http::request::Parts;
use crm_core::Error;
use crm_core::accounts::api_keys;
use crm_core::entities::api_key::ApiKey;
use crm_core::repo::Actor;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{
    ApiKey as KeyScheme, ApiKeyValue, SecurityRequirement, SecurityScheme,
};

use super::{AuthUser, Member};
use crate::error::ApiError;
use crate::state::AppState;

pub const API_KEY_HEADER: &str = "x-api-key";

/// The outcome of looking up the request's key, kept so the rate limiter and the extractor look
/// it up once between them.
#[derive(Debug, Clone)]
struct Resolved(Option<ApiKey>);

/// The key text the request presents, if any. When an `Authorization` header is present it alone
/// decides, so one request never carries two credentials that could disagree.
fn presented(parts: &Parts) -> Option<&str> {
    let text = match parts.headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let (scheme, token) = v.to_str().ok()?.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim())?
        }
        None => parts.headers.get(API_KEY_HEADER)?.to_str().ok()?.trim(),
    };
    api_keys::is_key(text).then_some(text)
}

/// The live key the request presents: `Ok(None)` when it presents none, 401 when the key is
/// malformed, unknown, revoked or expired.
pub(crate) async fn api_key(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<ApiKey>, ApiError> {
    let Some(text) = presented(parts).map(str::to_owned) else {
        return Ok(None);
    };
    let found = match parts.extensions.get::<Resolved>() {
        Some(Resolved(k)) => k.clone(),
        None => {
            let now = state.stores.clock().now();
            let k = api_keys::resolve(&state.stores, &text, now).await?;
            parts.extensions.insert(Resolved(k.clone()));
            k
        }
    };
    found.map(Some).ok_or(ApiError::Unauthenticated)
}

/// The user a key acts for: its creator, who answers for it.
pub(crate) fn acting_user(key: &ApiKey) -> AuthUser {
    AuthUser {
        id: key.created_by,
        token_id: key.id.to_string(),
        api_key: Some(key.id),
    }
}

impl AuthUser {
    /// Who the audit log names for this caller's writes.
    pub fn actor(&self) -> Actor {
        match self.api_key {
            Some(key) => Actor::ApiKey {
                id: key.object_id(),
                on_behalf_of: self.id,
            },
            None => Actor::User(self.id),
        }
    }
}

/// Limits `member` (the key's creator in the path's workspace) to what the key may do: 404 when
/// the path names another workspace than the key's, the weaker of the two roles otherwise. Notes
/// the use (at most once a minute per key; a failed note does not fail the request).
pub(crate) async fn narrow(
    mut member: Member,
    key: &ApiKey,
    state: &AppState,
) -> Result<Member, ApiError> {
    if member.workspace_id() != key.workspace_id {
        return Err(Error::NotFound.into());
    }
    member.role = api_keys::effective_role(key.role, member.role);
    let scope = state.stores.workspace(key.workspace_id);
    if let Err(e) = api_keys::touch(&scope, key, state.stores.clock().now()).await {
        tracing::warn!(error = %e, key = %key.id, "could not record the API key's use");
    }
    Ok(member)
}

/// Paths where keys are refused although `Member` guards them: keys do not manage keys.
const KEY_MANAGEMENT: &str = "/api-keys";

/// Declares the `apiKey` scheme and names it, beside `bearer`, on every workspace route a key
/// may call.
pub(crate) fn document(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::ApiKey(KeyScheme::Header(ApiKeyValue::with_description(
            "X-Api-Key",
            "A workspace API key (`clk_...`), also accepted as `Authorization: Bearer clk_...`. \
             Valid on `/api/v1/workspaces/{workspaceId}/...` routes of its own workspace only, \
             with the key's role.",
        ))),
    );
    let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/api/v1/workspaces/{workspaceId}") || path.contains(KEY_MANAGEMENT) {
            continue;
        }
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(sec) = op.security.as_mut().filter(|s| s.contains(&bearer)) {
                sec.push(SecurityRequirement::new("apiKey", Vec::<String>::new()));
            }
        }
    }
}
