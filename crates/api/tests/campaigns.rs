//! Sales engagement over HTTP: CRUD of every engagement record (table-driven, with the role
//! table and workspace isolation), template variables and render, campaign enrollment and
//! sends in the sending window (simulated clock), sequences with reply exit, form publishing.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::sync::Arc;

use campaigns::engage::RecordingOutbound;
use common::{Account, TestApp, add_member, seed};
use crm_core::Timestamp;
use crm_core::accounts::permissions::allows;
use crm_core::accounts::{Action, Resource, Role};
use crm_core::entities::contact::Contact;
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

async fn contact(t: &TestApp, ws: &str, owner: &Account, email: Option<&str>) -> String {
    let mut c = Contact::new(ws.parse().unwrap(), owner.id.parse().unwrap(), "Ada");
    c.last_name = "Lovelace".into();
    c.email = email.map(str::to_owned);
    seed(t, ws, &c).await
}

/// An app with two workspaces of two owners.
struct Two {
    t: TestApp,
    a: Account,
    wa: String,
    b: Account,
    wb: String,
}

async fn two() -> Two {
    let t = TestApp::new();
    let a = t.register("a@example.com").await;
    let wa = t.workspace(&a, "Alpha").await;
    let b = t.register("b@example.com").await;
    let wb = t.workspace(&b, "Beta").await;
    Two { t, a, wa, b, wb }
}

/// One engagement resource: its path, list key, a valid create body and a patch.
struct Case {
    path: &'static str,
    plural: &'static str,
    create: Value,
    patch: Value,
    /// A field and the value the patch sets.
    check: (&'static str, Value),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            path: "email-templates",
            plural: "templates",
            create: json!({"name": "Welcome", "subject": "Hi {{firstName}}", "body": "x"}),
            patch: json!({"category": "follow-up"}),
            check: ("category", json!("follow-up")),
        },
        Case {
            path: "campaigns",
            plural: "campaigns",
            create: json!({"name": "Q1", "steps": [{"id": "s1", "subject": "Hi", "body": "Yo"}]}),
            patch: json!({"dailyLimit": 20}),
            check: ("dailyLimit", json!(20)),
        },
        Case {
            path: "sequences",
            plural: "sequences",
            create: json!({"name": "Drip", "steps": [{"id": "s1", "subject": "Hi", "body": "Yo"}]}),
            patch: json!({"sendOnWeekends": true}),
            check: ("sendOnWeekends", json!(true)),
        },
        Case {
            path: "multichannel-sequences",
            plural: "sequences",
            create: json!({"name": "Omni", "steps": [{"id": "s1", "order": 0, "channel": "sms",
                "action": "send_sms", "message": "Hi"}]}),
            patch: json!({"description": "all channels"}),
            check: ("description", json!("all channels")),
        },
        Case {
            path: "forms",
            plural: "forms",
            create: json!({"name": "Contact us", "fields": [{"id": "f1", "type": "email",
                "label": "Email", "required": true, "mapToField": "email"}]}),
            patch: json!({"settings": {"maxSubmissions": 5}}),
            check: (
                "settings",
                json!({"submitButtonText": "Submit",
                "successMessage": "Thank you for your submission!", "autoCreateContact": true,
                "maxSubmissions": 5, "schedule": {"enabled": false}}),
            ),
        },
        Case {
            path: "lead-forms",
            plural: "leadForms",
            create: json!({"name": "Popup", "type": "slide_in"}),
            patch: json!({"active": true}),
            check: ("active", json!(true)),
        },
        Case {
            path: "landing-pages",
            plural: "pages",
            create: json!({"name": "Spring", "slug": "Spring-Sale",
                "sections": [{"id": "h", "type": "hero", "settings": {"heading": "Hi"}}]}),
            patch: json!({"description": "sale"}),
            check: ("description", json!("sale")),
        },
        Case {
            path: "chatbots",
            plural: "chatbots",
            create: json!({"name": "Bot", "trigger": {"type": "page_load"}}),
            patch: json!({"status": "active"}),
            check: ("status", json!("active")),
        },
        Case {
            path: "lead-magnets",
            plural: "leadMagnets",
            create: json!({"title": "Guide", "description": "A guide", "type": "ebook",
                "slug": "guide"}),
            patch: json!({"status": "published"}),
            check: ("status", json!("published")),
        },
        Case {
            path: "voice-drops",
            plural: "voiceDrops",
            create: json!({"name": "Drop", "audioFileUrl": "https://x.example/a.mp3",
                "audioFileName": "a.mp3", "audioDuration": 30}),
            patch: json!({"sendingSpeed": "slow"}),
            check: ("sendingSpeed", json!("slow")),
        },
        Case {
            path: "meeting-schedulers",
            plural: "schedulers",
            create: json!({"name": "Demo", "slug": "demo", "duration": 30,
                "location": {"type": "zoom"}}),
            patch: json!({"isActive": false}),
            check: ("isActive", json!(false)),
        },
    ]
}

#[tokio::test]
async fn every_engagement_record_has_crud_with_the_role_table_and_isolation() {
    let Two { t, a, wa, b, wb } = two().await;
    let viewer = t.register("viewer@example.com").await;
    let member = t.register("member@example.com").await;
    let admin = t.register("admin@example.com").await;
    add_member(&t, &wa, &viewer, Role::Viewer).await;
    add_member(&t, &wa, &member, Role::Member).await;
    add_member(&t, &wa, &admin, Role::Admin).await;
    let code = |role: Role, action: Action, ok: u16| {
        if allows(role, Resource::Campaigns, action) {
            ok
        } else {
            403
        }
    };
    for c in cases() {
        let base = url(&wa, c.path);
        // Owner: create, get, list, patch.
        let made = t.post(&base, Some(&a.access), c.create.clone()).await;
        let made = made.ok(201).clone();
        let one = format!("{base}/{}", id(&made));
        t.get(&one, Some(&a.access)).await.ok(200);
        let list = t.get(&base, Some(&a.access)).await;
        assert_eq!(
            list.ok(200)[c.plural].as_array().unwrap().len(),
            1,
            "{}",
            c.path
        );
        let patched = t.patch(&one, Some(&a.access), c.patch.clone()).await;
        assert_eq!(patched.ok(200)[c.check.0], c.check.1, "{}", c.path);
        // Server-set fields are refused.
        t.post(&base, Some(&a.access), {
            let mut body = c.create.clone();
            body["_id"] = json!(id(&made));
            body
        })
        .await
        .problem(422, "invalid");
        // Roles.
        for (who, role) in [
            (&viewer, Role::Viewer),
            (&member, Role::Member),
            (&admin, Role::Admin),
        ] {
            let tok = Some(who.access.as_str());
            t.get(&one, tok).await.ok(200);
            let mut body = c.create.clone();
            if body.get("slug").is_some() {
                body["slug"] = json!(format!("{role:?}").to_lowercase());
            }
            let r = t.post(&base, tok, body).await;
            assert_eq!(
                r.status.as_u16(),
                code(role, Action::Create, 201),
                "{} create as {role:?}: {}",
                c.path,
                r.body
            );
            let r = t.patch(&one, tok, c.patch.clone()).await;
            assert_eq!(
                r.status.as_u16(),
                code(role, Action::Edit, 200),
                "{}",
                c.path
            );
        }
        // Another workspace: its owner cannot reach A's record through B, nor list it.
        let foreign = format!("{}/{}", url(&wb, c.path), id(&made));
        t.get(&foreign, Some(&b.access))
            .await
            .problem(404, "not_found");
        t.patch(&foreign, Some(&b.access), c.patch.clone())
            .await
            .problem(404, "not_found");
        t.delete(&foreign, Some(&b.access))
            .await
            .problem(404, "not_found");
        let theirs = t.get(&url(&wb, c.path), Some(&b.access)).await;
        assert!(theirs.ok(200)[c.plural].as_array().unwrap().is_empty());
        // Nor through A, of which B is not a member.
        t.get(&one, Some(&b.access)).await.problem(404, "not_found");
        // Delete: members may not (the role table), the owner may.
        let r = t.delete(&one, Some(&member.access)).await;
        assert_eq!(r.status.as_u16(), code(Role::Member, Action::Delete, 204));
        t.delete(&one, Some(&a.access)).await.ok(204);
        t.get(&one, Some(&a.access)).await.problem(404, "not_found");
    }
}

#[tokio::test]
async fn references_into_another_workspace_are_refused() {
    let Two { t, a, wa, b, wb } = two().await;
    let their_contact = contact(&t, &wb, &b, Some("x@example.com")).await;
    let their_form = t
        .post(
            &url(&wb, "forms"),
            Some(&b.access),
            json!({"name": "Theirs"}),
        )
        .await;
    let their_form = id(their_form.ok(201));
    let their_template = t
        .post(
            &url(&wb, "email-templates"),
            Some(&b.access),
            json!({"name": "T", "subject": "S"}),
        )
        .await;
    let their_template = id(their_template.ok(201));
    let tok = Some(a.access.as_str());
    let refused = [
        (
            "landing-pages",
            json!({"name": "P", "slug": "p", "formId": their_form}),
            "formId",
        ),
        (
            "landing-pages",
            json!({"name": "P", "slug": "p2", "sections": [{"id": "f", "type": "form",
                "settings": {"formId": their_form}}]}),
            "sections[0].settings.formId",
        ),
        (
            "lead-magnets",
            json!({"title": "G", "description": "d", "type": "guide", "slug": "g",
                "formId": their_form}),
            "formId",
        ),
        (
            "lead-magnets",
            json!({"title": "G", "description": "d", "type": "guide", "slug": "g",
                "emailTemplateId": their_template}),
            "emailTemplateId",
        ),
        (
            "voice-drops",
            json!({"name": "D", "audioFileUrl": "u", "audioFileName": "a", "audioDuration": 5,
                "recipients": [{"contactId": their_contact, "phone": "+1"}]}),
            "recipients[0].contactId",
        ),
        (
            "form-submissions",
            json!({"formId": their_form, "data": {}}),
            "formId",
        ),
        (
            "sequences",
            json!({"name": "S", "steps": [{"id": "s", "subject": "a", "body": "b",
                "templateId": their_template}]}),
            "steps[0].templateId",
        ),
    ];
    for (path, body, field) in refused {
        let r = t.post(&url(&wa, path), tok, body).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{path}: {}", r.body);
    }
    // Enrolling another workspace's contact, or filtering by another workspace's form.
    let camp = t
        .post(
            &url(&wa, "campaigns"),
            tok,
            json!({"name": "C", "steps": [{"id": "s", "subject": "a", "body": "b"}]}),
        )
        .await;
    let camp = id(camp.ok(201));
    t.post(
        &url(&wa, &format!("campaigns/{camp}/enrollments")),
        tok,
        json!({"contactIds": [their_contact]}),
    )
    .await
    .problem(422, "invalid");
    let listed = t
        .get(
            &url(&wa, &format!("form-submissions?formId={their_form}")),
            tok,
        )
        .await;
    assert!(listed.ok(200)["submissions"].as_array().unwrap().is_empty());
    // Another workspace's campaign in the path.
    t.get(
        &url(&wa, &format!("campaigns/{camp}/enrollments")),
        Some(&b.access),
    )
    .await
    .problem(404, "not_found");
    t.post(
        &url(&wb, &format!("campaigns/{camp}/start")),
        Some(&b.access),
        json!({}),
    )
    .await
    .problem(404, "not_found");
}

#[tokio::test]
async fn template_variables_follow_every_save_and_render_escapes() {
    let Two { t, a, wa, b, wb } = two().await;
    let tok = Some(a.access.as_str());
    let made = t
        .post(
            &url(&wa, "email-templates"),
            tok,
            json!({"name": "W", "subject": "Hi {{firstName}}", "body": "From {{company}}",
                "htmlContent": "<p>{{ firstName }} {{unsubscribe}}</p>"}),
        )
        .await;
    let made = made.ok(201).clone();
    assert_eq!(
        made["variables"],
        json!(["firstName", "company", "unsubscribe"])
    );
    assert_eq!(made["category"], "custom");
    let one = url(&wa, &format!("email-templates/{}", id(&made)));
    let patched = t
        .patch(&one, tok, json!({"body": "Plain", "htmlContent": null}))
        .await;
    assert_eq!(patched.ok(200)["variables"], json!(["firstName"]));
    t.patch(&one, tok, json!({"variables": ["x"]}))
        .await
        .problem(422, "invalid");
    t.patch(&one, tok, json!({"category": "followup"}))
        .await
        .problem(422, "invalid");

    let render = url(&wa, &format!("email-templates/{}/render", id(&made)));
    let ada = contact(&t, &wa, &a, Some("ada@example.com")).await;
    let r = t
        .post(
            &render,
            tok,
            json!({"variables": {"firstName": "<b>Bo</b> & co"}}),
        )
        .await;
    assert_eq!(r.ok(200)["subject"], "Hi <b>Bo</b> & co");
    t.patch(
        &one,
        tok,
        json!({"body": "<p>{{firstName}} at {{company}}</p>"}),
    )
    .await
    .ok(200);
    let r = t
        .post(
            &render,
            tok,
            json!({"variables": {"firstName": "<b>Bo</b> & co"}}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "variables");
    assert!(r.body["detail"].as_str().unwrap().contains("company"));
    let r = t
        .post(
            &render,
            tok,
            json!({"contactId": ada, "variables": {"company": "<Acme>"}}),
        )
        .await;
    let body = r.ok(200);
    assert_eq!(body["subject"], "Hi Ada");
    assert_eq!(body["body"], "<p>Ada at &lt;Acme&gt;</p>");
    let theirs = contact(&t, &wb, &b, None).await;
    let r = t.post(&render, tok, json!({"contactId": theirs})).await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "contactId");
}

/// A fresh access token (simulated days outlive the first one).
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

/// Moves the test clock forward to the next `hh:00:00` UTC.
fn secs_until_hour(now: Timestamp, hour: i64) -> i64 {
    let ms = now.millis();
    let day = ms.div_euclid(86_400_000) * 86_400_000;
    let mut target = day + hour * 3_600_000;
    if target <= ms {
        target += 86_400_000;
    }
    (target - ms + 999) / 1000
}

#[tokio::test]
async fn a_send_due_at_22_runs_at_09_the_next_day_and_enrollment_is_idempotent() {
    let Two { t, a, wa, .. } = two().await;
    let out = Arc::new(RecordingOutbound::default());
    campaigns::engage::register(&t.state.automation, out.clone());
    let tok = Some(a.access.as_str());
    let ada = contact(&t, &wa, &a, Some("ada@example.com")).await;
    let camp = t
        .post(
            &url(&wa, "campaigns"),
            tok,
            json!({"name": "Night", "sendingSchedule": {"timezone": "UTC", "startTime": "09:00",
                "endTime": "17:00", "sendOnWeekends": true},
                "steps": [{"id": "s1", "subject": "Hi {{firstName}}", "body": "Hello {{name}}"}]}),
        )
        .await;
    let camp = id(camp.ok(201));
    t.patch(
        &url(&wa, &format!("campaigns/{camp}")),
        tok,
        json!({"status": "active"}),
    )
    .await
    .problem(422, "invalid");
    let enroll = url(&wa, &format!("campaigns/{camp}/enrollments"));
    let first = t.post(&enroll, tok, json!({"contactIds": [ada]})).await;
    let first = first.ok(200).clone();
    assert_eq!(first["created"], 1);
    let again = t.post(&enroll, tok, json!({"contactIds": [ada]})).await;
    let again = again.ok(200).clone();
    assert_eq!(again["created"], 0);
    assert_eq!(
        again["enrollments"][0]["_id"],
        first["enrollments"][0]["_id"]
    );

    // 22:00 UTC: start; the send is queued for 09:00 the next day.
    t.clock
        .advance_secs(secs_until_hour(t.state.stores.clock().now(), 22));
    let fresh = login(&t, "a@example.com").await;
    let tok = Some(fresh.as_str());
    let started = t
        .post(
            &url(&wa, &format!("campaigns/{camp}/start")),
            tok,
            json!({}),
        )
        .await;
    assert_eq!(started.ok(200)["status"], "active");
    let listed = t.get(&enroll, tok).await;
    let next = listed.ok(200)["enrollments"][0]["nextSendAt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(next.ends_with("T09:00:00.000Z"), "{next}");
    t.state.automation.run_until_idle().await.unwrap();
    assert!(out.sent().is_empty(), "nothing at night");

    t.clock
        .advance_secs(secs_until_hour(t.state.stores.clock().now(), 9));
    t.state.automation.run_until_idle().await.unwrap();
    let fresh = login(&t, "a@example.com").await;
    let tok = Some(fresh.as_str());
    let sent = out.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].subject, "Hi Ada");
    assert_eq!(sent[0].body, "Hello Ada Lovelace");
    let listed = t.get(&enroll, tok).await;
    let e = &listed.ok(200)["enrollments"][0];
    assert_eq!(e["status"], "completed");
    assert_eq!(e["emailsSent"].as_array().unwrap().len(), 1);
    let c = t.get(&url(&wa, &format!("campaigns/{camp}")), tok).await;
    assert_eq!(c.ok(200)["stats"]["sent"], 1);
}

#[tokio::test]
async fn campaign_rules_over_http() {
    let Two { t, a, wa, .. } = two().await;
    let tok = Some(a.access.as_str());
    let empty = t
        .post(&url(&wa, "campaigns"), tok, json!({"name": "Empty"}))
        .await;
    let empty = id(empty.ok(201));
    let r = t
        .post(
            &url(&wa, &format!("campaigns/{empty}/start")),
            tok,
            json!({}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "steps");
    for bad in [
        json!({"name": "C", "sendingSchedule": {"timezone": "Mars/Base"}}),
        json!({"name": "C", "sendingSchedule": {"startTime": "25:00"}}),
        json!({"name": "C", "status": "active"}),
        json!({"name": ""}),
    ] {
        t.post(&url(&wa, "campaigns"), tok, bad)
            .await
            .problem(422, "invalid");
    }
    let r = t
        .post(
            &url(&wa, &format!("campaigns/{empty}/enrollments")),
            tok,
            json!({"contactIds": []}),
        )
        .await;
    r.problem(422, "invalid");
    let paused = t
        .post(
            &url(&wa, &format!("campaigns/{empty}/pause")),
            tok,
            json!({}),
        )
        .await;
    assert_eq!(paused.ok(200)["status"], "paused");
}

#[tokio::test]
async fn sequences_enroll_and_exit_on_reply() {
    let Two { t, a, wa, wb, .. } = two().await;
    let out = Arc::new(RecordingOutbound::default());
    campaigns::engage::register(&t.state.automation, out.clone());
    let tok = Some(a.access.as_str());
    let ada = contact(&t, &wa, &a, Some("ada@example.com")).await;
    let seq = t
        .post(
            &url(&wa, "sequences"),
            tok,
            json!({"name": "Drip", "sendOnWeekends": true, "steps": [
                {"id": "a", "order": 0, "subject": "One {{firstName}}", "body": "1",
                 "delay": {"value": 1, "unit": "hours"}},
                {"id": "b", "order": 1, "subject": "Two", "body": "2",
                 "delay": {"value": 2, "unit": "days"}}]}),
        )
        .await;
    let seq = id(seq.ok(201));
    let enroll = url(&wa, &format!("sequences/{seq}/enrollments"));
    let r = t.post(&enroll, tok, json!({"contactIds": [ada]})).await;
    r.problem(422, "invalid");
    assert_eq!(
        r.body["field"], "status",
        "a draft sequence takes no enrollments"
    );
    t.post(
        &url(&wa, &format!("sequences/{seq}/activate")),
        tok,
        json!({}),
    )
    .await
    .ok(200);
    let got = t.post(&enroll, tok, json!({"contactIds": [ada]})).await;
    let e = got.ok(200)["enrollments"][0]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.clock.advance_secs(3601);
    t.state.automation.run_until_idle().await.unwrap();
    assert_eq!(out.sent().len(), 1);
    assert_eq!(out.sent()[0].subject, "One Ada");

    let fresh_a = login(&t, "a@example.com").await;
    let tok = Some(fresh_a.as_str());
    let fresh_b = login(&t, "b@example.com").await;
    let reply = url(&wa, &format!("sequences/{seq}/enrollments/{e}/reply"));
    t.post(
        &url(&wb, &format!("sequences/{seq}/enrollments/{e}/reply")),
        Some(&fresh_b),
        json!({}),
    )
    .await
    .problem(404, "not_found");
    let r = t.post(&reply, tok, json!({})).await;
    assert_eq!(r.ok(200)["status"], "replied");
    t.clock.advance_secs(3 * 86_400);
    t.state.automation.run_until_idle().await.unwrap();
    assert_eq!(out.sent().len(), 1, "the reply ended the sequence");
    let fresh_a = login(&t, "a@example.com").await;
    let tok = Some(fresh_a.as_str());
    let s = t.get(&url(&wa, &format!("sequences/{seq}")), tok).await;
    let s = s.ok(200);
    assert_eq!(s["stats"]["replied"], 1);
    assert_eq!(s["enrollments"][0]["status"], "replied");
    t.post(
        &url(&wa, &format!("sequences/{seq}/enrollments/{}/reply", seq)),
        tok,
        json!({}),
    )
    .await
    .problem(404, "not_found");
}

#[tokio::test]
async fn form_templates_are_a_shared_read_only_library() {
    let Two { t, a, .. } = two().await;
    let tpl: campaigns::forms::FormTemplate = serde_json::from_value(json!({
        "_id": crm_core::ObjectId::new().to_hex(), "name": "Demo request", "slug": "demo-request",
        "industry": "saas", "featured": true, "rating": 4.5,
        "fields": [{"id": "e", "type": "email", "label": "Email"}],
    }))
    .unwrap();
    t.state
        .stores
        .global::<campaigns::forms::FormTemplate>()
        .insert(&tpl)
        .await
        .unwrap();
    let list = t
        .get("/api/v1/form-templates?industry=saas", Some(&a.access))
        .await;
    assert_eq!(list.ok(200)["templates"].as_array().unwrap().len(), 1);
    let none = t
        .get("/api/v1/form-templates?industry=retail", Some(&a.access))
        .await;
    assert!(none.ok(200)["templates"].as_array().unwrap().is_empty());
    t.get(
        &format!("/api/v1/form-templates/{}", tpl.id),
        Some(&a.access),
    )
    .await
    .ok(200);
    t.get("/api/v1/form-templates", None)
        .await
        .problem(401, "unauthenticated");
}

async fn email_account(t: &TestApp, ws: &str, email: &str) -> String {
    let a: integrations::entities::EmailAccount = serde_json::from_value(json!({
        "_id": crm_core::ObjectId::new().to_hex(), "workspaceId": ws, "email": email,
    }))
    .unwrap();
    seed(t, ws, &a).await
}

#[tokio::test]
async fn deliverability_tests_and_campaign_senders_need_accounts_of_the_workspace() {
    let Two { t, a, wa, b, wb } = two().await;
    let ours = email_account(&t, &wa, "send@alpha.example").await;
    let theirs = email_account(&t, &wb, "send@beta.example").await;
    let tok = Some(a.access.as_str());
    let body = |account: &str| {
        json!({"emailAccountId": account, "testType": "spam_score",
            "fromEmail": "send@alpha.example"})
    };
    let made = t
        .post(&url(&wa, "deliverability-tests"), tok, body(&ours))
        .await;
    let made = made.ok(201).clone();
    assert_eq!(made["status"], "pending");
    let r = t
        .post(&url(&wa, "deliverability-tests"), tok, body(&theirs))
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "emailAccountId");
    let r = t
        .patch(
            &url(&wa, &format!("deliverability-tests/{}", id(&made))),
            tok,
            json!({"overallScore": 101}),
        )
        .await;
    r.problem(422, "invalid");
    let listed = t
        .get(
            &url(&wa, &format!("deliverability-tests?emailAccountId={ours}")),
            tok,
        )
        .await;
    assert_eq!(listed.ok(200)["tests"].as_array().unwrap().len(), 1);
    t.get(
        &url(&wb, &format!("deliverability-tests/{}", id(&made))),
        Some(&b.access),
    )
    .await
    .problem(404, "not_found");
    let r = t
        .post(
            &url(&wa, "campaigns"),
            tok,
            json!({"name": "C", "fromAccounts": [ours, theirs]}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "fromAccounts[1]");
}
