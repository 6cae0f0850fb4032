//! Contact duplicates, merges and their history, the purge cascade and the email a trashed
//! contact sets aside, over HTTP: each duplicate rule, every reference a merge moves, the role
//! table (merging trashes records: owner and admins only) and cross-workspace ids refused with
//! nothing written.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{TestApp, World, add_member, seed, world};
use crm_core::Filter;
use crm_core::accounts::Role;
use crm_core::entities::activity::{Activity, ActivityEntityType, ActivityType};
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::entities::contact_list::{ContactList, ListType};
use crm_core::entities::contact_merge::ContactMerge;
use crm_core::entities::opportunity::Opportunity;
use crm_core::entities::pipeline::{PipelineId, StageId};
use crm_core::entities::task::Task;
use crm_core::entities::ticket::Ticket;
use crm_core::repo::WorkspaceEntity;
use crm_core::{FindOptions, Timestamp};
use serde_json::{Map, Value, json};

fn contacts(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/contacts")
}

/// A second workspace in the same app, owned by someone else.
async fn other_ws(w: &World) -> (common::Account, String) {
    let eve = w.t.register("eve@example.com").await;
    let ws = w.t.workspace(&eve, "Elsewhere").await;
    (eve, ws)
}

fn new_contact(w: &World, first: &str, last: &str) -> Contact {
    let mut c = Contact::new(w.ws.parse().unwrap(), w.owner.id.parse().unwrap(), first);
    c.last_name = last.into();
    c
}

async fn all<E: WorkspaceEntity>(t: &TestApp, ws: &str) -> Vec<E> {
    t.state
        .stores
        .workspace(ws.parse().unwrap())
        .repo::<E>()
        .find(&Filter::all(), &FindOptions::default())
        .await
        .unwrap()
}

async fn one<E: WorkspaceEntity>(t: &TestApp, ws: &str, id: &str) -> E {
    t.state
        .stores
        .workspace(ws.parse().unwrap())
        .repo::<E>()
        .get(id.parse::<crm_core::ObjectId>().unwrap())
        .await
        .unwrap()
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

fn group<'a>(report: &'a Value, reason: &str) -> Vec<&'a Value> {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["reason"] == reason)
        .collect()
}

#[tokio::test]
async fn duplicates_found_by_each_rule() {
    let w = world().await;
    let (eve, other) = other_ws(&w).await;
    let tok = w.tok();
    // Stored as an older import would have them: case and spaces differ.
    let a = seed(
        &w.t,
        &w.ws,
        &new_contact(&w, "Ada", "L").with_email("Ada@Example.com"),
    )
    .await;
    let b = seed(
        &w.t,
        &w.ws,
        &new_contact(&w, "Ada", "K").with_email("ada@example.com "),
    )
    .await;
    let mut p1 = new_contact(&w, "Phil", "One");
    p1.phone = Some("+1 (555) 010-9999".into());
    let p1 = seed(&w.t, &w.ws, &p1).await;
    let mut p2 = new_contact(&w, "Phil", "Two");
    p2.phone = Some("15550109999".into());
    let p2 = seed(&w.t, &w.ws, &p2).await;
    // Too short to count.
    for _ in 0..2 {
        let mut s = new_contact(&w, "Short", "Phone");
        s.phone = Some("12-34".into());
        seed(&w.t, &w.ws, &s).await;
    }
    let n1 =
        w.t.post(
            &contacts(&w.ws),
            tok,
            json!({"firstName": "Grace", "lastName": "Hopper", "company": "Navy"}),
        )
        .await
        .ok(201)["_id"]
            .clone();
    let n2 =
        w.t.post(
            &contacts(&w.ws),
            tok,
            json!({"firstName": " grace ", "lastName": "HOPPER", "company": "navy "}),
        )
        .await
        .ok(201)["_id"]
            .clone();
    // Same name, other company: no match. A trashed look-alike: not counted.
    w.t.post(
        &contacts(&w.ws),
        tok,
        json!({"firstName": "Grace", "lastName": "Hopper", "company": "Army"}),
    )
    .await
    .ok(201);
    let gone =
        w.t.post(
            &contacts(&w.ws),
            tok,
            json!({"firstName": "Grace", "lastName": "Hopper", "company": "Navy"}),
        )
        .await
        .ok(201)["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    w.t.delete(&format!("{}/{gone}", contacts(&w.ws)), tok)
        .await;
    // Another workspace's twin never joins a group here.
    let mut twin = Contact::new(other.parse().unwrap(), eve.id.parse().unwrap(), "Phil");
    twin.phone = Some("15550109999".into());
    seed(&w.t, &other, &twin).await;

    let r =
        w.t.get(&format!("{}/duplicates", contacts(&w.ws)), tok)
            .await;
    let report = r.ok(200).clone();
    assert_eq!(report["complete"], true);
    assert_eq!(report["allGroups"], true);
    assert_eq!(report["scanned"], 9);
    assert_eq!(report["groups"].as_array().unwrap().len(), 3, "{report}");
    let e = group(&report, "email");
    assert_eq!(ids(&e[0]["contactIds"]), [a.clone(), b.clone()]);
    assert_eq!(e[0]["key"], "ada@example.com");
    assert_eq!(e[0]["score"], 95);
    let p = group(&report, "phone");
    assert_eq!(ids(&p[0]["contactIds"]), [p1, p2]);
    assert_eq!(p[0]["key"], "15550109999");
    let n = group(&report, "nameAndCompany");
    assert_eq!(n[0]["contactIds"], json!([n1, n2]));
    // Best score first.
    assert_eq!(report["groups"][0]["reason"], "email");

    let r =
        w.t.get(&format!("{}/duplicates?limit=1", contacts(&w.ws)), tok)
            .await;
    let capped = r.ok(200);
    assert_eq!(capped["groups"].as_array().unwrap().len(), 1);
    assert_eq!(capped["allGroups"], false);
    for bad in ["limit=0", "limit=201"] {
        w.t.get(&format!("{}/duplicates?{bad}", contacts(&w.ws)), tok)
            .await
            .problem(422, "invalid");
    }
    // Not a member of the other workspace.
    w.t.get(&format!("{}/duplicates", contacts(&other)), tok)
        .await
        .problem(404, "not_found");
}

/// A primary and two duplicates with something pointing at each duplicate.
struct Scene {
    w: World,
    p: String,
    d1: String,
    d2: String,
    activity: String,
    task: String,
    ticket: String,
    deal: String,
    list: String,
    linked: String,
}

async fn scene() -> Scene {
    let w = world().await;
    let ws = w.ws.parse().unwrap();
    let owner = w.owner.id.parse().unwrap();
    let mut p = new_contact(&w, "Ada", "");
    p.phone = Some("111 111 1111".into());
    p.tags = vec!["a".into()];
    p.custom_fields = Map::from_iter([("k1".into(), json!(1))]);
    let p = seed(&w.t, &w.ws, &p).await;
    let mut d1 = new_contact(&w, "Augusta", "King").with_email("ada@example.com");
    d1.phone = Some("222 222 2222".into());
    d1.tags = vec!["b".into(), "a".into()];
    d1.custom_fields = Map::from_iter([("k1".into(), json!(9)), ("k2".into(), json!(2))]);
    let d1 = seed(&w.t, &w.ws, &d1).await;
    let mut d2 = new_contact(&w, "A", "Lovelace");
    d2.job_title = Some("Countess".into());
    d2.tags = vec!["c".into()];
    let d2 = seed(&w.t, &w.ws, &d2).await;
    let cid = |s: &str| -> ContactId { s.parse().unwrap() };

    let mut act = Activity::new(ws, ActivityType::Note, "Met at the ball");
    act.entity_type = Some(ActivityEntityType::Contact);
    act.entity_id = Some(d1.parse().unwrap());
    let activity = seed(&w.t, &w.ws, &act).await;
    let mut task = Task::new(ws, owner, "Write back");
    task.related_contact_id = Some(cid(&d1));
    let task = seed(&w.t, &w.ws, &task).await;
    let mut ticket = Ticket::new(
        ws,
        "TKT-0001",
        "Help",
        "Engine stuck",
        "d2@example.com",
        owner,
    );
    ticket.related_contact_id = Some(cid(&d2));
    ticket.requester_id = Some(cid(&d2));
    let ticket = seed(&w.t, &w.ws, &ticket).await;
    let mut deal = Opportunity::new(ws, owner, PipelineId::new(), StageId::new(), "Engine", 5.0);
    deal.contact_id = Some(cid(&d1));
    deal.contact_name = Some("Augusta King".into());
    deal.associated_contacts = vec![cid(&d2), cid(&p)];
    let deal = seed(&w.t, &w.ws, &deal).await;
    let mut list = ContactList::new(ws, owner, "VIP", ListType::Static);
    list.contacts = vec![cid(&d1), cid(&d2), cid(&p)];
    let list = seed(&w.t, &w.ws, &list).await;
    let mut linked = new_contact(&w, "Byron", "");
    linked.linked_contact_id = Some(cid(&d2));
    let linked = seed(&w.t, &w.ws, &linked).await;
    Scene {
        w,
        p,
        d1,
        d2,
        activity,
        task,
        ticket,
        deal,
        list,
        linked,
    }
}

#[tokio::test]
async fn merge_moves_every_reference_and_keeps_history() {
    let s = scene().await;
    let (w, tok) = (&s.w, s.w.tok());
    let r =
        w.t.post(
            &format!("{}/merge", contacts(&w.ws)),
            tok,
            json!({"primaryId": s.p, "duplicateIds": [s.d1, s.d2],
                "fields": {"lastName": s.d2, "phone": s.p}}),
        )
        .await;
    let out = r.ok(200).clone();
    let c = &out["contact"];
    assert_eq!(c["_id"], s.p.as_str());
    assert_eq!(c["firstName"], "Ada");
    // Chosen, filled (the email the first duplicate held), and kept.
    assert_eq!(c["lastName"], "Lovelace");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["jobTitle"], "Countess");
    assert_eq!(c["phone"], "111 111 1111");
    assert_eq!(c["tags"], json!(["a", "b", "c"]));
    assert_eq!(c["customFields"], json!({"k1": 1, "k2": 2}));
    let m = &out["merge"];
    assert_eq!(m["primaryId"], s.p.as_str());
    assert_eq!(m["duplicateIds"], json!([s.d1, s.d2]));
    assert_eq!(m["mergedBy"], w.owner.id.as_str());
    assert!(m["completedAt"].is_string());

    let ws = &w.ws;
    let act: Activity = one(&w.t, ws, &s.activity).await;
    assert_eq!(act.entity_id.unwrap().to_hex(), s.p);
    let task: Task = one(&w.t, ws, &s.task).await;
    assert_eq!(task.related_contact_id.unwrap().to_string(), s.p);
    let ticket: Ticket = one(&w.t, ws, &s.ticket).await;
    assert_eq!(ticket.related_contact_id.unwrap().to_string(), s.p);
    assert_eq!(ticket.requester_id.unwrap().to_string(), s.p);
    let deal: Opportunity = one(&w.t, ws, &s.deal).await;
    assert_eq!(deal.contact_id.unwrap().to_string(), s.p);
    assert_eq!(deal.contact_name.as_deref(), Some("Ada Lovelace"));
    let assoc: Vec<String> = deal
        .associated_contacts
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(assoc, [s.p.as_str()]);
    let list: ContactList = one(&w.t, ws, &s.list).await;
    let members: Vec<String> = list.contacts.iter().map(ToString::to_string).collect();
    assert_eq!(members, [s.p.as_str()]);
    let linked: Contact = one(&w.t, ws, &s.linked).await;
    assert_eq!(linked.linked_contact_id.unwrap().to_string(), s.p);

    // The duplicates are in the trash, pointing at the primary, their email set aside.
    for d in [&s.d1, &s.d2] {
        w.t.get(&format!("{}/{d}", contacts(ws)), tok)
            .await
            .problem(404, "not_found");
        let gone: Contact = one(&w.t, ws, d).await;
        assert!(gone.deleted_at.is_some());
        assert_eq!(gone.merged_into.unwrap().to_string(), s.p);
        assert!(gone.email.is_none());
    }
    let d1: Contact = one(&w.t, ws, &s.d1).await;
    assert_eq!(d1.trashed_email.as_deref(), Some("ada@example.com"));

    // The history, from the primary and from a duplicate.
    for id in [&s.p, &s.d2] {
        let r = w.t.get(&format!("{}/{id}/merges", contacts(ws)), tok).await;
        let h = r.ok(200).clone();
        assert_eq!(h["pagination"]["total"], 1, "{h}");
        let rec = &h["merges"][0];
        assert_eq!(rec["_id"], m["_id"]);
        assert_eq!(rec["primarySnapshot"]["phone"], "111 111 1111");
        assert_eq!(rec["duplicateSnapshots"][0]["email"], "ada@example.com");
        assert_eq!(rec["duplicateSnapshots"][1]["jobTitle"], "Countess");
        assert_eq!(rec["fields"]["lastName"], s.d2.as_str());
    }
    let r =
        w.t.get(&format!("{}/{}/merges", contacts(ws), s.linked), tok)
            .await;
    assert_eq!(r.ok(200)["merges"], json!([]));

    // A merged duplicate can be restored; the history stays.
    let r =
        w.t.post(
            &format!("{}/{}/restore", contacts(ws), s.d2),
            tok,
            json!({}),
        )
        .await;
    assert!(r.ok(200).get("mergedInto").is_none());
    // It cannot take back an email the primary now holds.
    w.t.post(
        &format!("{}/{}/restore", contacts(ws), s.d1),
        tok,
        json!({}),
    )
    .await
    .problem(409, "conflict");
}

#[tokio::test]
async fn merge_refuses_bad_and_foreign_ids_writing_nothing() {
    let s = scene().await;
    let (w, tok) = (&s.w, s.w.tok());
    let (eve, other) = other_ws(w).await;
    let foreign = seed(
        &w.t,
        &other,
        &Contact::new(other.parse().unwrap(), eve.id.parse().unwrap(), "Eve"),
    )
    .await;
    let trashed = seed(&w.t, &w.ws, &{
        let mut c = new_contact(w, "Old", "");
        c.deleted_at = Some(Timestamp::now());
        c
    })
    .await;
    let url = format!("{}/merge", contacts(&w.ws));
    let before: Vec<Contact> = all(&w.t, &w.ws).await;

    let cases = [
        (
            json!({"primaryId": foreign, "duplicateIds": [s.d1]}),
            "primaryId",
        ),
        (
            json!({"primaryId": s.p, "duplicateIds": [s.d1, foreign]}),
            "duplicateIds[1]",
        ),
        (
            json!({"primaryId": s.p, "duplicateIds": [trashed]}),
            "duplicateIds[0]",
        ),
        (
            json!({"primaryId": s.p, "duplicateIds": [s.p]}),
            "duplicateIds[0]",
        ),
        (
            json!({"primaryId": s.p, "duplicateIds": []}),
            "duplicateIds",
        ),
        (
            json!({"primaryId": "nope", "duplicateIds": [s.d1]}),
            "primaryId",
        ),
        (
            json!({"primaryId": s.p, "duplicateIds": [s.d1], "fields": {"email": foreign}}),
            "fields.email",
        ),
        (
            json!({"primaryId": s.p, "duplicateIds": [s.d1], "fields": {"tags": s.d1}}),
            "fields.tags",
        ),
    ];
    for (body, field) in cases {
        let r = w.t.post(&url, tok, body.clone()).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field, "{body}");
    }
    let eleven: Vec<String> = (0..11)
        .map(|_| crm_core::ObjectId::new().to_hex())
        .collect();
    w.t.post(&url, tok, json!({"primaryId": s.p, "duplicateIds": eleven}))
        .await
        .problem(422, "invalid");
    w.t.post(
        &url,
        tok,
        json!({"primaryId": s.p, "duplicateIds": [s.d1], "x": 1}),
    )
    .await
    .problem(422, "invalid");
    // Through the other workspace's URL: not a member.
    w.t.post(
        &format!("{}/merge", contacts(&other)),
        tok,
        json!({"primaryId": foreign, "duplicateIds": [s.d1]}),
    )
    .await
    .problem(404, "not_found");
    // Another workspace's contact's history: 404.
    w.t.get(&format!("{}/{foreign}/merges", contacts(&w.ws)), tok)
        .await
        .problem(404, "not_found");

    let after: Vec<Contact> = all(&w.t, &w.ws).await;
    assert_eq!(before, after, "a refused merge changed contacts");
    assert!(all::<ContactMerge>(&w.t, &w.ws).await.is_empty());
    let deal: Opportunity = one(&w.t, &w.ws, &s.deal).await;
    assert_eq!(deal.contact_id.unwrap().to_string(), s.d1);
    let theirs: Contact = one(&w.t, &other, &foreign).await;
    assert!(theirs.deleted_at.is_none());
}

#[tokio::test]
async fn merge_role_table() {
    let s = scene().await;
    let w = &s.w;
    let (viewer, member, admin) = (
        w.t.register("viewer@example.com").await,
        w.t.register("member@example.com").await,
        w.t.register("admin@example.com").await,
    );
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    add_member(&w.t, &w.ws, &admin, Role::Admin).await;
    let url = format!("{}/merge", contacts(&w.ws));
    let body = json!({"primaryId": s.p, "duplicateIds": [s.d1]});
    for who in [&viewer, &member] {
        let tok = Some(who.access.as_str());
        w.t.get(&format!("{}/duplicates", contacts(&w.ws)), tok)
            .await
            .ok(200);
        w.t.get(&format!("{}/{}/merges", contacts(&w.ws), s.p), tok)
            .await
            .ok(200);
        // Merging trashes the duplicates, and only owner and admins delete.
        w.t.post(&url, tok, body.clone())
            .await
            .problem(403, "forbidden");
    }
    assert!(all::<ContactMerge>(&w.t, &w.ws).await.is_empty());
    let r = w.t.post(&url, Some(&admin.access), body).await;
    assert_eq!(r.ok(200)["merge"]["mergedBy"], admin.id.as_str());
}

#[tokio::test]
async fn trashed_contacts_free_their_email() {
    let w = world().await;
    let tok = w.tok();
    let body = json!({"firstName": "T", "email": "t@example.com"});
    let first = w.t.post(&contacts(&w.ws), tok, body.clone()).await;
    let first = first.ok(201)["_id"].as_str().unwrap().to_owned();
    assert_eq!(
        w.t.delete(&format!("{}/{first}", contacts(&w.ws)), tok)
            .await
            .status,
        204
    );
    let r =
        w.t.get(&format!("{}?deleted=true", contacts(&w.ws)), tok)
            .await;
    assert_eq!(r.ok(200)["contacts"][0]["trashedEmail"], "t@example.com");
    // The email is free for a new contact...
    let second = w.t.post(&contacts(&w.ws), tok, body.clone()).await;
    let second = second.ok(201)["_id"].as_str().unwrap().to_owned();
    // ...so restoring the first re-checks it.
    let restore = format!("{}/{first}/restore", contacts(&w.ws));
    let r = w.t.post(&restore, tok, json!({})).await;
    r.problem(409, "conflict");
    assert_eq!(r.body["field"], "email");
    w.t.delete(&format!("{}/{second}?purge=true", contacts(&w.ws)), tok)
        .await;
    let r = w.t.post(&restore, tok, json!({})).await;
    let back = r.ok(200);
    assert_eq!(back["email"], "t@example.com");
    assert!(back.get("trashedEmail").is_none(), "{back}");

    // Bulk trashing sets emails aside too.
    let r =
        w.t.post(
            &format!("{}/bulk-delete", contacts(&w.ws)),
            tok,
            json!({"ids": [first]}),
        )
        .await;
    assert_eq!(r.ok(200)["matched"], 1);
    w.t.post(&contacts(&w.ws), tok, body.clone()).await.ok(201);

    // A contact trashed before emails were set aside still holds it: creating frees it.
    let mut legacy = new_contact(&w, "L", "").with_email("l@example.com");
    legacy.deleted_at = Some(Timestamp::now());
    let legacy = seed(&w.t, &w.ws, &legacy).await;
    w.t.post(
        &contacts(&w.ws),
        tok,
        json!({"firstName": "L2", "email": "l@example.com"}),
    )
    .await
    .ok(201);
    let old: Contact = one(&w.t, &w.ws, &legacy).await;
    assert_eq!(old.trashed_email.as_deref(), Some("l@example.com"));
    // A live holder still answers 409.
    w.t.post(&contacts(&w.ws), tok, body)
        .await
        .problem(409, "conflict");
}

#[tokio::test]
async fn purge_cascades_to_children() {
    let s = scene().await;
    let (w, tok) = (&s.w, s.w.tok());
    let (_, other) = other_ws(w).await;
    // The same reference in another workspace stays untouched.
    let mut far = Activity::new(other.parse().unwrap(), ActivityType::Note, "Far");
    far.entity_type = Some(ActivityEntityType::Contact);
    far.entity_id = Some(s.d1.parse().unwrap());
    seed(&w.t, &other, &far).await;

    for d in [&s.d1, &s.d2] {
        let r =
            w.t.delete(&format!("{}/{d}?purge=true", contacts(&w.ws)), tok)
                .await;
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let ws = &w.ws;
    assert!(all::<Activity>(&w.t, ws).await.is_empty());
    assert_eq!(all::<Activity>(&w.t, &other).await.len(), 1);
    let task: Task = one(&w.t, ws, &s.task).await;
    assert!(task.related_contact_id.is_none());
    let ticket: Ticket = one(&w.t, ws, &s.ticket).await;
    assert!(ticket.related_contact_id.is_none() && ticket.requester_id.is_none());
    let deal: Opportunity = one(&w.t, ws, &s.deal).await;
    assert!(deal.contact_id.is_none() && deal.contact_name.is_none());
    let assoc: Vec<String> = deal
        .associated_contacts
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(assoc, [s.p.as_str()]);
    let list: ContactList = one(&w.t, ws, &s.list).await;
    let members: Vec<String> = list.contacts.iter().map(ToString::to_string).collect();
    assert_eq!(members, [s.p.as_str()]);
    let linked: Contact = one(&w.t, ws, &s.linked).await;
    assert!(linked.linked_contact_id.is_none());
    // A purged primary takes its merge records with it.
    let r =
        w.t.post(
            &format!("{}/merge", contacts(ws)),
            tok,
            json!({"primaryId": s.p, "duplicateIds": [s.linked]}),
        )
        .await;
    r.ok(200);
    assert_eq!(all::<ContactMerge>(&w.t, ws).await.len(), 1);
    w.t.delete(&format!("{}/{}?purge=true", contacts(ws), s.p), tok)
        .await;
    assert!(all::<ContactMerge>(&w.t, ws).await.is_empty());
}
