//! Analytics over HTTP: attribution models and report on fixed journeys, the forecast and its
//! risks on fixed deals, the user-action report, and the plain records (report builder, sales
//! intelligence) table-driven through create/get/list/patch/delete, the role table and
//! workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Account, TestApp, World, add_member, seed, world};
use crm_core::accounts::Role;
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::entities::opportunity::{DealTemperature, Opportunity, OpportunityStatus};
use crm_core::entities::pipeline::{PipelineId, StageId};
use crm_core::{Clock, UserId, WorkspaceId};
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

const DAY: i64 = 86_400;

async fn track(t: &TestApp, ws: &str, body: Value) {
    t.post(&format!("/api/v1/public/track/{ws}"), None, body)
        .await
        .ok(200);
}

/// Five visits a week apart (paid, email, social with identify, direct, referral); returns the
/// contact the third one created.
async fn journey(w: &World) -> String {
    let ev = |url: &str, extra: Value| {
        let mut e = json!({"eventType": "page_view", "eventName": "view", "url": url});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    track(
        &w.t,
        &w.ws,
        json!({"visitorId": "v", "sessionId": "s1", "events": [
            ev("https://shop.io/", json!({"utmSource": "google", "utmMedium": "cpc"})),
            ev("https://shop.io/a", json!({}))]}),
    )
    .await;
    w.t.clock.advance_secs(7 * DAY);
    track(
        &w.t,
        &w.ws,
        json!({"visitorId": "v", "sessionId": "s2", "events": [
            ev("https://shop.io/", json!({"utmSource": "news", "utmMedium": "email"}))]}),
    )
    .await;
    w.t.clock.advance_secs(7 * DAY);
    let r =
        w.t.post(
            &format!("/api/v1/public/track/{}", w.ws),
            None,
            json!({"visitorId": "v", "sessionId": "s3", "events": [
                ev("https://shop.io/", json!({"referrer": "https://t.co/abc"}))],
                "identify": {"email": "ada@example.com", "firstName": "Ada"}}),
        )
        .await;
    let contact = r.ok(200)["contactId"].as_str().unwrap().to_owned();
    w.t.clock.advance_secs(7 * DAY);
    track(
        &w.t,
        &w.ws,
        json!({"visitorId": "v", "sessionId": "s4", "events": [ev("https://shop.io/", json!({}))]}),
    )
    .await;
    w.t.clock.advance_secs(7 * DAY);
    track(
        &w.t,
        &w.ws,
        json!({"visitorId": "v", "sessionId": "s5", "events": [
            ev("https://shop.io/", json!({"referrer": "https://blog.other.org/post"}))]}),
    )
    .await;
    contact
}

/// A fresh access token for the owner (the journey moves the clock past the token's life).
async fn login(t: &TestApp, email: &str) -> String {
    let r = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": common::PASSWORD}),
        )
        .await;
    r.ok(200)["tokens"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn credits(body: &Value) -> Vec<(String, f64)> {
    body["touchpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["channel"].as_str().unwrap().to_owned(),
                t["credit"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn attribution_models_on_a_fixed_journey() {
    let w = world().await;
    let contact = journey(&w).await;
    let tok = login(&w.t, "owner@example.com").await;
    let tok = Some(tok.as_str());
    let channels = ["paid", "email", "social", "direct", "referral"];
    let want: [(&str, [f64; 5]); 6] = [
        ("first_touch", [100.0, 0.0, 0.0, 0.0, 0.0]),
        ("last_touch", [0.0, 0.0, 0.0, 0.0, 100.0]),
        ("linear", [20.0; 5]),
        // Half-life 7 days, anchored on the last touch: 1/16, 1/8, 1/4, 1/2, 1.
        ("time_decay", [3.23, 6.45, 12.9, 25.81, 51.61]),
        ("u_shaped", [40.0, 6.67, 6.67, 6.66, 40.0]),
        // The lead was created during the third visit.
        ("w_shaped", [30.0, 5.0, 30.0, 5.0, 30.0]),
    ];
    for (model, expected) in want {
        let r =
            w.t.get(
                &url(
                    &w.ws,
                    &format!("attribution/contacts/{contact}?model={model}"),
                ),
                tok,
            )
            .await;
        let body = r.ok(200);
        assert_eq!(body["model"], model);
        let got = credits(body);
        let want: Vec<(String, f64)> = channels
            .iter()
            .map(|c| (*c).to_owned())
            .zip(expected)
            .collect();
        assert_eq!(got, want, "{model}");
        let sum: f64 = got.iter().map(|(_, c)| c).sum();
        assert!((sum - 100.0).abs() < 1e-9, "{model}: {sum}");
    }
    // Default model is linear; channels sum the credits per channel.
    let r =
        w.t.get(&url(&w.ws, &format!("attribution/contacts/{contact}")), tok)
            .await;
    assert_eq!(r.ok(200)["model"], "linear");
    assert_eq!(r.body["channels"]["social"], 20.0);
    w.t.get(
        &url(
            &w.ws,
            &format!("attribution/contacts/{contact}?model=magic"),
        ),
        tok,
    )
    .await
    .problem(400, "invalid_query");

    // The stored journey was written when the visitor was identified (three visits then).
    let r = w.t.get(&url(&w.ws, "attributions"), tok).await;
    let rows = r.ok(200)["attributions"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["contactId"], contact.as_str());
    assert_eq!(rows[0]["firstTouchChannel"], "paid");
    assert_eq!(rows[0]["lastTouchChannel"], "social");
    assert_eq!(rows[0]["touchpointCount"], 3);
    assert_eq!(rows[0]["converted"], false);
}

fn deal(w: &World, title: &str, value: f64) -> Opportunity {
    Opportunity::new(
        w.ws.parse().unwrap(),
        w.owner.id.parse().unwrap(),
        PipelineId::new(),
        StageId::new(),
        title,
        value,
    )
}

#[tokio::test]
async fn attribution_report_credits_won_deals_to_channels() {
    let w = world().await;
    let contact = journey(&w).await;
    let now = w.t.clock.now();
    w.t.clock.advance_secs(3600);
    let tok = login(&w.t, "owner@example.com").await;
    let tok = Some(tok.as_str());
    let mut won = deal(&w, "Big", 1000.0);
    won.status = OpportunityStatus::Won;
    won.actual_close_date = Some(w.t.clock.now());
    won.contact_id = Some(contact.parse().unwrap());
    seed(&w.t, &w.ws, &won).await;
    // Won without a contact, and won before the period: not attributed / not counted.
    let mut orphan = deal(&w, "Orphan", 500.0);
    orphan.status = OpportunityStatus::Won;
    orphan.actual_close_date = Some(w.t.clock.now());
    seed(&w.t, &w.ws, &orphan).await;
    let mut old = deal(&w, "Old", 7000.0);
    old.status = OpportunityStatus::Won;
    old.actual_close_date = Some(now.plus_seconds(-400 * DAY));
    old.contact_id = won.contact_id;
    seed(&w.t, &w.ws, &old).await;
    // Open deals are not conversions.
    let mut open = deal(&w, "Open", 9000.0);
    open.contact_id = won.contact_id;
    seed(&w.t, &w.ws, &open).await;

    let from = now.plus_seconds(-60 * DAY).to_canonical();
    let to = now.plus_seconds(DAY).to_canonical();
    let report = |model: &'static str| {
        url(
            &w.ws,
            &format!("attribution/report?model={model}&from={from}&to={to}"),
        )
    };
    let r = w.t.get(&report("linear"), tok).await.ok(200).clone();
    assert_eq!(r["attributedDeals"], 1);
    assert_eq!(r["unattributedDeals"], 1);
    assert_eq!(r["totalRevenue"], 1500.0);
    let by: Vec<(String, f64, f64)> = r["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap().to_owned(),
                c["revenue"].as_f64().unwrap(),
                c["conversions"].as_f64().unwrap(),
            )
        })
        .collect();
    // Equal revenue: ordered by channel name.
    assert_eq!(
        by,
        vec![
            ("direct".to_owned(), 200.0, 0.2),
            ("email".to_owned(), 200.0, 0.2),
            ("paid".to_owned(), 200.0, 0.2),
            ("referral".to_owned(), 200.0, 0.2),
            ("social".to_owned(), 200.0, 0.2),
        ]
    );
    let r = w.t.get(&report("u_shaped"), tok).await.ok(200).clone();
    let rev: Vec<(String, f64)> = r["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap().to_owned(),
                c["revenue"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rev,
        vec![
            ("paid".to_owned(), 400.0),
            ("referral".to_owned(), 400.0),
            ("email".to_owned(), 66.7),
            ("social".to_owned(), 66.7),
            ("direct".to_owned(), 66.6),
        ]
    );
    let r = w.t.get(&report("first_touch"), tok).await.ok(200).clone();
    assert_eq!(r["channels"][0]["channel"], "paid");
    assert_eq!(r["channels"][0]["revenue"], 1000.0);
    assert_eq!(r["channels"].as_array().unwrap().len(), 5);

    // `to` must follow `from`; dates must parse.
    w.t.get(
        &url(&w.ws, &format!("attribution/report?from={to}&to={from}")),
        tok,
    )
    .await
    .problem(422, "invalid");
    w.t.get(&url(&w.ws, "attribution/report?from=yesterday"), tok)
        .await
        .problem(400, "invalid_query");
}

#[tokio::test]
async fn a_won_deal_marks_the_stored_attribution_converted() {
    let w = world().await;
    let contact = journey(&w).await;
    let tok = login(&w.t, "owner@example.com").await;
    let tok = Some(tok.as_str());
    let mut o = deal(&w, "Big", 2500.0);
    o.contact_id = Some(contact.parse().unwrap());
    let deal_id = seed(&w.t, &w.ws, &o).await;
    let ws: WorkspaceId = w.ws.parse().unwrap();
    let closed = w.t.clock.now();
    w.t.state
        .stores
        .workspace(ws)
        .repo::<Opportunity>()
        .update(
            deal_id.parse::<crm_core::ObjectId>().unwrap(),
            &crm_core::Update::new()
                .set("status", "won")
                .set("actualCloseDate", closed.to_canonical()),
        )
        .await
        .unwrap();
    w.t.state.automation.run_until_idle().await.unwrap();
    let r =
        w.t.get(&url(&w.ws, "attributions?converted=true"), tok)
            .await;
    let rows = r.ok(200)["attributions"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["contactId"], contact.as_str());
    assert_eq!(rows[0]["opportunityId"], deal_id.as_str());
    assert_eq!(rows[0]["conversionValue"], 2500.0);
    assert_eq!(rows[0]["convertedAt"], closed.to_canonical());
    // All five visits are on the record now.
    assert_eq!(rows[0]["touchpointCount"], 5);
    assert_eq!(rows[0]["lastTouchChannel"], "referral");
}

#[tokio::test]
async fn attribution_is_per_workspace() {
    let w = world().await;
    let contact = journey(&w).await;
    let tok = login(&w.t, "owner@example.com").await;
    let tok = Some(tok.as_str());
    let eve = w.t.register("eve@example.com").await;
    let ws_b = w.t.workspace(&eve, "Beta Corp").await;
    // Another workspace's contact id is unknown there, and its lists hold none of A's records.
    w.t.get(
        &url(&ws_b, &format!("attribution/contacts/{contact}")),
        Some(&eve.access),
    )
    .await
    .problem(404, "not_found");
    w.t.get(
        &url(&w.ws, &format!("attribution/contacts/{contact}")),
        Some(&eve.access),
    )
    .await
    .problem(404, "not_found");
    let r =
        w.t.get(&url(&ws_b, "attributions"), Some(&eve.access))
            .await;
    assert_eq!(r.ok(200)["attributions"], json!([]));
    let r =
        w.t.get(&url(&ws_b, "tracking-events"), Some(&eve.access))
            .await;
    assert_eq!(r.ok(200)["trackingEvents"], json!([]));
    // Naming A's contact in B's filters finds nothing; a malformed id is refused.
    for list in ["tracking-events", "visitors", "email-tracking"] {
        let r =
            w.t.get(
                &url(&ws_b, &format!("{list}?contactId={contact}")),
                Some(&eve.access),
            )
            .await;
        let body = r.ok(200);
        let items = body
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| *k != "pagination")
            .unwrap()
            .1;
        assert_eq!(items, &json!([]), "{list}");
        w.t.get(
            &url(&ws_b, &format!("{list}?contactId=zzz")),
            Some(&eve.access),
        )
        .await
        .problem(422, "invalid");
    }
    // A still sees its own.
    let r =
        w.t.get(&url(&w.ws, &format!("attribution/contacts/{contact}")), tok)
            .await;
    assert_eq!(r.ok(200)["touchpoints"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn forecast_and_risks_on_fixed_deals() {
    let w = world().await;
    let now = w.t.clock.now();
    let ago = |d: i64| Some(now.plus_seconds(-d * DAY));
    let in_days = |d: i64| Some(now.plus_seconds(d * DAY));
    let mk = |title: &str, value: f64, p: Option<f64>, idle: i64, close: i64| {
        let mut o = deal(&w, title, value);
        o.probability = p;
        o.last_activity_at = ago(idle);
        o.expected_close_date = in_days(close);
        o.next_action = Some("call".into());
        o
    };
    let mut won = mk("won", 7777.0, Some(100.0), 0, 2);
    won.status = OpportunityStatus::Won;
    let mut cold = mk("cold", 10.0, Some(20.0), 20, -1);
    cold.deal_temperature = Some(DealTemperature::Cold);
    cold.next_action = None;
    let mut deleted = mk("deleted", 5000.0, Some(90.0), 0, 4);
    deleted.deleted_at = Some(now);
    for o in [
        mk("a", 1000.0, Some(90.0), 1, 5),
        mk("b", 2000.0, None, 20, 10),
        mk("c", 500.0, Some(60.0), 40, 3),
        mk("d", 100.0, Some(80.0), 15, 1),
        mk("e", 9999.0, Some(90.0), 0, 45),
        won,
        cold,
        deleted,
    ] {
        seed(&w.t, &w.ws, &o).await;
    }

    let f = w.t.get(&url(&w.ws, "forecast"), w.tok()).await;
    let f = f.ok(200);
    assert_eq!(f["period"], "next_30_days");
    assert_eq!(f["dealCount"], 4);
    assert_eq!(f["bestCase"], 3600.0);
    // 1000 x 90 % + 2000 x 35 % + 500 x 21 % + 100 x 56 %
    assert_eq!(f["weighted"], 1761.0);
    assert_eq!(f["committed"], 1000.0);
    let titles: Vec<&str> = f["deals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["d", "c", "a", "b"]);
    assert_eq!(f["deals"][1]["adjustedProbability"], 21.0);
    assert_eq!(f["deals"][3]["probability"], 50.0);

    // A year holds the 45-day deal too (unless the year ends first), the window is echoed.
    let y = w.t.get(&url(&w.ws, "forecast?period=year"), w.tok()).await;
    let y = y.ok(200);
    assert!(
        y["periodStart"]
            .as_str()
            .unwrap()
            .ends_with("-01-01T00:00:00.000Z")
    );
    let m = w.t.get(&url(&w.ws, "forecast?period=month"), w.tok()).await;
    assert!(
        m.ok(200)["periodStart"]
            .as_str()
            .unwrap()
            .ends_with("-01T00:00:00.000Z")
    );
    w.t.get(&url(&w.ws, "forecast?period=decade"), w.tok())
        .await
        .problem(400, "invalid_query");

    let r = w.t.get(&url(&w.ws, "forecast/risks"), w.tok()).await;
    let r = r.ok(200);
    assert_eq!(r["threshold"], 30);
    let risks: Vec<(&str, u64)> = r["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["title"].as_str().unwrap(),
                d["riskScore"].as_u64().unwrap(),
            )
        })
        .collect();
    // cold: idle 25 + overdue 30 + no next action 15 + cold 20 + low probability 15;
    // c: idle 25 + ... 25 only: not at risk; b and d idle only (25).
    assert_eq!(risks, vec![("cold", 105)]);
    assert_eq!(
        r["risks"][0]["reasons"],
        json!([
            "inactive",
            "overdue_close",
            "no_next_action",
            "cold",
            "low_probability"
        ])
    );

    // Time moves: ten days on, every deal idles longer and "a" drops out of committed.
    w.t.clock.advance_secs(10 * DAY);
    let tok = login(&w.t, "owner@example.com").await;
    let tok = Some(tok.as_str());
    let f = w.t.get(&url(&w.ws, "forecast"), tok).await;
    assert_eq!(f.ok(200)["committed"], 0.0);

    // Snapshots: members store them, viewers read them.
    let viewer = w.t.register("v@example.com").await;
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    let s =
        w.t.post(
            &url(&w.ws, "forecast/snapshots?period=quarter"),
            tok,
            json!({}),
        )
        .await;
    let s = s.ok(201).clone();
    assert_eq!(s["period"], "quarter");
    assert_eq!(s["generatedBy"], w.owner.id.as_str());
    w.t.post(
        &url(&w.ws, "forecast/snapshots"),
        Some(&viewer.access),
        json!({}),
    )
    .await
    .problem(403, "forbidden");
    let l =
        w.t.get(&url(&w.ws, "forecast/snapshots"), Some(&viewer.access))
            .await;
    let l = l.ok(200);
    assert_eq!(l["forecasts"].as_array().unwrap().len(), 1);
    assert_eq!(l["forecasts"][0]["_id"], s["_id"]);
    w.t.get(&url(&w.ws, "forecast"), Some(&viewer.access))
        .await
        .ok(200);
}

#[tokio::test]
async fn forecast_sees_only_its_workspace() {
    let w = world().await;
    let eve = w.t.register("eve@example.com").await;
    let ws_b = w.t.workspace(&eve, "Beta Corp").await;
    let mut o = deal(&w, "mine", 1000.0);
    o.expected_close_date = Some(w.t.clock.now().plus_seconds(DAY));
    o.last_activity_at = Some(w.t.clock.now());
    seed(&w.t, &w.ws, &o).await;
    let f = w.t.get(&url(&ws_b, "forecast"), Some(&eve.access)).await;
    assert_eq!(f.ok(200)["dealCount"], 0);
    let r =
        w.t.get(&url(&ws_b, "forecast/risks"), Some(&eve.access))
            .await;
    assert_eq!(r.ok(200)["risks"], json!([]));
    w.t.get(&url(&w.ws, "forecast"), Some(&eve.access))
        .await
        .problem(404, "not_found");
}

fn count_of(list: &Value, key: &str) -> u64 {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .map_or(0, |c| c["count"].as_u64().unwrap())
}

#[tokio::test]
async fn user_action_report_counts_per_type_resource_and_user() {
    let w = world().await;
    let from = w.t.clock.now().to_canonical();
    w.t.clock.advance_secs(1);
    let member = w.t.register("m@example.com").await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    let mut ids = Vec::new();
    for (who, name) in [(&w.owner, "Ada"), (&w.owner, "Bob"), (&member, "Cy")] {
        let r =
            w.t.post(
                &url(&w.ws, "contacts"),
                Some(&who.access),
                json!({"firstName": name, "lastName": "X"}),
            )
            .await;
        ids.push(id(r.ok(201)));
    }
    w.t.patch(
        &url(&w.ws, &format!("contacts/{}", ids[0])),
        w.tok(),
        json!({"jobTitle": "CTO"}),
    )
    .await
    .ok(200);
    w.t.post(
        &url(&w.ws, "tasks"),
        Some(&member.access),
        json!({"title": "Call"}),
    )
    .await
    .ok(201);
    w.t.clock.advance_secs(1);
    let to = w.t.clock.now().to_canonical();

    let r =
        w.t.get(
            &url(&w.ws, &format!("reports/user-actions?from={from}&to={to}")),
            Some(&member.access),
        )
        .await;
    let r = r.ok(200);
    assert_eq!(count_of(&r["byActionType"], "contact.create"), 3);
    assert_eq!(count_of(&r["byActionType"], "contact.update"), 1);
    assert_eq!(count_of(&r["byActionType"], "task.create"), 1);
    assert_eq!(count_of(&r["byUser"], &w.owner.id), 3);
    assert_eq!(count_of(&r["byUser"], &member.id), 2);
    let contacts = count_of(&r["byResourceType"], "contact");
    assert_eq!(contacts, 4);
    let total = r["total"].as_u64().unwrap();
    let by_type: u64 = r["byActionType"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, by_type);
    // Largest group first.
    assert_eq!(r["byActionType"][0]["key"], "contact.create");

    // An empty window counts nothing; a reversed one is refused.
    let later = w.t.clock.now().plus_seconds(DAY).to_canonical();
    let r =
        w.t.get(
            &url(&w.ws, &format!("reports/user-actions?from={to}&to={later}")),
            w.tok(),
        )
        .await;
    assert_eq!(r.ok(200)["total"], 0);
    w.t.get(
        &url(&w.ws, &format!("reports/user-actions?from={to}&to={from}")),
        w.tok(),
    )
    .await
    .problem(422, "invalid");
    // Another workspace's report holds none of these.
    let eve = w.t.register("eve@example.com").await;
    let ws_b = w.t.workspace(&eve, "Beta Corp").await;
    let r =
        w.t.get(
            &url(
                &ws_b,
                &format!("reports/user-actions?from={from}&to={later}"),
            ),
            Some(&eve.access),
        )
        .await;
    assert_eq!(count_of(&r.ok(200)["byActionType"], "contact.create"), 0);
}

// ---- the plain records, table-driven ----

struct Kind {
    path: &'static str,
    plural: &'static str,
    patch: fn() -> Value,
    /// The patched field and the value it must then hold.
    patched: (&'static str, fn() -> Value),
}

const KINDS: [Kind; 11] = [
    Kind {
        path: "proposals",
        plural: "proposals",
        patch: || json!({"status": "accepted"}),
        patched: ("status", || json!("accepted")),
    },
    Kind {
        path: "call-recordings",
        plural: "callRecordings",
        patch: || json!({"summary": "Went well"}),
        patched: ("summary", || json!("Went well")),
    },
    Kind {
        path: "report-dashboards",
        plural: "reportDashboards",
        patch: || json!({"isFavorite": true}),
        patched: ("isFavorite", || json!(true)),
    },
    Kind {
        path: "report-templates",
        plural: "reportTemplates",
        patch: || json!({"description": "Monthly"}),
        patched: ("description", || json!("Monthly")),
    },
    Kind {
        path: "report-subscriptions",
        plural: "reportSubscriptions",
        patch: || json!({"isActive": false}),
        patched: ("isActive", || json!(false)),
    },
    Kind {
        path: "report-comments",
        plural: "reportComments",
        patch: || json!({"content": "Edited"}),
        patched: ("content", || json!("Edited")),
    },
    Kind {
        path: "buying-committees",
        plural: "buyingCommittees",
        patch: || json!({"dealStage": "proposal"}),
        patched: ("dealStage", || json!("proposal")),
    },
    Kind {
        path: "battlecards",
        plural: "battlecards",
        patch: || json!({"response": "We integrate"}),
        patched: ("response", || json!("We integrate")),
    },
    Kind {
        path: "competitors",
        plural: "competitors",
        patch: || json!({"threatLevel": "high"}),
        patched: ("threatLevel", || json!("high")),
    },
    Kind {
        path: "icp-definitions",
        plural: "icpDefinitions",
        patch: || json!({"description": "Mid-market SaaS"}),
        patched: ("description", || json!("Mid-market SaaS")),
    },
    Kind {
        path: "company-visitors",
        plural: "companyVisitors",
        patch: || json!({"isTargetAccount": true}),
        patched: ("isTargetAccount", || json!(true)),
    },
];

async fn company(t: &TestApp, ws: &str, owner: &Account) -> String {
    let c = Company::new(ws.parse().unwrap(), owner.id.parse().unwrap(), "Acme");
    seed(t, ws, &c).await
}

async fn contact(t: &TestApp, ws: &str, owner: &Account) -> String {
    let c = Contact::new(ws.parse().unwrap(), owner.id.parse().unwrap(), "Ada");
    seed(t, ws, &c).await
}

async fn opportunity(t: &TestApp, ws: &str, owner: &Account) -> String {
    let ws_id: WorkspaceId = ws.parse().unwrap();
    let user: UserId = owner.id.parse().unwrap();
    let o = Opportunity::new(ws_id, user, PipelineId::new(), StageId::new(), "Deal", 10.0);
    seed(t, ws, &o).await
}

async fn dashboard(t: &TestApp, ws: &str, owner: &Account, n: &str) -> String {
    let r = t
        .post(
            &url(ws, "report-dashboards"),
            Some(&owner.access),
            json!({"name": format!("Board {n}")}),
        )
        .await;
    id(r.ok(201))
}

async fn competitor(t: &TestApp, ws: &str, owner: &Account, n: &str) -> String {
    let r = t
        .post(
            &url(ws, "competitors"),
            Some(&owner.access),
            json!({"name": format!("Rival for card {n}")}),
        )
        .await;
    id(r.ok(201))
}

/// A valid create body for `path` whose references (seeded by `owner`) live in `ws`; `n` keeps
/// unique keys apart.
async fn body(t: &TestApp, ws: &str, owner: &Account, path: &str, n: &str) -> Value {
    match path {
        "proposals" => json!({"title": format!("Offer {n}"), "status": "sent",
            "opportunityId": opportunity(t, ws, owner).await,
            "pricing": [{"name": "Seat", "quantity": 10, "unitPrice": 50}]}),
        "call-recordings" => json!({"title": format!("Call {n}"), "durationSeconds": 600,
            "contactId": contact(t, ws, owner).await, "transcript": "hello"}),
        "report-dashboards" => json!({"name": format!("Board {n}"),
            "widgets": [{"id": "w1", "type": "bar", "title": "Deals"}]}),
        "report-templates" => json!({"name": format!("Template {n}"), "category": "sales"}),
        "report-subscriptions" => json!({"dashboardId": dashboard(t, ws, owner, n).await,
            "frequency": "daily", "recipients": ["a@b.io"]}),
        "report-comments" => json!({"dashboardId": dashboard(t, ws, owner, n).await,
            "widgetId": "w1", "content": "Looks good"}),
        "buying-committees" => json!({"companyId": company(t, ws, owner).await,
            "members": [{"contactId": contact(t, ws, owner).await, "role": "champion"}]}),
        "battlecards" => json!({"title": format!("Versus {n}"), "category": "competitor",
            "competitorId": competitor(t, ws, owner, n).await}),
        "competitors" => json!({"name": format!("Rival {n}"), "keywords": ["rival"]}),
        "icp-definitions" => json!({"name": format!("ICP {n}"),
            "criteria": {"industries": ["saas"]}}),
        "company-visitors" => json!({"ipAddress": format!("10.0.{}.{}", n.len(),
            n.bytes().map(usize::from).sum::<usize>() % 250), "domain": "acme.com"}),
        other => panic!("no body for {other}"),
    }
}

#[tokio::test]
async fn every_plain_record_has_create_get_list_patch_delete() {
    let w = world().await;
    for k in &KINDS {
        let b = body(&w.t, &w.ws, &w.owner, k.path, "a").await;
        let r = w.t.post(&url(&w.ws, k.path), w.tok(), b.clone()).await;
        let created = r.ok(201).clone();
        let rid = id(&created);
        assert_eq!(created["workspaceId"], w.ws.as_str(), "{}", k.path);
        for (key, v) in b.as_object().unwrap() {
            if key != "pricing" && key != "members" && key != "widgets" && key != "criteria" {
                match (created[key].as_f64(), v.as_f64()) {
                    (Some(a), Some(b)) => assert_eq!(a, b, "{} {key}", k.path),
                    _ => assert_eq!(&created[key], v, "{} {key}", k.path),
                }
            }
        }
        let got =
            w.t.get(&url(&w.ws, &format!("{}/{rid}", k.path)), w.tok())
                .await;
        assert_eq!(got.ok(200), &created, "{}", k.path);
        let l = w.t.get(&url(&w.ws, k.path), w.tok()).await;
        let items = l.ok(200)[k.plural].as_array().unwrap().clone();
        assert!(items.iter().any(|i| i["_id"] == rid.as_str()), "{}", k.path);
        let p =
            w.t.patch(
                &url(&w.ws, &format!("{}/{rid}", k.path)),
                w.tok(),
                (k.patch)(),
            )
            .await;
        assert_eq!(p.ok(200)[k.patched.0], (k.patched.1)(), "{}", k.path);
        w.t.delete(&url(&w.ws, &format!("{}/{rid}", k.path)), w.tok())
            .await
            .ok(204);
        w.t.get(&url(&w.ws, &format!("{}/{rid}", k.path)), w.tok())
            .await
            .problem(404, "not_found");
    }
}

#[tokio::test]
async fn plain_records_follow_the_role_table() {
    let w = world().await;
    let viewer = w.t.register("v@example.com").await;
    let member = w.t.register("m@example.com").await;
    let admin = w.t.register("a@example.com").await;
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    add_member(&w.t, &w.ws, &admin, Role::Admin).await;
    for k in &KINDS {
        let list = url(&w.ws, k.path);
        w.t.get(&list, Some(&viewer.access)).await.ok(200);
        let b = body(&w.t, &w.ws, &w.owner, k.path, "v").await;
        w.t.post(&list, Some(&viewer.access), b)
            .await
            .problem(403, "forbidden");
        let b = body(&w.t, &w.ws, &w.owner, k.path, "member").await;
        let r = w.t.post(&list, Some(&member.access), b).await;
        let rid = id(r.ok(201));
        let one = url(&w.ws, &format!("{}/{rid}", k.path));
        w.t.get(&one, Some(&viewer.access)).await.ok(200);
        w.t.patch(&one, Some(&viewer.access), (k.patch)())
            .await
            .problem(403, "forbidden");
        w.t.patch(&one, Some(&member.access), (k.patch)())
            .await
            .ok(200);
        w.t.delete(&one, Some(&member.access))
            .await
            .problem(403, "forbidden");
        w.t.delete(&one, Some(&viewer.access))
            .await
            .problem(403, "forbidden");
        w.t.delete(&one, Some(&admin.access)).await.ok(204);
        w.t.get(&list, None).await.problem(401, "unauthenticated");
    }
}

#[tokio::test]
async fn plain_records_are_isolated_per_workspace() {
    let w = world().await;
    let eve = w.t.register("eve@example.com").await;
    let ws_b = w.t.workspace(&eve, "Beta Corp").await;
    for k in &KINDS {
        let b = body(&w.t, &w.ws, &w.owner, k.path, "iso").await;
        let r = w.t.post(&url(&w.ws, k.path), w.tok(), b).await;
        let rid = id(r.ok(201));
        // A's id under B's path, by B's owner: unknown.
        let theirs = url(&ws_b, &format!("{}/{rid}", k.path));
        w.t.get(&theirs, Some(&eve.access))
            .await
            .problem(404, "not_found");
        w.t.patch(&theirs, Some(&eve.access), (k.patch)())
            .await
            .problem(404, "not_found");
        w.t.delete(&theirs, Some(&eve.access))
            .await
            .problem(404, "not_found");
        // A's path, by B's owner: not a member.
        w.t.get(&url(&w.ws, &format!("{}/{rid}", k.path)), Some(&eve.access))
            .await
            .problem(404, "not_found");
        let l = w.t.get(&url(&ws_b, k.path), Some(&eve.access)).await;
        assert_eq!(l.ok(200)[k.plural], json!([]), "{}", k.path);
        // Still there for A.
        w.t.get(&url(&w.ws, &format!("{}/{rid}", k.path)), w.tok())
            .await
            .ok(200);
    }
}

#[tokio::test]
async fn references_into_another_workspace_are_refused() {
    let w = world().await;
    let eve = w.t.register("eve@example.com").await;
    let ws_b = w.t.workspace(&eve, "Beta Corp").await;
    let b_company = company(&w.t, &ws_b, &eve).await;
    let b_contact = contact(&w.t, &ws_b, &eve).await;
    let b_opp = opportunity(&w.t, &ws_b, &eve).await;
    let b_dash = dashboard(&w.t, &ws_b, &eve, "b").await;
    let b_rival = competitor(&w.t, &ws_b, &eve, "b").await;
    let a_contact = contact(&w.t, &w.ws, &w.owner).await;
    let a_company = company(&w.t, &w.ws, &w.owner).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "proposals",
            json!({"title": "P", "opportunityId": b_opp}),
            "opportunityId",
        ),
        (
            "proposals",
            json!({"title": "P", "contactId": b_contact}),
            "contactId",
        ),
        (
            "proposals",
            json!({"title": "P", "companyId": b_company}),
            "companyId",
        ),
        (
            "call-recordings",
            json!({"title": "C", "contactId": b_contact}),
            "contactId",
        ),
        (
            "call-recordings",
            json!({"title": "C", "opportunityId": b_opp}),
            "opportunityId",
        ),
        (
            "report-subscriptions",
            json!({"dashboardId": b_dash}),
            "dashboardId",
        ),
        (
            "report-comments",
            json!({"dashboardId": b_dash, "content": "x"}),
            "dashboardId",
        ),
        (
            "buying-committees",
            json!({"companyId": b_company}),
            "companyId",
        ),
        (
            "buying-committees",
            json!({"companyId": a_company, "members": [{"contactId": a_contact},
                {"contactId": b_contact}]}),
            "members[1].contactId",
        ),
        (
            "battlecards",
            json!({"title": "B", "competitorId": b_rival}),
            "competitorId",
        ),
        (
            "company-visitors",
            json!({"ipAddress": "1.1.1.1", "companyId": b_company}),
            "companyId",
        ),
    ];
    for (path, b, field) in cases {
        let r = w.t.post(&url(&w.ws, path), w.tok(), b).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{path}");
    }
    // A patch may not point a record into another workspace either.
    let r =
        w.t.post(
            &url(&w.ws, "battlecards"),
            w.tok(),
            json!({"title": "Mine"}),
        )
        .await;
    let card = id(r.ok(201));
    let r =
        w.t.patch(
            &url(&w.ws, &format!("battlecards/{card}")),
            w.tok(),
            json!({"competitorId": b_rival}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "competitorId");
    // Filtering by another workspace's id finds nothing.
    let r =
        w.t.get(
            &url(&w.ws, &format!("battlecards?competitorId={b_rival}")),
            w.tok(),
        )
        .await;
    assert_eq!(r.ok(200)["battlecards"], json!([]));
}

#[tokio::test]
async fn record_rules_beyond_crud() {
    let w = world().await;
    // One default ICP per workspace: the newest default wins.
    let first =
        w.t.post(
            &url(&w.ws, "icp-definitions"),
            w.tok(),
            json!({"name": "SMB", "isDefault": true}),
        )
        .await;
    let first = id(first.ok(201));
    let second =
        w.t.post(
            &url(&w.ws, "icp-definitions"),
            w.tok(),
            json!({"name": "Enterprise", "isDefault": true}),
        )
        .await;
    let second = id(second.ok(201));
    let defaults =
        w.t.get(&url(&w.ws, "icp-definitions?isDefault=true"), w.tok())
            .await;
    let d = defaults.ok(200)["icpDefinitions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["_id"], second.as_str());
    // Patching the first back to default clears the second.
    w.t.patch(
        &url(&w.ws, &format!("icp-definitions/{first}")),
        w.tok(),
        json!({"isDefault": true}),
    )
    .await
    .ok(200);
    let got =
        w.t.get(&url(&w.ws, &format!("icp-definitions/{second}")), w.tok())
            .await;
    assert_eq!(got.ok(200)["isDefault"], false);
    // A duplicate name is a conflict and clears nothing.
    w.t.post(
        &url(&w.ws, "icp-definitions"),
        w.tok(),
        json!({"name": "SMB", "isDefault": true}),
    )
    .await
    .problem(409, "conflict");
    let got =
        w.t.get(&url(&w.ws, &format!("icp-definitions/{first}")), w.tok())
            .await;
    assert_eq!(got.ok(200)["isDefault"], true);
    // Another workspace keeps its own default.
    let eve = w.t.register("eve@example.com").await;
    let ws_b = w.t.workspace(&eve, "Beta Corp").await;
    w.t.post(
        &url(&ws_b, "icp-definitions"),
        Some(&eve.access),
        json!({"name": "Theirs", "isDefault": true}),
    )
    .await
    .ok(201);
    let got =
        w.t.get(&url(&w.ws, &format!("icp-definitions/{first}")), w.tok())
            .await;
    assert_eq!(got.ok(200)["isDefault"], true);

    // Committee coverage follows its members, on create and on patch.
    let co = company(&w.t, &w.ws, &w.owner).await;
    let c1 = contact(&w.t, &w.ws, &w.owner).await;
    let c2 = contact(&w.t, &w.ws, &w.owner).await;
    let r =
        w.t.post(
            &url(&w.ws, "buying-committees"),
            w.tok(),
            json!({"companyId": co, "members": [{"contactId": c1, "role": "champion"}]}),
        )
        .await;
    let bc = r.ok(201).clone();
    assert_eq!(bc["coverageScore"], 33.0);
    let r =
        w.t.patch(
            &url(&w.ws, &format!("buying-committees/{}", id(&bc))),
            w.tok(),
            json!({"members": [{"contactId": c1, "role": "champion"},
                {"contactId": c2, "role": "decision_maker"}]}),
        )
        .await;
    assert_eq!(r.ok(200)["coverageScore"], 67.0);
    // One committee per company.
    w.t.post(
        &url(&w.ws, "buying-committees"),
        w.tok(),
        json!({"companyId": co}),
    )
    .await
    .problem(409, "conflict");

    // Server-set fields and bad enums are refused; names are trimmed and bounded.
    for (path, b, field) in [
        (
            "battlecards",
            json!({"title": "x", "createdBy": w.owner.id}),
            "createdBy",
        ),
        (
            "buying-committees",
            json!({"companyId": co, "coverageScore": 100}),
            "coverageScore",
        ),
        (
            "report-dashboards",
            json!({"name": "x", "shareToken": "abc"}),
            "shareToken",
        ),
        (
            "proposals",
            json!({"title": "x", "status": "signed"}),
            "status",
        ),
        ("competitors", json!({"name": "   "}), "name"),
        ("competitors", json!({"name": "x".repeat(201)}), "name"),
    ] {
        let r = w.t.post(&url(&w.ws, path), w.tok(), b).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{path}");
    }
    // A missing required field is refused too.
    let dash = dashboard(&w.t, &w.ws, &w.owner, "z").await;
    w.t.post(
        &url(&w.ws, "report-comments"),
        w.tok(),
        json!({"dashboardId": dash}),
    )
    .await
    .problem(422, "invalid");
    let r =
        w.t.post(
            &url(&w.ws, "competitors"),
            w.tok(),
            json!({"name": "  Acme  "}),
        )
        .await;
    assert_eq!(r.ok(201)["name"], "Acme");
    let r =
        w.t.post(
            &url(&w.ws, "battlecards"),
            w.tok(),
            json!({"title": "Mine"}),
        )
        .await;
    assert_eq!(r.ok(201)["createdBy"], w.owner.id.as_str());
    assert_eq!(r.body["category"], "general");
    // Search covers the declared text fields.
    let r =
        w.t.get(&url(&w.ws, "competitors?search=acme"), w.tok())
            .await;
    assert_eq!(r.ok(200)["competitors"].as_array().unwrap().len(), 1);
}
