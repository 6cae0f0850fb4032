//! Accounts: register, login, refresh (rotating), logout, me; email verification, password reset
//! and change, one-time codes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::tokens::{self, TokenKind};
use crm_core::accounts::{
    self, Email, Mail, MailKind, Password, PasswordCheck, RefreshRejected, Sessions, hash_password,
};
use crm_core::entities::otp::OtpPurpose;
use crm_core::entities::user::{AuthProvider, User};
use crm_core::{Error, Filter, FindOptions, Update, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AuthError, AuthUser, blocking, issue_access_token};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;

/// An account as its owner sees it; never the password hash or tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    #[serde(rename = "_id")]
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
    send_verification(&state, &user).await?;
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

/// The routes added with the account flows (register, login, refresh, logout and me are
/// registered in `routes/mod.rs`).
pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(change_password))
        .routes(routes!(send_otp))
        .routes(routes!(verify_otp))
}

async fn send_verification(state: &AppState, user: &User) -> Result<(), Error> {
    let token = tokens::issue(&state.stores, user.id, TokenKind::Verify).await?;
    state
        .mailer
        .send_logged(Mail {
            to: user.email.clone(),
            kind: MailKind::VerifyEmail { token },
        })
        .await;
    Ok(())
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// The token from the mail.
    pub token: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailRequest {
    pub email: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub token: String,
    /// 8+ characters with an upper-case letter, a lower-case letter and a digit.
    pub password: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 8+ characters with an upper-case letter, a lower-case letter and a digit.
    pub new_password: String,
}

fn bad_token() -> Error {
    Error::invalid("token", "is unknown, used or expired")
}

/// Marks the account's email verified. Each token works once, for 24 hours.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email",
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Verified", body = UserView),
        (status = 422, description = "Unknown, used or expired token (`field`: `token`)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn verify_email(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<ApiJson<UserView>> {
    let user = tokens::redeem(
        &state.stores,
        &req.token,
        TokenKind::Verify,
        Update::new().set("isVerified", true),
    )
    .await?
    .ok_or_else(bad_token)?;
    Ok(ApiJson(UserView::from(&user)))
}

/// Sends a new verification mail if the email names an unverified account. Always 202, so the
/// answer does not tell whether an account exists.
#[utoipa::path(
    post,
    path = "/api/v1/auth/resend-verification",
    tag = "auth",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)"),
        (status = 422, description = "Not an email", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn resend_verification(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmailRequest>,
) -> ApiResult<StatusCode> {
    let email = Email::parse(&req.email)?;
    let user = find_by_email(&state, email.as_str()).await?;
    if let Some(user) = user.filter(|u| !u.is_verified) {
        send_verification(&state, &user).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Mails a password-reset token (valid one hour) if the email names an account. Always 202.
#[utoipa::path(
    post,
    path = "/api/v1/auth/forgot-password",
    tag = "auth",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)"),
        (status = 422, description = "Not an email", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmailRequest>,
) -> ApiResult<StatusCode> {
    let email = Email::parse(&req.email)?;
    if let Some(user) = find_by_email(&state, email.as_str()).await? {
        let token = tokens::issue(&state.stores, user.id, TokenKind::Reset).await?;
        state
            .mailer
            .send_logged(Mail {
                to: user.email.clone(),
                kind: MailKind::ResetPassword { token },
            })
            .await;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a reset token (once, within an hour) and revokes every refresh token
/// of the account. The mailbox was proven, so the email counts as verified.
#[utoipa::path(
    post,
    path = "/api/v1/auth/reset-password",
    tag = "auth",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password changed; log in again"),
        (status = 422, description = "Weak password (`password`) or bad token (`token`)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn reset_password(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    // Checked before redeeming, so a weak password does not use up the token.
    let password = Password::parse(&req.password)?;
    let hash = blocking(move || hash_password(&password)).await??;
    let user = tokens::redeem(
        &state.stores,
        &req.token,
        TokenKind::Reset,
        Update::new().set("password", hash).set("isVerified", true),
    )
    .await?
    .ok_or_else(bad_token)?;
    sessions(&state).revoke_user(user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's password. Every refresh token of the account is revoked and a new login
/// is returned.
#[utoipa::path(
    post,
    path = "/api/v1/auth/change-password",
    tag = "auth",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed; the new tokens", body = Tokens),
        (status = 401, description = "No valid access token", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Wrong current password (`currentPassword`) or weak new one \
            (`newPassword`)", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<ApiJson<Tokens>> {
    let user = match state.stores.global::<User>().get(caller.id).await {
        Ok(u) => u,
        Err(Error::NotFound) => return Err(ApiError::Unauthenticated),
        Err(e) => return Err(e.into()),
    };
    let wrong = || Error::invalid("currentPassword", "is wrong");
    let stored = user.password.clone().ok_or_else(wrong)?;
    let password = Password::parse(&req.new_password).map_err(|_| {
        Error::invalid(
            "newPassword",
            "needs 8+ characters with upper, lower, digit",
        )
    })?;
    let current = req.current_password;
    let check = blocking(move || accounts::verify_password(&current, &stored)).await?;
    if check == PasswordCheck::Mismatch {
        return Err(wrong().into());
    }
    let hash = blocking(move || hash_password(&password)).await??;
    state
        .stores
        .global::<User>()
        .update(user.id, &Update::new().set("password", hash))
        .await?;
    sessions(&state).revoke_user(user.id).await?;
    Ok(ApiJson(issue_tokens(&state, user.id).await?))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendOtpRequest {
    pub email: String,
    /// `registration`, `login` or `password-reset`.
    #[schema(value_type = String)]
    pub purpose: OtpPurpose,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyOtpRequest {
    pub email: String,
    /// `registration`, `login` or `password-reset`.
    #[schema(value_type = String)]
    pub purpose: OtpPurpose,
    /// The six digits from the mail.
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtpVerified {
    pub verified: bool,
    /// For `login`: a new login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    /// For `password-reset`: a reset token for `/auth/reset-password` (valid one hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_token: Option<String>,
}

/// Mails a 6-digit code (valid 10 minutes) if the email names an account. At most 3 codes per
/// email and purpose per hour (429 with `Retry-After` beyond), counted whether or not the account
/// exists, so neither answer tells.
#[utoipa::path(
    post,
    path = "/api/v1/auth/send-otp",
    tag = "auth",
    request_body = SendOtpRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)"),
        (status = 422, description = "Not an email", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Three codes were sent in the last hour", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn send_otp(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SendOtpRequest>,
) -> ApiResult<StatusCode> {
    let email = Email::parse(&req.email)?;
    let code = match accounts::otp::issue(&state.stores, email.as_str(), req.purpose).await? {
        Ok(code) => code,
        Err(limited) => {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: Some(limited.retry_after_secs),
            });
        }
    };
    let wanted = match find_by_email(&state, email.as_str()).await? {
        Some(u) => req.purpose != OtpPurpose::Registration || !u.is_verified,
        None => false,
    };
    if wanted {
        state
            .mailer
            .send_logged(Mail {
                to: email.as_str().to_owned(),
                kind: MailKind::Otp {
                    code,
                    purpose: req.purpose,
                },
            })
            .await;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Checks a code. Each code works once; five wrong guesses kill every live code of that email
/// and purpose. `registration` marks the email verified, `login` also returns tokens, and
/// `password-reset` returns a reset token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-otp",
    tag = "auth",
    request_body = VerifyOtpRequest,
    responses(
        (status = 200, description = "The code was right", body = OtpVerified),
        (status = 422, description = "Wrong, used, expired or exhausted code (`field`: `code`)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn verify_otp(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<VerifyOtpRequest>,
) -> ApiResult<ApiJson<OtpVerified>> {
    let wrong = || Error::invalid("code", "is wrong, used or expired");
    let email = Email::parse(&req.email)?;
    let ok =
        accounts::otp::verify(&state.stores, email.as_str(), req.purpose, req.code.trim()).await?;
    if !ok {
        return Err(wrong().into());
    }
    // Codes are only mailed to accounts, but one may have been deleted since.
    let user = find_by_email(&state, email.as_str())
        .await?
        .ok_or_else(wrong)?;
    if !user.is_verified {
        state
            .stores
            .global::<User>()
            .update(user.id, &Update::new().set("isVerified", true))
            .await?;
    }
    let mut out = OtpVerified {
        verified: true,
        tokens: None,
        reset_token: None,
    };
    match req.purpose {
        OtpPurpose::Registration => {}
        OtpPurpose::Login => out.tokens = Some(issue_tokens(&state, user.id).await?),
        OtpPurpose::PasswordReset => {
            out.reset_token = Some(tokens::issue(&state.stores, user.id, TokenKind::Reset).await?);
        }
    }
    Ok(ApiJson(out))
}
