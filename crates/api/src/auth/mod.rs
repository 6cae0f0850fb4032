//! Authentication and workspace access: HS256 access tokens, the signing key shared through the
//! store, and the extractors every protected route takes ([`AuthUser`], [`Member`]).

pub(crate) mod api_key;
pub(crate) mod cache;
mod extract;
pub mod jwt;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::repo::Stores;
use crm_core::{Error, UserId};
use tokio::sync::OnceCell;

use crate::error::{ApiError, Problem};

pub use extract::{AuthUser, Member};

/// A configured signing secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    pub const MIN_BYTES: usize = 32;

    /// Refuses secrets shorter than [`Self::MIN_BYTES`]: HS256 is only as strong as its key.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, Error> {
        let s = secret.into();
        if s.len() < Self::MIN_BYTES {
            return Err(Error::invalid(
                "jwt_secret",
                "must be at least 32 bytes long",
            ));
        }
        Ok(Self(s))
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(***)")
    }
}

/// How accounts and tokens behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `None`: a secret generated once and kept in the store (`settings`), shared by every
    /// process over the same store.
    pub jwt_secret: Option<JwtSecret>,
    /// Login answers 403 for accounts whose email is not verified. Off by default: without a mail
    /// transport nobody could verify.
    pub require_email_verification: bool,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            require_email_verification: false,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The signing key, resolved on first use (the store may hold it).
#[derive(Default)]
pub(crate) struct SigningKey(OnceCell<Arc<[u8]>>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    pub(crate) async fn get(
        &self,
        config: &AuthConfig,
        stores: &Stores,
    ) -> Result<Arc<[u8]>, Error> {
        self.0
            .get_or_try_init(|| async {
                match &config.jwt_secret {
                    Some(s) => Ok(Arc::from(s.0.as_slice())),
                    None => crm_core::accounts::jwt_secret(stores).await.map(Arc::from),
                }
            })
            .await
            .cloned()
    }
}

/// A freshly signed access token.
pub(crate) struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

pub(crate) async fn issue_access_token(
    state: &crate::AppState,
    user: UserId,
) -> Result<AccessToken, Error> {
    let key = state.signing_key().await?;
    let now = state.stores.clock().now().millis() / 1000;
    let ttl = state.config.auth.access_token_ttl.as_secs();
    let claims = jwt::Claims {
        sub: user.to_string(),
        iat: now,
        exp: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
        jti: hex::encode(rand::random::<[u8; 16]>()),
    };
    Ok(AccessToken {
        token: jwt::sign(&key, &claims),
        expires_in: ttl,
    })
}

/// What the auth routes can fail with beyond [`ApiError`]: answers whose wording must not reveal
/// which part was wrong.
#[derive(Debug)]
pub enum AuthError {
    Api(ApiError),
    /// Unknown email, wrong password, or an account without a password: one answer for all.
    InvalidCredentials,
    /// Unknown, expired, revoked or reused refresh token.
    InvalidRefreshToken,
    EmailNotVerified,
}

impl From<ApiError> for AuthError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<Error> for AuthError {
    fn from(e: Error) -> Self {
        Self::Api(e.into())
    }
}

fn unauthorized(p: Problem) -> Response {
    let mut res = p.into_response();
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::InvalidCredentials => unauthorized(
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    "Invalid credentials",
                )
                .detail("The email or password is wrong."),
            ),
            Self::InvalidRefreshToken => unauthorized(
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_refresh_token",
                    "Invalid refresh token",
                )
                .detail("The refresh token is unknown, expired or revoked; log in again.")
                .field("refreshToken"),
            ),
            Self::EmailNotVerified => Problem::new(
                StatusCode::FORBIDDEN,
                "email_not_verified",
                "Email not verified",
            )
            .detail("Verify your email address before logging in.")
            .into_response(),
        }
    }
}

/// Runs CPU-heavy work (password hashing) on the blocking pool, off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))
}
