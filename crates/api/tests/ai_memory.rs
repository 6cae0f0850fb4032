//! AI memory over HTTP: recall ranking, fact upsert and expiry, company and deal memories,
//! erasure when a contact is purged (through the `ai-memory` event consumer), the role table,
//! and every AI record's CRUD and workspace isolation (table-driven).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use ai_memory::memory::AIClientMemory;
use common::{Account, TestApp, World, add_member, seed, world};
use crm_core::accounts::Role;
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::entities::opportunity::Opportunity;
use crm_core::entities::pipeline::{PipelineId, StageId};
use crm_core::{Filter, WorkspaceId};
use serde_json::{Value, json};

fn url(ws: &str, rest: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{rest}")
}

async fn contact(t: &TestApp, ws: &str, owner: &Account) -> String {
    let c = Contact::new(ws.parse().unwrap(), owner.id.parse().unwrap(), "Ada");
    seed(t, ws, &c).await
}

async fn teach(w: &World, subject: (&str, &str), key: &str, value: &str, extra: Value) -> Value {
    let mut body = json!({subject.0: subject.1, "key": key, "value": value, "source": "email"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    w.t.post(&url(&w.ws, "ai-memory/facts"), w.tok(), body)
        .await
        .ok(200)
        .clone()
}

fn keys(recall: &Value) -> Vec<&str> {
    recall["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn recall_ranks_relevance_first_and_never_returns_expired_or_weak_facts() {
    let w = world().await;
    let c = contact(&w.t, &w.ws, &w.owner).await;
    let s = ("contactId", c.as_str());
    teach(
        &w,
        s,
        "budget_range",
        "$50k-100k",
        json!({"confidence": 50}),
    )
    .await;
    teach(&w, s, "favourite_colour", "blue", json!({"confidence": 95})).await;
    teach(
        &w,
        s,
        "weak_budget_guess",
        "budget maybe",
        json!({"confidence": 30}),
    )
    .await;
    teach(
        &w,
        s,
        "old_budget",
        "budget frozen until Q3",
        json!({"confidence": 100, "ttlSeconds": 60,
            "provenance": {"agentType": "email", "sourceType": "email", "sourceId": "m-1"}}),
    )
    .await;

    let r =
        w.t.get(
            &url(&w.ws, &format!("ai-memory/recall?contactId={c}&q=budget")),
            w.tok(),
        )
        .await;
    let body = r.ok(200);
    assert_eq!(
        keys(body),
        ["old_budget", "budget_range", "favourite_colour"]
    );
    let first = &body["facts"][0];
    assert_eq!(first["scoreParts"]["relevance"], 1.0);
    assert_eq!(first["provenance"]["sourceId"], "m-1");
    assert_eq!(first["provenance"]["recordedBy"]["userId"], w.owner.id);
    // The matching fact outranks a higher-confidence unrelated one.
    let (budget, colour) = (&body["facts"][1], &body["facts"][2]);
    assert!(budget["score"].as_f64().unwrap() > colour["score"].as_f64().unwrap());
    assert!(colour["confidence"].as_f64().unwrap() > budget["confidence"].as_f64().unwrap());
    assert_eq!(colour["scoreParts"]["relevance"], 0.0);

    // Past its TTL a fact is never returned, by recall or by the memory itself.
    w.t.clock.advance_secs(61);
    let r =
        w.t.get(
            &url(&w.ws, &format!("ai-memory/recall?contactId={c}&q=budget")),
            w.tok(),
        )
        .await;
    assert_eq!(keys(r.ok(200)), ["budget_range", "favourite_colour"]);
    let m =
        w.t.get(&url(&w.ws, &format!("ai-memory?contactId={c}")), w.tok())
            .await;
    let m = m.ok(200);
    assert!(
        m["facts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["key"] != "old_budget")
    );
    // The original's shape: one document per contact.
    assert_eq!(m["contactId"], c.as_str());
    assert_eq!(m["workspaceId"], w.ws.as_str());

    let r =
        w.t.get(
            &url(
                &w.ws,
                &format!("ai-memory/recall?contactId={c}&q=budget&limit=1"),
            ),
            w.tok(),
        )
        .await;
    assert_eq!(keys(r.ok(200)), ["budget_range"]);
}

#[tokio::test]
async fn a_fact_of_the_same_key_is_confirmed_and_can_be_forgotten() {
    let w = world().await;
    let c = contact(&w.t, &w.ws, &w.owner).await;
    let s = ("contactId", c.as_str());
    teach(&w, s, "timeline", "Q2", json!({"confidence": 70})).await;
    let m = teach(&w, s, "timeline", "Q3", json!({"confidence": 60})).await;
    let facts = m["facts"].as_array().unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0]["confirmedCount"], 2);
    assert_eq!(facts[0]["confidence"], 70.0);
    assert_eq!(facts[0]["value"], "Q3");

    let del = url(&w.ws, &format!("ai-memory/facts/timeline?contactId={c}"));
    assert_eq!(w.t.delete(&del, w.tok()).await.status, 204);
    w.t.delete(&del, w.tok()).await.problem(404, "not_found");
    let r =
        w.t.get(
            &url(&w.ws, &format!("ai-memory/recall?contactId={c}")),
            w.tok(),
        )
        .await;
    assert!(keys(r.ok(200)).is_empty());

    // Bad input: no subject, two subjects, confidence out of range, empty key.
    let f = url(&w.ws, "ai-memory/facts");
    for body in [
        json!({"key": "k", "value": "v", "source": "s"}),
        json!({"contactId": c, "companyId": c, "key": "k", "value": "v", "source": "s"}),
        json!({"contactId": c, "key": "k", "value": "v", "source": "s", "confidence": 101}),
        json!({"contactId": c, "key": " ", "value": "v", "source": "s"}),
        json!({"contactId": c, "key": "k", "value": "v", "source": "s", "ttlSeconds": 0}),
    ] {
        w.t.post(&f, w.tok(), body).await.problem(422, "invalid");
    }
}

#[tokio::test]
async fn interactions_keep_the_last_fifty_with_totals() {
    let w = world().await;
    let c = contact(&w.t, &w.ws, &w.owner).await;
    let post = url(&w.ws, "ai-memory/interactions");
    let mut last = Value::Null;
    for i in 0..52 {
        w.t.clock.advance_secs(1);
        let outcome = if i % 4 == 0 { "positive" } else { "neutral" };
        last =
            w.t.post(
                &post,
                w.tok(),
                json!({"contactId": c, "agentType": "sales", "query": format!("q{i}"),
                    "summary": format!("answer {i}"), "outcome": outcome}),
            )
            .await
            .ok(200)
            .clone();
    }
    let list = last["interactions"].as_array().unwrap();
    assert_eq!(list.len(), 50);
    assert_eq!(list[0]["summary"], "answer 2");
    assert_eq!(list[49]["summary"], "answer 51");
    assert_eq!(last["totalInteractions"], 52);
    // 13 of 52 were positive.
    assert!((last["positiveOutcomeRate"].as_f64().unwrap() - 0.25).abs() < 1e-9);
    assert_eq!(last["lastInteractionAt"], list[49]["date"]);
    for bad in [
        json!({"contactId": c, "agentType": "sales", "summary": ""}),
        json!({"contactId": c, "agentType": "sales", "summary": "s", "feedbackScore": 2}),
        json!({"contactId": c, "agentType": "sales", "summary": "s", "outcome": "great"}),
        json!({"contactId": c, "agentType": "sales", "summary": "s", "query": "q".repeat(501)}),
    ] {
        w.t.post(&post, w.tok(), bad).await.problem(422, "invalid");
    }
}

#[tokio::test]
async fn companies_and_deals_have_memories_of_their_own() {
    let w = world().await;
    let ws: WorkspaceId = w.ws.parse().unwrap();
    let owner = w.owner.id.parse().unwrap();
    let co = seed(&w.t, &w.ws, &Company::new(ws, owner, "Acme")).await;
    let deal = seed(
        &w.t,
        &w.ws,
        &Opportunity::new(ws, owner, PipelineId::new(), StageId::new(), "Deal", 10.0),
    )
    .await;
    teach(&w, ("companyId", &co), "headcount", "120 people", json!({})).await;
    teach(&w, ("dealId", &deal), "blocker", "legal review", json!({})).await;
    let r =
        w.t.get(
            &url(&w.ws, &format!("ai-memory/recall?companyId={co}&q=people")),
            w.tok(),
        )
        .await;
    let body = r.ok(200);
    assert_eq!(keys(body), ["headcount"]);
    assert_eq!(body["entityType"], "company");
    let m =
        w.t.get(&url(&w.ws, &format!("ai-memory?dealId={deal}")), w.tok())
            .await;
    let m = m.ok(200);
    assert_eq!(m["entityType"], "deal");
    assert_eq!(m["entityId"], deal.as_str());
    assert!(m.get("contactId").is_none());
    assert_eq!(m["facts"][0]["key"], "blocker");
}

#[tokio::test]
async fn purging_a_contact_erases_its_memory() {
    let w = world().await;
    let c = contact(&w.t, &w.ws, &w.owner).await;
    let keep = contact(&w.t, &w.ws, &w.owner).await;
    teach(&w, ("contactId", &c), "budget", "50k", json!({})).await;
    teach(&w, ("contactId", &keep), "budget", "80k", json!({})).await;
    let memories = || async {
        w.t.state
            .stores
            .workspace(w.ws.parse().unwrap())
            .repo::<AIClientMemory>()
            .count(&Filter::all())
            .await
            .unwrap()
    };
    assert_eq!(memories().await, 2);
    let r =
        w.t.delete(&url(&w.ws, &format!("contacts/{c}?purge=true")), w.tok())
            .await;
    assert_eq!(r.status, 204, "{}", r.body);
    // The erasure is the consumer's work: nothing happens until the events are delivered.
    assert_eq!(memories().await, 2);
    w.t.run_jobs().await;
    assert_eq!(memories().await, 1);
    let r =
        w.t.get(
            &url(&w.ws, &format!("ai-memory/recall?contactId={keep}")),
            w.tok(),
        )
        .await;
    assert_eq!(keys(r.ok(200)), ["budget"]);
    // Delivered again (at least once), the erasure changes nothing more.
    w.t.run_jobs().await;
    assert_eq!(memories().await, 1);
}

#[tokio::test]
async fn roles_follow_the_table() {
    let w = world().await;
    let viewer = w.t.register("viewer@example.com").await;
    let member = w.t.register("member@example.com").await;
    let admin = w.t.register("admin@example.com").await;
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    add_member(&w.t, &w.ws, &admin, Role::Admin).await;
    let c = contact(&w.t, &w.ws, &w.owner).await;
    let fact = json!({"contactId": c, "key": "k", "value": "v", "source": "s"});
    let facts = url(&w.ws, "ai-memory/facts");
    let recall = url(&w.ws, &format!("ai-memory/recall?contactId={c}"));
    let del = url(&w.ws, &format!("ai-memory/facts/k?contactId={c}"));

    w.t.post(&facts, Some(&viewer.access), fact.clone())
        .await
        .problem(403, "forbidden");
    w.t.get(&recall, Some(&viewer.access)).await.ok(200);
    w.t.post(&facts, Some(&member.access), fact.clone())
        .await
        .ok(200);
    w.t.delete(&del, Some(&member.access))
        .await
        .problem(403, "forbidden");
    assert_eq!(w.t.delete(&del, Some(&admin.access)).await.status, 204);

    // The plain records: viewer reads, member creates and edits, admin deletes.
    let agents = url(&w.ws, "agents");
    w.t.post(&agents, Some(&viewer.access), json!({"name": "A"}))
        .await
        .problem(403, "forbidden");
    let a =
        w.t.post(&agents, Some(&member.access), json!({"name": "A"}))
            .await;
    let id = a.ok(201)["_id"].as_str().unwrap().to_owned();
    assert_eq!(a.body["createdBy"], member.id.as_str());
    let one = url(&w.ws, &format!("agents/{id}"));
    w.t.get(&one, Some(&viewer.access)).await.ok(200);
    w.t.patch(&one, Some(&viewer.access), json!({"status": "Live"}))
        .await
        .problem(403, "forbidden");
    w.t.patch(&one, Some(&member.access), json!({"status": "Live"}))
        .await
        .ok(200);
    w.t.delete(&one, Some(&member.access))
        .await
        .problem(403, "forbidden");
    assert_eq!(w.t.delete(&one, Some(&admin.access)).await.status, 204);
}

/// Ids of the records other AI records point at, per workspace.
struct Refs {
    owner: String,
    conversation: String,
    agent: String,
}

async fn refs(w: &World, ws: &str, tok: Option<&str>, owner: &str) -> Refs {
    let conversation =
        w.t.post(&url(ws, "conversations"), tok, json!({"visitorId": "v-1"}))
            .await
            .ok(201)["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let agent =
        w.t.post(&url(ws, "agents"), tok, json!({"name": "Helper"}))
            .await
            .ok(201)["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    Refs {
        owner: owner.to_owned(),
        conversation,
        agent,
    }
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

fn table(r: &Refs) -> Vec<Row> {
    vec![
        (
            "agent-sessions",
            "sessions",
            json!({"sessionId": "s-1", "expiresAt": "2030-01-01T00:00:00Z",
                "messages": [{"role": "user", "content": "hi", "timestamp": "2026-01-01T00:00:00Z"}]}),
            json!({"context": {"page": "deals"}}),
            "context",
            None,
        ),
        (
            "agent-performance",
            "records",
            json!({"agentType": "sales", "responseTimeMs": 120}),
            json!({"helpful": true}),
            "helpful",
            None,
        ),
        (
            "agent-insights",
            "insights",
            json!({"contextType": "contact", "agentType": "sales",
                "insights": {"type": "risk", "title": "T", "description": "D"}}),
            json!({"status": "shown"}),
            "status",
            None,
        ),
        (
            "ai-notifications",
            "notifications",
            json!({"userId": r.owner, "type": "hot_lead", "title": "Hot", "message": "Call now",
                "expiresAt": "2030-01-01T00:00:00Z"}),
            json!({"status": "dismissed"}),
            "status",
            None,
        ),
        (
            "conversations",
            "conversations",
            json!({"visitorId": "v-2"}),
            json!({"status": "closed"}),
            "status",
            None,
        ),
        (
            "chat-messages",
            "messages",
            json!({"conversationId": r.conversation, "message": "<script>alert(1)</script>",
                "senderType": "visitor"}),
            json!({"isRead": true}),
            "isRead",
            Some("conversationId"),
        ),
        (
            "meetings",
            "meetings",
            json!({"attendee": {"name": "Ann", "email": "ann@example.com"},
                "hostUserId": r.owner, "scheduledAt": "2030-01-01T10:00:00Z"}),
            json!({"status": "completed"}),
            "status",
            None,
        ),
        (
            "business-profiles",
            "profiles",
            json!({"industry": "saas"}),
            json!({"companyName": "Acme"}),
            "companyName",
            None,
        ),
        (
            "agents",
            "agents",
            json!({"name": "Second"}),
            json!({"status": "Paused"}),
            "status",
            None,
        ),
        (
            "agent-executions",
            "executions",
            json!({"executionId": "e-1", "agent": r.agent}),
            json!({"status": "completed"}),
            "status",
            Some("agent"),
        ),
        (
            "agent-test-runs",
            "testRuns",
            json!({"testRunId": "t-1", "agent": r.agent}),
            json!({"summary": {"totalSteps": 1}}),
            "summary",
            Some("agent"),
        ),
        (
            "agent-memory",
            "memory",
            json!({"agent": r.agent, "key": "k", "value": {"x": 1}}),
            json!({"value": 2}),
            "value",
            Some("agent"),
        ),
        (
            "agent-copilot-conversations",
            "conversations",
            json!({"agent": r.agent, "user": r.owner, "expiresAt": "2030-01-01T00:00:00Z"}),
            json!({"expiresAt": "2031-01-01T00:00:00.000Z"}),
            "expiresAt",
            Some("agent"),
        ),
    ]
}

#[tokio::test]
async fn every_ai_record_has_crud_and_is_invisible_from_another_workspace() {
    let w = world().await;
    let other = w.t.register("other@example.com").await;
    let ws_b = w.t.workspace(&other, "Other").await;
    let tok_b = Some(other.access.as_str());
    let ra = refs(&w, &w.ws, w.tok(), &w.owner.id).await;
    let rb = refs(&w, &ws_b, tok_b, &other.id).await;
    for (path, plural, create, patch, field, reference) in table(&ra) {
        let made = w.t.post(&url(&w.ws, path), w.tok(), create.clone()).await;
        let made = made.ok(201).clone();
        let id = made["_id"].as_str().unwrap().to_owned();
        // The legacy Agent models keep the original's tenant field.
        let legacy = [
            "business-profiles",
            "agents",
            "agent-executions",
            "agent-test-runs",
            "agent-memory",
            "agent-copilot-conversations",
        ];
        let tenant = if legacy.contains(&path) {
            "workspace"
        } else {
            "workspaceId"
        };
        assert_eq!(made[tenant], w.ws.as_str(), "{path}: {made}");
        let one = url(&w.ws, &format!("{path}/{id}"));
        assert_eq!(
            w.t.get(&one, w.tok()).await.ok(200)["_id"],
            id.as_str(),
            "{path}"
        );
        let list = w.t.get(&url(&w.ws, path), w.tok()).await;
        assert!(
            list.ok(200)[plural]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["_id"] == id.as_str()),
            "{path}"
        );
        let patched = w.t.patch(&one, w.tok(), patch.clone()).await;
        assert_eq!(patched.ok(200)[field], patch[field], "{path}");

        // Another workspace's id in the path: 404 for read, write and delete; its lists
        // never show the record.
        let theirs = url(&ws_b, &format!("{path}/{id}"));
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
                .all(|x| x["_id"] != id.as_str()),
            "{path}"
        );
        // A reference into another workspace is refused.
        if let Some(f) = reference {
            let mut bad = create.clone();
            bad[f] = json!(match f {
                "conversationId" => rb.conversation.clone(),
                _ => rb.agent.clone(),
            });
            let r = w.t.post(&url(&w.ws, path), w.tok(), bad).await;
            assert_eq!(r.problem(422, "invalid").body["field"], f, "{path}");
        }
        assert_eq!(w.t.delete(&one, w.tok()).await.status, 204, "{path}");
        w.t.get(&one, w.tok()).await.problem(404, "not_found");
    }
    // Script text is stored verbatim.
    let m =
        w.t.post(
            &url(&w.ws, "chat-messages"),
            w.tok(),
            json!({"conversationId": ra.conversation, "message": "<script>alert(1)</script>",
                "senderType": "visitor"}),
        )
        .await;
    assert_eq!(m.ok(201)["message"], "<script>alert(1)</script>");
    // One business profile per workspace.
    w.t.post(
        &url(&w.ws, "business-profiles"),
        w.tok(),
        json!({"industry": "saas"}),
    )
    .await
    .ok(201);
    w.t.post(
        &url(&w.ws, "business-profiles"),
        w.tok(),
        json!({"industry": "retail"}),
    )
    .await
    .problem(409, "conflict");
    // One session id per workspace (unique key), but the same id in another workspace is fine.
    let s = json!({"sessionId": "dup", "expiresAt": "2030-01-01T00:00:00Z"});
    w.t.post(&url(&w.ws, "agent-sessions"), w.tok(), s.clone())
        .await
        .ok(201);
    w.t.post(&url(&w.ws, "agent-sessions"), w.tok(), s.clone())
        .await
        .problem(409, "conflict");
    w.t.post(&url(&ws_b, "agent-sessions"), tok_b, s)
        .await
        .ok(201);
}

#[tokio::test]
async fn memory_routes_refuse_another_workspaces_records() {
    let w = world().await;
    let other = w.t.register("other@example.com").await;
    let ws_b = w.t.workspace(&other, "Other").await;
    let theirs = contact(&w.t, &ws_b, &other).await;
    let mine = contact(&w.t, &w.ws, &w.owner).await;
    // Their contact named in my workspace: 422, never their data.
    let r =
        w.t.post(
            &url(&w.ws, "ai-memory/facts"),
            w.tok(),
            json!({"contactId": theirs, "key": "k", "value": "v", "source": "s"}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "contactId");
    w.t.post(
        &url(&ws_b, "ai-memory/facts"),
        Some(&other.access),
        json!({"contactId": theirs, "key": "secret", "value": "v", "source": "s"}),
    )
    .await
    .ok(200);
    w.t.get(
        &url(&w.ws, &format!("ai-memory/recall?contactId={theirs}")),
        w.tok(),
    )
    .await
    .problem(422, "invalid");
    w.t.get(
        &url(&w.ws, &format!("ai-memory?contactId={theirs}")),
        w.tok(),
    )
    .await
    .problem(422, "invalid");
    w.t.delete(
        &url(&w.ws, &format!("ai-memory/facts/secret?contactId={theirs}")),
        w.tok(),
    )
    .await
    .problem(422, "invalid");
    // My workspace through their workspace's path: not a member, 404.
    w.t.get(
        &url(&ws_b, &format!("ai-memory/recall?contactId={mine}")),
        w.tok(),
    )
    .await
    .problem(404, "not_found");
    // Their fact is still theirs.
    let r =
        w.t.get(
            &url(&ws_b, &format!("ai-memory/recall?contactId={theirs}")),
            Some(&other.access),
        )
        .await;
    assert_eq!(keys(r.ok(200)), ["secret"]);
}
