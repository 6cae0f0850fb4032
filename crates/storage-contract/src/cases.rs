//! The contract cases. Each takes a fresh [`Storage`] and panics when the adapter breaks the
//! contract. [`crate::contract_tests!`] turns every one into a `#[tokio::test]`.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use crm_core::engine::{Document, cmp_docs};
use crm_core::entities::company::COMPANY;
use crm_core::entities::contact::{CONTACT, Contact};
use crm_core::entities::user::{USER, User};
use crm_core::migrate::{self, MIGRATIONS};
use crm_core::paging::{PageRequest, Pagination, find_page};
use crm_core::query::effective_sort;
use crm_core::repo::Stores;
use crm_core::schema::ID_FIELD;
use crm_core::time::{Clock, Timestamp};
use crm_core::{
    EntityDef, Error, Filter, FindOptions, GroupBy, ObjectId, SortKey, Storage, Tenant, Update,
    UserId, WorkspaceId,
};
use serde_json::{Value, json};

use crate::support::{
    ManualClock, Must, doc, fresh_workspace, minimal_doc, number_at, same_doc, same_value, setup,
    text_at,
};
use crate::thing::{THING, all_defs};

// The batch cases live in their own module and run from the same case table.
pub use crate::batch::{
    batch_applies_ops_in_order_and_returns_each_result,
    batch_guards_are_checked_against_the_stored_record, batch_mixes_global_and_workspace_tenants,
    batch_never_reaches_another_workspace, batch_that_fails_at_its_third_op_writes_nothing,
};

// ---------------------------------------------------------------------------------------------
// helpers

fn id_of(d: &Document) -> ObjectId {
    ObjectId::parse_str(text_at(d, ID_FIELD)).must("stored `_id` is 24 hex digits")
}

fn ws_hex(t: Tenant) -> String {
    match t {
        Tenant::Workspace(ws) => ws.to_string(),
        Tenant::Global => String::new(),
    }
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: crm_core::Result<T>, field: &str, what: &str) {
    match r {
        Err(Error::Invalid { field: f, .. }) if f == field => {}
        other => panic!("{what}: expected Invalid {{ field: {field:?} }}, got {other:?}"),
    }
}

/// For failures only the stored data reveals (a number op on text, a path through a scalar):
/// MongoDB reports those from the server, where the adapter may not know the field.
#[track_caller]
fn assert_invalid_data<T: std::fmt::Debug>(r: crm_core::Result<T>, what: &str) {
    match r {
        Err(Error::Invalid { .. }) => {}
        other => panic!("{what}: expected Invalid, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: crm_core::Result<T>, key: &str, what: &str) {
    match r {
        Err(Error::Conflict { key: k }) if k == key => {}
        other => panic!("{what}: expected Conflict {{ key: {key:?} }}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: crm_core::Result<T>, what: &str) {
    match r {
        Err(Error::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_wrong_tenant<T: std::fmt::Debug>(r: crm_core::Result<T>, what: &str) {
    match r {
        Err(Error::Internal(_)) => {}
        other => panic!("{what}: expected the tenant check's Internal error, got {other:?}"),
    }
}

/// The elements of a JSON array literal.
#[track_caller]
fn list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(vs) => vs,
        other => panic!("not a JSON array: {other}"),
    }
}

fn all_opts() -> FindOptions {
    FindOptions::default()
}

fn sorted_opts(sort: Vec<SortKey>) -> FindOptions {
    FindOptions {
        sort,
        ..FindOptions::default()
    }
}

fn names(docs: &[Document]) -> Vec<String> {
    docs.iter().map(|d| text_at(d, "name").to_owned()).collect()
}

async fn get_thing(s: &Storage, t: Tenant, id: ObjectId) -> Document {
    s.docs.get(t, &THING, id).await.must("get thing")
}

/// Finds and counts with one filter; both must give exactly `want` (names, any order).
async fn expect_names(s: &Storage, t: Tenant, filter: Filter, want: &[&str]) {
    let docs = s
        .docs
        .find(t, &THING, &filter, &all_opts())
        .await
        .must(&format!("find {filter:?}"));
    let mut got = names(&docs);
    got.sort();
    let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(got, want, "find with {filter:?}");
    let n = s
        .docs
        .count(t, &THING, &filter)
        .await
        .must(&format!("count {filter:?}"));
    assert_eq!(n, want.len() as u64, "count with {filter:?}");
}

async fn expect_order(s: &Storage, t: Tenant, opts: FindOptions, want: &[&str]) {
    let docs = s
        .docs
        .find(t, &THING, &Filter::all(), &opts)
        .await
        .must(&format!("find sorted {opts:?}"));
    assert_eq!(names(&docs), want, "order for {opts:?}");
}

const OWNER1: &str = "5f00000000000000000000a1";
const OWNER2: &str = "5f00000000000000000000a2";
const OWNER3: &str = "5f00000000000000000000a3";

/// Six things covering every kind, nulls, missing fields, arrays and nested custom fields, with
/// `_id`s increasing in the order listed.
async fn query_fixture(s: &Storage) -> Tenant {
    setup(s, &[&THING]).await;
    let t = fresh_workspace();
    let rows = vec![
        json!({"name": "Alpha", "score": 10, "rank": 1, "active": true, "tags": ["red", "blue"],
               "ownerId": OWNER1, "dueAt": "2024-01-01T00:00:00.000Z",
               "note": "Call (back) later.*", "customFields": {"tier": "gold", "size": 5},
               "address": {"city": "Paris", "zip": "75001"}}),
        json!({"name": "beta", "score": 2.5, "rank": 2, "active": false, "tags": ["blue"],
               "dueAt": "2024-06-01T12:00:00.000Z", "note": null,
               "customFields": {"tier": "silver", "size": 12}}),
        json!({"name": "Gamma", "score": null, "rank": 3, "tags": [], "ownerId": OWNER2,
               "note": "100% sure", "customFields": {"tier": "gold"}}),
        json!({"name": "delta", "score": 7, "rank": 4, "active": true, "tags": ["green"],
               "note": "under_score"}),
        json!({"name": "Epsilon", "rank": 5, "customFields": {}}),
        json!({"name": "zeta alpha", "score": -1, "rank": 6, "active": false, "tags": ["red"],
               "dueAt": "2023-12-31T23:59:59.999Z", "customFields": {"size": "5"}}),
    ];
    let docs = rows
        .into_iter()
        .map(|r| {
            let mut d = doc(r);
            d.insert(ID_FIELD.into(), json!(ObjectId::new().to_hex()));
            d
        })
        .collect();
    let n = s
        .docs
        .insert_many(t, &THING, docs)
        .await
        .must("insert fixture");
    assert_eq!(n, 6, "insert_many returns how many it inserted");
    t
}

const ALL_SIX: &[&str] = &["Alpha", "beta", "Gamma", "delta", "Epsilon", "zeta alpha"];

// ---------------------------------------------------------------------------------------------
// tenancy

/// Reads from workspace B never see workspace A's records, for every scoped entity.
pub async fn tenancy_reads_never_see_another_workspace_for_every_entity(s: Storage) {
    let defs = all_defs();
    setup(&s, &defs).await;
    let (a, b) = (fresh_workspace(), fresh_workspace());
    for def in defs.iter().copied().filter(|d| d.tenant_field().is_some()) {
        let what = |op: &str| format!("{}: {op}", def.name);
        let tf = def.tenant_field().unwrap_or_default();
        let rec = s
            .docs
            .insert(a, def, minimal_doc(def))
            .await
            .must(&what("insert"));
        assert_eq!(rec.get(tf), Some(&json!(ws_hex(a))), "{}", what("stamped"));
        let id = id_of(&rec);
        let by_id = Filter::eq(ID_FIELD, id.to_hex());

        assert_not_found(s.docs.get(b, def, id).await, &what("get from B"));
        let mine = s.docs.get(a, def, id).await.must(&what("get from A"));
        assert!(same_doc(&mine, &rec), "{}", what("get returns the insert"));

        for f in [by_id.clone(), Filter::all()] {
            let found = s.docs.find(b, def, &f, &all_opts()).await.must("find");
            assert!(found.is_empty(), "{}: {f:?}", what("find from B"));
            let n = s.docs.count(b, def, &f).await.must("count");
            assert_eq!(n, 0, "{}: {f:?}", what("count from B"));
        }
        let n = s.docs.count(a, def, &by_id).await.must(&what("count A"));
        assert_eq!(n, 1, "{}", what("count from A"));

        let g = GroupBy {
            filter: Filter::all(),
            key: tf.into(),
            sums: Vec::new(),
        };
        let rows = s.docs.aggregate(b, def, &g).await.must(&what("aggregate"));
        assert!(rows.is_empty(), "{}", what("aggregate from B"));
        let rows = s.docs.aggregate(a, def, &g).await.must(&what("aggregate"));
        assert_eq!(rows.len(), 1, "{}", what("aggregate from A"));
        assert_eq!(rows[0].count, 1, "{}", what("aggregate count from A"));
    }
}

/// Writes from workspace B never touch workspace A's records, for every scoped entity.
pub async fn tenancy_writes_never_touch_another_workspace_for_every_entity(s: Storage) {
    let defs = all_defs();
    setup(&s, &defs).await;
    let (a, b) = (fresh_workspace(), fresh_workspace());
    for def in defs.iter().copied().filter(|d| d.tenant_field().is_some()) {
        let what = |op: &str| format!("{}: {op}", def.name);
        let rec = s
            .docs
            .insert(a, def, minimal_doc(def))
            .await
            .must(&what("insert"));
        let id = id_of(&rec);
        let by_id = Filter::eq(ID_FIELD, id.to_hex());
        let mark = Update::new().set("contractMarker", "from B");
        let unchanged = |got: &Document, op: &str| {
            assert!(
                same_doc(got, &rec),
                "{}: A's record changed: {got:?}",
                what(op)
            );
        };

        assert_not_found(
            s.docs.update_one(b, def, id, &mark).await,
            &what("update_one from B"),
        );
        unchanged(&s.docs.get(a, def, id).await.must("get"), "update_one");

        for f in [by_id.clone(), Filter::all()] {
            let n = s.docs.update_many(b, def, &f, &mark).await.must("update");
            assert_eq!(n, 0, "{}", what("update_many from B"));
            let r = s.docs.find_one_and_update(b, def, &f, &mark, false).await;
            assert!(
                r.must("find_one_and_update").is_none(),
                "{}",
                what("find_one_and_update from B")
            );
            let n = s.docs.delete_many(b, def, &f).await.must("delete_many");
            assert_eq!(n, 0, "{}", what("delete_many from B"));
        }
        unchanged(&s.docs.get(a, def, id).await.must("get"), "update_many");

        assert_not_found(
            s.docs.delete_one(b, def, id).await,
            &what("delete_one from B"),
        );
        unchanged(&s.docs.get(a, def, id).await.must("get"), "delete_one");

        // An upsert from B creates B's own record and leaves A's alone.
        let probe = Filter::eq("contractProbe", ObjectId::new().to_hex());
        let made = s
            .docs
            .find_one_and_update(b, def, &probe, &mark, true)
            .await
            .must(&what("upsert from B"))
            .must(&what("upsert returns the record"));
        assert_ne!(id_of(&made), id, "{}", what("upsert makes a new id"));
        let tf = def.tenant_field().unwrap_or_default();
        assert_eq!(made.get(tf), Some(&json!(ws_hex(b))), "{}", what("upsert"));
        assert_eq!(made.get("contractMarker"), Some(&json!("from B")));
        unchanged(&s.docs.get(a, def, id).await.must("get"), "upsert");
        let n = s.docs.count(a, def, &Filter::all()).await.must("count");
        assert_eq!(n, 1, "{}", what("A still has one record"));
        let n = s.docs.delete_many(b, def, &Filter::all()).await.must("del");
        assert_eq!(n, 1, "{}", what("B deletes only its own upserted record"));
        unchanged(&s.docs.get(a, def, id).await.must("get"), "delete_many");
    }
}

/// Global entities answer only `Tenant::Global`; scoped ones refuse it.
pub async fn tenancy_global_entities_need_global_tenant_and_scoped_need_a_workspace(s: Storage) {
    setup(&s, &[&USER, &CONTACT, &THING]).await;
    let ws = fresh_workspace();
    let user = s
        .docs
        .insert(Tenant::Global, &USER, minimal_doc(&USER))
        .await
        .must("insert user");
    assert!(
        !user.contains_key("workspaceId"),
        "a global record gets no tenant"
    );
    let id = id_of(&user);
    s.docs.get(Tenant::Global, &USER, id).await.must("get user");
    let by_id = Filter::eq(ID_FIELD, id.to_hex());
    let n = s
        .docs
        .count(Tenant::Global, &USER, &by_id)
        .await
        .must("count");
    assert_eq!(n, 1);

    assert_wrong_tenant(
        s.docs.insert(ws, &USER, minimal_doc(&USER)).await,
        "insert user with a workspace",
    );
    assert_wrong_tenant(s.docs.get(ws, &USER, id).await, "get user with a workspace");
    assert_wrong_tenant(
        s.docs.find(ws, &USER, &by_id, &all_opts()).await,
        "find users with a workspace",
    );
    assert_wrong_tenant(
        s.docs.delete_one(ws, &USER, id).await,
        "delete user with a workspace",
    );
    for def in [&CONTACT, &THING] {
        assert_wrong_tenant(
            s.docs.insert(Tenant::Global, def, minimal_doc(def)).await,
            "insert scoped with Global",
        );
        assert_wrong_tenant(
            s.docs
                .find(Tenant::Global, def, &Filter::all(), &all_opts())
                .await,
            "find scoped with Global",
        );
        assert_wrong_tenant(
            s.docs.count(Tenant::Global, def, &Filter::all()).await,
            "count scoped with Global",
        );
        assert_wrong_tenant(
            s.docs
                .update_many(
                    Tenant::Global,
                    def,
                    &Filter::all(),
                    &Update::new().set("x", 1),
                )
                .await,
            "update scoped with Global",
        );
        assert_wrong_tenant(
            s.docs
                .delete_many(Tenant::Global, def, &Filter::all())
                .await,
            "delete scoped with Global",
        );
    }
    s.docs
        .delete_one(Tenant::Global, &USER, id)
        .await
        .must("delete user");
    assert_not_found(s.docs.get(Tenant::Global, &USER, id).await, "deleted user");
}

// ---------------------------------------------------------------------------------------------
// unique keys, not found, invalid input

fn contact(email: Option<Value>) -> Document {
    let mut d = minimal_doc(&CONTACT);
    if let Some(e) = email {
        d.insert("email".into(), e);
    }
    d
}

fn unique_email() -> String {
    format!("c{}@example.com", ObjectId::new().to_hex())
}

async fn count_email(s: &Storage, t: Tenant, email: &str) -> u64 {
    s.docs
        .count(t, &CONTACT, &Filter::eq("email", email))
        .await
        .must("count by email")
}

pub async fn unique_email_conflicts_within_one_workspace_but_not_across(s: Storage) {
    setup(&s, &[&CONTACT, &USER]).await;
    let (a, b) = (fresh_workspace(), fresh_workspace());
    let email = unique_email();
    s.docs
        .insert(a, &CONTACT, contact(Some(json!(email))))
        .await
        .must("first contact");
    assert_conflict(
        s.docs
            .insert(a, &CONTACT, contact(Some(json!(email))))
            .await,
        "email",
        "same email twice in one workspace",
    );
    assert_eq!(count_email(&s, a, &email).await, 1);
    s.docs
        .insert(b, &CONTACT, contact(Some(json!(email))))
        .await
        .must("same email in another workspace");
    assert_eq!(count_email(&s, b, &email).await, 1);

    // Global entities are unique over the whole collection.
    let mut u1 = minimal_doc(&USER);
    u1.insert("email".into(), json!(email));
    let mut u2 = minimal_doc(&USER);
    u2.insert("email".into(), json!(email));
    let made = s
        .docs
        .insert(Tenant::Global, &USER, u1)
        .await
        .must("first user");
    assert_conflict(
        s.docs.insert(Tenant::Global, &USER, u2).await,
        "email",
        "two users with one email",
    );
    s.docs
        .delete_one(Tenant::Global, &USER, id_of(&made))
        .await
        .must("clean up user");
}

pub async fn unique_email_allows_many_contacts_without_one_absent_or_null(s: Storage) {
    setup(&s, &[&CONTACT]).await;
    let a = fresh_workspace();
    for email in [None, None, Some(Value::Null), Some(Value::Null), None] {
        s.docs
            .insert(a, &CONTACT, contact(email.clone()))
            .await
            .must(&format!("contact with email {email:?}"));
    }
    let n = s
        .docs
        .count(a, &CONTACT, &Filter::all())
        .await
        .must("count");
    assert_eq!(n, 5);
    let n = s
        .docs
        .count(a, &CONTACT, &Filter::eq("email", Value::Null))
        .await
        .must("count");
    assert_eq!(n, 5, "absent and null emails both match email == null");
}

pub async fn unique_conflict_on_update_changes_nothing(s: Storage) {
    setup(&s, &[&CONTACT]).await;
    let a = fresh_workspace();
    let (x, y) = (unique_email(), unique_email());
    s.docs
        .insert(a, &CONTACT, contact(Some(json!(x))))
        .await
        .must("x");
    let second = s
        .docs
        .insert(a, &CONTACT, contact(Some(json!(y))))
        .await
        .must("y");
    let id = id_of(&second);
    let by_id = Filter::eq(ID_FIELD, id.to_hex());
    let clash = Update::new()
        .set("email", x.as_str())
        .set("lastName", "Clash");

    assert_conflict(
        s.docs.update_one(a, &CONTACT, id, &clash).await,
        "email",
        "update_one onto a taken email",
    );
    assert_conflict(
        s.docs.update_many(a, &CONTACT, &by_id, &clash).await,
        "email",
        "update_many onto a taken email",
    );
    assert_conflict(
        s.docs
            .find_one_and_update(a, &CONTACT, &by_id, &clash, false)
            .await,
        "email",
        "find_one_and_update onto a taken email",
    );
    let now = s.docs.get(a, &CONTACT, id).await.must("get");
    assert!(same_doc(&now, &second), "a failed update changed {now:?}");

    // An upsert that would clash inserts nothing.
    let nobody = Filter::eq("firstName", "Nobody-contract");
    assert_conflict(
        s.docs
            .find_one_and_update(
                a,
                &CONTACT,
                &nobody,
                &Update::new().set("email", x.as_str()),
                true,
            )
            .await,
        "email",
        "upsert onto a taken email",
    );
    let n = s.docs.count(a, &CONTACT, &nobody).await.must("count");
    assert_eq!(n, 0, "a failed upsert inserted a record");

    // Keeping one's own value is not a conflict.
    let same = Update::new()
        .set("email", y.as_str())
        .set("lastName", "Same");
    let kept = s
        .docs
        .update_one(a, &CONTACT, id, &same)
        .await
        .must("re-setting its own email");
    assert_eq!(kept.get("lastName"), Some(&json!("Same")));
}

pub async fn insert_many_with_a_duplicate_inserts_nothing(s: Storage) {
    setup(&s, &[&CONTACT]).await;
    let a = fresh_workspace();
    let taken = unique_email();
    s.docs
        .insert(a, &CONTACT, contact(Some(json!(taken))))
        .await
        .must("seed");
    let fresh = unique_email();
    assert_conflict(
        s.docs
            .insert_many(
                a,
                &CONTACT,
                vec![
                    contact(Some(json!(fresh))),
                    contact(None),
                    contact(Some(json!(taken))),
                ],
            )
            .await,
        "email",
        "batch clashing with a stored record",
    );
    let twice = unique_email();
    assert_conflict(
        s.docs
            .insert_many(
                a,
                &CONTACT,
                vec![contact(Some(json!(twice))), contact(Some(json!(twice)))],
            )
            .await,
        "email",
        "batch clashing with itself",
    );
    let id = ObjectId::new().to_hex();
    let mut d1 = contact(None);
    d1.insert(ID_FIELD.into(), json!(id));
    let d2 = d1.clone();
    assert_conflict(
        s.docs.insert_many(a, &CONTACT, vec![d1, d2]).await,
        ID_FIELD,
        "batch with one _id twice",
    );
    let mut bad = contact(None);
    bad.insert(ID_FIELD.into(), json!("not-an-id"));
    assert_invalid(
        s.docs
            .insert_many(a, &CONTACT, vec![contact(None), bad])
            .await,
        ID_FIELD,
        "batch with a bad _id",
    );
    let n = s
        .docs
        .count(a, &CONTACT, &Filter::all())
        .await
        .must("count");
    assert_eq!(n, 1, "failed batches inserted records");
    let n = s
        .docs
        .insert_many(a, &CONTACT, Vec::new())
        .await
        .must("empty batch");
    assert_eq!(n, 0);
    let n = s
        .docs
        .insert_many(a, &CONTACT, vec![contact(None), contact(None)])
        .await
        .must("good batch");
    assert_eq!(n, 2);
}

pub async fn missing_ids_are_not_found_and_taken_ids_conflict(s: Storage) {
    setup(&s, &[&THING]).await;
    let (a, b) = (fresh_workspace(), fresh_workspace());
    let missing = ObjectId::new();
    let set = Update::new().set("note", "x");
    assert_not_found(s.docs.get(a, &THING, missing).await, "get missing");
    assert_not_found(
        s.docs.update_one(a, &THING, missing, &set).await,
        "update missing",
    );
    assert_not_found(
        s.docs.delete_one(a, &THING, missing).await,
        "delete missing",
    );
    let r = s
        .docs
        .find_one_and_update(
            a,
            &THING,
            &Filter::eq(ID_FIELD, missing.to_hex()),
            &set,
            false,
        )
        .await
        .must("find_one_and_update missing");
    assert!(r.is_none());

    let id = ObjectId::new();
    let d = doc(json!({"_id": id.to_hex(), "name": "kept id"}));
    let made = s.docs.insert(a, &THING, d.clone()).await.must("insert");
    assert_eq!(id_of(&made), id, "insert keeps a given _id");
    assert_conflict(
        s.docs.insert(a, &THING, d.clone()).await,
        ID_FIELD,
        "same _id twice",
    );
    assert_conflict(
        s.docs.insert(b, &THING, d).await,
        ID_FIELD,
        "an _id taken in another workspace",
    );
    let n = s
        .docs
        .count(b, &THING, &Filter::all())
        .await
        .must("count B");
    assert_eq!(n, 0);
    assert!(same_doc(&get_thing(&s, a, id).await, &made));

    s.docs.delete_one(a, &THING, id).await.must("delete");
    assert_not_found(s.docs.delete_one(a, &THING, id).await, "delete twice");
    assert_not_found(s.docs.get(a, &THING, id).await, "get deleted");
}

pub async fn invalid_ids_and_foreign_tenant_values_are_refused(s: Storage) {
    setup(&s, &[&THING, &PLAIN]).await;
    let (a, b) = (fresh_workspace(), fresh_workspace());
    for bad in [json!("xyz"), json!(42), json!("zz0000000000000000000000")] {
        assert_invalid(
            s.docs
                .insert(a, &THING, doc(json!({"_id": bad, "name": "bad id"})))
                .await,
            ID_FIELD,
            &format!("insert with _id {bad}"),
        );
    }
    let id = ObjectId::new().to_hex().to_uppercase();
    let made = s
        .docs
        .insert(a, &THING, doc(json!({"_id": id, "name": "upper"})))
        .await
        .must("insert with an upper-case _id");
    assert_eq!(
        text_at(&made, ID_FIELD),
        id.to_lowercase(),
        "ids are stored in lower case"
    );

    for other in [json!(ws_hex(b)), json!(5), json!("nope")] {
        assert_invalid(
            s.docs
                .insert(
                    a,
                    &THING,
                    doc(json!({"name": "foreign", "workspaceId": other})),
                )
                .await,
            "workspaceId",
            &format!("insert carrying workspaceId {other}"),
        );
    }
    s.docs
        .insert(
            a,
            &THING,
            doc(json!({"name": "own", "workspaceId": ws_hex(a)})),
        )
        .await
        .must("insert carrying its own workspaceId");
    for t in [a, b] {
        let n = s
            .docs
            .count(t, &THING, &Filter::eq("name", "foreign"))
            .await
            .must("count");
        assert_eq!(n, 0, "a refused insert left a record");
    }

    let bad_filters = [
        (Filter::eq(ID_FIELD, "xyz"), ID_FIELD),
        (Filter::eq("ownerId", "not-hex"), "ownerId"),
        (Filter::In("ownerId".into(), vec![json!(5)]), "ownerId"),
        (Filter::Gt("dueAt".into(), json!("yesterday")), "dueAt"),
        (Filter::Text("   ".into()), "search"),
    ];
    for (f, field) in bad_filters {
        assert_invalid(
            s.docs.find(a, &THING, &f, &all_opts()).await,
            field,
            &format!("find {f:?}"),
        );
        assert_invalid(
            s.docs.count(a, &THING, &f).await,
            field,
            &format!("count {f:?}"),
        );
        assert_invalid(
            s.docs
                .update_many(a, &THING, &f, &Update::new().set("note", "x"))
                .await,
            field,
            &format!("update_many {f:?}"),
        );
        assert_invalid(
            s.docs.delete_many(a, &THING, &f).await,
            field,
            &format!("delete_many {f:?}"),
        );
    }
    assert_invalid(
        s.docs
            .find(a, &PLAIN, &Filter::Text("x".into()), &all_opts())
            .await,
        "search",
        "text search on an entity without text fields",
    );
    assert_invalid(
        s.docs
            .find(a, &THING, &Filter::Or(Vec::new()), &all_opts())
            .await,
        "filter",
        "an empty or",
    );
    let made_id = id_of(&made);
    assert_invalid(
        s.docs
            .update_one(a, &THING, made_id, &Update::new().set("ownerId", "not-hex"))
            .await,
        "ownerId",
        "setting an id field to garbage",
    );
    assert_invalid(
        s.docs
            .update_one(a, &THING, made_id, &Update::new().set("dueAt", "tomorrow"))
            .await,
        "dueAt",
        "setting a date field to garbage",
    );
    assert!(same_doc(&get_thing(&s, a, made_id).await, &made));
}

/// A scoped entity without text fields, for the text-search refusal.
static PLAIN: EntityDef = EntityDef {
    name: "ContractPlain",
    collection: "contract_plain",
    tenancy: crm_core::Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: false,
    fields: &[],
    unique: &[],
    indexes: &[],
    text: &[],
};

pub async fn updates_of_id_and_tenant_field_are_refused(s: Storage) {
    setup(&s, &[&THING]).await;
    let (a, b) = (fresh_workspace(), fresh_workspace());
    let rec = s
        .docs
        .insert(a, &THING, doc(json!({"name": "fixed", "note": "n"})))
        .await
        .must("insert");
    let id = id_of(&rec);
    let by_id = Filter::eq(ID_FIELD, id.to_hex());
    let attempts = [
        (
            Update::new().set(ID_FIELD, ObjectId::new().to_hex()),
            ID_FIELD,
        ),
        (Update::new().set("workspaceId", ws_hex(b)), "workspaceId"),
        (Update::new().unset("workspaceId"), "workspaceId"),
        (Update::new().set("note", "y").unset(ID_FIELD), ID_FIELD),
        (Update::new().set("workspaceId.x", 1), "workspaceId.x"),
    ];
    for (u, field) in attempts {
        assert_invalid(
            s.docs.update_one(a, &THING, id, &u).await,
            field,
            &format!("update_one {u:?}"),
        );
        assert_invalid(
            s.docs.update_many(a, &THING, &by_id, &u).await,
            field,
            &format!("update_many {u:?}"),
        );
        assert_invalid(
            s.docs
                .find_one_and_update(a, &THING, &by_id, &u, true)
                .await,
            field,
            &format!("find_one_and_update {u:?}"),
        );
    }
    assert_invalid(
        s.docs
            .update_one(a, &THING, id, &Update::new().set("note", "a").unset("note"))
            .await,
        "note",
        "one path changed twice",
    );
    assert!(
        same_doc(&get_thing(&s, a, id).await, &rec),
        "record changed"
    );
    let n = s.docs.count(b, &THING, &Filter::all()).await.must("count");
    assert_eq!(n, 0, "nothing moved to B");
}

// ---------------------------------------------------------------------------------------------
// the query language

pub async fn query_eq_matches_array_elements_and_null_matches_missing(s: Storage) {
    let t = query_fixture(&s).await;
    expect_names(&s, t, Filter::eq("tags", "blue"), &["Alpha", "beta"]).await;
    expect_names(
        &s,
        t,
        Filter::eq("tags", json!(["red", "blue"])),
        &["Alpha"],
    )
    .await;
    expect_names(&s, t, Filter::eq("tags", json!(["blue", "red"])), &[]).await;
    expect_names(&s, t, Filter::eq("tags", json!([])), &["Gamma"]).await;
    expect_names(&s, t, Filter::eq("score", 10), &["Alpha"]).await;
    expect_names(&s, t, Filter::eq("score", 10.0), &["Alpha"]).await;
    expect_names(&s, t, Filter::eq("score", "10"), &[]).await;
    expect_names(
        &s,
        t,
        Filter::eq("score", Value::Null),
        &["Gamma", "Epsilon"],
    )
    .await;
    expect_names(
        &s,
        t,
        Filter::eq("note", Value::Null),
        &["beta", "Epsilon", "zeta alpha"],
    )
    .await;
    expect_names(
        &s,
        t,
        Filter::eq("ownerId", OWNER1.to_uppercase()),
        &["Alpha"],
    )
    .await;
    expect_names(
        &s,
        t,
        Filter::eq("dueAt", "2024-01-01T01:00:00+01:00"),
        &["Alpha"],
    )
    .await;
    expect_names(&s, t, Filter::eq("name", "alpha"), &[]).await;
}

pub async fn query_ne_in_and_nin_treat_missing_as_null(s: Storage) {
    let t = query_fixture(&s).await;
    let ne = |p: &'static str, v: Value| Filter::Ne(p.into(), v);
    expect_names(
        &s,
        t,
        ne("score", Value::Null),
        &["Alpha", "beta", "delta", "zeta alpha"],
    )
    .await;
    expect_names(
        &s,
        t,
        ne("active", json!(true)),
        &["beta", "Gamma", "Epsilon", "zeta alpha"],
    )
    .await;
    expect_names(
        &s,
        t,
        ne("tags", json!("blue")),
        &["Gamma", "delta", "Epsilon", "zeta alpha"],
    )
    .await;
    expect_names(&s, t, ne("note", Value::Null), &["Alpha", "Gamma", "delta"]).await;
    let within = |p: &'static str, v: Value| Filter::In(p.into(), list(v));
    expect_names(
        &s,
        t,
        within("tags", json!(["red", "green"])),
        &["Alpha", "delta", "zeta alpha"],
    )
    .await;
    expect_names(
        &s,
        t,
        within("score", json!([2.5, null])),
        &["beta", "Gamma", "Epsilon"],
    )
    .await;
    expect_names(&s, t, within("name", json!([])), &[]).await;
    expect_names(
        &s,
        t,
        within("ownerId", json!([OWNER2, OWNER3])),
        &["Gamma"],
    )
    .await;
    let nin = |p: &'static str, v: Value| Filter::Nin(p.into(), list(v));
    expect_names(
        &s,
        t,
        nin("tags", json!(["blue"])),
        &["Gamma", "delta", "Epsilon", "zeta alpha"],
    )
    .await;
    expect_names(
        &s,
        t,
        nin("score", json!([null, 10])),
        &["beta", "delta", "zeta alpha"],
    )
    .await;
    expect_names(&s, t, nin("name", json!([])), ALL_SIX).await;
}

pub async fn query_ordered_comparisons_only_match_the_operand_type(s: Storage) {
    let t = query_fixture(&s).await;
    let gt = |p: &'static str, v: Value| Filter::Gt(p.into(), v);
    let gte = |p: &'static str, v: Value| Filter::Gte(p.into(), v);
    let lt = |p: &'static str, v: Value| Filter::Lt(p.into(), v);
    let lte = |p: &'static str, v: Value| Filter::Lte(p.into(), v);
    expect_names(&s, t, gt("score", json!(2.5)), &["Alpha", "delta"]).await;
    expect_names(&s, t, gte("score", json!(2.5)), &["Alpha", "beta", "delta"]).await;
    expect_names(&s, t, lt("score", json!(7)), &["beta", "zeta alpha"]).await;
    expect_names(
        &s,
        t,
        lte("score", json!(7)),
        &["beta", "delta", "zeta alpha"],
    )
    .await;
    expect_names(&s, t, gt("score", json!("1")), &[]).await;
    expect_names(&s, t, gte("score", Value::Null), &["Gamma", "Epsilon"]).await;
    expect_names(&s, t, gt("score", Value::Null), &[]).await;
    expect_names(&s, t, lt("score", Value::Null), &[]).await;
    expect_names(&s, t, gt("customFields.size", json!(4)), &["Alpha", "beta"]).await;
    expect_names(&s, t, gte("customFields.size", json!("5")), &["zeta alpha"]).await;
    expect_names(
        &s,
        t,
        lt("name", json!("a")),
        &["Alpha", "Gamma", "Epsilon"],
    )
    .await;
    expect_names(&s, t, gte("name", json!("delta")), &["delta", "zeta alpha"]).await;
    expect_names(&s, t, gt("tags", json!("green")), &["Alpha", "zeta alpha"]).await;
    expect_names(&s, t, lt("tags", json!("c")), &["Alpha", "beta"]).await;
    expect_names(&s, t, gt("dueAt", json!("2024-01-01T00:00:00Z")), &["beta"]).await;
    expect_names(
        &s,
        t,
        lte("dueAt", json!("2024-01-01T01:00:00+01:00")),
        &["Alpha", "zeta alpha"],
    )
    .await;
    expect_names(
        &s,
        t,
        lt("dueAt", json!("2024-01-01T00:00:00.000Z")),
        &["zeta alpha"],
    )
    .await;
    expect_names(&s, t, gt("active", json!(false)), &["Alpha", "delta"]).await;
    expect_names(
        &s,
        t,
        lte("active", json!(true)),
        &["Alpha", "beta", "delta", "zeta alpha"],
    )
    .await;
}

pub async fn query_exists_counts_null_as_present(s: Storage) {
    let t = query_fixture(&s).await;
    let ex = |p: &'static str, b: bool| Filter::Exists(p.into(), b);
    expect_names(
        &s,
        t,
        ex("score", true),
        &["Alpha", "beta", "Gamma", "delta", "zeta alpha"],
    )
    .await;
    expect_names(&s, t, ex("score", false), &["Epsilon"]).await;
    expect_names(
        &s,
        t,
        ex("note", true),
        &["Alpha", "beta", "Gamma", "delta"],
    )
    .await;
    expect_names(
        &s,
        t,
        ex("customFields.size", true),
        &["Alpha", "beta", "zeta alpha"],
    )
    .await;
    expect_names(&s, t, ex("address.city", true), &["Alpha"]).await;
    expect_names(&s, t, ex("ghost", false), ALL_SIX).await;
}

pub async fn query_contains_is_case_insensitive_and_never_a_pattern(s: Storage) {
    let t = query_fixture(&s).await;
    let c = |p: &'static str, n: &str| Filter::Contains(p.into(), n.to_owned());
    expect_names(&s, t, c("note", "(back)"), &["Alpha"]).await;
    expect_names(&s, t, c("note", ".*"), &["Alpha"]).await;
    expect_names(&s, t, c("note", "("), &["Alpha"]).await;
    expect_names(&s, t, c("note", "a.*x"), &[]).await;
    expect_names(&s, t, c("note", "%"), &["Gamma"]).await;
    expect_names(&s, t, c("note", "0%"), &["Gamma"]).await;
    expect_names(&s, t, c("note", "1%"), &[]).await;
    expect_names(&s, t, c("note", "_"), &["delta"]).await;
    expect_names(&s, t, c("note", "l_t"), &[]).await;
    expect_names(&s, t, c("note", "CALL"), &["Alpha"]).await;
    expect_names(&s, t, c("name", "ALPHA"), &["Alpha", "zeta alpha"]).await;
    expect_names(&s, t, c("tags", "RE"), &["Alpha", "delta", "zeta alpha"]).await;
    expect_names(&s, t, c("name", ""), ALL_SIX).await;
    expect_names(&s, t, c("score", "1"), &[]).await;
    expect_names(&s, t, c("customFields.tier", "OL"), &["Alpha", "Gamma"]).await;
}

pub async fn query_all_requires_every_value_in_the_array(s: Storage) {
    let t = query_fixture(&s).await;
    let all = |vs: Value| Filter::All("tags".into(), list(vs));
    expect_names(&s, t, all(json!(["red", "blue"])), &["Alpha"]).await;
    expect_names(&s, t, all(json!(["blue"])), &["Alpha", "beta"]).await;
    expect_names(&s, t, all(json!(["blue", "green"])), &[]).await;
    expect_names(&s, t, all(json!([])), &[]).await;
}

pub async fn query_and_or_not_combine_and_nest(s: Storage) {
    let t = query_fixture(&s).await;
    let f = Filter::Or(vec![
        Filter::eq("active", true),
        Filter::Lt("score".into(), json!(0)),
    ]);
    expect_names(&s, t, f, &["Alpha", "delta", "zeta alpha"]).await;
    let f = Filter::eq("tags", "blue").and(Filter::eq("active", false).negate());
    expect_names(&s, t, f, &["Alpha"]).await;
    expect_names(
        &s,
        t,
        Filter::Exists("score".into(), true).negate(),
        &["Epsilon"],
    )
    .await;
    let f = Filter::Or(vec![Filter::eq("tags", "red"), Filter::eq("tags", "green")]).negate();
    expect_names(&s, t, f, &["beta", "Gamma", "Epsilon"]).await;
    let f = Filter::Gt("score".into(), json!(5)).negate();
    expect_names(&s, t, f, &["beta", "Gamma", "Epsilon", "zeta alpha"]).await;
    expect_names(&s, t, Filter::all(), ALL_SIX).await;
    expect_names(&s, t, Filter::all().negate(), &[]).await;
    let f = Filter::And(vec![
        Filter::Or(vec![
            Filter::eq("customFields.tier", "gold"),
            Filter::And(vec![
                Filter::Exists("dueAt".into(), true),
                Filter::Lt("rank".into(), json!(3)),
            ]),
        ]),
        Filter::Ne("name".into(), json!("Gamma")),
    ]);
    expect_names(&s, t, f, &["Alpha", "beta"]).await;
}

pub async fn query_dotted_paths_reach_custom_fields_and_embedded_objects(s: Storage) {
    let t = query_fixture(&s).await;
    expect_names(
        &s,
        t,
        Filter::eq("customFields.tier", "gold"),
        &["Alpha", "Gamma"],
    )
    .await;
    expect_names(
        &s,
        t,
        Filter::eq("customFields.tier", Value::Null),
        &["delta", "Epsilon", "zeta alpha"],
    )
    .await;
    expect_names(
        &s,
        t,
        Filter::Ne("customFields.tier".into(), json!("gold")),
        &["beta", "delta", "Epsilon", "zeta alpha"],
    )
    .await;
    expect_names(&s, t, Filter::eq("customFields.size", 5), &["Alpha"]).await;
    expect_names(&s, t, Filter::eq("customFields.size", "5"), &["zeta alpha"]).await;
    expect_names(&s, t, Filter::eq("address.city", "Paris"), &["Alpha"]).await;
    expect_names(&s, t, Filter::eq("address.city.x", Value::Null), ALL_SIX).await;
}

pub async fn query_text_search_needs_every_word_in_the_text_fields(s: Storage) {
    let t = query_fixture(&s).await;
    let text = |q: &str| Filter::Text(q.to_owned());
    expect_names(&s, t, text("alpha"), &["Alpha", "zeta alpha"]).await;
    expect_names(&s, t, text("call LATER"), &["Alpha"]).await;
    expect_names(&s, t, text("alpha zeta"), &["zeta alpha"]).await;
    expect_names(&s, t, text("sure 100%"), &["Gamma"]).await;
    expect_names(&s, t, text("(back)"), &["Alpha"]).await;
    expect_names(&s, t, text("alpha nothing"), &[]).await;
    expect_names(&s, t, text("gold"), &[]).await;
    let f = text("a").and(Filter::eq("active", false));
    expect_names(&s, t, f, &["beta", "zeta alpha"]).await;
}

// ---------------------------------------------------------------------------------------------
// sorting and slicing

pub async fn sort_orders_nulls_first_ascending_and_last_descending(s: Storage) {
    let t = query_fixture(&s).await;
    let asc = sorted_opts(vec![SortKey::asc("score")]);
    expect_order(
        &s,
        t,
        asc,
        &["Gamma", "Epsilon", "zeta alpha", "beta", "delta", "Alpha"],
    )
    .await;
    let desc = sorted_opts(vec![SortKey::desc("score")]);
    expect_order(
        &s,
        t,
        desc,
        &["Alpha", "delta", "beta", "zeta alpha", "Gamma", "Epsilon"],
    )
    .await;
    let mixed = sorted_opts(vec![SortKey::asc("customFields.size")]);
    expect_order(
        &s,
        t,
        mixed,
        &["Gamma", "delta", "Epsilon", "Alpha", "beta", "zeta alpha"],
    )
    .await;
    let text = sorted_opts(vec![SortKey::asc("name")]);
    expect_order(
        &s,
        t,
        text,
        &["Alpha", "Epsilon", "Gamma", "beta", "delta", "zeta alpha"],
    )
    .await;
    let dates = sorted_opts(vec![SortKey::desc("dueAt")]);
    expect_order(
        &s,
        t,
        dates,
        &["beta", "Alpha", "zeta alpha", "Gamma", "delta", "Epsilon"],
    )
    .await;
}

pub async fn sort_by_several_keys_then_by_id(s: Storage) {
    let t = query_fixture(&s).await;
    let two = sorted_opts(vec![SortKey::asc("active"), SortKey::desc("rank")]);
    expect_order(
        &s,
        t,
        two,
        &["Epsilon", "Gamma", "zeta alpha", "beta", "delta", "Alpha"],
    )
    .await;
    let two = sorted_opts(vec![
        SortKey::asc("customFields.tier"),
        SortKey::desc("name"),
    ]);
    expect_order(
        &s,
        t,
        two,
        &["zeta alpha", "delta", "Epsilon", "Gamma", "Alpha", "beta"],
    )
    .await;
    let by_id = sorted_opts(vec![SortKey::desc(ID_FIELD)]);
    expect_order(
        &s,
        t,
        by_id,
        &["zeta alpha", "Epsilon", "delta", "Gamma", "beta", "Alpha"],
    )
    .await;

    // Ties break by `_id` ascending whatever the direction and insertion order.
    let ids: Vec<ObjectId> = (0..3).map(|_| ObjectId::new()).collect();
    for id in ids.iter().rev() {
        s.docs
            .insert(
                t,
                &THING,
                doc(json!({"_id": id.to_hex(), "name": "tie", "rank": 9})),
            )
            .await
            .must("insert tie");
    }
    for sort in [vec![SortKey::asc("rank")], vec![SortKey::desc("rank")]] {
        let got = s
            .docs
            .find(t, &THING, &Filter::eq("name", "tie"), &sorted_opts(sort))
            .await
            .must("find ties");
        let got: Vec<ObjectId> = got.iter().map(id_of).collect();
        assert_eq!(got, ids, "ties come in `_id` order");
    }
}

pub async fn skip_and_limit_slice_the_sorted_results(s: Storage) {
    let t = query_fixture(&s).await;
    let page = |skip: u64, limit: Option<u64>| FindOptions {
        sort: vec![SortKey::asc("rank")],
        skip,
        limit,
    };
    expect_order(&s, t, page(2, Some(3)), &["Gamma", "delta", "Epsilon"]).await;
    expect_order(&s, t, page(0, Some(2)), &["Alpha", "beta"]).await;
    expect_order(&s, t, page(5, None), &["zeta alpha"]).await;
    expect_order(&s, t, page(6, None), &[]).await;
    expect_order(&s, t, page(1, Some(100)), &ALL_SIX[1..]).await;
    let f = Filter::eq("active", true);
    let got = s
        .docs
        .find(t, &THING, &f, &page(1, Some(1)))
        .await
        .must("find");
    assert_eq!(
        names(&got),
        ["delta"],
        "skip and limit apply after the filter"
    );
}

// ---------------------------------------------------------------------------------------------
// updates

async fn insert_thing(s: &Storage, t: Tenant, v: Value) -> (ObjectId, Document) {
    let d = s.docs.insert(t, &THING, doc(v)).await.must("insert thing");
    (id_of(&d), d)
}

pub async fn update_set_creates_dotted_paths_and_unset_removes(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let (id, _) = insert_thing(
        &s,
        t,
        json!({"name": "u", "note": "n", "address": {"city": "Paris", "zip": "1"}}),
    )
    .await;
    let u = Update::new()
        .set("address.city", "Oslo")
        .set("customFields.tier", "gold")
        .set("dueAt", "2024-01-01T01:00:00+01:00")
        .unset("note")
        .unset("ghost.path");
    let got = s.docs.update_one(t, &THING, id, &u).await.must("update");
    assert_eq!(
        got.get("address"),
        Some(&json!({"city": "Oslo", "zip": "1"}))
    );
    assert_eq!(got.get("customFields"), Some(&json!({"tier": "gold"})));
    assert_eq!(
        got.get("dueAt"),
        Some(&json!("2024-01-01T00:00:00.000Z")),
        "dates are stored in canonical form"
    );
    assert!(!got.contains_key("note") && !got.contains_key("ghost"));
    assert!(
        same_doc(&get_thing(&s, t, id).await, &got),
        "returned = stored"
    );

    let got = s
        .docs
        .update_one(
            t,
            &THING,
            id,
            &Update::new().set("address", json!({"city": "Rome"})),
        )
        .await
        .must("set an object");
    assert_eq!(got.get("address"), Some(&json!({"city": "Rome"})));

    let before = get_thing(&s, t, id).await;
    assert_invalid_data(
        s.docs
            .update_one(t, &THING, id, &Update::new().set("name.first", "x"))
            .await,
        "setting inside a text",
    );
    assert!(same_doc(&get_thing(&s, t, id).await, &before));
}

pub async fn update_inc_push_add_to_set_and_pull(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let (id, _) = insert_thing(
        &s,
        t,
        json!({"name": "n", "rank": 1, "score": 2.5, "tags": ["red"]}),
    )
    .await;
    let up = |u: Update| {
        let s = s.clone();
        async move { s.docs.update_one(t, &THING, id, &u).await }
    };
    let got = up(Update::new()
        .inc("rank", 2)
        .inc("counter", 5)
        .inc("score", serde_json::Number::from_f64(0.5).must("0.5"))
        .push("tags", "red"))
    .await
    .must("inc and push");
    assert_eq!(number_at(&got, "rank"), Some(3.0));
    assert_eq!(
        number_at(&got, "counter"),
        Some(5.0),
        "inc on a missing field"
    );
    assert_eq!(number_at(&got, "score"), Some(3.0));
    assert_eq!(got.get("tags"), Some(&json!(["red", "red"])));

    let got = up(Update::new().add_to_set("tags", "red"))
        .await
        .must("add");
    assert_eq!(got.get("tags"), Some(&json!(["red", "red"])));
    let got = up(Update::new().add_to_set("tags", "blue").push("list", "x"))
        .await
        .must("add new");
    assert_eq!(got.get("tags"), Some(&json!(["red", "red", "blue"])));
    assert_eq!(
        got.get("list"),
        Some(&json!(["x"])),
        "push on a missing field"
    );
    let got = up(Update::new().pull("tags", "red").pull("ghost", "x"))
        .await
        .must("pull");
    assert_eq!(got.get("tags"), Some(&json!(["blue"])));
    assert!(
        !got.contains_key("ghost"),
        "pull on a missing field is a no-op"
    );

    let before = get_thing(&s, t, id).await;
    assert_invalid_data(up(Update::new().inc("name", 1)).await, "inc on text");
    assert_invalid_data(up(Update::new().push("name", "x")).await, "push on text");
    assert_invalid_data(
        up(Update::new().set("note", "changed").inc("name", 1)).await,
        "a failing op in a bigger update",
    );
    assert!(
        same_doc(&get_thing(&s, t, id).await, &before),
        "failed updates changed the record"
    );
}

pub async fn update_set_on_insert_applies_only_when_an_upsert_inserts(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let key = Filter::eq("code", "k1").and(Filter::eq("name", "upserted"));
    let first = s
        .docs
        .find_one_and_update(
            t,
            &THING,
            &key,
            &Update::new().set("note", "a").set_on_insert("rank", 7),
            true,
        )
        .await
        .must("upsert")
        .must("upsert returns the record");
    assert_eq!(
        first.get("code"),
        Some(&json!("k1")),
        "seeded from the filter"
    );
    assert_eq!(first.get("name"), Some(&json!("upserted")));
    assert_eq!(first.get("rank"), Some(&json!(7)));
    assert_eq!(first.get("workspaceId"), Some(&json!(ws_hex(t))));
    let id = id_of(&first);

    let second = s
        .docs
        .find_one_and_update(
            t,
            &THING,
            &key,
            &Update::new().set("note", "b").set_on_insert("rank", 8),
            true,
        )
        .await
        .must("upsert again")
        .must("record");
    assert_eq!(
        id_of(&second),
        id,
        "the second upsert updates the same record"
    );
    assert_eq!(second.get("note"), Some(&json!("b")));
    assert_eq!(second.get("rank"), Some(&json!(7)));

    let got = s
        .docs
        .update_one(t, &THING, id, &Update::new().set_on_insert("rank", 9))
        .await
        .must("update_one");
    assert_eq!(got.get("rank"), Some(&json!(7)));
    let n = s
        .docs
        .update_many(t, &THING, &key, &Update::new().set_on_insert("rank", 9))
        .await
        .must("update_many");
    assert_eq!(n, 1);
    assert_eq!(get_thing(&s, t, id).await.get("rank"), Some(&json!(7)));
    let n = s.docs.count(t, &THING, &Filter::all()).await.must("count");
    assert_eq!(n, 1);
}

pub async fn update_many_counts_every_matched_record(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let docs = (1..=4)
        .map(|r| doc(json!({"name": format!("m{r}"), "rank": r, "active": r <= 2})))
        .collect();
    s.docs.insert_many(t, &THING, docs).await.must("insert");
    let n = s
        .docs
        .update_many(
            t,
            &THING,
            &Filter::Gte("rank".into(), json!(2)),
            &Update::new().set("active", true),
        )
        .await
        .must("update_many");
    assert_eq!(n, 3, "matched records count, changed or not");
    expect_names(&s, t, Filter::eq("active", true), &["m1", "m2", "m3", "m4"]).await;
    let n = s
        .docs
        .update_many(
            t,
            &THING,
            &Filter::eq("rank", 99),
            &Update::new().set("x", 1),
        )
        .await
        .must("update nothing");
    assert_eq!(n, 0);
}

pub async fn find_one_and_update_takes_the_first_match_by_id(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let ids: Vec<ObjectId> = (0..3).map(|_| ObjectId::new()).collect();
    for (i, id) in ids.iter().enumerate().rev() {
        insert_thing(
            &s,
            t,
            json!({"_id": id.to_hex(), "name": format!("f{i}"), "tags": ["x"]}),
        )
        .await;
    }
    let got = s
        .docs
        .find_one_and_update(
            t,
            &THING,
            &Filter::eq("tags", "x"),
            &Update::new().set("note", "first"),
            false,
        )
        .await
        .must("find_one_and_update")
        .must("a match");
    assert_eq!(id_of(&got), ids[0], "the smallest `_id` wins");
    assert_eq!(
        got.get("note"),
        Some(&json!("first")),
        "returned after the update"
    );
    let n = s
        .docs
        .count(t, &THING, &Filter::eq("note", "first"))
        .await
        .must("count");
    assert_eq!(n, 1, "only one record is updated");
    let none = s
        .docs
        .find_one_and_update(
            t,
            &THING,
            &Filter::eq("tags", "nope"),
            &Update::new().set("note", "x"),
            false,
        )
        .await
        .must("no match");
    assert!(none.is_none());
    let n = s.docs.count(t, &THING, &Filter::all()).await.must("count");
    assert_eq!(n, 3, "no upsert without asking");
}

pub async fn find_one_and_update_upsert_is_an_atomic_counter(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    const N: i64 = 20;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..N {
        let s = s.clone();
        tasks.spawn(async move {
            s.docs
                .find_one_and_update(
                    t,
                    &THING,
                    &Filter::eq("code", "seq"),
                    &Update::new()
                        .inc("counter", 1)
                        .set_on_insert("name", "counter"),
                    true,
                )
                .await
        });
    }
    let mut seen = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let d = r.must("task").must("increment").must("a record");
        let v = number_at(&d, "counter").must("counter is a number");
        seen.push(v as i64);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=N).collect::<Vec<_>>(),
        "every increment saw its own value"
    );
    let all = s
        .docs
        .find(t, &THING, &Filter::all(), &all_opts())
        .await
        .must("find");
    assert_eq!(all.len(), 1, "concurrent upserts made one record");
    assert_eq!(number_at(&all[0], "counter"), Some(N as f64));
}

pub async fn delete_one_and_delete_many_remove_only_what_they_name(s: Storage) {
    let t = query_fixture(&s).await;
    let n = s
        .docs
        .delete_many(t, &THING, &Filter::eq("tags", "red"))
        .await
        .must("delete_many");
    assert_eq!(n, 2);
    expect_names(&s, t, Filter::all(), &["beta", "Gamma", "delta", "Epsilon"]).await;
    let beta = s
        .docs
        .find(t, &THING, &Filter::eq("name", "beta"), &all_opts())
        .await
        .must("find beta");
    let id = id_of(&beta[0]);
    s.docs.delete_one(t, &THING, id).await.must("delete_one");
    assert_not_found(s.docs.delete_one(t, &THING, id).await, "delete twice");
    let n = s
        .docs
        .delete_many(t, &THING, &Filter::all())
        .await
        .must("delete all");
    assert_eq!(n, 3);
    expect_names(&s, t, Filter::all(), &[]).await;
}

// ---------------------------------------------------------------------------------------------
// aggregation

pub async fn aggregate_groups_by_key_with_count_and_sums(s: Storage) {
    let t = query_fixture(&s).await;
    let check = |rows: Vec<crm_core::GroupRow>, want: Vec<(Value, u64, Vec<f64>)>, what: &str| {
        assert_eq!(rows.len(), want.len(), "{what}: {rows:?}");
        for (r, (k, c, sums)) in rows.iter().zip(want) {
            assert!(same_value(&r.key, &k), "{what}: key {:?} != {k:?}", r.key);
            assert_eq!(r.count, c, "{what}: count for {k:?}");
            assert_eq!(r.sums.len(), sums.len(), "{what}");
            for (x, y) in r.sums.iter().zip(&sums) {
                assert!((x - y).abs() < 1e-9, "{what}: sum {x} != {y} for {k:?}");
            }
        }
    };
    let g = |filter: Filter, key: &'static str, sums: &[&'static str]| GroupBy {
        filter,
        key: key.into(),
        sums: sums.iter().map(|p| (*p).into()).collect(),
    };
    let rows = s
        .docs
        .aggregate(
            t,
            &THING,
            &g(Filter::all(), "customFields.tier", &["score", "rank"]),
        )
        .await
        .must("aggregate");
    check(
        rows,
        vec![
            (Value::Null, 3, vec![6.0, 15.0]),
            (json!("gold"), 2, vec![10.0, 4.0]),
            (json!("silver"), 1, vec![2.5, 2.0]),
        ],
        "by tier",
    );
    let rows = s
        .docs
        .aggregate(t, &THING, &g(Filter::all(), "active", &[]))
        .await
        .must("aggregate");
    check(
        rows,
        vec![
            (Value::Null, 2, vec![]),
            (json!(false), 2, vec![]),
            (json!(true), 2, vec![]),
        ],
        "by active",
    );
    let rows = s
        .docs
        .aggregate(
            t,
            &THING,
            &g(Filter::all(), "score", &["rank", "customFields.size"]),
        )
        .await
        .must("aggregate");
    check(
        rows,
        vec![
            (Value::Null, 2, vec![8.0, 0.0]),
            (json!(-1), 1, vec![6.0, 0.0]),
            (json!(2.5), 1, vec![2.0, 12.0]),
            (json!(7), 1, vec![4.0, 0.0]),
            (json!(10), 1, vec![1.0, 5.0]),
        ],
        "by score (non-numbers add nothing)",
    );
    let rows = s
        .docs
        .aggregate(
            t,
            &THING,
            &g(Filter::eq("tags", "red"), "customFields.tier", &["rank"]),
        )
        .await
        .must("aggregate");
    check(
        rows,
        vec![(Value::Null, 1, vec![6.0]), (json!("gold"), 1, vec![1.0])],
        "filtered",
    );
    let rows = s
        .docs
        .aggregate(
            t,
            &THING,
            &g(Filter::eq("name", "nobody"), "name", &["rank"]),
        )
        .await
        .must("aggregate");
    check(rows, vec![], "nothing matches");
}

// ---------------------------------------------------------------------------------------------
// pagination

pub async fn offset_pages_report_page_limit_total_and_pages(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let docs = (1..=7)
        .map(|r| doc(json!({"name": format!("p{r}"), "rank": r})))
        .collect();
    s.docs.insert_many(t, &THING, docs).await.must("insert");
    let by_rank = [SortKey::asc("rank")];
    let sort = &by_rank;
    let page = |filter: Filter, page: u64, limit: u64| {
        let s = s.clone();
        async move {
            find_page(
                s.docs.as_ref(),
                t,
                &THING,
                &filter,
                sort,
                &PageRequest::Offset { page, limit },
            )
            .await
        }
    };
    let off = |page, limit, total, pages| Pagination::Offset {
        page,
        limit,
        total,
        pages,
    };
    let cases: [(Filter, Pagination, &[&str]); 5] = [
        (Filter::all(), off(1, 3, 7, 3), &["p1", "p2", "p3"]),
        (Filter::all(), off(3, 3, 7, 3), &["p7"]),
        (Filter::all(), off(4, 3, 7, 3), &[]),
        (
            Filter::Gt("rank".into(), json!(2)),
            off(2, 3, 5, 2),
            &["p6", "p7"],
        ),
        (Filter::eq("rank", 99), off(1, 3, 0, 0), &[]),
    ];
    for (f, want_pagination, want) in cases {
        let Pagination::Offset { page: p, limit, .. } = want_pagination else {
            unreachable!("offset cases only");
        };
        let got = page(f.clone(), p, limit).await.must("page");
        assert_eq!(names(&got.items), want, "items of page {p} for {f:?}");
        assert_eq!(
            got.pagination, want_pagination,
            "pagination of page {p} for {f:?}"
        );
    }
    assert_invalid(page(Filter::all(), 0, 3).await, "page", "page 0");
    assert_invalid(page(Filter::all(), 1, 0).await, "limit", "limit 0");
    assert_invalid(page(Filter::all(), 1, 501).await, "limit", "limit 501");
}

/// Walks a listing by cursor, inserting a record after every page. Every original record must be
/// seen exactly once and the walk must be in sort order (so nothing before the cursor repeats).
async fn cursor_walk_while_inserting(s: Storage, sort: Vec<SortKey>) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let scores = [
        json!(null),
        json!(3),
        json!(1),
        json!("missing"),
        json!(3),
        json!(2),
        json!(null),
        json!(1),
        json!(5),
        json!(3),
        json!("missing"),
        json!(2),
    ];
    let with_score = |name: String, score: &Value| {
        let mut d = doc(json!({"name": name}));
        if score != "missing" {
            d.insert("score".into(), score.clone());
        }
        d
    };
    let originals: Vec<Document> = scores
        .iter()
        .enumerate()
        .map(|(i, sc)| with_score(format!("orig-{i:02}"), sc))
        .collect();
    s.docs
        .insert_many(t, &THING, originals)
        .await
        .must("insert originals");
    let extra = [
        json!(null),
        json!(0),
        json!("missing"),
        json!(3),
        json!(100),
        json!(-5),
        json!(2),
    ];
    let full = effective_sort(&sort);
    let mut seen: Vec<Document> = Vec::new();
    let mut after = None;
    let mut finished = false;
    for round in 0..40 {
        let page = find_page(
            s.docs.as_ref(),
            t,
            &THING,
            &Filter::all(),
            &sort,
            &PageRequest::Cursor {
                after: after.clone(),
                limit: 4,
            },
        )
        .await
        .must("cursor page");
        assert!(page.items.len() <= 4, "page larger than its limit");
        seen.extend(page.items);
        let Pagination::Cursor { next_cursor, limit } = page.pagination else {
            panic!("a cursor request got offset pagination");
        };
        assert_eq!(limit, 4);
        let sc = &extra[round % extra.len()];
        s.docs
            .insert(t, &THING, with_score(format!("new-{round:02}"), sc))
            .await
            .must("insert between pages");
        match next_cursor {
            Some(c) => after = Some(c),
            None => {
                finished = true;
                break;
            }
        }
    }
    assert!(finished, "the walk did not end");
    let ids: HashSet<ObjectId> = seen.iter().map(id_of).collect();
    assert_eq!(
        ids.len(),
        seen.len(),
        "a record came twice: {:?}",
        names(&seen)
    );
    let seen_names: BTreeSet<String> = names(&seen).into_iter().collect();
    for i in 0..scores.len() {
        let n = format!("orig-{i:02}");
        assert!(
            seen_names.contains(&n),
            "{n} was never listed: {seen_names:?}"
        );
    }
    for w in seen.windows(2) {
        assert_eq!(
            cmp_docs(&w[0], &w[1], &full),
            std::cmp::Ordering::Less,
            "listing out of order at {} then {}",
            text_at(&w[0], "name"),
            text_at(&w[1], "name")
        );
    }
}

pub async fn cursor_pages_ascending_list_every_record_once_while_inserting(s: Storage) {
    cursor_walk_while_inserting(s, vec![SortKey::asc("score")]).await;
}

pub async fn cursor_pages_descending_list_every_record_once_while_inserting(s: Storage) {
    cursor_walk_while_inserting(s, vec![SortKey::desc("score")]).await;
}

pub async fn cursor_pages_on_two_keys_list_every_record_once_while_inserting(s: Storage) {
    cursor_walk_while_inserting(s, vec![SortKey::desc("score"), SortKey::desc("name")]).await;
}

pub async fn cursor_that_is_garbage_or_from_another_sort_is_invalid(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let docs = (1..=3)
        .map(|r| doc(json!({"name": format!("c{r}"), "rank": r})))
        .collect();
    s.docs.insert_many(t, &THING, docs).await.must("insert");
    let req = |after: Option<String>| PageRequest::Cursor { after, limit: 1 };
    let sort = [SortKey::asc("rank")];
    let first = find_page(
        s.docs.as_ref(),
        t,
        &THING,
        &Filter::all(),
        &sort,
        &req(None),
    )
    .await
    .must("first page");
    let Pagination::Cursor {
        next_cursor: Some(c),
        ..
    } = first.pagination
    else {
        panic!("a first page of 1 out of 3 has a next cursor");
    };
    let second = find_page(
        s.docs.as_ref(),
        t,
        &THING,
        &Filter::all(),
        &sort,
        &req(Some(c.clone())),
    )
    .await
    .must("second page");
    assert_eq!(names(&second.items), ["c2"]);
    for bad in ["garbage!", "", "eyJzIjoieCJ9"] {
        assert_invalid(
            find_page(
                s.docs.as_ref(),
                t,
                &THING,
                &Filter::all(),
                &sort,
                &req(Some(bad.to_owned())),
            )
            .await,
            "cursor",
            &format!("cursor {bad:?}"),
        );
    }
    assert_invalid(
        find_page(
            s.docs.as_ref(),
            t,
            &THING,
            &Filter::all(),
            &[SortKey::desc("rank")],
            &req(Some(c)),
        )
        .await,
        "cursor",
        "a cursor from another sort",
    );
}

// ---------------------------------------------------------------------------------------------
// migrations, the typed layer, admin

pub async fn migrations_up_down_and_up_again_change_data_and_status(s: Storage) {
    setup(&s, &[&CONTACT, &COMPANY]).await;
    let clock = ManualClock::at(Timestamp::parse("2025-01-02T03:04:05.006Z").must("time"));
    let admin = s.admin.as_ref();
    // The ledger is per store; start from nothing applied.
    migrate::down(admin, MIGRATIONS, 0).await.must("reset");
    let t = fresh_workspace();
    let bare = s
        .docs
        .insert(t, &CONTACT, minimal_doc(&CONTACT))
        .await
        .must("bare contact");
    let mut full = minimal_doc(&CONTACT);
    for (k, v) in [
        ("status", json!("customer")),
        ("lifecycleStage", json!("mql")),
        ("tags", json!(["vip"])),
        ("customFields", json!({"x": 1})),
        ("deletedAt", json!("2024-01-01T00:00:00.000Z")),
    ] {
        full.insert(k.into(), v);
    }
    let full = s.docs.insert(t, &CONTACT, full).await.must("full contact");
    let company = s
        .docs
        .insert(t, &COMPANY, minimal_doc(&COMPANY))
        .await
        .must("company");
    let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    let reload = |def: &'static EntityDef, d: &Document| {
        let (s, id) = (s.clone(), id_of(d));
        async move { s.docs.get(t, def, id).await.must("reload") }
    };
    let applied = |want: Vec<bool>| {
        let s = s.clone();
        async move {
            let st = migrate::status(s.admin.as_ref(), MIGRATIONS)
                .await
                .must("status");
            let got: Vec<bool> = st.iter().map(|m| m.applied).collect();
            assert_eq!(got, want, "migration status");
        }
    };
    applied(vec![false; MIGRATIONS.len()]).await;

    let done = migrate::up(admin, MIGRATIONS, None, &clock)
        .await
        .must("up");
    assert_eq!(done, versions);
    applied(vec![true; MIGRATIONS.len()]).await;
    let ledger = admin.applied_migrations().await.must("ledger");
    let got: Vec<(u32, String)> = ledger.iter().map(|m| (m.version, m.name.clone())).collect();
    let want: Vec<(u32, String)> = MIGRATIONS
        .iter()
        .map(|m| (m.version, m.name.to_owned()))
        .collect();
    assert_eq!(got, want, "the ledger names what ran");
    assert!(ledger.iter().all(|m| m.applied_at == clock.now()));

    let b = reload(&CONTACT, &bare).await;
    for (k, v) in [
        ("status", json!("lead")),
        ("lifecycleStage", json!("lead")),
        ("tags", json!([])),
        ("customFields", json!({})),
        ("deletedAt", Value::Null),
    ] {
        assert_eq!(b.get(k), Some(&v), "after up, a bare contact has {k}");
    }
    assert!(
        same_doc(&reload(&CONTACT, &full).await, &full),
        "full contact kept"
    );
    assert_eq!(
        reload(&COMPANY, &company).await.get("deletedAt"),
        Some(&Value::Null)
    );
    let again = migrate::up(admin, MIGRATIONS, None, &clock)
        .await
        .must("up");
    assert!(again.is_empty(), "up twice applies nothing");

    let undone = migrate::down(admin, MIGRATIONS, 0).await.must("down");
    assert_eq!(undone, versions.iter().rev().copied().collect::<Vec<_>>());
    applied(vec![false; MIGRATIONS.len()]).await;
    let b = reload(&CONTACT, &bare).await;
    assert!(!b.contains_key("deletedAt"), "down removes the null marker");
    assert_eq!(b.get("status"), Some(&json!("lead")), "defaults stay");
    assert!(
        same_doc(&reload(&CONTACT, &full).await, &full),
        "full contact kept"
    );
    assert!(!reload(&COMPANY, &company).await.contains_key("deletedAt"));

    let first = migrate::up(admin, MIGRATIONS, Some(1), &clock)
        .await
        .must("up to 1");
    assert_eq!(first, vec![1]);
    let mut want = vec![false; MIGRATIONS.len()];
    want[0] = true;
    applied(want).await;
    let rest = migrate::up(admin, MIGRATIONS, None, &clock)
        .await
        .must("up");
    assert_eq!(rest, versions[1..].to_vec());
    applied(vec![true; MIGRATIONS.len()]).await;
    assert_eq!(
        reload(&CONTACT, &bare).await.get("deletedAt"),
        Some(&Value::Null)
    );
}

pub async fn typed_contact_repo_stamps_timestamps_end_to_end(s: Storage) {
    setup(&s, &[&CONTACT, &USER]).await;
    let t0 = Timestamp::parse("2025-03-04T05:06:07.089Z").must("time");
    let clock = Arc::new(ManualClock::at(t0));
    let stores = Stores::new(s.docs.clone(), clock.clone());
    let ws = WorkspaceId::new();
    let repo = stores.workspace(ws).repo::<Contact>();
    let email = unique_email();
    let owner = UserId::new();
    let c = Contact::new(ws, owner, "Ada").with_email(email.as_str());
    let saved = repo.insert(&c).await.must("insert contact");
    assert_eq!(saved.id, c.id);
    assert_eq!(saved.workspace_id, ws);
    assert_eq!(saved.created_at, Some(t0));
    assert_eq!(saved.updated_at, Some(t0));
    assert_eq!(repo.get(c.id).await.must("get"), saved);

    clock.advance_seconds(60);
    let t1 = clock.now();
    let upd = repo
        .update(c.id, &Update::new().set("lastName", "Lovelace"))
        .await
        .must("update");
    assert_eq!(upd.last_name, "Lovelace");
    assert_eq!(upd.created_at, Some(t0), "createdAt is kept");
    assert_eq!(upd.updated_at, Some(t1), "updatedAt is bumped");
    assert_eq!(repo.get(c.id).await.must("get"), upd);

    let by_email = Filter::eq("email", email.as_str());
    assert_eq!(repo.count(&by_email).await.must("count"), 1);
    let found = repo
        .find(&by_email, &FindOptions::default())
        .await
        .must("find");
    assert_eq!(found, vec![upd.clone()]);
    let page = repo
        .page(&by_email, &[], &PageRequest::Offset { page: 1, limit: 10 })
        .await
        .must("page");
    assert_eq!(page.items, vec![upd.clone()]);
    assert_conflict(
        repo.insert(&Contact::new(ws, owner, "Twin").with_email(email.as_str()))
            .await,
        "email",
        "typed insert of a taken email",
    );

    let other = stores.workspace(WorkspaceId::new()).repo::<Contact>();
    assert_not_found(other.get(c.id).await, "typed get from another workspace");
    assert_eq!(other.count(&Filter::all()).await.must("count"), 0);

    clock.advance_seconds(60);
    let t2 = clock.now();
    let second_email = unique_email();
    let key =
        Filter::eq("email", second_email.as_str()).and(Filter::eq("userId", owner.to_string()));
    let made = repo
        .find_one_and_update(&key, &Update::new().set("firstName", "Grace"), true)
        .await
        .must("typed upsert")
        .must("record");
    assert_eq!(made.first_name, "Grace");
    assert_eq!(made.created_at, Some(t2), "an upsert stamps createdAt");
    assert_eq!(made.updated_at, Some(t2));
    assert_eq!(made.email.as_deref(), Some(second_email.as_str()));

    repo.delete(c.id).await.must("delete");
    assert_not_found(repo.get(c.id).await, "typed get after delete");

    let users = stores.global::<User>();
    let u = users
        .insert(&User::new(&unique_email(), "Admin"))
        .await
        .must("insert user");
    assert_eq!(u.created_at, Some(t2));
    assert_eq!(users.get(u.id).await.must("get user"), u);
    users.delete(u.id).await.must("delete user");
}

pub async fn admin_ping_backend_and_idempotent_schema(s: Storage) {
    s.admin.ping().await.must("ping");
    let name = s.admin.backend();
    assert!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase()),
        "backend name {name:?} is not a short lower-case word"
    );
    let defs = all_defs();
    setup(&s, &defs).await;
    setup(&s, &defs).await;
    let t = fresh_workspace();
    let made = s
        .docs
        .insert(t, &THING, doc(json!({"name": "after schema twice"})))
        .await
        .must("insert");
    assert!(same_doc(&get_thing(&s, t, id_of(&made)).await, &made));
}
