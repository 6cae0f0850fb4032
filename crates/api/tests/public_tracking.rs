//! The public tracking endpoints over HTTP: website event batches (visitor counters, identify
//! stitching, the allow-list, bad input, rate limit) and the email open pixel and click redirect
//! (no open redirect, events for scoring).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use analytics::tracking::TrackingEvent;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use clianta_api::routes::public_tracking::PIXEL_GIF;
use clianta_api::{ApiConfig, RateLimitConfig};
use common::{TestApp, World, add_member, storage, world, world_with};
use crm_core::accounts::Role;
use crm_core::entities::contact::Contact;
use crm_core::entities::project::Project;
use crm_core::events::DomainEvent;
use crm_core::services::ratelimit::Limit;
use crm_core::{Filter, FindOptions, ObjectId, SortKey, Update, WorkspaceId};
use serde_json::{Value, json};
use tower::ServiceExt;

fn track_url(ws: &str) -> String {
    format!("/api/v1/public/track/{ws}")
}

fn page(url: &str) -> Value {
    json!({"eventType": "page_view", "eventName": "view", "url": url})
}

async fn raw(t: &TestApp, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = t.app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

async fn post_raw(t: &TestApp, uri: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> StatusCode {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    raw(t, b.body(Body::from(body)).unwrap()).await.0
}

async fn events(w: &World) -> Vec<TrackingEvent> {
    let ws: WorkspaceId = w.ws.parse().unwrap();
    w.t.state
        .stores
        .workspace(ws)
        .repo::<TrackingEvent>()
        .find(
            &Filter::all(),
            &FindOptions {
                sort: vec![SortKey::asc("createdAt"), SortKey::asc("_id")],
                ..FindOptions::default()
            },
        )
        .await
        .unwrap()
}

async fn domain_events(t: &TestApp, ws: &str, kind: &str) -> Vec<DomainEvent> {
    let ws: WorkspaceId = ws.parse().unwrap();
    t.state
        .stores
        .workspace(ws)
        .repo::<DomainEvent>()
        .find(
            &Filter::eq("type", kind),
            &FindOptions {
                sort: vec![SortKey::asc("occurredAt"), SortKey::asc("_id")],
                ..FindOptions::default()
            },
        )
        .await
        .unwrap()
}

async fn set_project(t: &TestApp, ws: &str, u: Update) {
    let id: WorkspaceId = ws.parse().unwrap();
    t.state
        .stores
        .global::<Project>()
        .update(id, &u)
        .await
        .unwrap();
}

async fn visitor(w: &World, id: &str) -> Value {
    let r =
        w.t.get(
            &format!("/api/v1/workspaces/{}/visitors?visitorId={id}", w.ws),
            w.tok(),
        )
        .await;
    let list = r.ok(200)["visitors"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

#[tokio::test]
async fn a_batch_stores_events_and_counts_the_visitor() {
    let w = world().await;
    let r =
        w.t.post(
            &track_url(&w.ws),
            None,
            json!({"visitorId": "v1", "sessionId": "s1", "events": [
                {"eventType": "page_view", "eventName": "home", "url": "https://shop.io/",
                 "referrer": "https://www.google.com/", "utmSource": "google",
                 "utmMedium": "cpc", "utmCampaign": "spring"},
                page("https://shop.io/pricing"),
                {"eventType": "button_click", "eventName": "buy", "url": "https://shop.io/pricing",
                 "properties": {"plan": "pro"}}
            ], "device": {"userAgent": "UA", "language": "en"}}),
        )
        .await;
    assert_eq!(r.ok(200)["stored"], 3);
    assert_eq!(r.body["visitorId"], "v1");
    assert!(r.body.get("contactId").is_none());

    let v = visitor(&w, "v1").await;
    assert_eq!(v["eventCount"], 3);
    assert_eq!(v["pageViewCount"], 2);
    assert_eq!(v["sessionCount"], 1);
    assert_eq!(v["firstUtmSource"], "google");
    assert_eq!(v["firstSource"], "paid");
    assert_eq!(v["websites"], json!(["shop.io"]));
    assert_eq!(v["devices"][0]["userAgent"], "UA");

    // Same session: counts grow, the session does not.
    w.t.clock.advance_secs(60);
    w.t.post(
        &track_url(&w.ws),
        None,
        json!({"visitorId": "v1", "sessionId": "s1", "events": [page("https://shop.io/a")]}),
    )
    .await
    .ok(200);
    // A new session with new UTM: last-touch fields move, first-touch ones stay.
    w.t.clock.advance_secs(60);
    w.t.post(
        &track_url(&w.ws),
        None,
        json!({"visitorId": "v1", "sessionId": "s2", "events": [
            {"eventType": "page_view", "eventName": "x", "url": "https://blog.shop.io/",
             "utmSource": "news", "utmMedium": "email"}]}),
    )
    .await
    .ok(200);
    let v = visitor(&w, "v1").await;
    assert_eq!(v["eventCount"], 5);
    assert_eq!(v["pageViewCount"], 4);
    assert_eq!(v["sessionCount"], 2);
    assert_eq!(v["firstUtmSource"], "google");
    assert_eq!(v["lastUtmSource"], "news");
    assert_eq!(v["lastSource"], "email");
    assert_eq!(v["websites"], json!(["shop.io", "blog.shop.io"]));

    let evs = events(&w).await;
    assert_eq!(evs.len(), 5);
    assert_eq!(evs[0].session_id, "s1");
    assert_eq!(evs[2].properties["plan"], "pro");
    let listed =
        w.t.get(
            &format!("/api/v1/workspaces/{}/tracking-events?sessionId=s2", w.ws),
            w.tok(),
        )
        .await;
    assert_eq!(
        listed.ok(200)["trackingEvents"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn identify_upserts_the_contact_links_the_visitor_and_backfills_events() {
    let w = world().await;
    w.t.post(
        &track_url(&w.ws),
        None,
        json!({"visitorId": "anon", "events": [page("https://shop.io/"), page("https://shop.io/b")]}),
    )
    .await
    .ok(200);
    w.t.clock.advance_secs(10);
    let r =
        w.t.post(
            &track_url(&w.ws),
            None,
            json!({"visitorId": "anon", "events": [page("https://shop.io/thanks")],
                "identify": {"email": " Ada@Example.COM ", "firstName": "Ada", "lastName": "L"}}),
        )
        .await;
    let contact = r.ok(200)["contactId"].as_str().unwrap().to_owned();

    let c =
        w.t.get(
            &format!("/api/v1/workspaces/{}/contacts/{contact}", w.ws),
            w.tok(),
        )
        .await;
    let c = c.ok(200);
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["firstName"], "Ada");
    assert_eq!(c["source"], "Website Tracking");

    // Every earlier anonymous event now names the contact, and the visitor is linked.
    let evs = events(&w).await;
    assert_eq!(evs.len(), 3);
    assert!(
        evs.iter()
            .all(|e| e.contact_id.map(|c| c.to_string()) == Some(contact.clone()))
    );
    assert_eq!(visitor(&w, "anon").await["contactId"], contact.as_str());
    let ev = domain_events(&w.t, &w.ws, "visitor.identified").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].data["backfilledEvents"], 2);
    assert_eq!(ev[0].data["visitorId"], "anon");

    // Later events of the linked visitor carry the contact from the start.
    w.t.post(
        &track_url(&w.ws),
        None,
        json!({"visitorId": "anon", "events": [page("https://shop.io/c")]}),
    )
    .await
    .ok(200);
    assert!(events(&w).await.iter().all(|e| e.contact_id.is_some()));

    // Another browser identifying with the same email joins the same contact: no duplicate.
    let r =
        w.t.post(
            &track_url(&w.ws),
            None,
            json!({"visitorId": "phone", "events": [], "identify": {"email": "ada@example.com"}}),
        )
        .await;
    assert_eq!(r.ok(200)["contactId"], contact.as_str());
    assert_eq!(r.body["stored"], 0);
    let ws: WorkspaceId = w.ws.parse().unwrap();
    let n =
        w.t.state
            .stores
            .workspace(ws)
            .repo::<Contact>()
            .count(&Filter::eq("email", "ada@example.com"))
            .await
            .unwrap();
    assert_eq!(n, 1);

    // An identify without a name takes the email's local part; a bad email is 422.
    let r =
        w.t.post(
            &track_url(&w.ws),
            None,
            json!({"visitorId": "v3", "events": [], "identify": {"email": "bob@x.io"}}),
        )
        .await;
    let bob = r.ok(200)["contactId"].as_str().unwrap().to_owned();
    let c =
        w.t.get(
            &format!("/api/v1/workspaces/{}/contacts/{bob}", w.ws),
            w.tok(),
        )
        .await;
    assert_eq!(c.ok(200)["firstName"], "bob");
    w.t.post(
        &track_url(&w.ws),
        None,
        json!({"visitorId": "v4", "events": [], "identify": {"email": "not an email"}}),
    )
    .await
    .problem(422, "invalid");
}

#[tokio::test]
async fn identify_stays_inside_the_workspace() {
    let w = world().await;
    let other = w.t.register("eve@example.com").await;
    let ws_b = w.t.workspace(&other, "Beta Corp").await;
    // The same visitor id and email in two workspaces are two visitors and two contacts.
    for ws in [&w.ws, &ws_b] {
        w.t.post(
            &track_url(ws),
            None,
            json!({"visitorId": "same", "events": [page("https://a.io/")],
                "identify": {"email": "ada@example.com"}}),
        )
        .await
        .ok(200);
    }
    let a = visitor(&w, "same").await;
    let b =
        w.t.get(
            &format!("/api/v1/workspaces/{ws_b}/visitors?visitorId=same"),
            Some(&other.access),
        )
        .await;
    let b = b.ok(200)["visitors"][0].clone();
    assert_ne!(a["contactId"], b["contactId"]);
    assert_eq!(a["eventCount"], 1);
    assert_eq!(b["eventCount"], 1);
    // A's owner cannot read B's visitors.
    w.t.get(&format!("/api/v1/workspaces/{ws_b}/visitors"), w.tok())
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn bad_input_is_refused_and_text_is_stored_verbatim() {
    let w = world().await;
    let url = track_url(&w.ws);

    assert_eq!(
        post_raw(&w.t, &url, b"{\"visitorId\": ".to_vec(), &[]).await,
        StatusCode::BAD_REQUEST
    );
    let r =
        w.t.post(
            &url,
            None,
            json!({"visitorId": "v", "events": vec![page("https://a.io/"); 101]}),
        )
        .await;
    r.problem(400, "too_many_events");
    assert_eq!(r.body["field"], "events");
    w.t.post(
        &url,
        None,
        json!({"visitorId": "v", "events": vec![page("https://a.io/"); 100]}),
    )
    .await
    .ok(200);
    // Over the body limit (1 MiB by default).
    let huge = serde_json::to_vec(&json!({"visitorId": "v", "events": [
        {"eventType": "custom", "eventName": "x", "url": "https://a.io/",
         "properties": {"blob": "x".repeat(2 * 1024 * 1024)}}]}))
    .unwrap();
    assert_eq!(
        post_raw(&w.t, &url, huge, &[]).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Unknown, malformed and deleted workspaces are all 404.
    w.t.post(
        &track_url(&ObjectId::new().to_hex()),
        None,
        json!({"visitorId": "v", "events": [page("https://a.io/")]}),
    )
    .await
    .problem(404, "not_found");
    w.t.post(
        &track_url("nope"),
        None,
        json!({"visitorId": "v", "events": [page("https://a.io/")]}),
    )
    .await
    .problem(404, "not_found");
    // Wrong shapes name the field.
    let r =
        w.t.post(
            &url,
            None,
            json!({"visitorId": "v", "events": [{"eventType": "teleport", "eventName": "x",
                "url": "https://a.io/"}]}),
        )
        .await;
    r.problem(422, "invalid");
    assert!(r.body["field"].as_str().unwrap().starts_with("events[0]"));
    w.t.post(
        &url,
        None,
        json!({"visitorId": "", "events": [page("https://a.io/")]}),
    )
    .await
    .problem(422, "invalid");
    w.t.post(&url, None, json!({"visitorId": "v", "events": []}))
        .await
        .problem(422, "invalid");
    w.t.post(
        &url,
        None,
        json!({"visitorId": "v", "events": [page(&format!("https://a.io/{}", "x".repeat(3000)))]}),
    )
    .await
    .problem(422, "invalid");

    // Script text is data: stored and returned exactly as sent.
    let script = "<script>alert('x')</script>\"; DROP TABLE users; --";
    w.t.post(
        &url,
        None,
        json!({"visitorId": "xss", "events": [{"eventType": "custom", "eventName": script,
            "url": "https://a.io/?q=<b>", "properties": {"note": script}}]}),
    )
    .await
    .ok(200);
    let listed =
        w.t.get(
            &format!("/api/v1/workspaces/{}/tracking-events?visitorId=xss", w.ws),
            w.tok(),
        )
        .await;
    let e = listed.ok(200)["trackingEvents"][0].clone();
    assert_eq!(e["eventName"], script);
    assert_eq!(e["url"], "https://a.io/?q=<b>");
    assert_eq!(e["properties"]["note"], script);
}

#[tokio::test]
async fn tracking_off_and_the_origin_allow_list_answer_403() {
    let w = world().await;
    let url = track_url(&w.ws);
    let body =
        serde_json::to_vec(&json!({"visitorId": "v", "events": [page("https://a.io/")]})).unwrap();

    set_project(
        &w.t,
        &w.ws,
        Update::new().set("allowedDomains", json!(["shop.io", "*.acme.com"])),
    )
    .await;
    let origin = |o: &'static str| [("origin", o)];
    for (o, want) in [
        ("https://shop.io", StatusCode::OK),
        ("https://eu.acme.com", StatusCode::OK),
        ("https://evil.io", StatusCode::FORBIDDEN),
        ("https://shop.io.evil.io", StatusCode::FORBIDDEN),
    ] {
        assert_eq!(
            post_raw(&w.t, &url, body.clone(), &origin(o)).await,
            want,
            "{o}"
        );
    }
    // No Origin: the Referer is asked; neither is refused by a closed list.
    assert_eq!(
        post_raw(
            &w.t,
            &url,
            body.clone(),
            &[("referer", "https://shop.io/p")]
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        post_raw(&w.t, &url, body.clone(), &[]).await,
        StatusCode::FORBIDDEN
    );

    set_project(&w.t, &w.ws, Update::new().set("trackingEnabled", false)).await;
    let r =
        w.t.post(
            &url,
            None,
            json!({"visitorId": "v", "events": [page("https://a.io/")]}),
        )
        .await;
    r.problem(403, "forbidden");
    assert_eq!(
        events(&w).await.len(),
        3,
        "only the allowed batches were stored"
    );
}

#[tokio::test]
async fn tracking_is_rate_limited_per_client() {
    let config = ApiConfig {
        rate_limit: RateLimitConfig {
            per_credential: Limit::new(3, 60),
            ..RateLimitConfig::default()
        },
        ..ApiConfig::default()
    };
    let w = world_with(TestApp::with(storage(), config)).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r =
            w.t.post(
                &track_url(&w.ws),
                None,
                json!({"visitorId": "v", "events": [page("https://a.io/")]}),
            )
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            r.problem(429, "rate_limited");
            assert!(r.headers.contains_key(header::RETRY_AFTER));
        }
        statuses.push(r.status.as_u16());
    }
    // Anonymous callers share the client-IP budget (registration spent one of the three), so
    // the first batches pass and the rest are limited.
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert_eq!(statuses[4], 429, "{statuses:?}");
    let first_limited = statuses.iter().position(|s| *s == 429).unwrap();
    assert!(
        statuses[first_limited..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses[..first_limited].iter().all(|s| *s == 200),
        "{statuses:?}"
    );
}

async fn issue(w: &World, body: Value) -> Value {
    let r =
        w.t.post(
            &format!("/api/v1/workspaces/{}/email-tracking", w.ws),
            w.tok(),
            body,
        )
        .await;
    r.ok(201).clone()
}

async fn get(t: &TestApp, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    raw(t, Request::get(uri).body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn the_open_pixel_counts_opens_and_emits_email_opened() {
    let w = world().await;
    let c =
        w.t.post(
            &format!("/api/v1/workspaces/{}/contacts", w.ws),
            w.tok(),
            json!({"firstName": "Ada", "lastName": "L", "email": "ada@x.io"}),
        )
        .await;
    let contact = c.ok(201)["_id"].as_str().unwrap().to_owned();
    let t = issue(
        &w,
        json!({"kind": "open", "contactId": contact, "trackingId": "m-1"}),
    )
    .await;
    let path = t["path"].as_str().unwrap().to_owned();
    assert!(
        path.starts_with("/api/v1/public/t/o/") && path.ends_with(".gif"),
        "{path}"
    );
    assert_eq!(t["count"], 0);

    let (s, h, body) = get(&w.t, &path).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "image/gif");
    assert!(
        h[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    assert_eq!(body, PIXEL_GIF.to_vec());
    w.t.clock.advance_secs(5);
    assert_eq!(get(&w.t, &path).await.0, StatusCode::OK);

    let ev = domain_events(&w.t, &w.ws, "email.opened").await;
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].data["first"], true);
    assert_eq!(ev[1].data["first"], false);
    assert_eq!(ev[0].data["contactId"], contact.as_str());
    assert_eq!(ev[0].data["trackingId"], "m-1");
    let listed =
        w.t.get(
            &format!(
                "/api/v1/workspaces/{}/email-tracking?contactId={contact}",
                w.ws
            ),
            w.tok(),
        )
        .await;
    let rec = listed.ok(200)["emailTrackings"][0].clone();
    assert_eq!(rec["count"], 2);
    assert!(rec["firstAt"].as_str().unwrap() < rec["lastAt"].as_str().unwrap());

    // Unknown tokens, a token without `.gif`, and a click token on the pixel are all 404.
    let token = path
        .trim_start_matches("/api/v1/public/t/o/")
        .trim_end_matches(".gif")
        .to_owned();
    let forged = format!("{}{}", &token[..24], "0".repeat(32));
    for uri in [
        format!("/api/v1/public/t/o/{forged}.gif"),
        format!("/api/v1/public/t/o/{token}"),
        "/api/v1/public/t/o/nothing.gif".to_owned(),
        format!("/api/v1/public/t/c/{token}"),
    ] {
        let (s, h, _) = get(&w.t, &uri).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(h[header::CONTENT_TYPE], clianta_api::PROBLEM_JSON);
    }
    assert_eq!(domain_events(&w.t, &w.ws, "email.opened").await.len(), 2);
}

#[tokio::test]
async fn a_click_redirects_only_to_its_own_url() {
    let w = world().await;
    let t = issue(
        &w,
        json!({"kind": "click", "url": "https://example.com/offer?a=1&b=2"}),
    )
    .await;
    let path = t["path"].as_str().unwrap().to_owned();
    for uri in [
        path.clone(),
        format!("{path}?u=https%3A%2F%2Fevil.example%2F"),
        format!("{path}?u=//evil.example"),
    ] {
        let (s, h, _) = get(&w.t, &uri).await;
        assert_eq!(s, StatusCode::FOUND, "{uri}");
        assert_eq!(h[header::LOCATION], "https://example.com/offer?a=1&b=2");
    }
    let ev = domain_events(&w.t, &w.ws, "email.clicked").await;
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0].data["url"], "https://example.com/offer?a=1&b=2");
    assert_eq!(ev[0].data["first"], true);
    // The pixel endpoint does not serve a click token.
    let token = path.trim_start_matches("/api/v1/public/t/c/");
    assert_eq!(
        get(&w.t, &format!("/api/v1/public/t/o/{token}.gif"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // A link must be issued for an absolute http(s) URL.
    for bad in [
        "javascript:alert(1)",
        "//evil.example",
        "/relative",
        "https://a b.io",
    ] {
        let r =
            w.t.post(
                &format!("/api/v1/workspaces/{}/email-tracking", w.ws),
                w.tok(),
                json!({"kind": "click", "url": bad}),
            )
            .await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], "url");
    }
    w.t.post(
        &format!("/api/v1/workspaces/{}/email-tracking", w.ws),
        w.tok(),
        json!({"kind": "click"}),
    )
    .await
    .problem(422, "invalid");
}

#[tokio::test]
async fn issuing_tracking_follows_the_role_table_and_the_workspace() {
    let w = world().await;
    let url = format!("/api/v1/workspaces/{}/email-tracking", w.ws);
    let viewer = w.t.register("v@example.com").await;
    let member = w.t.register("m@example.com").await;
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    w.t.post(&url, Some(&viewer.access), json!({"kind": "open"}))
        .await
        .problem(403, "forbidden");
    w.t.get(&url, Some(&viewer.access)).await.ok(200);
    w.t.post(&url, Some(&member.access), json!({"kind": "open"}))
        .await
        .ok(201);
    w.t.post(&url, None, json!({"kind": "open"}))
        .await
        .problem(401, "unauthenticated");

    // A contact of another workspace is not a contact here.
    let eve = w.t.register("eve@example.com").await;
    let ws_b = w.t.workspace(&eve, "Beta Corp").await;
    let c =
        w.t.post(
            &format!("/api/v1/workspaces/{ws_b}/contacts"),
            Some(&eve.access),
            json!({"firstName": "Bea", "lastName": "B"}),
        )
        .await;
    let theirs = c.ok(201)["_id"].as_str().unwrap().to_owned();
    let r =
        w.t.post(&url, w.tok(), json!({"kind": "open", "contactId": theirs}))
            .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "contactId");
    // And B's links are not listed in A.
    w.t.post(
        &format!("/api/v1/workspaces/{ws_b}/email-tracking"),
        Some(&eve.access),
        json!({"kind": "open"}),
    )
    .await
    .ok(201);
    let mine = w.t.get(&url, w.tok()).await;
    assert_eq!(mine.ok(200)["emailTrackings"].as_array().unwrap().len(), 1);
}
