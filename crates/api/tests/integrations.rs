//! Integrations over HTTP: credentials encrypted at rest and never answered, one per type;
//! email ingestion idempotent by Message-ID; webhooks signed (checked by an independent
//! implementation here), retried with backoff to the dead letter, replayed, tested; the role
//! table (owner and admins only) and isolation of every integration record (table-driven).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clianta_api::router;
use common::{TestApp, World, add_member, world, world_with};
use crm_core::WorkspaceId;
use crm_core::accounts::Role;
use crm_core::outbound::RecordingHttp;
use hmac::{Hmac, KeyInit, Mac};
use integrations::entities::IntegrationCredential;
use serde_json::{Value, json};
use sha2::Sha256;

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

/// An app whose outgoing HTTP is recorded (and answered 200 unless told otherwise).
async fn recorded() -> (World, RecordingHttp) {
    let mut t = TestApp::new();
    let http = RecordingHttp::default();
    t.state = t.state.clone().with_http(Arc::new(http.clone()));
    t.app = router(t.state.clone());
    (world_with(t).await, http)
}

// ---- Credentials -----------------------------------------------------------------------------

#[tokio::test]
async fn credentials_are_encrypted_never_answered_and_one_per_type() {
    let w = world().await;
    let creds = url(&w.ws, "integration-credentials");
    let secret = "xoxb-very-secret-token";
    let made =
        w.t.post(
            &creds,
            w.tok(),
            json!({"type": "slack", "name": "Team Slack",
                "data": {"botToken": secret, "signingSecret": "s3cr3t-signing"},
                "scopes": ["chat:write"], "profileInfo": {"name": "Acme"}}),
        )
        .await;
    let body = made.ok(201).clone();
    assert_eq!(body["type"], "slack");
    assert_eq!(body["status"], "Connected");
    assert_eq!(body["fields"], json!(["botToken", "signingSecret"]));
    let c = id(&body);
    let one = url(&w.ws, &format!("integration-credentials/{c}"));
    // Neither the secret nor its ciphertext is in any answer.
    let answers = [
        body.to_string(),
        w.t.get(&one, w.tok()).await.ok(200).to_string(),
        w.t.get(&creds, w.tok()).await.ok(200).to_string(),
        w.t.patch(&one, w.tok(), json!({"name": "Renamed"}))
            .await
            .ok(200)
            .to_string(),
    ];
    let stored =
        w.t.state
            .stores
            .workspace(w.ws.parse().unwrap())
            .repo::<IntegrationCredential>()
            .get(c.parse::<crm_core::ObjectId>().unwrap())
            .await
            .unwrap();
    let sealed: Value = serde_json::from_str(&stored.encrypted_data).unwrap();
    for a in &answers {
        assert!(!a.contains(secret), "{a}");
        assert!(!a.contains("encryptedData"), "{a}");
        assert!(!a.contains(sealed["encrypted"].as_str().unwrap()), "{a}");
        assert!(!a.contains(sealed["authTag"].as_str().unwrap()), "{a}");
    }
    // At rest: AES-GCM parts, no plaintext; it opens under this workspace's key only.
    assert!(!stored.encrypted_data.contains(secret));
    let key = &w.t.state.config.encryption_key;
    let ws: WorkspaceId = w.ws.parse().unwrap();
    assert_eq!(
        key.open_json(ws, &stored.encrypted_data).unwrap(),
        json!({"botToken": secret, "signingSecret": "s3cr3t-signing"})
    );
    assert!(
        key.open_json(WorkspaceId::new(), &stored.encrypted_data)
            .is_err()
    );

    // Replacing the data re-seals it.
    w.t.patch(&one, w.tok(), json!({"data": {"botToken": "new-token"}}))
        .await
        .ok(200);
    let again =
        w.t.state
            .stores
            .workspace(ws)
            .repo::<IntegrationCredential>()
            .get(c.parse::<crm_core::ObjectId>().unwrap())
            .await
            .unwrap();
    assert_eq!(
        key.open_json(ws, &again.encrypted_data).unwrap(),
        json!({"botToken": "new-token"})
    );

    // One per (workspace, type).
    let r =
        w.t.post(
            &creds,
            w.tok(),
            json!({"type": "slack", "name": "Second", "data": {"t": "x"}}),
        )
        .await;
    assert_eq!(r.problem(409, "conflict").body["field"], "type");
    w.t.post(
        &creds,
        w.tok(),
        json!({"type": "notion", "name": "Notion", "data": {"t": "x"}}),
    )
    .await
    .ok(201);
    // Bad input.
    for bad in [
        json!({"type": "myspace", "name": "X", "data": {"t": "x"}}),
        json!({"type": "gmail", "name": "X", "data": {}}),
        json!({"type": "gmail", "name": "", "data": {"t": "x"}}),
        json!({"type": "gmail", "name": "X", "data": {"t": "x"}, "encryptedData": "x"}),
    ] {
        w.t.post(&creds, w.tok(), bad).await.problem(422, "invalid");
    }
    assert_eq!(w.t.delete(&one, w.tok()).await.status, 204);
    w.t.get(&one, w.tok()).await.problem(404, "not_found");
}

// ---- Email ingestion -------------------------------------------------------------------------

#[tokio::test]
async fn ingesting_one_message_id_twice_stores_one_message() {
    let w = world().await;
    let ingest = url(&w.ws, "email-messages/ingest");
    let msg = json!({"messageId": "<abc@mail.example.com>", "sentAt": "2026-01-01T10:00:00Z",
        "fromEmail": "ann@example.com", "toEmail": "bob@example.com", "subject": "Hi",
        "bodyHtml": "<p>Hello</p><script>x()</script>"});
    let first = w.t.post(&ingest, w.tok(), msg.clone()).await;
    let first = first.ok(201).clone();
    assert_eq!(first["source"], "inbox");
    assert_eq!(first["bodyHtml"], "<p>Hello</p><script>x()</script>");
    let mut changed = msg.clone();
    changed["subject"] = json!("Changed");
    let second = w.t.post(&ingest, w.tok(), changed).await;
    let second = second.ok(200);
    assert_eq!(second["_id"], first["_id"]);
    assert_eq!(second["subject"], "Hi");
    let list =
        w.t.get(
            &url(&w.ws, "email-messages?messageId=%3Cabc@mail.example.com%3E"),
            w.tok(),
        )
        .await;
    assert_eq!(list.ok(200)["pagination"]["total"], 1);
    // The generic create of the same Message-ID is a unique-key conflict.
    let r =
        w.t.post(&url(&w.ws, "email-messages"), w.tok(), msg.clone())
            .await;
    assert_eq!(r.problem(409, "conflict").body["field"], "messageId");
    // Bad input.
    w.t.post(&ingest, w.tok(), json!({"sentAt": "2026-01-01T10:00:00Z"}))
        .await
        .problem(422, "invalid");
    w.t.post(
        &ingest,
        w.tok(),
        json!({"messageId": "<x@y>", "sentAt": "2026-01-01T10:00:00Z",
        "contactId": crm_core::ObjectId::new().to_hex()}),
    )
    .await
    .problem(422, "invalid");
}

// ---- Webhooks --------------------------------------------------------------------------------

/// Standard Webhooks verification, written from the specification, independent of the server.
fn verify(secret: &str, headers: &[(String, String)], body: &[u8]) -> bool {
    let h = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let signed = format!(
        "{}.{}.{}",
        h("webhook-id"),
        h("webhook-timestamp"),
        String::from_utf8(body.to_vec()).unwrap()
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    h("webhook-signature")
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| sig == expected)
}

async fn subscribe(w: &World, events: &[&str]) -> (String, String) {
    let r =
        w.t.post(
            &url(&w.ws, "webhooks"),
            w.tok(),
            json!({"url": "https://hooks.example.com/in", "events": events,
                "headers": {"x-team": "sales"}}),
        )
        .await;
    let body = r.ok(201);
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    (id(body), secret)
}

async fn new_contact(w: &World) -> String {
    let r =
        w.t.post(
            &url(&w.ws, "contacts"),
            w.tok(),
            json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}),
        )
        .await;
    id(r.ok(201))
}

#[tokio::test]
async fn deliveries_are_signed_as_standard_webhooks_and_logged() {
    let (w, http) = recorded().await;
    let (sub, secret) = subscribe(&w, &["contact.created"]).await;
    // The secret is shown once.
    let got =
        w.t.get(&url(&w.ws, &format!("webhooks/{sub}")), w.tok())
            .await;
    assert!(got.ok(200).get("secret").is_none());
    let listed = w.t.get(&url(&w.ws, "webhooks"), w.tok()).await;
    assert!(!listed.ok(200).to_string().contains(&secret));

    let c = new_contact(&w).await;
    w.t.run_jobs().await;
    let calls = http.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.url, "https://hooks.example.com/in");
    assert_eq!(call.timeout_secs, 10);
    assert!(verify(&secret, &call.headers, &call.body));
    assert!(!verify(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &call.headers,
        &call.body
    ));
    assert!(
        call.headers
            .iter()
            .any(|(k, v)| k == "x-team" && v == "sales")
    );
    let body: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(body["event"], "contact.created");
    assert_eq!(body["workspaceId"], w.ws.as_str());
    assert_eq!(body["data"]["_id"], c.as_str());
    assert_eq!(body["data"]["firstName"], "Ada");

    // A second relay of the same event delivers nothing more; other events are not wanted.
    w.t.run_jobs().await;
    w.t.patch(
        &url(&w.ws, &format!("contacts/{c}")),
        w.tok(),
        json!({"firstName": "Ann"}),
    )
    .await
    .ok(200);
    w.t.run_jobs().await;
    assert_eq!(http.calls().len(), 1);

    let log =
        w.t.get(&url(&w.ws, &format!("webhooks/{sub}/deliveries")), w.tok())
            .await;
    let log = log.ok(200);
    assert_eq!(log["pagination"]["total"], 1);
    let d = &log["deliveries"][0];
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["responseStatus"], 200);
    assert_eq!(d["event"], "contact.created");
    assert_eq!(d["attempt"], 1);
    assert!(d["durationMs"].is_number());

    // The test delivery goes to this subscription only, signed the same way.
    let r =
        w.t.post(
            &url(&w.ws, &format!("webhooks/{sub}/test")),
            w.tok(),
            json!({}),
        )
        .await;
    assert!(r.ok(202)["jobId"].is_string());
    w.t.run_jobs().await;
    let calls = http.calls();
    assert_eq!(calls.len(), 2);
    let body: Value = serde_json::from_slice(&calls[1].body).unwrap();
    assert_eq!(body["event"], "webhook.test");
    assert!(verify(&secret, &calls[1].headers, &calls[1].body));
}

#[tokio::test]
async fn failing_deliveries_back_off_to_the_dead_letter_and_can_be_replayed() {
    let (w, http) = recorded().await;
    let (sub, secret) = subscribe(&w, &["contact.created"]).await;
    http.answer_with(500);
    new_contact(&w).await;
    w.t.run_jobs().await;
    assert_eq!(http.calls().len(), 1);
    // Not retried before its backoff is over.
    w.t.run_jobs().await;
    assert_eq!(http.calls().len(), 1);
    for attempt in 2..=6 {
        // Past any backoff of five attempts (1, 2, 4, 8 s), well within the token's life.
        w.t.clock.advance_secs(60);
        w.t.run_jobs().await;
        // Five attempts in all, then the job is dead: no sixth call.
        assert_eq!(http.calls().len(), attempt.min(5), "after round {attempt}");
    }
    let calls = http.calls();
    // Every attempt carries the same message id (receivers drop duplicates) and a valid
    // signature.
    let ids: Vec<&String> = calls
        .iter()
        .map(|c| &c.headers.iter().find(|(k, _)| k == "webhook-id").unwrap().1)
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
    assert!(calls.iter().all(|c| verify(&secret, &c.headers, &c.body)));

    let log =
        w.t.get(
            &url(
                &w.ws,
                &format!("webhooks/{sub}/deliveries?sort=deliveredAt"),
            ),
            w.tok(),
        )
        .await;
    let log = log.ok(200).clone();
    assert_eq!(log["pagination"]["total"], 5);
    let attempts: Vec<u64> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["status"], "failed");
            assert_eq!(d["responseStatus"], 500);
            d["attempt"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    let s =
        w.t.get(&url(&w.ws, &format!("webhooks/{sub}")), w.tok())
            .await;
    assert_eq!(s.ok(200)["retryCount"], 5);

    // Replay after the receiver is fixed: a new job, delivered once. Another workspace cannot
    // replay it, nor read the log.
    http.answer_with(204);
    let d = id(&log["deliveries"][4]);
    let other = w.t.register("other@example.com").await;
    let ws_b = w.t.workspace(&other, "Other").await;
    let tok_b = Some(other.access.as_str());
    w.t.post(
        &url(&ws_b, &format!("webhooks/{sub}/deliveries/{d}/replay")),
        tok_b,
        json!({}),
    )
    .await
    .problem(404, "not_found");
    w.t.get(&url(&ws_b, &format!("webhooks/{sub}/deliveries")), tok_b)
        .await
        .problem(404, "not_found");
    w.t.run_jobs().await;
    assert_eq!(http.calls().len(), 5);
    let r =
        w.t.post(
            &url(&w.ws, &format!("webhooks/{sub}/deliveries/{d}/replay")),
            w.tok(),
            json!({}),
        )
        .await;
    r.ok(202);
    w.t.run_jobs().await;
    assert_eq!(http.calls().len(), 6);
    let log =
        w.t.get(&url(&w.ws, &format!("webhooks/{sub}/deliveries")), w.tok())
            .await;
    assert_eq!(log.ok(200)["deliveries"][0]["status"], "succeeded");
    let s =
        w.t.get(&url(&w.ws, &format!("webhooks/{sub}")), w.tok())
            .await;
    assert_eq!(s.ok(200)["retryCount"], 0);
}

#[tokio::test]
async fn subscriptions_are_validated_and_paused_ones_get_nothing() {
    let (w, http) = recorded().await;
    let hooks = url(&w.ws, "webhooks");
    let events = w.t.get(&url(&w.ws, "webhooks/events"), w.tok()).await;
    let names = events.ok(200)["events"].as_array().unwrap().clone();
    assert!(names.contains(&json!("deal.stage_changed")));
    assert!(names.contains(&json!("contact.created")));
    for bad in [
        json!({"url": "ftp://x.example.com", "events": ["contact.created"]}),
        json!({"url": "https://x.example.com", "events": []}),
        json!({"url": "https://x.example.com", "events": ["contact.exploded"]}),
        json!({"url": "https://x.example.com", "events": ["contact.created"],
            "headers": {"webhook-signature": "forged"}}),
        json!({"url": "https://x.example.com", "events": ["contact.created"], "secret": "mine"}),
    ] {
        w.t.post(&hooks, w.tok(), bad).await.problem(422, "invalid");
    }
    let (sub, _) = subscribe(&w, &["contact.created"]).await;
    w.t.patch(
        &url(&w.ws, &format!("webhooks/{sub}")),
        w.tok(),
        json!({"isActive": false}),
    )
    .await
    .ok(200);
    new_contact(&w).await;
    w.t.run_jobs().await;
    assert!(http.calls().is_empty());
}

// ---- Roles and isolation ---------------------------------------------------------------------

#[tokio::test]
async fn only_owners_and_admins_reach_integrations() {
    let w = world().await;
    let viewer = w.t.register("viewer@example.com").await;
    let member = w.t.register("member@example.com").await;
    let admin = w.t.register("admin@example.com").await;
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    add_member(&w.t, &w.ws, &admin, Role::Admin).await;
    let (sub, _) = subscribe(&w, &["deal.won"]).await;
    let reads = [
        "integration-credentials",
        "webhooks",
        "webhooks/events",
        "email-accounts",
        "recordings",
    ];
    for who in [&viewer, &member] {
        let tok = Some(who.access.as_str());
        for path in reads {
            w.t.get(&url(&w.ws, path), tok)
                .await
                .problem(403, "forbidden");
        }
        w.t.post(
            &url(&w.ws, "webhooks"),
            tok,
            json!({"url": "https://x.example.com", "events": ["deal.won"]}),
        )
        .await
        .problem(403, "forbidden");
        w.t.post(
            &url(&w.ws, "integration-credentials"),
            tok,
            json!({"type": "gmail", "name": "G", "data": {"t": "x"}}),
        )
        .await
        .problem(403, "forbidden");
        w.t.delete(&url(&w.ws, &format!("webhooks/{sub}")), tok)
            .await
            .problem(403, "forbidden");
    }
    let tok = Some(admin.access.as_str());
    w.t.post(
        &url(&w.ws, "integration-credentials"),
        tok,
        json!({"type": "gmail", "name": "G", "data": {"t": "x"}}),
    )
    .await
    .ok(201);
    w.t.post(
        &url(&w.ws, "email-accounts"),
        tok,
        json!({"email": "sales@example.com"}),
    )
    .await
    .ok(201);
    assert_eq!(
        w.t.delete(&url(&w.ws, &format!("webhooks/{sub}")), tok)
            .await
            .status,
        204
    );
}

/// (path, list key, create body, patch body, field the patch sets, reference field if any).
type Row = (
    &'static str,
    &'static str,
    Value,
    Value,
    &'static str,
    Option<&'static str>,
);

fn table(contact: &str, sf: &str) -> Vec<Row> {
    vec![
        (
            "email-accounts",
            "accounts",
            json!({"email": "out@example.com"}),
            json!({"status": "paused"}),
            "status",
            None,
        ),
        (
            "email-integrations",
            "integrations",
            json!({"provider": "gmail", "email": "a@example.com"}),
            json!({"isActive": false}),
            "isActive",
            None,
        ),
        (
            "email-messages",
            "messages",
            json!({"messageId": "<m1@x>", "sentAt": "2026-01-01T00:00:00Z", "contactId": contact,
                "subject": "<script>alert(1)</script>"}),
            json!({"replied": true}),
            "replied",
            Some("contactId"),
        ),
        (
            "calendar-integrations",
            "integrations",
            json!({"provider": "google", "email": "c@example.com"}),
            json!({"twoWaySync": true}),
            "twoWaySync",
            None,
        ),
        (
            "calendar-events",
            "events",
            json!({"title": "Demo", "startTime": "2030-01-01T10:00:00Z",
                "endTime": "2030-01-01T11:00:00Z", "contactId": contact}),
            json!({"status": "cancelled"}),
            "status",
            Some("contactId"),
        ),
        (
            "apollo-usage",
            "usage",
            json!({"action": "enrich_person", "creditsUsed": 1, "timestamp": "2026-01-01T00:00:00Z"}),
            json!({"success": false}),
            "success",
            None,
        ),
        (
            "field-mappings",
            "mappings",
            json!({"integrationId": sf, "objectType": "contact"}),
            json!({"useDefaultMappings": false}),
            "useDefaultMappings",
            Some("integrationId"),
        ),
        (
            "sync-logs",
            "logs",
            json!({"integrationId": sf, "operation": "full_sync", "startedAt": "2026-01-01T00:00:00Z"}),
            json!({"status": "completed"}),
            "status",
            Some("integrationId"),
        ),
        (
            "linkedin-activities",
            "activities",
            json!({"contactId": contact, "type": "message", "content": "Hi",
                "activityDate": "2026-01-01T00:00:00Z"}),
            json!({"isRead": true}),
            "isRead",
            Some("contactId"),
        ),
        (
            "recordings",
            "recordings",
            json!({"meetingTitle": "Demo", "driveFileId": "f-1", "recordedAt": "2026-01-01T00:00:00Z"}),
            json!({"status": "ready"}),
            "status",
            None,
        ),
    ]
}

async fn salesforce(w: &World, ws: &str, tok: Option<&str>) -> String {
    let r =
        w.t.post(
            &url(ws, "salesforce-integrations"),
            tok,
            json!({"organizationId": "00D1"}),
        )
        .await;
    id(r.ok(201))
}

async fn contact_in(w: &World, ws: &str, tok: Option<&str>) -> String {
    let r =
        w.t.post(
            &url(ws, "contacts"),
            tok,
            json!({"firstName": "Ada", "lastName": "L"}),
        )
        .await;
    id(r.ok(201))
}

#[tokio::test]
async fn every_integration_record_has_crud_and_is_invisible_from_another_workspace() {
    let w = world().await;
    let other = w.t.register("other@example.com").await;
    let ws_b = w.t.workspace(&other, "Other").await;
    let tok_b = Some(other.access.as_str());
    let (ca, cb) = (
        contact_in(&w, &w.ws, w.tok()).await,
        contact_in(&w, &ws_b, tok_b).await,
    );
    let (sfa, sfb) = (
        salesforce(&w, &w.ws, w.tok()).await,
        salesforce(&w, &ws_b, tok_b).await,
    );
    // One Salesforce integration per workspace.
    w.t.post(
        &url(&w.ws, "salesforce-integrations"),
        w.tok(),
        json!({"organizationId": "00D2"}),
    )
    .await
    .problem(409, "conflict");
    // Provider tokens never go through these records.
    w.t.post(
        &url(&w.ws, "email-integrations"),
        w.tok(),
        json!({"provider": "gmail", "email": "t@example.com", "accessToken": "ya29"}),
    )
    .await
    .problem(422, "invalid");

    for (path, plural, create, patch, field, reference) in table(&ca, &sfa) {
        let made = w.t.post(&url(&w.ws, path), w.tok(), create.clone()).await;
        let made = made.ok(201).clone();
        let rid = id(&made);
        assert_eq!(made["workspaceId"], w.ws.as_str(), "{path}");
        let one = url(&w.ws, &format!("{path}/{rid}"));
        w.t.get(&one, w.tok()).await.ok(200);
        let list = w.t.get(&url(&w.ws, path), w.tok()).await;
        assert_eq!(list.ok(200)[plural][0]["_id"], rid.as_str(), "{path}");
        let p = w.t.patch(&one, w.tok(), patch.clone()).await;
        assert_eq!(p.ok(200)[field], patch[field], "{path}");

        let theirs = url(&ws_b, &format!("{path}/{rid}"));
        w.t.get(&theirs, tok_b).await.problem(404, "not_found");
        w.t.patch(&theirs, tok_b, patch.clone())
            .await
            .problem(404, "not_found");
        w.t.delete(&theirs, tok_b).await.problem(404, "not_found");
        let their_list = w.t.get(&url(&ws_b, path), tok_b).await;
        assert!(
            their_list.ok(200)[plural]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["_id"] != rid.as_str()),
            "{path}"
        );
        if let Some(f) = reference {
            let mut bad = create.clone();
            bad[f] = json!(if f == "integrationId" { &sfb } else { &cb });
            if path == "email-messages" {
                bad["messageId"] = json!("<other@x>");
            }
            let r = w.t.post(&url(&w.ws, path), w.tok(), bad).await;
            assert_eq!(r.problem(422, "invalid").body["field"], f, "{path}");
        }
        assert_eq!(w.t.delete(&one, w.tok()).await.status, 204, "{path}");
    }

    // Webhooks, their deliveries and credentials of workspace A through B: 404.
    let (sub, _) = subscribe(&w, &["deal.won"]).await;
    for (m, path) in [
        ("get", format!("webhooks/{sub}")),
        ("patch", format!("webhooks/{sub}")),
        ("delete", format!("webhooks/{sub}")),
        ("post", format!("webhooks/{sub}/test")),
        ("get", format!("webhooks/{sub}/deliveries")),
    ] {
        let u = url(&ws_b, &path);
        let r = match m {
            "get" => w.t.get(&u, tok_b).await,
            "patch" => w.t.patch(&u, tok_b, json!({"isActive": false})).await,
            "delete" => w.t.delete(&u, tok_b).await,
            _ => w.t.post(&u, tok_b, json!({})).await,
        };
        r.problem(404, "not_found");
    }
    let cred =
        w.t.post(
            &url(&w.ws, "integration-credentials"),
            w.tok(),
            json!({"type": "gmail", "name": "G", "data": {"t": "x"}}),
        )
        .await;
    let cred = id(cred.ok(201));
    let theirs = url(&ws_b, &format!("integration-credentials/{cred}"));
    w.t.get(&theirs, tok_b).await.problem(404, "not_found");
    w.t.patch(&theirs, tok_b, json!({"name": "x"}))
        .await
        .problem(404, "not_found");
    w.t.delete(&theirs, tok_b).await.problem(404, "not_found");
    let their_creds = w.t.get(&url(&ws_b, "integration-credentials"), tok_b).await;
    assert_eq!(their_creds.ok(200)["credentials"], json!([]));
    // The same type in another workspace is another credential.
    w.t.post(
        &url(&ws_b, "integration-credentials"),
        tok_b,
        json!({"type": "gmail", "name": "G", "data": {"t": "y"}}),
    )
    .await
    .ok(201);
}
