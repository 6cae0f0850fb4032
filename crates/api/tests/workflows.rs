//! Workflows over HTTP: CRUD with static validation, activation, pause, clone, enrollment by
//! events and by hand, the step log, retry, a record's workflows, analytics, the dry run, the
//! role table and workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use axum::http::Method;
use common::{Account, TestApp, World, add_member, world};
use crm_core::accounts::Role;
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

fn trigger(kind: &str, next: &str) -> Value {
    json!({"id": "t", "type": "trigger", "name": "When", "position": {"x": 0, "y": 0},
           "nextStepIds": [next], "config": {"triggerType": kind}})
}

fn tag(id: &str, tag: &str, next: &[&str]) -> Value {
    json!({"id": id, "type": "action", "name": id, "position": {"x": 0, "y": 100},
           "nextStepIds": next, "config": {"actionType": "add_tag", "tagName": tag}})
}

/// A workflow tagging new contacts `welcomed`, created and activated.
async fn active_workflow(t: &TestApp, ws: &str, tok: Option<&str>, steps: Value) -> Value {
    let w = t
        .post(
            &url(ws, "workflows"),
            tok,
            json!({"name": "Welcome", "triggerEntityType": "contact", "steps": steps}),
        )
        .await;
    let w = w.ok(201).clone();
    t.post(
        &url(ws, &format!("workflows/{}/activate", id(&w))),
        tok,
        json!({}),
    )
    .await
    .ok(200)
    .clone()
}

async fn contact(
    t: &TestApp,
    ws: &str,
    tok: Option<&str>,
    name: &str,
    email: Option<&str>,
) -> String {
    let mut body = json!({"firstName": name, "lastName": "L"});
    if let Some(e) = email {
        body["email"] = json!(e);
    }
    id(t.post(&url(ws, "contacts"), tok, body).await.ok(201))
}

async fn get_contact(t: &TestApp, ws: &str, tok: Option<&str>, c: &str) -> Value {
    t.get(&url(ws, &format!("contacts/{c}")), tok)
        .await
        .ok(200)
        .clone()
}

#[tokio::test]
async fn crud_activation_pause_clone_and_delete() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let w = t
        .post(
            &url(&ws, "workflows"),
            tok,
            json!({"name": " Nurture ", "description": "d", "steps": [trigger("contact_created", "a"),
                {"id": "a", "type": "delay", "name": "wait", "nextStepIds": [],
                 "config": {"delayValue": 2, "delayUnit": "days", "unknownKey": 1}}]}),
        )
        .await;
    let w = w.ok(201).clone();
    assert_eq!(w["name"], "Nurture");
    assert_eq!(w["status"], "draft", "new workflows are drafts (43)");
    assert_eq!(w["triggerEntityType"], "contact");
    assert_eq!(w["userId"], owner.id.as_str());
    assert_eq!(w["stats"]["totalEnrolled"], 0);
    assert!(
        w["steps"][1]["config"].get("unknownKey").is_none(),
        "unknown config keys dropped"
    );
    let wid = id(&w);

    // Activation needs an action step.
    t.post(
        &url(&ws, &format!("workflows/{wid}/activate")),
        tok,
        json!({}),
    )
    .await
    .problem(422, "invalid");
    let put = t
        .call(
            Method::PUT,
            &url(&ws, &format!("workflows/{wid}")),
            tok,
            Some(json!({"steps": [trigger("contact_created", "a"),
                {"id": "a", "type": "delay", "name": "wait", "nextStepIds": ["b"],
                 "config": {"delayValue": 2, "delayUnit": "days"}},
                tag("b", "nurtured", &[])]})),
        )
        .await;
    assert_eq!(put.ok(200)["steps"].as_array().unwrap().len(), 3);
    let on = t
        .post(
            &url(&ws, &format!("workflows/{wid}/activate")),
            tok,
            json!({}),
        )
        .await;
    assert_eq!(on.ok(200)["status"], "active");
    assert!(on.body["lastActivatedAt"].is_string());

    let list = t.get(&url(&ws, "workflows?status=active"), tok).await;
    assert_eq!(list.ok(200)["workflows"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["pagination"]["total"], 1);
    let none = t.get(&url(&ws, "workflows?status=draft"), tok).await;
    assert_eq!(none.ok(200)["workflows"], json!([]));
    t.get(&url(&ws, "workflows?status=sleeping"), tok)
        .await
        .problem(422, "invalid");

    // Clone: a draft copy whose nextStepIds point at its own new step ids.
    let copy = t
        .post(&url(&ws, &format!("workflows/{wid}/clone")), tok, json!({}))
        .await;
    let copy = copy.ok(201).clone();
    assert_eq!(copy["name"], "Nurture (Copy)");
    assert_eq!(copy["status"], "draft");
    let steps = copy["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&"a") && !ids.contains(&"b"));
    assert_eq!(steps[0]["nextStepIds"], json!([ids[1]]));
    assert_eq!(steps[1]["nextStepIds"], json!([ids[2]]));

    let off = t
        .post(&url(&ws, &format!("workflows/{wid}/pause")), tok, json!({}))
        .await;
    assert_eq!(off.ok(200)["status"], "paused");

    t.delete(&url(&ws, &format!("workflows/{wid}")), tok)
        .await
        .ok(204);
    t.get(&url(&ws, &format!("workflows/{wid}")), tok)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn static_validation_names_the_wrong_path() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let post = |steps: Value| {
        let t = &t;
        let ws = ws.clone();
        async move {
            t.post(
                &url(&ws, "workflows"),
                tok,
                json!({"name": "W", "steps": steps}),
            )
            .await
        }
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([
                trigger("contact_created", "a"),
                tag("a", "x", &["b"]),
                tag("b", "y", &["a"])
            ]),
            "steps[2].nextStepIds[0]",
        ),
        (
            json!([
                trigger("contact_created", "a"),
                tag("a", "x", &[]),
                tag("orphan", "y", &[])
            ]),
            "steps[2]",
        ),
        (
            json!([trigger("contact_created", "nowhere")]),
            "steps[0].nextStepIds[0]",
        ),
        (
            json!([trigger("lead_hot", "a"), tag("a", "x", &[])]),
            "steps[0].config.triggerType",
        ),
        (
            json!([trigger("contact_created", "a"), {"id": "a", "type": "loop", "name": "l"}]),
            "steps[1].type",
        ),
        (
            json!([trigger("contact_created", "a"), {"id": "a", "type": "action", "name": "a",
            "config": {"actionType": "integration_slack"}}]),
            "steps[1].config.actionType",
        ),
        (
            json!([trigger("contact_created", "a"), {"id": "a", "type": "delay", "name": "d",
            "config": {"delayType": "duration", "delayValue": 0}}]),
            "steps[1].config.delayValue",
        ),
        (
            json!([trigger("contact_created", "a"), {"id": "a", "type": "condition", "name": "c",
            "nextStepIds": [], "config": {"conditions": [
                {"field": "n", "operator": "greater_than", "value": "many"}]}}]),
            "steps[1].config.conditions[0].value",
        ),
    ];
    for (steps, field) in cases {
        let r = post(steps).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{}", r.body);
    }
    // An operator the spec does not have is refused with the JSON path.
    let r = post(
        json!([trigger("contact_created", "a"), {"id": "a", "type": "condition",
        "name": "c", "config": {"conditions": [{"field": "n", "operator": "roughly"}]}}]),
    )
    .await;
    r.problem(422, "invalid");
    assert!(
        r.body["field"].as_str().unwrap().contains("operator"),
        "{}",
        r.body
    );
    t.post(&url(&ws, "workflows"), tok, json!({"steps": []}))
        .await
        .problem(422, "invalid");
    let long = "x".repeat(101);
    t.post(&url(&ws, "workflows"), tok, json!({"name": long}))
        .await
        .problem(422, "invalid");
}

#[tokio::test]
async fn a_contact_created_over_http_is_enrolled_once_and_its_step_log_is_served() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let w = active_workflow(
        &t,
        &ws,
        tok,
        json!([trigger("contact_created", "a"), tag("a", "welcomed", &[])]),
    )
    .await;
    let wid = id(&w);
    let c = contact(&t, &ws, tok, "Ada", Some("ada@example.com")).await;
    t.run_jobs().await;
    t.run_jobs().await;
    assert_eq!(
        get_contact(&t, &ws, tok, &c).await["tags"],
        json!(["welcomed"])
    );

    let es = t
        .get(&url(&ws, &format!("workflows/{wid}/enrollments")), tok)
        .await;
    let es = es.ok(200)["enrollments"].as_array().unwrap().clone();
    assert_eq!(es.len(), 1);
    assert_eq!(es[0]["entityId"], c.as_str());
    assert_eq!(es[0]["status"], "completed");
    assert_eq!(es[0]["enrollmentSource"], "automatic");
    let log = es[0]["stepsExecuted"].as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["stepId"], "a");
    assert_eq!(log[0]["status"], "completed");
    assert_eq!(log[0]["input"]["tag"], "welcomed");
    assert_eq!(log[0]["result"]["tag"], "welcomed");
    assert!(log[0]["startedAt"].is_string() && log[0]["completedAt"].is_string());

    let mine = t
        .get(
            &url(&ws, &format!("workflows/entity/contact/{c}/workflows")),
            tok,
        )
        .await;
    let mine = mine.ok(200)["enrollments"].as_array().unwrap().clone();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["workflow"]["name"], "Welcome");

    let a = t
        .get(&url(&ws, &format!("workflows/{wid}/analytics")), tok)
        .await;
    let a = a.ok(200);
    assert_eq!(a["totalEnrollments"], 1);
    assert_eq!(a["byStatus"]["completed"], 1);
    assert_eq!(a["stats"]["totalEnrolled"], 1);
    assert_eq!(a["completionRate"], 100.0);
}

#[tokio::test]
async fn manual_and_bulk_enrollment_and_retry() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let w = active_workflow(
        &t,
        &ws,
        tok,
        json!([trigger("manual", "mail"),
            {"id": "mail", "type": "action", "name": "mail", "nextStepIds": [],
             "config": {"actionType": "send_email", "emailSubject": "Hi {{firstName}}",
                        "emailBody": "Hello"}}]),
    )
    .await;
    let wid = id(&w);
    let no_mail = contact(&t, &ws, tok, "Nomail", None).await;
    let ada = contact(&t, &ws, tok, "Ada", Some("ada@example.com")).await;
    t.run_jobs().await;

    let enroll = |c: &str, et: &str| {
        let (t, ws, c, et, wid) = (&t, ws.clone(), c.to_owned(), et.to_owned(), wid.clone());
        async move {
            t.post(
                &url(&ws, &format!("workflows/{wid}/enroll")),
                tok,
                json!({"entityType": et, "entityId": c}),
            )
            .await
        }
    };
    let e = enroll(&no_mail, "contact").await;
    let e = e.ok(201).clone();
    assert_eq!(e["enrollmentSource"], "manual");
    assert_eq!(e["enrolledBy"], owner.id.as_str());
    // A live enrollment blocks a second one (45).
    enroll(&no_mail, "contact").await.problem(409, "conflict");
    enroll(&ada, "deal").await.problem(422, "invalid");
    enroll("5f0000000000000000000000", "contact")
        .await
        .problem(404, "not_found");

    // The contact has no email: three errors, with the queue's backoff between, fail it (48).
    for _ in 0..4 {
        t.run_jobs().await;
        t.clock.advance_secs(10);
    }
    let es = t
        .get(
            &url(&ws, &format!("workflows/{wid}/enrollments?status=failed")),
            tok,
        )
        .await;
    let es = es.ok(200)["enrollments"].as_array().unwrap().clone();
    assert_eq!(es.len(), 1);
    assert_eq!(es[0]["errorCount"], 3);
    assert_eq!(es[0]["stepsExecuted"].as_array().unwrap().len(), 3);
    assert!(es[0]["lastError"].as_str().unwrap().contains("email"));
    let eid = id(&es[0]);

    // Fixed data, then a retry finishes it.
    t.patch(
        &url(&ws, &format!("contacts/{no_mail}")),
        tok,
        json!({"email": "n@example.com"}),
    )
    .await
    .ok(200);
    let r = t
        .post(
            &url(&ws, &format!("workflows/{wid}/enrollments/{eid}/retry")),
            tok,
            json!({}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "active");
    t.post(
        &url(&ws, &format!("workflows/{wid}/enrollments/{eid}/retry")),
        tok,
        json!({}),
    )
    .await
    .problem(422, "invalid");
    t.run_jobs().await;
    let es = t
        .get(
            &url(
                &ws,
                &format!("workflows/{wid}/enrollments?status=completed"),
            ),
            tok,
        )
        .await;
    assert_eq!(es.ok(200)["enrollments"].as_array().unwrap().len(), 1);

    // Bulk: per id outcomes.
    let b = t
        .post(
            &url(&ws, &format!("workflows/{wid}/enroll-bulk")),
            tok,
            json!({"entityIds": [ada, "nope", "5f0000000000000000000000"]}),
        )
        .await;
    let b = b.ok(200).clone();
    assert_eq!(b["matched"], 1);
    assert_eq!(b["changed"], 1);
    let outcomes: Vec<&str> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["changed", "notFound", "notFound"]);
    t.post(
        &url(&ws, &format!("workflows/{wid}/enroll-bulk")),
        tok,
        json!({"entityIds": []}),
    )
    .await
    .problem(422, "invalid");

    // A paused workflow enrolls no one by hand (46).
    t.post(&url(&ws, &format!("workflows/{wid}/pause")), tok, json!({}))
        .await
        .ok(200);
    enroll(&ada, "contact").await.problem(422, "invalid");
}

#[tokio::test]
async fn a_dry_run_has_no_side_effects() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let w = t
        .post(
            &url(&ws, "workflows"),
            tok,
            json!({"name": "Dry", "steps": [trigger("contact_created", "c"),
                {"id": "c", "type": "condition", "name": "has email", "nextStepIds": ["yes", "no"],
                 "config": {"conditions": [{"field": "email", "operator": "is_not_empty"}]}},
                tag("yes", "has-mail", &[]), tag("no", "no-mail", &[])]}),
        )
        .await;
    let wid = id(w.ok(201));
    let c = contact(&t, &ws, tok, "Ada", Some("ada@example.com")).await;
    t.run_jobs().await;
    let before = get_contact(&t, &ws, tok, &c).await;
    let r = t
        .post(
            &url(&ws, &format!("workflows/{wid}/dry-run")),
            tok,
            json!({"entityType": "contact", "entityId": c}),
        )
        .await;
    let r = r.ok(200).clone();
    let path: Vec<&str> = r["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stepId"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["c", "yes"]);
    assert_eq!(r["actions"][0]["input"]["tag"], "has-mail");
    assert_eq!(r["enrollmentCriteriaMatched"], true);
    t.run_jobs().await;
    assert_eq!(get_contact(&t, &ws, tok, &c).await, before);
    let es = t
        .get(&url(&ws, &format!("workflows/{wid}/enrollments")), tok)
        .await;
    assert_eq!(es.ok(200)["enrollments"], json!([]));
}

#[tokio::test]
async fn the_role_table() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let w = active_workflow(
        &t,
        &ws,
        tok,
        json!([trigger("manual", "a"), tag("a", "x", &[])]),
    )
    .await;
    let wid = id(&w);
    let c = contact(&t, &ws, tok, "Ada", None).await;
    let body = json!({"name": "W2"});
    let roles: [(Role, &str); 3] = [
        (Role::Viewer, "viewer@example.com"),
        (Role::Member, "member@example.com"),
        (Role::Admin, "admin@example.com"),
    ];
    for (role, email) in roles {
        let who: Account = t.register(email).await;
        add_member(&t, &ws, &who, role).await;
        let tk = Some(who.access.as_str());
        t.get(&url(&ws, "workflows"), tk).await.ok(200);
        t.get(&url(&ws, &format!("workflows/{wid}")), tk)
            .await
            .ok(200);
        t.get(&url(&ws, &format!("workflows/{wid}/enrollments")), tk)
            .await
            .ok(200);
        t.get(&url(&ws, &format!("workflows/{wid}/analytics")), tk)
            .await
            .ok(200);
        t.post(
            &url(&ws, &format!("workflows/{wid}/dry-run")),
            tk,
            json!({"entityType": "contact", "entityId": c}),
        )
        .await
        .ok(200);
        let create = t.post(&url(&ws, "workflows"), tk, body.clone()).await;
        let enroll = t
            .post(
                &url(&ws, &format!("workflows/{wid}/enroll-bulk")),
                tk,
                json!({"entityIds": [c]}),
            )
            .await;
        let pause = t
            .post(&url(&ws, &format!("workflows/{wid}/pause")), tk, json!({}))
            .await;
        if role == Role::Admin {
            let made = id(create.ok(201));
            enroll.ok(200);
            pause.ok(200);
            t.delete(&url(&ws, &format!("workflows/{made}")), tk)
                .await
                .ok(204);
        } else {
            // Members only view workflows, as the original's table says.
            create.problem(403, "forbidden");
            enroll.problem(403, "forbidden");
            pause.problem(403, "forbidden");
            t.delete(&url(&ws, &format!("workflows/{wid}")), tk)
                .await
                .problem(403, "forbidden");
        }
    }
}

#[tokio::test]
async fn another_workspaces_ids_are_not_found() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let bob = t.register("bob@example.com").await;
    let ws_b = t.workspace(&bob, "Bob's").await;
    let tok_b = Some(bob.access.as_str());
    let w_b = active_workflow(
        &t,
        &ws_b,
        tok_b,
        json!([trigger("contact_created", "a"), tag("a", "b-tag", &[])]),
    )
    .await;
    let wid_b = id(&w_b);
    let c_b = contact(&t, &ws_b, tok_b, "Bea", None).await;
    t.run_jobs().await;
    let e_b = t
        .get(
            &url(&ws_b, &format!("workflows/{wid_b}/enrollments")),
            tok_b,
        )
        .await;
    let eid_b = id(&e_b.ok(200)["enrollments"][0]);

    let w_a = active_workflow(
        &t,
        &ws,
        tok,
        json!([trigger("manual", "a"), tag("a", "a-tag", &[])]),
    )
    .await;
    let wid_a = id(&w_a);

    // B's workflow under A's path.
    for r in [
        t.get(&url(&ws, &format!("workflows/{wid_b}")), tok).await,
        t.call(
            Method::PUT,
            &url(&ws, &format!("workflows/{wid_b}")),
            tok,
            Some(json!({"name": "x"})),
        )
        .await,
        t.post(
            &url(&ws, &format!("workflows/{wid_b}/activate")),
            tok,
            json!({}),
        )
        .await,
        t.post(
            &url(&ws, &format!("workflows/{wid_b}/pause")),
            tok,
            json!({}),
        )
        .await,
        t.post(
            &url(&ws, &format!("workflows/{wid_b}/clone")),
            tok,
            json!({}),
        )
        .await,
        t.get(&url(&ws, &format!("workflows/{wid_b}/enrollments")), tok)
            .await,
        t.get(&url(&ws, &format!("workflows/{wid_b}/analytics")), tok)
            .await,
        t.delete(&url(&ws, &format!("workflows/{wid_b}")), tok)
            .await,
        t.post(
            &url(&ws, &format!("workflows/{wid_b}/enrollments/{eid_b}/retry")),
            tok,
            json!({}),
        )
        .await,
        // B's enrollment under A's workflow.
        t.post(
            &url(&ws, &format!("workflows/{wid_a}/enrollments/{eid_b}/retry")),
            tok,
            json!({}),
        )
        .await,
        // B's contact in A's body and path.
        t.post(
            &url(&ws, &format!("workflows/{wid_a}/enroll")),
            tok,
            json!({"entityType": "contact", "entityId": c_b}),
        )
        .await,
        t.post(
            &url(&ws, &format!("workflows/{wid_a}/dry-run")),
            tok,
            json!({"entityType": "contact", "entityId": c_b}),
        )
        .await,
        t.get(
            &url(&ws, &format!("workflows/entity/contact/{c_b}/workflows")),
            tok,
        )
        .await,
    ] {
        r.problem(404, "not_found");
    }
    let bulk = t
        .post(
            &url(&ws, &format!("workflows/{wid_a}/enroll-bulk")),
            tok,
            json!({"entityIds": [c_b]}),
        )
        .await;
    assert_eq!(bulk.ok(200)["results"][0]["outcome"], "notFound");
    // A's list never shows B's workflow, and B's is untouched.
    let list = t.get(&url(&ws, "workflows"), tok).await;
    assert_eq!(list.ok(200)["workflows"].as_array().unwrap().len(), 1);
    let still = t
        .get(&url(&ws_b, &format!("workflows/{wid_b}")), tok_b)
        .await;
    assert_eq!(still.ok(200)["status"], "active");
    assert_eq!(
        get_contact(&t, &ws_b, tok_b, &c_b).await["tags"],
        json!(["b-tag"])
    );
}

#[tokio::test]
async fn pause_holds_enrollments_activate_resumes_them_and_delete_removes_them() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let w = active_workflow(
        &t,
        &ws,
        tok,
        json!([trigger("contact_created", "d"),
            {"id": "d", "type": "delay", "name": "5 min", "nextStepIds": ["a"],
             "config": {"delayType": "duration", "delayValue": 5, "delayUnit": "minutes"}},
            tag("a", "later", &[])]),
    )
    .await;
    let wid = id(&w);
    let c = contact(&t, &ws, tok, "Ada", None).await;
    t.run_jobs().await;
    let enrollments = |status: &'static str| {
        let (t, ws, wid) = (&t, ws.clone(), wid.clone());
        async move {
            let r = t
                .get(
                    &url(&ws, &format!("workflows/{wid}/enrollments?status={status}")),
                    tok,
                )
                .await;
            r.ok(200)["enrollments"].as_array().unwrap().len()
        }
    };
    assert_eq!(enrollments("active").await, 1);
    t.post(&url(&ws, &format!("workflows/{wid}/pause")), tok, json!({}))
        .await
        .ok(200);
    assert_eq!(enrollments("paused").await, 1);
    t.clock.advance_secs(6 * 60);
    t.run_jobs().await;
    assert_eq!(
        get_contact(&t, &ws, tok, &c).await["tags"],
        json!([]),
        "paused: nothing ran"
    );

    t.post(
        &url(&ws, &format!("workflows/{wid}/activate")),
        tok,
        json!({}),
    )
    .await
    .ok(200);
    t.run_jobs().await;
    assert_eq!(
        get_contact(&t, &ws, tok, &c).await["tags"],
        json!(["later"])
    );
    assert_eq!(enrollments("completed").await, 1);

    t.delete(&url(&ws, &format!("workflows/{wid}")), tok)
        .await
        .ok(204);
    let mine = t
        .get(
            &url(&ws, &format!("workflows/entity/contact/{c}/workflows")),
            tok,
        )
        .await;
    assert_eq!(mine.ok(200)["enrollments"], json!([]));
}
