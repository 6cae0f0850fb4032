//! The public form and landing page endpoints under good and bad input: published forms only,
//! limits, honeypot, per-IP rate limit, body size, contact upsert with `form.submitted`, script
//! text stored verbatim and served as JSON data.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{Account, Resp, TestApp};
use crm_core::entities::contact::Contact;
use crm_core::events::DomainEvent;
use crm_core::{Filter, FindOptions, WorkspaceId};
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn submit_url(form: &str) -> String {
    format!("/api/v1/public/forms/{form}/submit")
}

struct Fx {
    t: TestApp,
    owner: Account,
    ws: String,
    form: String,
}

async fn fx_with(settings: Value) -> Fx {
    let t = TestApp::new();
    let owner = t.register("owner@example.com").await;
    let ws = t.workspace(&owner, "Acme Sales").await;
    let r = t
        .post(
            &url(&ws, "forms"),
            Some(&owner.access),
            json!({"name": "Contact us", "settings": settings, "fields": [
                {"id": "em", "type": "email", "label": "Email", "required": true,
                 "mapToField": "email"},
                {"id": "fn", "type": "text", "label": "First name", "mapToField": "firstName"},
                {"id": "co", "type": "text", "label": "Company", "mapToField": "company"},
                {"id": "msg", "type": "textarea", "label": "Message"}]}),
        )
        .await;
    let form = r.ok(201)["_id"].as_str().unwrap().to_owned();
    Fx { t, owner, ws, form }
}

async fn fx() -> Fx {
    fx_with(json!({})).await
}

impl Fx {
    fn tok(&self) -> Option<&str> {
        Some(&self.owner.access)
    }
    async fn publish(&self) {
        let r = self
            .t
            .post(
                &url(&self.ws, &format!("forms/{}/publish", self.form)),
                self.tok(),
                json!({}),
            )
            .await;
        assert_eq!(r.ok(200)["status"], "published");
    }
    async fn submit(&self, data: Value) -> Resp {
        self.t
            .post(&submit_url(&self.form), None, json!({"data": data}))
            .await
    }
    fn ws_id(&self) -> WorkspaceId {
        self.ws.parse().unwrap()
    }
    async fn contacts(&self) -> Vec<Contact> {
        self.t
            .state
            .stores
            .workspace(self.ws_id())
            .repo::<Contact>()
            .find(&Filter::all(), &FindOptions::default())
            .await
            .unwrap()
    }
    async fn events(&self, ty: &str) -> Vec<DomainEvent> {
        self.t
            .state
            .stores
            .workspace(self.ws_id())
            .repo::<DomainEvent>()
            .find(&Filter::eq("type", ty.to_owned()), &FindOptions::default())
            .await
            .unwrap()
    }
    async fn submissions(&self) -> Vec<Value> {
        let r = self
            .t
            .get(
                &url(&self.ws, "form-submissions?sort=createdAt"),
                self.tok(),
            )
            .await;
        r.ok(200)["submissions"].as_array().unwrap().clone()
    }
}

async fn raw(t: &TestApp, uri: &str, content_type: &str, body: Vec<u8>) -> Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    t.send(req).await
}

#[tokio::test]
async fn a_submission_upserts_the_contact_and_emits_form_submitted() {
    let f = fx().await;
    f.publish().await;
    let view =
        f.t.get(&format!("/api/v1/public/forms/{}", f.form), None)
            .await;
    let view = view.ok(200);
    assert_eq!(view["honeypotField"], "_hp");
    assert_eq!(view["fields"].as_array().unwrap().len(), 4);

    let r = f
        .submit(json!({"em": " Ada@Example.com ", "fn": "Ada", "msg": "hello"}))
        .await;
    let r = r.ok(200);
    assert_eq!(r["success"], true);
    assert_eq!(r["message"], "Thank you for your submission!");
    let contacts = f.contacts().await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].email.as_deref(), Some("ada@example.com"));
    assert_eq!(contacts[0].first_name, "Ada");
    assert_eq!(contacts[0].source.as_deref(), Some("form"));

    // Same email again: the same contact, its empty company filled, not renamed.
    t_advance(&f.t);
    f.submit(json!({"em": "ada@example.com", "fn": "Eve", "co": "Analytical"}))
        .await
        .ok(200);
    let contacts = f.contacts().await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].first_name, "Ada");
    assert_eq!(contacts[0].company.as_deref(), Some("Analytical"));

    let subs = f.submissions().await;
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0]["contactCreated"], true);
    assert_eq!(subs[1]["contactCreated"], false);
    assert_eq!(subs[0]["contactId"], contacts[0].id.to_string());
    assert_eq!(subs[0]["status"], "new");
    assert_eq!(
        subs[0]["data"]["em"], " Ada@Example.com ",
        "answers kept as sent"
    );

    let submitted = f.events("form.submitted").await;
    assert_eq!(submitted.len(), 2);
    assert_eq!(submitted[0].data["formId"], f.form.as_str());
    assert_eq!(submitted[0].data["contactId"], contacts[0].id.to_string());
    assert_eq!(
        f.events("contact.created").await.len(),
        1,
        "only for the new contact"
    );

    let form =
        f.t.get(&url(&f.ws, &format!("forms/{}", f.form)), f.tok())
            .await;
    assert_eq!(form.ok(200)["stats"]["submissions"], 2);

    // A phone-only submission finds the contact by phone.
    let g = fx_with(json!({})).await;
    g.publish().await;
    let r =
        g.t.post(
            &submit_url(&g.form),
            None,
            json!({"data": {"em": "x", "phone": "+47 555 01"}}),
        )
        .await;
    // "x" is not an email: the answer names the form field.
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "data.em");
}

fn t_advance(t: &TestApp) {
    t.clock.advance_secs(1);
}

#[tokio::test]
async fn only_published_forms_take_submissions() {
    let f = fx().await;
    let data = json!({"em": "a@example.com"});
    f.submit(data.clone()).await.problem(404, "not_found");
    f.t.get(&format!("/api/v1/public/forms/{}", f.form), None)
        .await
        .problem(404, "not_found");
    f.publish().await;
    f.submit(data.clone()).await.ok(200);
    for action in ["unpublish", "archive"] {
        f.t.post(
            &url(&f.ws, &format!("forms/{}/{action}", f.form)),
            f.tok(),
            json!({}),
        )
        .await
        .ok(200);
        f.submit(data.clone()).await.problem(404, "not_found");
    }
    f.publish().await;
    f.t.delete(&url(&f.ws, &format!("forms/{}", f.form)), f.tok())
        .await
        .ok(204);
    f.submit(data.clone()).await.problem(404, "not_found");
    for unknown in [crm_core::ObjectId::new().to_hex(), "not-an-id".to_owned()] {
        f.t.post(&submit_url(&unknown), None, json!({"data": {}}))
            .await
            .problem(404, "not_found");
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_the_right_status() {
    let f = fx().await;
    f.publish().await;
    let uri = submit_url(&f.form);
    raw(&f.t, &uri, "application/json", b"{\"data\": {".to_vec())
        .await
        .problem(400, "malformed_json");
    raw(&f.t, &uri, "text/plain", b"{\"data\": {}}".to_vec())
        .await
        .problem(415, "unsupported_media_type");
    let huge = format!("{{\"data\": {{\"msg\": \"{}\"}}}}", "x".repeat(70 * 1024));
    raw(&f.t, &uri, "application/json", huge.into_bytes())
        .await
        .problem(413, "payload_too_large");
    let r = f.t.post(&uri, None, json!({"fields": {}})).await;
    r.problem(422, "invalid");
    let r = f.submit(json!({"fn": "Ada"})).await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "data.em");
    let r = f.t.post(&uri, None, json!({"data": [1, 2]})).await;
    r.problem(422, "invalid");
    assert!(f.contacts().await.is_empty());
    assert!(f.submissions().await.is_empty());
}

#[tokio::test]
async fn a_filled_honeypot_answers_ok_but_is_filed_as_spam() {
    let f = fx().await;
    f.publish().await;
    let r = f
        .submit(json!({"em": "bot@example.com", "_hp": "http://spam.example"}))
        .await;
    assert_eq!(r.ok(200)["success"], true);
    assert!(f.contacts().await.is_empty());
    let subs = f.submissions().await;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["status"], "spam");
    assert!(subs[0].get("contactId").is_none());
    assert!(f.events("form.submitted").await.is_empty());
}

#[tokio::test]
async fn schedule_and_limits_answer_403() {
    let f = fx_with(json!({"maxSubmissions": 1})).await;
    f.publish().await;
    f.submit(json!({"em": "a@example.com"})).await.ok(200);
    // Spam does not count, but the limit is reached by the real one.
    let r = f.submit(json!({"em": "b@example.com"})).await;
    r.problem(403, "forbidden");

    let g = fx_with(json!({"maxSubmissionsPerDay": 1})).await;
    g.publish().await;
    g.submit(json!({"em": "a@example.com"})).await.ok(200);
    g.submit(json!({"em": "b@example.com"}))
        .await
        .problem(403, "forbidden");
    g.t.clock.advance_secs(86_400);
    g.submit(json!({"em": "b@example.com"})).await.ok(200);

    let h = fx_with(
        json!({"schedule": {"enabled": true, "endDate": "2001-01-01T00:00:00Z",
        "messageWhenClosed": "Registration has closed"}}),
    )
    .await;
    h.publish().await;
    let r = h.submit(json!({"em": "a@example.com"})).await;
    r.problem(403, "forbidden");
    assert_eq!(r.body["detail"], "Registration has closed");
    let i =
        fx_with(json!({"schedule": {"enabled": true, "startDate": "2999-01-01T00:00:00Z"}})).await;
    i.publish().await;
    i.submit(json!({"em": "a@example.com"}))
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn submissions_are_rate_limited_per_address_and_form() {
    let f = fx().await;
    f.publish().await;
    for i in 0..10 {
        f.submit(json!({"em": format!("p{i}@example.com")}))
            .await
            .ok(200);
    }
    let r = f.submit(json!({"em": "late@example.com"})).await;
    r.problem(429, "rate_limited");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    // Another form of the same workspace has its own budget.
    let other =
        f.t.post(
            &url(&f.ws, "forms"),
            f.tok(),
            json!({"name": "Other", "fields": []}),
        )
        .await;
    let other = other.ok(201)["_id"].as_str().unwrap().to_owned();
    f.t.post(
        &url(&f.ws, &format!("forms/{other}/publish")),
        f.tok(),
        json!({}),
    )
    .await
    .ok(200);
    f.t.post(
        &submit_url(&other),
        None,
        json!({"data": {"email": "o@example.com"}}),
    )
    .await
    .ok(200);
}

#[tokio::test]
async fn script_text_is_stored_verbatim_and_served_as_data() {
    let f = fx().await;
    f.publish().await;
    let script = "<script>alert('x')</script><img src=x onerror=alert(1)>";
    f.submit(json!({"em": "s@example.com", "fn": "Sam", "msg": script}))
        .await
        .ok(200);
    let subs = f.submissions().await;
    assert_eq!(subs[0]["data"]["msg"], script);
    let one =
        f.t.get(
            &url(
                &f.ws,
                &format!("form-submissions/{}", subs[0]["_id"].as_str().unwrap()),
            ),
            f.tok(),
        )
        .await;
    assert_eq!(one.ok(200)["data"]["msg"], script);
    assert_eq!(one.headers[header::CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn landing_pages_are_served_by_slug_when_published() {
    let t = TestApp::new();
    let a = t.register("a@example.com").await;
    let wa = t.workspace(&a, "Alpha").await;
    let b = t.register("b@example.com").await;
    let wb = t.workspace(&b, "Beta").await;
    let script = "<script>steal()</script>";
    let page = t
        .post(
            &url(&wa, "landing-pages"),
            Some(&a.access),
            json!({"name": "Spring", "slug": "spring", "seo": {"title": script},
                "sections": [{"id": "h", "type": "hero", "settings": {"heading": script}}]}),
        )
        .await;
    let page = page.ok(201)["_id"].as_str().unwrap().to_owned();
    let public = |ws: &str, slug: &str| format!("/api/v1/public/landing-pages/{ws}/{slug}");
    t.get(&public(&wa, "spring"), None)
        .await
        .problem(404, "not_found");
    t.patch(
        &url(&wa, &format!("landing-pages/{page}")),
        Some(&a.access),
        json!({"status": "published"}),
    )
    .await
    .ok(200);
    let got = t.get(&public(&wa, "Spring"), None).await;
    assert_eq!(got.headers[header::CONTENT_TYPE], "application/json");
    let got = got.ok(200);
    assert_eq!(got["sections"][0]["settings"]["heading"], script);
    assert_eq!(got["seo"]["title"], script);
    t.get(&public(&wb, "spring"), None)
        .await
        .problem(404, "not_found");
    t.get(&public(&wa, "autumn"), None)
        .await
        .problem(404, "not_found");
    t.get(&public("nope", "spring"), None)
        .await
        .problem(404, "not_found");
}
