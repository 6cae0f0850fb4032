//! Activities over HTTP: the timelines of contacts, companies and opportunities, their side
//! effects (lastContactedAt, opportunity counters), patch/delete, roles and isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Account, TestApp, add_member, seed};
use crm_core::accounts::Role;
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::entities::opportunity::Opportunity;
use crm_core::entities::pipeline::{PipelineId, StageId};
use crm_core::{UserId, WorkspaceId};
use serde_json::{Value, json};

struct Parents {
    contact: String,
    company: String,
    opportunity: String,
}

async fn parents(t: &TestApp, ws: &str, owner: &Account) -> Parents {
    let w: WorkspaceId = ws.parse().unwrap();
    let u: UserId = owner.id.parse().unwrap();
    let opp = Opportunity::new(w, u, PipelineId::new(), StageId::new(), "Deal", 5.0);
    Parents {
        contact: seed(t, ws, &Contact::new(w, u, "Ada")).await,
        company: seed(t, ws, &Company::new(w, u, "Acme")).await,
        opportunity: seed(t, ws, &opp).await,
    }
}

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

fn titles(body: &Value) -> Vec<&str> {
    body["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect()
}

async fn opp(t: &TestApp, ws: &str, id: &str) -> Opportunity {
    let w: WorkspaceId = ws.parse().unwrap();
    let id: crm_core::ObjectId = id.parse().unwrap();
    t.state
        .stores
        .workspace(w)
        .repo::<Opportunity>()
        .get(id)
        .await
        .unwrap()
}

#[tokio::test]
async fn timelines_and_side_effects() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let ws = t.workspace(&ann, "Sales").await;
    let tok = Some(ann.access.as_str());
    let p = parents(&t, &ws, &ann).await;
    let contact_tl = url(&ws, &format!("contacts/{}/activities", p.contact));
    let company_tl = url(&ws, &format!("companies/{}/activities", p.company));
    let opp_tl = url(&ws, &format!("opportunities/{}/activities", p.opportunity));

    // Contact: any activity is a touch.
    let r = t
        .post(
            &contact_tl,
            tok,
            json!({"type": "call", "title": " Intro call ", "direction": "outbound",
                "duration": 300}),
        )
        .await;
    let call = r.ok(201).clone();
    assert_eq!(call["title"], "Intro call");
    assert_eq!(call["entityType"], "contact");
    assert_eq!(call["entityId"], p.contact.as_str());
    assert_eq!(call["userId"], ann.id.as_str());
    let w: WorkspaceId = ws.parse().unwrap();
    let cid: crm_core::ObjectId = p.contact.parse().unwrap();
    let c = t
        .state
        .stores
        .workspace(w)
        .repo::<Contact>()
        .get(cid)
        .await
        .unwrap();
    assert_eq!(
        c.last_contacted_at.map(|x| x.to_canonical()),
        call["createdAt"].as_str().map(str::to_owned)
    );
    t.clock.advance_secs(1);
    t.post(
        &contact_tl,
        tok,
        json!({"type": "note", "title": "Likes tea"}),
    )
    .await
    .ok(201);
    let r = t.get(&contact_tl, tok).await;
    let r = r.ok(200);
    assert_eq!(titles(r), ["Likes tea", "Intro call"]);
    assert_eq!(r["pagination"]["total"], 2);
    let r = t.get(&format!("{contact_tl}?type=call"), tok).await;
    assert_eq!(titles(r.ok(200)), ["Intro call"]);
    let r = t.get(&format!("{contact_tl}?limit=1&page=2"), tok).await;
    assert_eq!(titles(r.ok(200)), ["Intro call"]);
    let r = t.get(&format!("{contact_tl}?search=TEA"), tok).await;
    assert_eq!(titles(r.ok(200)), ["Likes tea"]);
    t.get(&format!("{contact_tl}?tags=x"), tok)
        .await
        .problem(422, "invalid");
    t.get(&format!("{contact_tl}?type=dance"), tok)
        .await
        .problem(422, "invalid");

    // Company timeline is separate.
    t.post(&company_tl, tok, json!({"type": "meeting", "title": "QBR"}))
        .await
        .ok(201);
    assert_eq!(titles(t.get(&company_tl, tok).await.ok(200)), ["QBR"]);

    // Opportunity counters.
    let mut ids = Vec::new();
    for (kind, title) in [
        ("email", "Sent quote"),
        ("call", "Follow up"),
        ("note", "N"),
    ] {
        let r = t
            .post(&opp_tl, tok, json!({"type": kind, "title": title}))
            .await;
        let r = r.ok(201).clone();
        assert_eq!(r["opportunityId"], p.opportunity.as_str());
        ids.push(r["_id"].as_str().unwrap().to_owned());
    }
    let o = opp(&t, &ws, &p.opportunity).await;
    assert_eq!(
        (
            o.activity_count,
            o.email_count,
            o.call_count,
            o.meeting_count
        ),
        (3, 1, 1, 0)
    );
    assert!(o.last_activity_at.is_some());
    assert_eq!(t.get(&opp_tl, tok).await.ok(200)["pagination"]["total"], 3);

    // Patch and delete.
    let one = url(&ws, &format!("activities/{}", ids[0]));
    let r = t
        .patch(
            &one,
            tok,
            json!({"title": "Sent quote v2", "completed": true, "metadata": {"k": 1}}),
        )
        .await;
    let r = r.ok(200);
    assert_eq!(r["title"], "Sent quote v2");
    assert_eq!(r["completed"], true);
    assert_eq!(r["metadata"], json!({"k": 1}));
    t.patch(&one, tok, json!({"type": "call"}))
        .await
        .problem(422, "invalid");
    let d = t.delete(&one, tok).await;
    assert_eq!(d.status.as_u16(), 204);
    t.patch(&one, tok, json!({"title": "x"}))
        .await
        .problem(404, "not_found");
    let o = opp(&t, &ws, &p.opportunity).await;
    assert_eq!((o.activity_count, o.email_count, o.call_count), (2, 0, 1));

    // Validation.
    let r = t
        .post(
            &contact_tl,
            tok,
            json!({"type": "workflow_action", "title": "x"}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "type");
    let r = t
        .post(&contact_tl, tok, json!({"type": "call", "title": "   "}))
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "title");
    let r = t
        .post(
            &contact_tl,
            tok,
            json!({"type": "call", "title": "x", "duration": -1}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "duration");
    // Missing parents.
    let missing = crm_core::ObjectId::new();
    t.post(
        &url(&ws, &format!("contacts/{missing}/activities")),
        tok,
        json!({"type": "call", "title": "x"}),
    )
    .await
    .problem(404, "not_found");
    t.get(&url(&ws, &format!("companies/{missing}/activities")), tok)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn role_table() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let vic = t.register("vic@example.com").await;
    let mel = t.register("mel@example.com").await;
    let ws = t.workspace(&ann, "Sales").await;
    add_member(&t, &ws, &vic, Role::Viewer).await;
    add_member(&t, &ws, &mel, Role::Member).await;
    let p = parents(&t, &ws, &ann).await;
    let tl = url(&ws, &format!("opportunities/{}/activities", p.opportunity));
    let a = t
        .post(
            &tl,
            Some(&ann.access),
            json!({"type": "note", "title": "x"}),
        )
        .await;
    let one = url(
        &ws,
        &format!("activities/{}", a.ok(201)["_id"].as_str().unwrap()),
    );

    let v = Some(vic.access.as_str());
    t.get(&tl, v).await.ok(200);
    t.post(&tl, v, json!({"type": "note", "title": "y"}))
        .await
        .problem(403, "forbidden");
    t.patch(&one, v, json!({"title": "y"}))
        .await
        .problem(403, "forbidden");
    t.delete(&one, v).await.problem(403, "forbidden");

    let m = Some(mel.access.as_str());
    t.post(&tl, m, json!({"type": "note", "title": "y"}))
        .await
        .ok(201);
    t.patch(&one, m, json!({"title": "y"})).await.ok(200);
    t.delete(&one, m).await.problem(403, "forbidden");
    let d = t.delete(&one, Some(&ann.access)).await;
    assert_eq!(d.status.as_u16(), 204);
}

#[tokio::test]
async fn workspaces_are_isolated() {
    let t = TestApp::new();
    let ann = t.register("ann@example.com").await;
    let bob = t.register("bob@example.com").await;
    let mine = t.workspace(&ann, "Mine").await;
    let theirs = t.workspace(&bob, "Theirs").await;
    let a = Some(ann.access.as_str());
    let tp = parents(&t, &theirs, &bob).await;
    let their_activity = t
        .post(
            &url(&theirs, &format!("contacts/{}/activities", tp.contact)),
            Some(&bob.access),
            json!({"type": "call", "title": "theirs"}),
        )
        .await;
    let their_activity = their_activity.ok(201)["_id"].as_str().unwrap().to_owned();

    for tl in [
        format!("contacts/{}/activities", tp.contact),
        format!("companies/{}/activities", tp.company),
        format!("opportunities/{}/activities", tp.opportunity),
    ] {
        t.get(&url(&mine, &tl), a).await.problem(404, "not_found");
        t.post(&url(&mine, &tl), a, json!({"type": "note", "title": "x"}))
            .await
            .problem(404, "not_found");
    }
    let one = url(&mine, &format!("activities/{their_activity}"));
    t.patch(&one, a, json!({"title": "x"}))
        .await
        .problem(404, "not_found");
    t.delete(&one, a).await.problem(404, "not_found");
    // Nothing of theirs changed.
    let o = opp(&t, &theirs, &tp.opportunity).await;
    assert_eq!(o.activity_count, 0);
    let r = t
        .get(
            &url(&theirs, &format!("contacts/{}/activities", tp.contact)),
            Some(&bob.access),
        )
        .await;
    assert_eq!(titles(r.ok(200)), ["theirs"]);
    // An assignee from another workspace.
    let mp = parents(&t, &mine, &ann).await;
    let r = t
        .post(
            &url(&mine, &format!("contacts/{}/activities", mp.contact)),
            a,
            json!({"type": "task", "title": "x", "assigneeId": bob.id}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "assigneeId");
}
