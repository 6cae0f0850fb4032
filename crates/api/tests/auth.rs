//! Accounts over HTTP: register, login, refresh rotation and reuse detection, logout, me, the
//! original's bcrypt hashes, email verification, and the shared signing secret.

mod common;

use axum::http::header;
use clianta_api::{ApiConfig, AuthConfig, JwtSecret};
use common::{PASSWORD, TestApp};
use crm_core::entities::user::User;
use serde_json::json;

const REGISTER: &str = "/api/v1/auth/register";
const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";
const LOGOUT: &str = "/api/v1/auth/logout";
const ME: &str = "/api/v1/auth/me";

#[tokio::test]
async fn register_then_me() {
    let t = TestApp::new();
    let r = t
        .post(
            REGISTER,
            None,
            json!({"email": "  Ada@Example.INFO ", "password": PASSWORD, "name": " Ada "}),
        )
        .await;
    let body = r.ok(201).clone();
    assert_eq!(body["user"]["email"], "ada@example.info");
    assert_eq!(body["user"]["name"], "Ada");
    assert_eq!(body["user"]["isVerified"], false);
    assert!(body["user"].get("password").is_none(), "{body}");
    assert_eq!(body["tokens"]["tokenType"], "Bearer");
    assert_eq!(body["tokens"]["expiresIn"], 900);
    let access = body["tokens"]["accessToken"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 3);

    let me = t.get(ME, Some(access)).await;
    assert_eq!(me.ok(200)["_id"], body["user"]["_id"]);
    assert_eq!(me.body["email"], "ada@example.info");

    // The stored hash is argon2id.
    let stored: User = t
        .state
        .stores
        .global::<User>()
        .get(
            body["user"]["_id"]
                .as_str()
                .unwrap()
                .parse::<crm_core::ObjectId>()
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(stored.password.unwrap().starts_with("$argon2id$"));
}

#[tokio::test]
async fn duplicate_email_is_409_with_the_field() {
    let t = TestApp::new();
    t.register("bob@example.com").await;
    let r = t
        .post(
            REGISTER,
            None,
            json!({"email": "BOB@example.com ", "password": PASSWORD, "name": "Bob 2"}),
        )
        .await;
    r.problem(409, "conflict");
    assert_eq!(r.body["field"], "email");
}

#[tokio::test]
async fn weak_passwords_and_bad_emails_are_422_with_the_field() {
    let t = TestApp::new();
    for (email, password, field) in [
        ("a@example.com", "short1A", "password"),
        ("a@example.com", "nouppercase1", "password"),
        ("a@example.com", "NOLOWERCASE1", "password"),
        ("a@example.com", "NoDigitsAtAll", "password"),
        ("not-an-email", PASSWORD, "email"),
        ("a@b.c", PASSWORD, "email"),
    ] {
        let r = t
            .post(
                REGISTER,
                None,
                json!({"email": email, "password": password, "name": "A"}),
            )
            .await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{email} {password}");
    }
    let r = t
        .post(
            REGISTER,
            None,
            json!({"email": "a@example.com", "password": PASSWORD, "name": "  "}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "name");
    let r = t
        .post(
            REGISTER,
            None,
            json!({"email": "a@example.com", "password": PASSWORD}),
        )
        .await;
    r.problem(422, "invalid");
}

#[tokio::test]
async fn login_and_its_failures_look_the_same() {
    let t = TestApp::new();
    let acc = t.register("carol@example.com").await;
    let r = t
        .post(
            LOGIN,
            None,
            json!({"email": "Carol@Example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.ok(200)["user"]["_id"], acc.id.as_str());
    assert!(r.body["tokens"]["refreshToken"].is_string());

    let wrong = t
        .post(
            LOGIN,
            None,
            json!({"email": "carol@example.com", "password": "Wrong-passw0rd"}),
        )
        .await;
    wrong.problem(401, "invalid_credentials");
    assert_eq!(wrong.headers[header::WWW_AUTHENTICATE], "Bearer");
    let unknown = t
        .post(
            LOGIN,
            None,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    unknown.problem(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body, "no hint which part was wrong");
    let malformed = t
        .post(
            LOGIN,
            None,
            json!({"email": "nobody", "password": PASSWORD}),
        )
        .await;
    assert_eq!(malformed.body, unknown.body);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let t = TestApp::new();
    let acc = t.register("dan@example.com").await;

    let r1 = t
        .post(REFRESH, None, json!({"refreshToken": acc.refresh}))
        .await;
    let r1 = r1.ok(200).clone();
    let second = r1["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, acc.refresh, "rotated");
    let me = t.get(ME, Some(r1["accessToken"].as_str().unwrap())).await;
    assert_eq!(me.ok(200)["_id"], acc.id.as_str());

    // The first token again: refused, and it takes the whole login down with it.
    t.post(REFRESH, None, json!({"refreshToken": acc.refresh}))
        .await
        .problem(401, "invalid_refresh_token");
    t.post(REFRESH, None, json!({"refreshToken": second}))
        .await
        .problem(401, "invalid_refresh_token");

    // Another login is a separate family and unaffected.
    let other = t
        .post(
            LOGIN,
            None,
            json!({"email": "dan@example.com", "password": PASSWORD}),
        )
        .await;
    let tok = other.ok(200)["tokens"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    t.post(REFRESH, None, json!({"refreshToken": tok}))
        .await
        .ok(200);

    t.post(REFRESH, None, json!({"refreshToken": "made-up"}))
        .await
        .problem(401, "invalid_refresh_token");
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let t = TestApp::new();
    let acc = t.register("erin@example.com").await;
    let r = t
        .post(LOGOUT, None, json!({"refreshToken": acc.refresh}))
        .await;
    assert_eq!(r.status.as_u16(), 204);
    t.post(REFRESH, None, json!({"refreshToken": acc.refresh}))
        .await
        .problem(401, "invalid_refresh_token");
    // Idempotent, and unknown tokens are no error either.
    let r = t
        .post(LOGOUT, None, json!({"refreshToken": acc.refresh}))
        .await;
    assert_eq!(r.status.as_u16(), 204);
    let r = t
        .post(LOGOUT, None, json!({"refreshToken": "unknown"}))
        .await;
    assert_eq!(r.status.as_u16(), 204);
}

#[tokio::test]
async fn tokens_expire() {
    let t = TestApp::new();
    let acc = t.register("fay@example.com").await;
    t.get(ME, Some(&acc.access)).await.ok(200);
    t.clock.advance_secs(15 * 60);
    let r = t.get(ME, Some(&acc.access)).await;
    r.problem(401, "unauthenticated");
    // The refresh token still works for 30 days...
    let r = t
        .post(REFRESH, None, json!({"refreshToken": acc.refresh}))
        .await;
    let next = r.ok(200)["refreshToken"].as_str().unwrap().to_owned();
    // ...and not after.
    t.clock.advance_secs(30 * 24 * 3600 + 1);
    t.post(REFRESH, None, json!({"refreshToken": next}))
        .await
        .problem(401, "invalid_refresh_token");
}

#[tokio::test]
async fn me_needs_a_valid_bearer_token() {
    let t = TestApp::new();
    let acc = t.register("gus@example.com").await;
    for auth in [None, Some("garbage"), Some("a.b.c")] {
        let r = t.get(ME, auth).await;
        r.problem(401, "unauthenticated");
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    // A tampered signature.
    let mut forged = acc.access.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    t.get(ME, Some(&forged))
        .await
        .problem(401, "unauthenticated");
    // The refresh token is not an access token.
    t.get(ME, Some(&acc.refresh))
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn bcrypt_hashes_from_the_original_log_in_and_are_upgraded() {
    let t = TestApp::new();
    let mut u = User::new("legacy@example.com", "Legacy");
    // The original's rules were looser; the old password need not meet today's policy.
    u.password = Some(bcrypt::hash("old-password", 4).unwrap());
    u.is_verified = true;
    let id = u.id;
    t.state.stores.global::<User>().insert(&u).await.unwrap();

    t.post(
        LOGIN,
        None,
        json!({"email": "legacy@example.com", "password": "wrong"}),
    )
    .await
    .problem(401, "invalid_credentials");
    let stored = t.state.stores.global::<User>().get(id).await.unwrap();
    assert!(
        stored.password.unwrap().starts_with("$2b$"),
        "no rehash on failure"
    );

    let r = t
        .post(
            LOGIN,
            None,
            json!({"email": "legacy@example.com", "password": "old-password"}),
        )
        .await;
    r.ok(200);
    let stored = t.state.stores.global::<User>().get(id).await.unwrap();
    assert!(
        stored.password.unwrap().starts_with("$argon2id$"),
        "rehashed"
    );

    t.post(
        LOGIN,
        None,
        json!({"email": "legacy@example.com", "password": "old-password"}),
    )
    .await
    .ok(200);
}

#[tokio::test]
async fn verification_can_be_required() {
    let config = ApiConfig {
        auth: AuthConfig {
            require_email_verification: true,
            ..AuthConfig::default()
        },
        ..ApiConfig::default()
    };
    let t = TestApp::with(common::storage(), config);
    let r = t
        .post(
            REGISTER,
            None,
            json!({"email": "hal@example.com", "password": PASSWORD, "name": "Hal"}),
        )
        .await;
    assert!(r.ok(201)["tokens"].is_null(), "{}", r.body);
    t.post(
        LOGIN,
        None,
        json!({"email": "hal@example.com", "password": PASSWORD}),
    )
    .await
    .problem(403, "email_not_verified");
    // A wrong password still gets 401: 403 is only for the right one.
    t.post(
        LOGIN,
        None,
        json!({"email": "hal@example.com", "password": "Wrong-passw0rd"}),
    )
    .await
    .problem(401, "invalid_credentials");
}

#[tokio::test]
async fn the_generated_secret_is_shared_through_the_store() {
    let storage = common::storage();
    let a = TestApp::with(storage.clone(), ApiConfig::default());
    let b = TestApp::with(storage, ApiConfig::default());
    let acc = a.register("ivy@example.com").await;
    b.get(ME, Some(&acc.access)).await.ok(200);

    // A process with its own configured secret does not accept them.
    let config = ApiConfig {
        auth: AuthConfig {
            jwt_secret: Some(JwtSecret::new(vec![7u8; 32]).unwrap()),
            ..AuthConfig::default()
        },
        ..ApiConfig::default()
    };
    let c = TestApp::with(common::storage(), config);
    c.get(ME, Some(&acc.access))
        .await
        .problem(401, "unauthenticated");
    assert!(JwtSecret::new(b"short".to_vec()).is_err());
}

#[tokio::test]
async fn two_refreshes_with_one_token_have_one_winner_and_end_the_login() {
    let t = TestApp::new();
    let acc = t.register("jo@example.com").await;
    let body = json!({"refreshToken": acc.refresh});
    let (a, b) = tokio::join!(
        t.post(REFRESH, None, body.clone()),
        t.post(REFRESH, None, body)
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    // Reuse ends the login: at most one refresh wins, and when the loser's reuse is noticed
    // after the winner issued its successor, the winner is refused too.
    assert!(
        statuses == [200, 401] || statuses == [401, 401],
        "{statuses:?}"
    );
    for r in [&a, &b] {
        if r.status.as_u16() == 200 {
            let next = r.body["refreshToken"].as_str().unwrap();
            // The loser presented a token already revoked: that is reuse, the family is revoked.
            t.post(REFRESH, None, json!({"refreshToken": next}))
                .await
                .problem(401, "invalid_refresh_token");
        }
    }
}
