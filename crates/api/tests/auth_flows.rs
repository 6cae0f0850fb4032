//! Email verification, password reset and change, and one-time codes over HTTP, with a mailer
//! that keeps what it would send and a clock the tests move.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use clianta_api::{ApiConfig, router};
use common::{PASSWORD, TestApp};
use crm_core::accounts::{Mail, MailKind, Mailer};
use serde_json::json;

#[derive(Default)]
struct Outbox(Mutex<Vec<Mail>>);

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: Mail) -> crm_core::Result<()> {
        self.0.lock().unwrap().push(mail);
        Ok(())
    }
}

impl Outbox {
    fn count(&self, to: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|m| m.to == to).count()
    }
    fn last(&self, to: &str) -> MailKind {
        let mails = self.0.lock().unwrap();
        mails
            .iter()
            .rev()
            .find(|m| m.to == to)
            .unwrap()
            .kind
            .clone()
    }
    fn verify_token(&self, to: &str) -> String {
        match self.last(to) {
            MailKind::VerifyEmail { token } => token,
            k => panic!("not a verification mail: {k:?}"),
        }
    }
    fn reset_token(&self, to: &str) -> String {
        match self.last(to) {
            MailKind::ResetPassword { token } => token,
            k => panic!("not a reset mail: {k:?}"),
        }
    }
    fn otp(&self, to: &str) -> String {
        match self.last(to) {
            MailKind::Otp { code, .. } => code,
            k => panic!("not an OTP mail: {k:?}"),
        }
    }
}

fn app_with(config: ApiConfig) -> (TestApp, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::default());
    let mut t = TestApp::with(common::storage(), config);
    t.state = t.state.clone().with_mailer(outbox.clone());
    t.app = router(t.state.clone());
    (t, outbox)
}

fn app() -> (TestApp, Arc<Outbox>) {
    app_with(ApiConfig::default())
}

const NEW_PASSWORD: &str = "Another-g00d-one";

async fn login(t: &TestApp, email: &str, password: &str) -> u16 {
    t.post(
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
    .status
    .as_u16()
}

#[tokio::test]
async fn verification_token_works_once() {
    let (t, mail) = app();
    t.register("ann@example.com").await;
    let token = mail.verify_token("ann@example.com");
    assert_eq!(token.len(), 64);
    let r = t
        .post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await;
    assert_eq!(r.ok(200)["isVerified"], true);
    t.post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await
        .problem(422, "invalid");
    t.post("/api/v1/auth/verify-email", None, json!({"token": "nope"}))
        .await
        .problem(422, "invalid");
}

#[tokio::test]
async fn verification_token_expires_after_a_day() {
    let (t, mail) = app();
    t.register("ann@example.com").await;
    let token = mail.verify_token("ann@example.com");
    t.clock.advance_secs(24 * 3600 + 1);
    t.post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await
        .problem(422, "invalid");
    // A resent one works, and only the newest does.
    t.post(
        "/api/v1/auth/resend-verification",
        None,
        json!({"email": "ann@example.com"}),
    )
    .await
    .ok(202);
    let fresh = mail.verify_token("ann@example.com");
    assert_ne!(fresh, token);
    t.post("/api/v1/auth/verify-email", None, json!({"token": fresh}))
        .await
        .ok(200);
}

#[tokio::test]
async fn resend_and_forgot_do_not_reveal_accounts() {
    let (t, mail) = app();
    t.register("ann@example.com").await;
    for path in ["resend-verification", "forgot-password"] {
        let uri = format!("/api/v1/auth/{path}");
        let known = t
            .post(&uri, None, json!({"email": "ann@example.com"}))
            .await;
        let unknown = t
            .post(&uri, None, json!({"email": "ghost@example.com"}))
            .await;
        assert_eq!(known.status, unknown.status);
        assert_eq!(known.body, unknown.body);
        assert_eq!(known.status.as_u16(), 202);
    }
    assert_eq!(mail.count("ghost@example.com"), 0);
    // Registration, resend, forgot.
    assert_eq!(mail.count("ann@example.com"), 3);
    // A verified account gets no more verification mails.
    let token = {
        t.post(
            "/api/v1/auth/resend-verification",
            None,
            json!({"email": "ann@example.com"}),
        )
        .await;
        mail.verify_token("ann@example.com")
    };
    t.post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await
        .ok(200);
    let before = mail.count("ann@example.com");
    t.post(
        "/api/v1/auth/resend-verification",
        None,
        json!({"email": "ann@example.com"}),
    )
    .await
    .ok(202);
    assert_eq!(mail.count("ann@example.com"), before);
}

#[tokio::test]
async fn reset_password_once_and_revokes_sessions() {
    let (t, mail) = app();
    let ann = t.register("ann@example.com").await;
    t.post(
        "/api/v1/auth/forgot-password",
        None,
        json!({"email": "ANN@example.com"}),
    )
    .await
    .ok(202);
    let token = mail.reset_token("ann@example.com");
    // A weak password is refused without using up the token.
    t.post(
        "/api/v1/auth/reset-password",
        None,
        json!({"token": token, "password": "weak"}),
    )
    .await
    .problem(422, "invalid");
    t.post(
        "/api/v1/auth/reset-password",
        None,
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await
    .ok(204);
    t.post(
        "/api/v1/auth/reset-password",
        None,
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await
    .problem(422, "invalid");
    t.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refreshToken": ann.refresh}),
    )
    .await
    .problem(401, "invalid_refresh_token");
    assert_eq!(login(&t, "ann@example.com", PASSWORD).await, 401);
    assert_eq!(login(&t, "ann@example.com", NEW_PASSWORD).await, 200);
    let me = t.get("/api/v1/auth/me", Some(&ann.access)).await;
    assert_eq!(me.ok(200)["isVerified"], true);
}

#[tokio::test]
async fn reset_token_expires_after_an_hour() {
    let (t, mail) = app();
    t.register("ann@example.com").await;
    t.post(
        "/api/v1/auth/forgot-password",
        None,
        json!({"email": "ann@example.com"}),
    )
    .await;
    let token = mail.reset_token("ann@example.com");
    t.clock.advance_secs(3600 + 1);
    t.post(
        "/api/v1/auth/reset-password",
        None,
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await
    .problem(422, "invalid");
    assert_eq!(login(&t, "ann@example.com", PASSWORD).await, 200);
}

#[tokio::test]
async fn change_password_needs_the_current_one() {
    let (t, _) = app();
    let ann = t.register("ann@example.com").await;
    let uri = "/api/v1/auth/change-password";
    t.post(
        uri,
        None,
        json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
    )
    .await
    .problem(401, "unauthenticated");
    let r = t
        .post(
            uri,
            Some(&ann.access),
            json!({"currentPassword": "Wrong-pa55", "newPassword": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "currentPassword");
    let r = t
        .post(
            uri,
            Some(&ann.access),
            json!({"currentPassword": PASSWORD, "newPassword": "short"}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "newPassword");
    let r = t
        .post(
            uri,
            Some(&ann.access),
            json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
        )
        .await;
    let fresh = r.ok(200)["refreshToken"].as_str().unwrap().to_owned();
    t.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refreshToken": ann.refresh}),
    )
    .await
    .problem(401, "invalid_refresh_token");
    t.post("/api/v1/auth/refresh", None, json!({"refreshToken": fresh}))
        .await
        .ok(200);
    assert_eq!(login(&t, "ann@example.com", PASSWORD).await, 401);
    assert_eq!(login(&t, "ann@example.com", NEW_PASSWORD).await, 200);
}

async fn send_otp(t: &TestApp, email: &str, purpose: &str) -> common::Resp {
    t.post(
        "/api/v1/auth/send-otp",
        None,
        json!({"email": email, "purpose": purpose}),
    )
    .await
}

async fn verify_otp(t: &TestApp, email: &str, purpose: &str, code: &str) -> common::Resp {
    t.post(
        "/api/v1/auth/verify-otp",
        None,
        json!({"email": email, "purpose": purpose, "code": code}),
    )
    .await
}

fn other_code(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[tokio::test]
async fn otp_works_once_and_marks_verified() {
    let (t, mail) = app();
    let ann = t.register("ann@example.com").await;
    send_otp(&t, "ann@example.com", "registration")
        .await
        .ok(202);
    let code = mail.otp("ann@example.com");
    assert_eq!(code.len(), 6);
    verify_otp(&t, "ann@example.com", "login", &code)
        .await
        .problem(422, "invalid");
    let r = verify_otp(&t, "ann@example.com", "registration", &code).await;
    assert_eq!(r.ok(200)["verified"], true);
    verify_otp(&t, "ann@example.com", "registration", &code)
        .await
        .problem(422, "invalid");
    let me = t.get("/api/v1/auth/me", Some(&ann.access)).await;
    assert_eq!(me.ok(200)["isVerified"], true);
}

#[tokio::test]
async fn otp_login_and_password_reset() {
    let (t, mail) = app();
    t.register("ann@example.com").await;
    send_otp(&t, "ann@example.com", "login").await.ok(202);
    let r = verify_otp(&t, "ann@example.com", "login", &mail.otp("ann@example.com")).await;
    let access = r.ok(200)["tokens"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    t.get("/api/v1/auth/me", Some(&access)).await.ok(200);

    send_otp(&t, "ann@example.com", "password-reset")
        .await
        .ok(202);
    let code = mail.otp("ann@example.com");
    let r = verify_otp(&t, "ann@example.com", "password-reset", &code).await;
    let reset = r.ok(200)["resetToken"].as_str().unwrap().to_owned();
    t.post(
        "/api/v1/auth/reset-password",
        None,
        json!({"token": reset, "password": NEW_PASSWORD}),
    )
    .await
    .ok(204);
    assert_eq!(login(&t, "ann@example.com", NEW_PASSWORD).await, 200);
}

#[tokio::test]
async fn otp_dies_after_five_wrong_guesses() {
    let (t, mail) = app();
    t.register("ann@example.com").await;
    send_otp(&t, "ann@example.com", "login").await.ok(202);
    let code = mail.otp("ann@example.com");
    for _ in 0..5 {
        verify_otp(&t, "ann@example.com", "login", &other_code(&code))
            .await
            .problem(422, "invalid");
    }
    verify_otp(&t, "ann@example.com", "login", &code)
        .await
        .problem(422, "invalid");
    // Four wrong guesses leave a new code usable.
    send_otp(&t, "ann@example.com", "login").await.ok(202);
    let code = mail.otp("ann@example.com");
    for _ in 0..4 {
        verify_otp(&t, "ann@example.com", "login", &other_code(&code))
            .await
            .problem(422, "invalid");
    }
    verify_otp(&t, "ann@example.com", "login", &code)
        .await
        .ok(200);
}

#[tokio::test]
async fn otp_expires_after_ten_minutes() {
    let (t, mail) = app();
    t.register("ann@example.com").await;
    send_otp(&t, "ann@example.com", "login").await.ok(202);
    let code = mail.otp("ann@example.com");
    t.clock.advance_secs(600 + 1);
    verify_otp(&t, "ann@example.com", "login", &code)
        .await
        .problem(422, "invalid");
}

#[tokio::test]
async fn otp_sends_are_limited_per_email_and_purpose() {
    let (t, mail) = app();
    t.register("ann@example.com").await;
    for _ in 0..3 {
        send_otp(&t, "ann@example.com", "login").await.ok(202);
    }
    // Older codes stay valid: a new one does not delete them.
    let third = mail.otp("ann@example.com");
    let r = send_otp(&t, "ann@example.com", "login").await;
    r.problem(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(mail.count("ann@example.com"), 4); // registration + 3 codes
    // Another purpose has its own budget; an unknown email is limited the same way.
    send_otp(&t, "ann@example.com", "password-reset")
        .await
        .ok(202);
    for _ in 0..3 {
        send_otp(&t, "ghost@example.com", "login").await.ok(202);
    }
    send_otp(&t, "ghost@example.com", "login")
        .await
        .problem(429, "rate_limited");
    assert_eq!(mail.count("ghost@example.com"), 0);
    // Refused sends do not extend the window.
    t.clock.advance_secs(3600 + 1);
    send_otp(&t, "ann@example.com", "login").await.ok(202);
    verify_otp(&t, "ann@example.com", "login", &third)
        .await
        .problem(422, "invalid");
    verify_otp(&t, "ann@example.com", "login", &mail.otp("ann@example.com"))
        .await
        .ok(200);
}

#[tokio::test]
async fn required_verification_blocks_login_until_verified() {
    let mut config = ApiConfig::default();
    config.auth.require_email_verification = true;
    let (t, mail) = app_with(config);
    let r = t
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    assert!(r.ok(201)["tokens"].is_null());
    assert_eq!(login(&t, "ann@example.com", PASSWORD).await, 403);
    let token = mail.verify_token("ann@example.com");
    t.post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await
        .ok(200);
    assert_eq!(login(&t, "ann@example.com", PASSWORD).await, 200);
}
