//! Referrals over HTTP: create with a given or generated code unique in the workspace, status
//! stamps, filters, the role table and workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{TestApp, add_member, world};
use crm_core::accounts::Role;
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

async fn contact(t: &TestApp, ws: &str, tok: Option<&str>, body: Value) -> String {
    let r = t.post(&url(ws, "contacts"), tok, body).await;
    id(r.ok(201))
}

#[tokio::test]
async fn create_with_codes_stamp_statuses_and_filter() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let ada = contact(
        t,
        ws,
        tok,
        json!({"firstName": "Ada", "email": "ada@acme.com"}),
    )
    .await;
    let bob = contact(t, ws, tok, json!({"firstName": "Bob"})).await;

    let r = t
        .post(
            &url(ws, "referrals"),
            tok,
            json!({"referrerId": ada, "referredEmail": " Cyd@Example.com ", "referralCode": "ADA-24",
                "referredName": "Cyd", "utmParams": {"source": "mail"}}),
        )
        .await;
    let a = r.ok(201).clone();
    assert_eq!(a["referralCode"], "ADA-24");
    assert_eq!(a["referralLink"], "/r/ADA-24");
    assert_eq!(a["referrerEmail"], "ada@acme.com");
    assert_eq!(a["referredEmail"], "cyd@example.com");
    assert_eq!(a["status"], "pending");
    assert_eq!(a["utmParams"], json!({"source": "mail"}));

    // A generated code; a taken one is a conflict on the code.
    let r = t
        .post(
            &url(ws, "referrals"),
            tok,
            json!({"referrerId": ada, "referredEmail": "dee@example.com"}),
        )
        .await;
    let b = r.ok(201).clone();
    assert_eq!(b["referralCode"].as_str().unwrap().len(), 8);
    let r = t
        .post(
            &url(ws, "referrals"),
            tok,
            json!({"referrerId": ada, "referredEmail": "eve@example.com", "referralCode": "ADA-24"}),
        )
        .await;
    assert_eq!(r.problem(409, "conflict").body["field"], "referralCode");
    for (body, field) in [
        (
            json!({"referrerId": bob, "referredEmail": "x@example.com"}),
            "referrerId",
        ),
        (
            json!({"referrerId": ada, "referredEmail": "nope"}),
            "referredEmail",
        ),
        (
            json!({"referrerId": ada, "referredEmail": "x@example.com", "referralCode": "a b"}),
            "referralCode",
        ),
    ] {
        let r = t.post(&url(ws, "referrals"), tok, body.clone()).await;
        assert_eq!(r.problem(422, "invalid").body["field"], field, "{body}");
    }

    t.post(
        &url(ws, "referrals"),
        tok,
        json!({"referredEmail": "x@example.com"}),
    )
    .await
    .problem(422, "invalid");

    // Status changes stamp the first time each stage is reached.
    let one = url(ws, &format!("referrals/{}", id(&a)));
    let r = t.patch(&one, tok, json!({"status": "signed_up"})).await;
    let signed = r.ok(200)["signedUpAt"].clone();
    assert!(signed.is_string());
    t.clock.advance_secs(60);
    let r = t
        .patch(
            &one,
            tok,
            json!({"status": "converted", "conversionValue": 120.5, "referredContactId": bob}),
        )
        .await;
    let r = r.ok(200).clone();
    assert!(r["convertedAt"].is_string());
    assert_eq!(r["conversionValue"], 120.5);
    assert_eq!(r["referredContactId"], bob.as_str());
    let r = t.patch(&one, tok, json!({"status": "signed_up"})).await;
    assert_eq!(r.ok(200)["signedUpAt"], signed);
    t.patch(&one, tok, json!({"conversionValue": -1}))
        .await
        .problem(422, "invalid");
    t.patch(&one, tok, json!({"status": "won"}))
        .await
        .problem(422, "invalid");

    for (q, n) in [
        ("", 2),
        ("?status=signed_up", 1),
        ("?status=pending", 1),
        ("?referralCode=ADA-24", 1),
        (&format!("?referrerId={ada}") as &str, 2),
        (&format!("?referrerId={bob}") as &str, 0),
        ("?search=dee", 1),
    ] {
        let r = t.get(&url(ws, &format!("referrals{q}")), tok).await;
        assert_eq!(r.ok(200)["referrals"].as_array().unwrap().len(), n, "{q}");
    }
    t.get(&url(ws, "referrals?status=won"), tok)
        .await
        .problem(422, "invalid");
    let r = t.delete(&one, tok).await;
    assert_eq!(r.status, 204);
    t.get(&one, tok).await.problem(404, "not_found");
}

#[tokio::test]
async fn codes_and_records_stay_in_their_workspace() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let other = t.workspace(&w.owner, "Other").await;
    let ada = contact(
        t,
        ws,
        tok,
        json!({"firstName": "Ada", "email": "ada@acme.com"}),
    )
    .await;
    let zed = contact(
        t,
        &other,
        tok,
        json!({"firstName": "Zed", "email": "zed@acme.com"}),
    )
    .await;
    let theirs = t
        .post(
            &url(&other, "referrals"),
            tok,
            json!({"referrerId": zed, "referredEmail": "x@example.com", "referralCode": "SAME"}),
        )
        .await;
    let theirs = id(theirs.ok(201));
    // The same code is free in another workspace.
    let mine = t
        .post(
            &url(ws, "referrals"),
            tok,
            json!({"referrerId": ada, "referredEmail": "x@example.com", "referralCode": "SAME"}),
        )
        .await;
    let mine = id(mine.ok(201));
    // Another workspace's contact in a body.
    let r = t
        .post(
            &url(ws, "referrals"),
            tok,
            json!({"referrerId": zed, "referredEmail": "y@example.com"}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "referrerId");
    let r = t
        .patch(
            &url(ws, &format!("referrals/{mine}")),
            tok,
            json!({"referredContactId": zed}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "referredContactId");
    // Another workspace's referral in the path.
    let path = url(ws, &format!("referrals/{theirs}"));
    t.get(&path, tok).await.problem(404, "not_found");
    t.patch(&path, tok, json!({"status": "invalid"}))
        .await
        .problem(404, "not_found");
    t.delete(&path, tok).await.problem(404, "not_found");
    // A filter naming another workspace's contact finds nothing.
    let r = t
        .get(&url(ws, &format!("referrals?referrerId={zed}")), tok)
        .await;
    assert_eq!(r.ok(200)["pagination"]["total"], 0);
    let r = t
        .get(&url(&other, &format!("referrals/{theirs}")), tok)
        .await;
    assert_eq!(r.ok(200)["status"], "pending");
}

#[tokio::test]
async fn role_table() {
    let w = world().await;
    let (t, ws) = (&w.t, w.ws.as_str());
    let ada = contact(
        t,
        ws,
        w.tok(),
        json!({"firstName": "Ada", "email": "ada@acme.com"}),
    )
    .await;
    let body = |code: &str| json!({"referrerId": ada, "referredEmail": "x@example.com", "referralCode": code});
    let r = t.post(&url(ws, "referrals"), w.tok(), body("OWNER")).await;
    let one = url(ws, &format!("referrals/{}", id(r.ok(201))));
    let mut tokens = Vec::new();
    for (email, role) in [
        ("vic@example.com", Role::Viewer),
        ("mel@example.com", Role::Member),
        ("adm@example.com", Role::Admin),
    ] {
        let a = t.register(email).await;
        add_member(t, ws, &a, role).await;
        tokens.push(a.access);
    }
    let [vic, mel, adm] = [0, 1, 2].map(|i| Some(tokens[i].as_str()));

    t.get(&url(ws, "referrals"), vic).await.ok(200);
    t.get(&one, vic).await.ok(200);
    t.post(&url(ws, "referrals"), vic, body("VIC"))
        .await
        .problem(403, "forbidden");
    t.patch(&one, vic, json!({"notes": "x"}))
        .await
        .problem(403, "forbidden");
    t.delete(&one, vic).await.problem(403, "forbidden");

    t.post(&url(ws, "referrals"), mel, body("MEL"))
        .await
        .ok(201);
    t.patch(&one, mel, json!({"notes": "x"})).await.ok(200);
    t.delete(&one, mel).await.problem(403, "forbidden");

    t.post(&url(ws, "referrals"), adm, body("ADM"))
        .await
        .ok(201);
    let r = t.delete(&one, adm).await;
    assert_eq!(r.status, 204);
}
