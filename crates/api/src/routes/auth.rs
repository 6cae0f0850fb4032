//! Accounts: register, login, refresh (rotating), logout, me.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{
    self, Email, Password, PasswordCheck, RefreshRejected, Sessions, hash_password,
};
use crm_core::entities::user::{AuthProvider, User};
use crm_core::{Error, Filter, FindOptions, Update, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{AuthError, AuthUser, blocking, issue_access_token};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;

/// An account as its owner sees it; never the password hash or tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub is_verified: bool,
    /// `email` or `google`.
    pub auth_provider: String,
    pub timezone: String,
    #[schema(required = true)]
    pub created_at: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            is_verified: u.is_verified,
            auth_provider: match u.auth_provider {
                AuthProvider::Email => "email",
                AuthProvider::Google => "google",
            }
            .into(),
            timezone: u.timezone.clone(),
            created_at: u.created_at.map(|t| t.to_canonical()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// A JWT (HS256) for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; exchange it at `/api/v1/auth/refresh`. Each one works once.
    pub refresh_token: String,
    pub refresh_expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    pub user: UserView,
    /// Absent when the account must verify its email before logging in.
    #[schema(required = true)]
    pub tokens: Option<Tokens>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    /// 8+ characters with an upper-case letter, a lower-case letter and a digit.
    pub password: String,
    pub name: String,
    #[serde(default)]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

fn sessions(state: &AppState) -> Sessions {
    let ttl = i64::try_from(state.config.auth.refresh_token_ttl.as_secs()).unwrap_or(i64::MAX);
    Sessions::new(state.stores.clone(), ttl)
}

async fn issue_tokens(state: &AppState, user: UserId) -> Result<Tokens, Error> {
    let access = issue_access_token(state, user).await?;
    let refresh = sessions(state).start(user).await?;
    Ok(Tokens {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: refresh.token,
        refresh_expires_at: refresh.expires_at.to_canonical(),
    })
}

fn parse_name(s: &str) -> Result<String, Error> {
    let n = s.trim();
    if n.is_empty() || n.chars().count() > 100 {
        return Err(Error::invalid("name", "must be 1 to 100 characters"));
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

/// Creates an account and logs it in (unless email verification is required).
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = AuthResponse),
        (status = 409, description = "The email is taken (`field`: `email`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Weak password, bad email or name (`field` says which)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    let email = Email::parse(&req.email)?;
    let password = Password::parse(&req.password)?;
    let name = parse_name(&req.name)?;
    let timezone = req.timezone.as_deref().map(parse_timezone).transpose()?;
    let hash = blocking(move || hash_password(&password)).await??;
    let mut user = User::new(email.as_str(), name);
    user.password = Some(hash);
    if let Some(tz) = timezone {
        user.timezone = tz;
    }
    let user = state.stores.global::<User>().insert(&user).await?;
    let tokens = if state.config.auth.require_email_verification && !user.is_verified {
        None
    } else {
        Some(issue_tokens(&state, user.id).await?)
    };
    let body = AuthResponse {
        user: UserView::from(&user),
        tokens,
    };
    Ok((StatusCode::CREATED, ApiJson(body)).into_response())
}

async fn find_by_email(state: &AppState, email: &str) -> Result<Option<User>, Error> {
    let found = state
        .stores
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

/// Exchanges email and password for tokens. Accounts from the original keep their bcrypt
/// passwords; a successful login stores an argon2id hash instead.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = AuthResponse),
        (status = 401, description = "Wrong email or password (one answer for both)",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Email not verified (only when verification is required)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<ApiJson<AuthResponse>, AuthError> {
    let user = match Email::parse(&req.email) {
        Ok(email) => find_by_email(&state, email.as_str()).await?,
        Err(_) => None,
    };
    let plain = req.password;
    let Some(user) = user else {
        blocking(move || accounts::verify_dummy(&plain)).await?;
        return Err(AuthError::InvalidCredentials);
    };
    let Some(stored) = user.password.clone() else {
        // Google accounts have no password; same answer and about the same time.
        blocking(move || accounts::verify_dummy(&plain)).await?;
        return Err(AuthError::InvalidCredentials);
    };
    let (check, plain) = blocking(move || {
        let c = accounts::verify_password(&plain, &stored);
        (c, plain)
    })
    .await?;
    match check {
        PasswordCheck::Mismatch => return Err(AuthError::InvalidCredentials),
        PasswordCheck::Match => {}
        PasswordCheck::MatchNeedsRehash => rehash(&state, user.id, plain).await,
    }
    if state.config.auth.require_email_verification && !user.is_verified {
        return Err(AuthError::EmailNotVerified);
    }
    let tokens = issue_tokens(&state, user.id).await?;
    Ok(ApiJson(AuthResponse {
        user: UserView::from(&user),
        tokens: Some(tokens),
    }))
}

/// Replaces an old-format hash. The login succeeds even if this fails; the next one retries.
async fn rehash(state: &AppState, user: UserId, plain: String) {
    let hashed = blocking(move || {
        // A password the original accepted may not meet today's policy; hash it as it is.
        accounts::password::hash_unchecked(&plain)
    })
    .await;
    let result = match hashed {
        Ok(Ok(h)) => state
            .stores
            .global::<User>()
            .update(user, &Update::new().set("password", h))
            .await
            .map(|_| ()),
        Ok(Err(e)) | Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, user = %user, "could not rehash a password");
    }
}

/// Exchanges a refresh token for new tokens. The presented token stops working; presenting it
/// again revokes every token of its login.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = Tokens),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<ApiJson<Tokens>, AuthError> {
    let (user, next) = match sessions(&state).rotate(&req.refresh_token).await? {
        Ok(ok) => ok,
        Err(why) => {
            if why == RefreshRejected::Reused {
                tracing::warn!("a revoked refresh token was presented; its login is revoked");
            }
            return Err(AuthError::InvalidRefreshToken);
        }
    };
    let access = issue_access_token(&state, user).await?;
    Ok(ApiJson(Tokens {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: next.token,
        refresh_expires_at: next.expires_at.to_canonical(),
    }))
}

/// Revokes the refresh token and every token rotated from the same login. Idempotent. Access
/// tokens already issued stay valid until they expire (at most 15 minutes by default).
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Logged out")),
)]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    sessions(&state).revoke(&req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "No valid access token", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> ApiResult<ApiJson<UserView>> {
    match state.stores.global::<User>().get(user.id).await {
        Ok(u) => Ok(ApiJson(UserView::from(&u))),
        // A token for an account that no longer exists.
        Err(Error::NotFound) => Err(ApiError::Unauthenticated),
        Err(e) => Err(e.into()),
    }
}
