//! Lead scores, intent, lifecycle and lead recycling over HTTP, with the periodic jobs run by
//! the automation runtime on the test clock: the spec's numbers, idempotent event scoring, the
//! role table and workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use automation::handlers::EventConsumer;
use automation::scoring::consumer::LeadScoringConsumer;
use automation::scoring::recycling::LeadRecycling;
use clianta_api::{ApiConfig, AuthConfig};
use common::{Account, TestApp, World, add_member, seed, world_with};
use crm_core::accounts::Role;
use crm_core::entities::contact::Contact;
use crm_core::entities::opportunity::Opportunity;
use crm_core::entities::pipeline::{PipelineId, StageId};
use crm_core::events::DomainEvent;
use crm_core::{Filter, FindOptions, Update, WorkspaceId};
use serde_json::{Value, json};

const DAY: i64 = 24 * 3600;

/// The tests move the clock by weeks; access tokens live a year here so they outlast the jumps.
async fn world() -> World {
    let config = ApiConfig {
        auth: AuthConfig {
            access_token_ttl: std::time::Duration::from_secs(365 * DAY as u64),
            ..AuthConfig::default()
        },
        ..ApiConfig::default()
    };
    world_with(TestApp::with(common::storage(), config)).await
}

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

async fn contact(t: &TestApp, ws: &str, owner: &Account, name: &str) -> String {
    let c = Contact::new(ws.parse().unwrap(), owner.id.parse().unwrap(), name);
    seed(t, ws, &c).await
}

async fn events(t: &TestApp, ws: &str, ty: &str) -> Vec<DomainEvent> {
    let ws: WorkspaceId = ws.parse().unwrap();
    t.state
        .stores
        .workspace(ws)
        .repo::<DomainEvent>()
        .find(&Filter::eq("type", ty), &FindOptions::default())
        .await
        .unwrap()
}

/// Enqueues the periodic jobs of the clock's current periods and runs everything due.
async fn run_periodic(t: &TestApp) {
    t.state.automation.tick_periodic().await.unwrap();
    t.run_jobs().await;
}

async fn score(t: &TestApp, tok: Option<&str>, ws: &str, c: &str) -> Value {
    t.get(&url(ws, &format!("lead-scores/{c}")), tok)
        .await
        .ok(200)
        .clone()
}

#[tokio::test]
async fn points_grades_manual_set_explain_and_the_literal_paths() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let a = contact(t, ws, &w.owner, "Ada").await;
    let b = contact(t, ws, &w.owner, "Bob").await;

    let s = score(t, tok, ws, &a).await;
    assert_eq!(
        (s["currentScore"].clone(), s["grade"].clone()),
        (json!(0), json!("F"))
    );

    let post = |c: String, body: Value| {
        let u = url(ws, &format!("lead-scores/{c}"));
        async move { t.post(&u, tok, body).await }
    };
    let s = post(a.clone(), json!({"eventType": "demo_requested"})).await;
    let s = s.ok(200);
    assert_eq!(s["currentScore"], 50);
    assert_eq!(s["grade"], "C");
    assert_eq!(s["previousGrade"], "F");
    let s = post(a.clone(), json!({"eventType": "email_opened"})).await;
    assert_eq!(s.ok(200)["currentScore"], 55);
    post(a.clone(), json!({"eventType": "no_such_event"}))
        .await
        .problem(422, "invalid");
    post(a.clone(), json!({"eventType": "email_opened", "points": 3}))
        .await
        .problem(422, "invalid");
    post(a.clone(), json!({"points": -1}))
        .await
        .problem(422, "invalid");

    // Manual set: the difference is logged.
    let s = post(
        a.clone(),
        json!({"points": 80, "reason": "Met at the fair"}),
    )
    .await;
    let s = s.ok(200).clone();
    assert_eq!(s["currentScore"], 80);
    assert_eq!(s["grade"], "A");
    let last = s["scoreHistory"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["eventType"], "manual");
    assert_eq!(last["points"], 25);
    assert_eq!(last["reason"], "Met at the fair");

    // Losses stop at 0 and the explanation still adds up.
    post(b.clone(), json!({"eventType": "email_clicked"}))
        .await
        .ok(200);
    let s = post(b.clone(), json!({"eventType": "deal_lost"})).await;
    assert_eq!(s.ok(200)["currentScore"], 0);
    for c in [&a, &b] {
        let x = t
            .get(&url(ws, &format!("lead-scores/{c}/explain")), tok)
            .await;
        let x = x.ok(200);
        assert_eq!(x["total"], x["currentScore"], "{x}");
        assert_eq!(x["unexplained"], 0);
    }
    let x = t
        .get(&url(ws, &format!("lead-scores/{a}/explain")), tok)
        .await;
    let x = x.ok(200);
    assert_eq!(x["entries"].as_array().unwrap().len(), 3);
    assert_eq!(x["gained"], 80);
    assert_eq!(x["entries"][0]["points"], 50);
    assert_eq!(x["entries"][0]["eventType"], "demo_requested");

    // Crossing 50 and each grade change is an event for workflows.
    let crossed = events(t, ws, "score.threshold_crossed").await;
    assert_eq!(crossed.len(), 1, "only the first reached 50");
    assert_eq!(crossed[0].data["direction"], "up");
    assert_eq!(crossed[0].data["contactId"], a.as_str());
    assert_eq!(
        events(t, ws, "score.grade_changed").await.len(),
        2,
        "F to C, C to A"
    );

    // Literal sub-paths are not taken for contact ids (behaviour 58).
    let top = t.get(&url(ws, "lead-scores/top?limit=1"), tok).await;
    let top = top.ok(200);
    assert_eq!(top["leadScores"].as_array().unwrap().len(), 1);
    assert_eq!(top["leadScores"][0]["contactId"], a.as_str());
    assert_eq!(top["leadScores"][0]["contact"]["firstName"], "Ada");
    let d = t.get(&url(ws, "lead-scores/distribution"), tok).await;
    let d = d.ok(200);
    assert_eq!(
        d["distribution"],
        json!({"A": 1, "B": 0, "C": 0, "D": 0, "F": 1})
    );
    assert_eq!(d["total"], 2);
    let l = t.get(&url(ws, "lead-scores?grade=A"), tok).await;
    let l = l.ok(200);
    assert_eq!(l["leadScores"].as_array().unwrap().len(), 1);
    assert_eq!(l["pagination"]["total"], 1);
    let l = t
        .get(&url(ws, "lead-scores?minScore=1&limit=1&page=1"), tok)
        .await;
    assert_eq!(l.ok(200)["pagination"]["total"], 1);
    t.get(&url(ws, "lead-scores?grade=Z"), tok)
        .await
        .problem(422, "invalid");
}

#[tokio::test]
async fn decay_runs_from_the_daily_job_once_per_thirty_inactive_days() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let a = contact(t, ws, &w.owner, "Ada").await;
    let fresh = contact(t, ws, &w.owner, "Fresh").await;
    let s = t
        .post(
            &url(ws, &format!("lead-scores/{a}")),
            tok,
            json!({"points": 47}),
        )
        .await;
    assert_eq!(s.ok(200)["currentScore"], 47);

    t.clock.advance_secs(29 * DAY);
    run_periodic(t).await;
    assert_eq!(
        score(t, tok, ws, &a).await["currentScore"],
        47,
        "not yet 30 days"
    );

    t.clock.advance_secs(2 * DAY);
    t.post(
        &url(ws, &format!("lead-scores/{fresh}")),
        tok,
        json!({"points": 47}),
    )
    .await
    .ok(200);
    run_periodic(t).await;
    let s = score(t, tok, ws, &a).await;
    assert_eq!(s["currentScore"], 42);
    assert_eq!(s["grade"], "C");
    assert!(s["decayedAt"].is_string());
    let last = s["scoreHistory"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["eventType"], "decay");
    assert_eq!(last["points"], -5);
    assert_eq!(last["reason"], "30 days inactive - 10% decay");
    assert_eq!(
        score(t, tok, ws, &fresh).await["currentScore"],
        47,
        "active one kept"
    );

    // The next days' runs leave it until another 30 days have passed.
    for _ in 0..3 {
        t.clock.advance_secs(DAY);
        run_periodic(t).await;
    }
    assert_eq!(score(t, tok, ws, &a).await["currentScore"], 42);
    let x = t
        .get(&url(ws, &format!("lead-scores/{a}/explain")), tok)
        .await;
    let x = x.ok(200);
    assert_eq!(x["decay"], -5);
    assert_eq!(x["total"], 42);
    t.clock.advance_secs(27 * DAY);
    run_periodic(t).await;
    assert_eq!(
        score(t, tok, ws, &a).await["currentScore"],
        37,
        "42 - ceil(4.2)"
    );

    assert_eq!(
        score(t, tok, ws, &fresh).await["currentScore"],
        42,
        "inactive 30 days too"
    );

    // Admins can run it now; members cannot.
    let mem = t.register("mem@example.com").await;
    add_member(t, ws, &mem, Role::Member).await;
    t.post(&url(ws, "lead-scores/decay"), Some(&mem.access), json!({}))
        .await
        .problem(403, "forbidden");
    let adm = t.register("adm@example.com").await;
    add_member(t, ws, &adm, Role::Admin).await;
    let decay_now = || async {
        t.post(&url(ws, "lead-scores/decay"), Some(&adm.access), json!({}))
            .await
            .ok(200)["decayed"]
            .clone()
    };
    assert_eq!(decay_now().await, 0, "both decayed this period already");
    t.clock.advance_secs(30 * DAY);
    assert_eq!(decay_now().await, 2);
    assert_eq!(
        score(t, tok, ws, &a).await["currentScore"],
        33,
        "37 - ceil(3.7)"
    );
    assert_eq!(score(t, tok, ws, &fresh).await["currentScore"], 37);
}

#[tokio::test]
async fn deal_events_score_the_contact_once_even_when_delivered_twice() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let a = contact(t, ws, &w.owner, "Ada").await;
    let wsid: WorkspaceId = ws.parse().unwrap();
    let mut o = Opportunity::new(
        wsid,
        w.owner.id.parse().unwrap(),
        PipelineId::new(),
        StageId::new(),
        "Deal",
        10.0,
    );
    o.contact_id = Some(a.parse().unwrap());
    let o = seed(t, ws, &o).await;
    t.run_jobs().await;
    assert_eq!(
        score(t, tok, ws, &a).await["currentScore"],
        50,
        "deal.created +50"
    );

    let created = events(t, ws, "deal.created").await;
    assert_eq!(created.len(), 1);
    let consumer = LeadScoringConsumer::new(t.state.stores.clone());
    consumer.handle(&created[0]).await.unwrap();
    consumer.handle(&created[0]).await.unwrap();
    assert_eq!(
        score(t, tok, ws, &a).await["currentScore"],
        50,
        "scored once"
    );

    let deals = t.state.stores.workspace(wsid).repo::<Opportunity>();
    deals
        .update(
            o.parse::<crm_core::ObjectId>().unwrap(),
            &Update::new().set("status", "won"),
        )
        .await
        .unwrap();
    t.run_jobs().await;
    let s = score(t, tok, ws, &a).await;
    assert_eq!(s["currentScore"], 150, "deal.won +100");
    let kinds: Vec<&str> = s["scoreHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["deal_created", "deal_won"]);
    t.run_jobs().await;
    assert_eq!(score(t, tok, ws, &a).await["currentScore"], 150);
}

#[tokio::test]
async fn intent_signals_decay_patterns_and_the_daily_recompute() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let a = contact(t, ws, &w.owner, "Ada").await;
    let track = |body: Value| {
        let u = url(ws, "intent/track");
        async move { t.post(&u, tok, body).await }
    };
    let r = track(json!({"contactId": a, "url": "https://acme.io/pricing"})).await;
    let r = r.ok(200);
    assert_eq!(r["tracked"], true);
    assert_eq!(r["signal"]["signalName"], "pricing_page");
    assert_eq!(r["signal"]["signalValue"], 25.0);
    assert_eq!(r["score"]["totalScore"], 25.0);
    track(json!({"contactId": a, "signalName": "demo_video_completed",
        "signalType": "video_watch"}))
    .await
    .ok(200);
    let r = track(json!({"contactId": a, "url": "/case-studies/globex"})).await;
    let r = r.ok(200).clone();
    // demo_seeker: pricing, full demo video and a case study within 24 h, +30.
    assert_eq!(r["score"]["intentScore"], 80.0);
    assert_eq!(r["score"]["patterns"], json!(["demo_seeker"]));
    assert_eq!(r["score"]["totalScore"], 110.0);
    assert_eq!(r["score"]["hot"], true);

    let hot = t.get(&url(ws, "intent/hot-leads"), tok).await;
    let hot = hot.ok(200);
    assert_eq!(hot["contacts"][0]["_id"], a.as_str());
    assert_eq!(hot["contacts"][0]["intentScore"], 110.0);

    // Unmapped pages store nothing; unknown names are refused.
    let r = track(json!({"contactId": a, "url": "/blog/hello"})).await;
    assert_eq!(r.ok(200)["tracked"], false);
    track(json!({"contactId": a, "signalName": "nope"}))
        .await
        .problem(422, "invalid");
    track(json!({"url": "/pricing"}))
        .await
        .problem(422, "invalid");

    // Thirty days on, the daily job halves every signal and the 24 h pattern is gone.
    t.clock.advance_secs(30 * DAY);
    run_periodic(t).await;
    let c = t.get(&url(ws, &format!("contacts/{a}")), tok).await;
    assert_eq!(c.ok(200)["intentScore"], 40.0, "(25 + 40 + 15) / 2");
    let b = t
        .get(&url(ws, &format!("intent/contacts/{a}?days=60")), tok)
        .await;
    let b = b.ok(200);
    assert_eq!(b["score"]["totalScore"], 40.0);
    assert!(b["score"]["patterns"].as_array().unwrap().is_empty());
    assert_eq!(b["signalsByType"]["page_view"], 20.0);
    assert_eq!(b["signalsByType"]["video_watch"], 20.0);
    t.get(&url(ws, &format!("intent/contacts/{a}?days=0")), tok)
        .await
        .problem(422, "invalid");

    // A third pricing view within 24 h is pricing_page_repeated.
    let mut names = Vec::new();
    for _ in 0..3 {
        let r = track(json!({"contactId": a, "url": "/pricing"})).await;
        names.push(
            r.ok(200)["signal"]["signalName"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        names,
        ["pricing_page", "pricing_page", "pricing_page_repeated"]
    );
    let an = t.get(&url(ws, "intent/analytics"), tok).await;
    let an = an.ok(200);
    assert_eq!(
        an["totalSignals"], 6,
        "the last 30 days, the first three at the very edge"
    );
    assert_eq!(an["contactsWithIntent"], 1);
}

#[tokio::test]
async fn lifecycle_transitions_sla_funnel_and_automatic_mql() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let a = contact(t, ws, &w.owner, "Ada").await;
    let go = |c: &str, body: Value, tok: Option<&str>| {
        let u = url(ws, &format!("lifecycle/{c}/transition"));
        let tok = tok.map(str::to_owned);
        async move { t.post(&u, tok.as_deref(), body).await }
    };
    let own = tok;

    t.clock.advance_secs(20 * 3600);
    let r = go(
        &a,
        json!({"toStage": "mql", "reason": "Asked for pricing"}),
        own,
    )
    .await;
    let r = r.ok(200).clone();
    assert_eq!(r["changed"], true);
    assert_eq!(r["stage"], "mql");
    let h = &r["history"];
    assert_eq!(h["transitionedFrom"], "lead");
    assert_eq!(h["transitionedTo"], "mql");
    assert_eq!(h["slaTarget"], 24.0);
    assert_eq!(h["slaStatus"], "at_risk", "20 h of 24 is past 80 %");
    assert_eq!(h["transitionMethod"], "manual");
    assert_eq!(h["transitionedBy"], w.owner.id.as_str());

    let r = go(&a, json!({"toStage": "mql"}), own).await;
    assert_eq!(r.ok(200)["changed"], false, "same stage is a no-op");
    go(&a, json!({"toStage": "customer"}), own)
        .await
        .problem(422, "invalid");
    go(&a, json!({"toStage": "vip"}), own)
        .await
        .problem(422, "invalid");

    // 50 hours in MQL (target 48) is a breach.
    t.clock.advance_secs(50 * 3600);
    let b = t.get(&url(ws, "lifecycle/sla-breaches"), tok).await;
    let b = b.ok(200);
    assert_eq!(b["contacts"][0]["contactId"], a.as_str());
    assert_eq!(b["contacts"][0]["slaStatus"], "breached");
    assert_eq!(b["contacts"][0]["stage"], "mql");

    let mem = t.register("mem@example.com").await;
    add_member(t, ws, &mem, Role::Member).await;
    let mem_tok = mem.access.as_str();
    go(
        &a,
        json!({"toStage": "customer", "skipValidation": true}),
        Some(mem_tok),
    )
    .await
    .problem(403, "forbidden");
    let r = go(
        &a,
        json!({"toStage": "customer", "skipValidation": true}),
        own,
    )
    .await;
    let r = r.ok(200);
    assert_eq!(r["history"]["slaStatus"], "breached");
    assert_eq!(r["history"]["metadata"]["validationSkipped"], true);
    let r = go(&a, json!({"toStage": "evangelist"}), Some(mem_tok)).await;
    assert_eq!(r.ok(200)["stage"], "evangelist");

    let h = t
        .get(&url(ws, &format!("lifecycle/{a}/history")), tok)
        .await;
    let stages: Vec<&str> = h.ok(200)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["currentStage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["mql", "customer", "evangelist"]);
    let f = t.get(&url(ws, "lifecycle/funnel"), tok).await;
    let f = f.ok(200).clone();
    let stage = |s: &str| {
        f["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stage"] == s)
            .unwrap()
            .clone()
    };
    assert_eq!(stage("evangelist")["current"], 1);
    assert_eq!(stage("mql")["entered"], 1);

    // A lead with score >= 50 and intent >= 30 becomes an MQL on the next progression run.
    let b = contact(t, ws, &w.owner, "Bob").await;
    let low = contact(t, ws, &w.owner, "Low").await;
    for c in [&b, &low] {
        t.post(
            &url(ws, &format!("lead-scores/{c}")),
            tok,
            json!({"points": 60}),
        )
        .await
        .ok(200);
    }
    for n in ["demo_request_page", "form_viewed"] {
        t.post(
            &url(ws, "intent/track"),
            tok,
            json!({"contactId": b, "signalName": n}),
        )
        .await
        .ok(200);
    }
    t.post(
        &url(ws, "intent/track"),
        tok,
        json!({"contactId": low, "signalName": "form_viewed"}),
    )
    .await
    .ok(200);
    t.clock.advance_secs(2 * 3600);
    run_periodic(t).await;
    let stage_of = |c: String| {
        let u = url(ws, &format!("contacts/{c}"));
        async move { t.get(&u, tok).await.ok(200)["lifecycleStage"].clone() }
    };
    assert_eq!(stage_of(b.clone()).await, "mql");
    assert_eq!(stage_of(low.clone()).await, "lead", "intent 5 < 30");
    let h = t
        .get(&url(ws, &format!("lifecycle/{b}/history")), tok)
        .await;
    assert_eq!(h.ok(200)["history"][0]["transitionMethod"], "automated");
}

#[tokio::test]
async fn recycling_detects_attempts_and_exhausts_quiet_leads() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let wsid: WorkspaceId = ws.parse().unwrap();
    let mut c = Contact::new(wsid, w.owner.id.parse().unwrap(), "Quiet");
    c.last_contacted_at = Some(t.state.stores.clock().now());
    let quiet = seed(t, ws, &c).await;
    let busy = contact(t, ws, &w.owner, "Busy").await;

    t.clock.advance_secs(31 * DAY);
    t.post(
        &url(ws, &format!("lead-scores/{busy}")),
        tok,
        json!({"eventType": "email_opened"}),
    )
    .await
    .ok(200);
    run_periodic(t).await;
    let l = t.get(&url(ws, "lead-recycling"), tok).await;
    let l = l.ok(200).clone();
    let rows = l["leadRecyclings"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{l}");
    let r = &rows[0];
    assert_eq!(r["contactId"], quiet.as_str());
    assert_eq!(r["detectedReason"], "inactive");
    assert_eq!(r["status"], "detected");
    assert_eq!(r["detectionCriteria"]["daysSinceLastActivity"], 31);
    let id = r["_id"].as_str().unwrap().to_owned();

    // One attempt a run when due (1, 3, 7, 14 days apart), then exhausted after the fifth.
    let mut days = 0;
    for (gap, n) in [(1, 1), (3, 2), (7, 3), (14, 4), (30, 5)] {
        t.clock.advance_secs(gap * DAY);
        days += gap;
        run_periodic(t).await;
        let r = t.get(&url(ws, &format!("lead-recycling/{id}")), tok).await;
        let r = r.ok(200).clone();
        assert_eq!(r["currentAttempt"], n, "after {days} days: {r}");
    }
    let r = t.get(&url(ws, &format!("lead-recycling/{id}")), tok).await;
    let r = r.ok(200);
    assert_eq!(r["status"], "exhausted");
    assert!(r["exhaustedAt"].is_string());
    assert_eq!(r["attempts"].as_array().unwrap().len(), 5);
    assert_eq!(r["totalEmailsSent"], 3);
    assert_eq!(events(t, ws, "lead.recycling_attempt").await.len(), 5);

    let p = t
        .patch(
            &url(ws, &format!("lead-recycling/{id}")),
            tok,
            json!({"notes": "<script>x</script>", "tags": ["q4"]}),
        )
        .await;
    let p = p.ok(200);
    assert_eq!(p["notes"], "<script>x</script>");
    assert_eq!(p["tags"], json!(["q4"]));
    // Someone outside the workspace cannot be assigned; its owner can.
    let stranger = t.register("stranger@example.com").await;
    t.patch(
        &url(ws, &format!("lead-recycling/{id}")),
        tok,
        json!({"assignedTo": stranger.id}),
    )
    .await
    .problem(422, "invalid");
    let p = t
        .patch(
            &url(ws, &format!("lead-recycling/{id}")),
            tok,
            json!({"assignedTo": w.owner.id}),
        )
        .await;
    assert_eq!(p.ok(200)["assignedTo"], w.owner.id.as_str());
    t.patch(
        &url(ws, &format!("lead-recycling/{id}")),
        tok,
        json!({"maxAttempts": 2}),
    )
    .await
    .problem(422, "invalid");
    let l = t
        .get(&url(ws, "lead-recycling?status=exhausted"), tok)
        .await;
    assert_eq!(l.ok(200)["pagination"]["total"], 1);
    t.get(&url(ws, "lead-recycling?status=zzz"), tok)
        .await
        .problem(422, "invalid");
}

#[tokio::test]
async fn roles_and_workspace_isolation() {
    let w = world().await;
    let (t, ws, tok) = (&w.t, w.ws.as_str(), w.tok());
    let a = contact(t, ws, &w.owner, "Ada").await;
    let other = t.register("other@example.com").await;
    let ws2 = t.workspace(&other, "Other").await;
    let theirs = contact(t, &ws2, &other, "Theirs").await;
    t.post(
        &url(&ws2, &format!("lead-scores/{theirs}")),
        Some(&other.access),
        json!({"points": 90}),
    )
    .await
    .ok(200);

    // Another workspace's contact, in the path or the body: 404, never its data.
    for path in [
        format!("lead-scores/{theirs}"),
        format!("lead-scores/{theirs}/explain"),
        format!("intent/contacts/{theirs}"),
        format!("lifecycle/{theirs}/history"),
        "lead-scores/not-an-id".to_owned(),
    ] {
        t.get(&url(ws, &path), tok).await.problem(404, "not_found");
    }
    t.post(
        &url(ws, &format!("lead-scores/{theirs}")),
        tok,
        json!({"eventType": "email_opened"}),
    )
    .await
    .problem(404, "not_found");
    t.post(
        &url(ws, &format!("lifecycle/{theirs}/transition")),
        tok,
        json!({"toStage": "mql"}),
    )
    .await
    .problem(404, "not_found");
    t.post(
        &url(ws, "intent/track"),
        tok,
        json!({"contactId": theirs, "signalName": "pricing_page"}),
    )
    .await
    .problem(404, "not_found");
    let l = t.get(&url(ws, "lead-scores"), tok).await;
    assert_eq!(l.ok(200)["pagination"]["total"], 0);
    let top = t.get(&url(ws, "lead-scores/top"), tok).await;
    assert!(top.ok(200)["leadScores"].as_array().unwrap().is_empty());
    let l = t
        .get(&url(ws, &format!("lead-recycling?contactId={theirs}")), tok)
        .await;
    assert_eq!(l.ok(200)["pagination"]["total"], 0);
    let rec: LeadRecycling = serde_json::from_value(json!({
        "_id": crm_core::ObjectId::new().to_hex(), "workspaceId": ws2, "contactId": theirs,
        "detectedAt": "2026-01-01T00:00:00Z", "detectedReason": "inactive", "status": "detected",
    }))
    .unwrap();
    let rec = seed(t, &ws2, &rec).await;
    let path = url(ws, &format!("lead-recycling/{rec}"));
    t.get(&path, tok).await.problem(404, "not_found");
    t.patch(&path, tok, json!({"notes": "mine"}))
        .await
        .problem(404, "not_found");
    let r = t
        .get(
            &url(&ws2, &format!("lead-recycling/{rec}")),
            Some(&other.access),
        )
        .await;
    assert!(r.ok(200).get("notes").is_none());
    let s = score(t, Some(&other.access), &ws2, &theirs).await;
    assert_eq!(s["currentScore"], 90, "untouched");
    // A workspace the caller is not a member of.
    t.get(&url(&ws2, "lead-scores"), tok)
        .await
        .problem(404, "not_found");

    // Viewers read only; members score, track and move stages.
    let viewer = t.register("viewer@example.com").await;
    add_member(t, ws, &viewer, Role::Viewer).await;
    let v = Some(viewer.access.as_str());
    score(t, v, ws, &a).await;
    for (path, body) in [
        (
            format!("lead-scores/{a}"),
            json!({"eventType": "email_opened"}),
        ),
        (
            "intent/track".to_owned(),
            json!({"contactId": a, "signalName": "pricing_page"}),
        ),
        (
            format!("lifecycle/{a}/transition"),
            json!({"toStage": "mql"}),
        ),
        ("lead-scores/decay".to_owned(), json!({})),
    ] {
        t.post(&url(ws, &path), v, body)
            .await
            .problem(403, "forbidden");
    }
    for path in [
        "lead-scores",
        "lead-scores/distribution",
        "intent/hot-leads",
        "intent/analytics",
        "lifecycle/funnel",
        "lifecycle/sla-breaches",
        "lead-recycling",
    ] {
        t.get(&url(ws, path), v).await.ok(200);
    }
    let member = t.register("member@example.com").await;
    add_member(t, ws, &member, Role::Member).await;
    let m = Some(member.access.as_str());
    t.post(
        &url(ws, &format!("lead-scores/{a}")),
        m,
        json!({"eventType": "email_opened"}),
    )
    .await
    .ok(200);
    t.post(
        &url(ws, "intent/track"),
        m,
        json!({"contactId": a, "signalName": "pricing_page"}),
    )
    .await
    .ok(200);
    t.post(
        &url(ws, &format!("lifecycle/{a}/transition")),
        m,
        json!({"toStage": "mql"}),
    )
    .await
    .ok(200);
    t.post(&url(ws, "lead-scores/decay"), m, json!({}))
        .await
        .problem(403, "forbidden");
}
