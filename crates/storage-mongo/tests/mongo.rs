//! Against a real MongoDB-wire server: `CLIANTA_TEST_MONGODB_URI`, default the one
//! `scripts/mongo-test-server.sh start` runs. Each test uses its own database and drops it. An
//! unreachable server fails the tests; they never skip.
// Helpers outside `#[test]` functions panic on purpose, as the tests do.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use crm_core::paging::{PageRequest, find_page};
use crm_core::schema::{Dir, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::store::{AppliedMigration, WriteOp};
use crm_core::{
    Document, DocumentStore, EntityDef, Error, Filter, FindOptions, GroupBy, ObjectId, SortKey,
    StoreAdmin, Tenant, Timestamp, Update, WorkspaceId,
};
use futures::FutureExt;
use mongodb::bson::{self, Bson};
use serde_json::{Value, json};
use storage_mongo::{MongoStore, TextMode};

const DEFAULT_URI: &str = "mongodb://127.0.0.1:27017/?directConnection=true";

static ITEM: EntityDef = EntityDef {
    name: "Item",
    collection: "items",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("email", Text),
        f("ownerId", Id),
        f("refs", Ids),
        f("due", Date),
        f("expiresAt", Date),
        f("tags", Texts),
        f("amount", Number),
        f("active", Bool),
        f("status", Text),
        f("history", Array),
        f("history.at", Date),
        f("custom", Any),
    ],
    unique: &[UniqueKey {
        name: "email",
        fields: &["email"],
    }],
    indexes: &[
        IndexDef::on(&[("due", Dir::Desc)]),
        IndexDef::on(&[("status", Dir::Asc), ("amount", Dir::Desc)]),
        IndexDef::ttl(&[("expiresAt", Dir::Asc)], 3600),
    ],
    text: &["name", "email"],
};

static ACCOUNT: EntityDef = EntityDef {
    name: "Account",
    collection: "accounts",
    tenancy: Tenancy::Global,
    timestamps: false,
    fields: &[f("handle", Text), f("n", Number)],
    unique: &[UniqueKey {
        name: "handle",
        fields: &["handle"],
    }],
    indexes: &[],
    text: &[],
};

static LEGACY: EntityDef = EntityDef {
    name: "Legacy",
    collection: "legacy",
    tenancy: Tenancy::Global,
    timestamps: false,
    fields: &[f("k", Text)],
    unique: &[],
    indexes: &[IndexDef::on(&[("k", Dir::Asc)])],
    text: &[],
};

fn uri() -> String {
    std::env::var("CLIANTA_TEST_MONGODB_URI").unwrap_or_else(|_| DEFAULT_URI.to_owned())
}

async fn connect(db: &str) -> MongoStore {
    let uri = uri();
    match MongoStore::connect_db(&uri, db).await {
        Ok(s) => s,
        Err(e) => panic!(
            "cannot reach the MongoDB test server at {uri}: {e}\n\
             Start one with `scripts/mongo-test-server.sh start`, or point \
             CLIANTA_TEST_MONGODB_URI at a MongoDB."
        ),
    }
}

/// Runs a test on a fresh database (schema ensured) and drops it afterwards, pass or fail.
async fn with_store<F, Fut>(body: F)
where
    F: FnOnce(MongoStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let name = format!("clianta_test_{:016x}", rand::random::<u64>());
    let store = connect(&name).await;
    store.ensure_schema(&[&ITEM, &ACCOUNT]).await.unwrap();
    let outcome = AssertUnwindSafe(body(store.clone())).catch_unwind().await;
    store.drop_database().await.unwrap();
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}

/// The raw stored document, read with the driver (bypassing the store on purpose).
async fn raw_doc(store: &MongoStore, id: &str) -> bson::Document {
    let client = mongodb::Client::with_uri_str(uri()).await.unwrap();
    let coll = client
        .database(store.database_name())
        .collection::<bson::Document>(ITEM.collection);
    #[allow(clippy::disallowed_methods)] // the test looks at what is on disk
    let found = coll
        .find_one(bson::doc! { "_id": bson::oid::ObjectId::parse_str(id).unwrap() })
        .await
        .unwrap();
    found.unwrap()
}

fn ws() -> Tenant {
    Tenant::Workspace(WorkspaceId::new())
}

fn doc(v: Value) -> Document {
    v.as_object().unwrap().clone()
}

fn id_of(d: &Document) -> ObjectId {
    ObjectId::parse_str(d["_id"].as_str().unwrap()).unwrap()
}

async fn names(store: &MongoStore, t: Tenant, filter: &Filter) -> Vec<String> {
    let opts = FindOptions {
        sort: vec![SortKey::asc("name")],
        ..Default::default()
    };
    store
        .find(t, &ITEM, filter, &opts)
        .await
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_dead_server_fails_fast_with_unavailable() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let uri =
        format!("mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=500");
    let err = MongoStore::connect(&uri).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        MongoStore::connect("not-a-uri").await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn admin_basics() {
    with_store(|s| async move {
        assert_eq!(s.backend(), "mongo");
        s.ping().await.unwrap();
        // Idempotent: the same declarations again change nothing.
        s.ensure_schema(&[&ITEM, &ACCOUNT]).await.unwrap();
        let client = mongodb::Client::with_uri_str(uri()).await.unwrap();
        let coll = client
            .database(s.database_name())
            .collection::<bson::Document>("items");
        let mut ix = std::collections::BTreeMap::new();
        let mut cursor = coll.list_indexes().await.unwrap();
        while let Some(m) = futures::TryStreamExt::try_next(&mut cursor).await.unwrap() {
            let name = m.options.as_ref().and_then(|o| o.name.clone()).unwrap();
            ix.insert(name, m);
        }
        let uniq = &ix["uniq_items_email"];
        assert_eq!(uniq.keys, bson::doc! { "workspaceId": 1, "email": 1 });
        let o = uniq.options.as_ref().unwrap();
        assert_eq!(o.unique, Some(true));
        assert_eq!(
            o.partial_filter_expression,
            Some(bson::doc! { "email": { "$type": "string" } })
        );
        assert!(ix.contains_key("workspaceId_1_due_-1"), "{:?}", ix.keys());
        assert!(ix.contains_key("workspaceId_1_status_1_amount_-1"));
        let ttl = ix["expiresAt_1"].options.as_ref().unwrap();
        assert_eq!(ttl.expire_after, Some(Duration::from_secs(3600)));
        assert_eq!(ix.contains_key("text_items"), s.supports_text_index());

        // An older definition under the same name: start-up says which, loudly.
        let legacy = client
            .database(s.database_name())
            .collection::<bson::Document>(LEGACY.collection);
        let old = mongodb::IndexModel::builder()
            .keys(bson::doc! { "k": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .name("k_1".to_owned())
                    .unique(true)
                    .build(),
            )
            .build();
        legacy.create_index(old).await.unwrap();
        let err = s.ensure_schema(&[&LEGACY]).await.unwrap_err();
        assert!(
            matches!(&err, Error::Internal(m) if m.contains("legacy") && m.contains("k")),
            "{err:?}"
        );

        assert!(s.applied_migrations().await.unwrap().is_empty());
        let at = Timestamp::parse("2026-01-02T03:04:05.678Z").unwrap();
        for v in [2, 1, 2] {
            s.record_migration(&AppliedMigration {
                version: v,
                name: format!("m{v}"),
                applied_at: at,
            })
            .await
            .unwrap();
        }
        let applied = s.applied_migrations().await.unwrap();
        assert_eq!(
            applied.iter().map(|m| m.version).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(applied[0].applied_at, at);
        assert_eq!(applied[1].name, "m2");
        s.forget_migration(2).await.unwrap();
        assert_eq!(s.applied_migrations().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn every_operation_is_scoped_to_the_tenant() {
    with_store(|s| async move {
        let (a, b) = (ws(), ws());
        let Tenant::Workspace(a_id) = a else {
            unreachable!()
        };
        let d = s
            .insert(
                a,
                &ITEM,
                doc(json!({"name": "A1", "amount": 1, "status": "x"})),
            )
            .await
            .unwrap();
        assert_eq!(d["workspaceId"], json!(a_id.to_string()));
        let id = id_of(&d);
        let all = Filter::all();
        let bump = Update::new().inc("amount", 1);

        assert_eq!(s.get(b, &ITEM, id).await, Err(Error::NotFound));
        assert!(
            s.find(b, &ITEM, &all, &FindOptions::default())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.count(b, &ITEM, &all).await.unwrap(), 0);
        let by_tenant = Filter::eq("workspaceId", a_id.to_string());
        assert_eq!(s.count(b, &ITEM, &by_tenant).await.unwrap(), 0);
        assert_eq!(
            s.update_one(b, &ITEM, id, &bump).await,
            Err(Error::NotFound)
        );
        assert_eq!(s.update_many(b, &ITEM, &all, &bump).await.unwrap(), 0);
        let by_id = Filter::eq("_id", id.to_string());
        assert_eq!(
            s.find_one_and_update(b, &ITEM, &by_id, &bump, false)
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.delete_one(b, &ITEM, id).await, Err(Error::NotFound));
        assert_eq!(s.delete_many(b, &ITEM, &all).await.unwrap(), 0);
        let g = GroupBy {
            filter: all.clone(),
            key: "status".into(),
            sums: vec![],
        };
        assert!(s.aggregate(b, &ITEM, &g).await.unwrap().is_empty());

        // Writing another tenant's id, or changing `_id`/the tenant, is refused.
        let foreign = doc(json!({"name": "X", "workspaceId": a_id.to_string()}));
        assert!(matches!(
            s.insert(b, &ITEM, foreign.clone()).await,
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            s.insert_many(b, &ITEM, vec![doc(json!({"name": "ok"})), foreign])
                .await,
            Err(Error::Invalid { .. })
        ));
        let other = WorkspaceId::new().to_string();
        for u in [
            Update::new().set("workspaceId", other.clone()),
            Update::new().unset("workspaceId"),
            Update::new().set("_id", ObjectId::new().to_string()),
        ] {
            assert!(matches!(
                s.update_one(a, &ITEM, id, &u).await,
                Err(Error::Invalid { .. })
            ));
            assert!(matches!(
                s.update_many(a, &ITEM, &all, &u).await,
                Err(Error::Invalid { .. })
            ));
        }
        assert!(matches!(
            s.get(Tenant::Global, &ITEM, id).await,
            Err(Error::Internal(_))
        ));

        // An upsert from B lands in B; A's record is untouched throughout.
        let up = s
            .find_one_and_update(b, &ITEM, &Filter::eq("name", "A1"), &bump, true)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(id_of(&up), id);
        assert_eq!(up["amount"], json!(1));
        assert_eq!(s.count(b, &ITEM, &all).await.unwrap(), 1);
        let a_doc = s.get(a, &ITEM, id).await.unwrap();
        assert_eq!(a_doc, d);
        assert_eq!(s.count(a, &ITEM, &all).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn unique_keys_conflict_by_name_and_allow_many_missing() {
    with_store(|s| async move {
        let (a, b) = (ws(), ws());
        s.insert(a, &ITEM, doc(json!({"name": "1", "email": "x@y.z"})))
            .await
            .unwrap();
        let dup = doc(json!({"name": "2", "email": "x@y.z"}));
        assert_eq!(
            s.insert(a, &ITEM, dup.clone()).await,
            Err(Error::conflict("email"))
        );
        s.insert(b, &ITEM, dup).await.unwrap();
        // No email, null email and a non-text email are outside the key.
        for v in [
            json!({}),
            json!({}),
            json!({"email": null}),
            json!({"email": null}),
            json!({"email": 5}),
            json!({"email": 5}),
        ] {
            let mut d = doc(v);
            d.insert("name".into(), json!("n"));
            s.insert(a, &ITEM, d).await.unwrap();
        }
        assert_eq!(s.count(a, &ITEM, &Filter::all()).await.unwrap(), 7);

        let other = s
            .insert(a, &ITEM, doc(json!({"name": "3", "email": "o@y.z"})))
            .await
            .unwrap();
        let u = Update::new().set("email", "x@y.z");
        assert_eq!(
            s.update_one(a, &ITEM, id_of(&other), &u).await,
            Err(Error::conflict("email"))
        );
        assert_eq!(
            s.find_one_and_update(a, &ITEM, &Filter::eq("name", "new"), &u, true)
                .await,
            Err(Error::conflict("email"))
        );
        let existing = other["_id"].clone();
        assert_eq!(
            s.insert(a, &ITEM, doc(json!({"_id": existing, "name": "dup id"})))
                .await,
            Err(Error::conflict("_id"))
        );

        // All or nothing: the clash is the third document; none of the batch stays.
        let before = s.count(a, &ITEM, &Filter::all()).await.unwrap();
        let batch = vec![
            doc(json!({"name": "b1", "email": "b1@y.z"})),
            doc(json!({"name": "b2"})),
            doc(json!({"name": "b3", "email": "x@y.z"})),
        ];
        assert_eq!(
            s.insert_many(a, &ITEM, batch).await,
            Err(Error::conflict("email"))
        );
        assert_eq!(s.count(a, &ITEM, &Filter::all()).await.unwrap(), before);
        let batch = vec![
            doc(json!({"name": "c1", "email": "c@y.z"})),
            doc(json!({"name": "c2", "email": "c@y.z"})),
        ];
        assert_eq!(
            s.insert_many(a, &ITEM, batch).await,
            Err(Error::conflict("email"))
        );
        assert_eq!(s.count(a, &ITEM, &Filter::all()).await.unwrap(), before);

        // Without transactions (a standalone server) the written part is deleted again.
        let standalone = s.clone().without_transactions();
        let batch = vec![
            doc(json!({"name": "d1", "email": "d1@y.z"})),
            doc(json!({"name": "d2", "email": "x@y.z"})),
            doc(json!({"name": "d3", "email": "d3@y.z"})),
        ];
        assert_eq!(
            standalone.insert_many(a, &ITEM, batch).await,
            Err(Error::conflict("email"))
        );
        assert_eq!(s.count(a, &ITEM, &Filter::all()).await.unwrap(), before);
        let fine = vec![doc(json!({"name": "e1"})), doc(json!({"name": "e2"}))];
        assert_eq!(standalone.insert_many(a, &ITEM, fine).await.unwrap(), 2);

        // Global entities: one key over all documents.
        let g = Tenant::Global;
        s.insert(g, &ACCOUNT, doc(json!({"handle": "h"})))
            .await
            .unwrap();
        assert_eq!(
            s.insert(g, &ACCOUNT, doc(json!({"handle": "h"}))).await,
            Err(Error::conflict("handle"))
        );
    })
    .await;
}

#[tokio::test]
async fn declared_kinds_are_bson_types_on_disk_and_round_trip() {
    with_store(|s| async move {
        let a = ws();
        let owner = ObjectId::new().to_string();
        let input = doc(json!({
            "name": "Ada",
            "ownerId": owner,
            "refs": [owner],
            "due": "2026-01-02T04:04:05.5+01:00",
            "createdAt": "2026-01-02T03:04:05.123Z",
            "history": [{"at": "2026-01-02T03:04:05Z", "note": owner}],
            "custom": {"ref": owner, "when": "2026-01-02T03:04:05Z"},
            "amount": 42,
            "score": 1.5,
            "active": true,
        }));
        let stored = s.insert(a, &ITEM, input).await.unwrap();
        let id = stored["_id"].as_str().unwrap().to_owned();
        assert_eq!(stored["due"], json!("2026-01-02T03:04:05.500Z"));

        let raw = raw_doc(&s, &id).await;
        assert!(matches!(raw.get("_id"), Some(Bson::ObjectId(_))));
        assert!(matches!(raw.get("workspaceId"), Some(Bson::ObjectId(_))));
        assert!(matches!(raw.get("ownerId"), Some(Bson::ObjectId(o)) if o.to_hex() == owner));
        assert!(matches!(
            &raw.get_array("refs").unwrap()[0],
            Bson::ObjectId(_)
        ));
        assert_eq!(
            raw.get_datetime("due").unwrap().timestamp_millis(),
            Timestamp::parse("2026-01-02T03:04:05.500Z")
                .unwrap()
                .millis()
        );
        assert!(matches!(raw.get("createdAt"), Some(Bson::DateTime(_))));
        let h = raw.get_array("history").unwrap()[0].as_document().unwrap();
        assert!(matches!(h.get("at"), Some(Bson::DateTime(_))));
        assert!(matches!(h.get("note"), Some(Bson::String(_))));
        let c = raw.get_document("custom").unwrap();
        assert!(matches!(c.get("ref"), Some(Bson::String(_))));
        assert!(matches!(c.get("when"), Some(Bson::String(_))));
        assert_eq!(raw.get("amount"), Some(&Bson::Int64(42)));
        assert_eq!(raw.get("score"), Some(&Bson::Double(1.5)));
        assert_eq!(raw.get("active"), Some(&Bson::Boolean(true)));

        // Read back exactly as the port shows documents.
        let oid = ObjectId::parse_str(&id).unwrap();
        let back = s.get(a, &ITEM, oid).await.unwrap();
        assert_eq!(back, stored);
        assert_eq!(back["ownerId"], json!(owner));
        assert_eq!(back["createdAt"], json!("2026-01-02T03:04:05.123Z"));
        assert_eq!(back["history"][0]["at"], json!("2026-01-02T03:04:05.000Z"));
        assert_eq!(back["amount"], json!(42));
        assert_eq!(back["score"], json!(1.5));

        // Updates convert by kind too.
        let other = ObjectId::new().to_string();
        let u = Update::new()
            .set("due", "2027-01-01T00:00:00Z")
            .push("refs", other.clone())
            .inc("amount", 1)
            .inc("score", 1);
        let after = s.update_one(a, &ITEM, oid, &u).await.unwrap();
        assert_eq!(after["due"], json!("2027-01-01T00:00:00.000Z"));
        assert_eq!(after["refs"], json!([owner, other]));
        assert_eq!(after["amount"], json!(43));
        assert_eq!(after["score"], json!(2.5));
        let raw = raw_doc(&s, &id).await;
        assert!(matches!(raw.get("due"), Some(Bson::DateTime(_))));
        assert!(matches!(
            &raw.get_array("refs").unwrap()[1],
            Bson::ObjectId(_)
        ));
        assert_eq!(raw.get("amount"), Some(&Bson::Int64(43)));

        // Filters convert operands the same way: a date in another offset, an id as text.
        let f = Filter::Gte("due".into(), json!("2027-01-01T01:00:00+01:00"))
            .and(Filter::eq("ownerId", owner.to_uppercase()))
            .and(Filter::eq("refs", other));
        assert_eq!(s.count(a, &ITEM, &f).await.unwrap(), 1);
        let f = Filter::Gt("due".into(), json!("2027-01-01T00:00:00Z"));
        assert_eq!(s.count(a, &ITEM, &f).await.unwrap(), 0);
        assert!(matches!(
            s.count(a, &ITEM, &Filter::eq("ownerId", "nope")).await,
            Err(Error::Invalid { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn filters_sorts_and_pages() {
    with_store(|s| async move {
        let a = ws();
        let docs = vec![
            doc(json!({"name": "a", "amount": 3, "tags": ["x", "y"], "status": "open"})),
            doc(json!({"name": "b", "amount": 1.5, "tags": ["y"], "status": "won"})),
            doc(json!({"name": "c", "tags": [], "status": null})),
            doc(json!({"name": "d (1).*", "amount": 3, "custom": {"tier": "gold"}})),
            doc(json!({"name": "e", "amount": "n/a"})),
        ];
        assert_eq!(s.insert_many(a, &ITEM, docs).await.unwrap(), 5);
        let n = |f: Filter| {
            let s = s.clone();
            async move { names(&s, a, &f).await }
        };
        assert_eq!(n(Filter::eq("tags", "y")).await, ["a", "b"]);
        assert_eq!(
            n(Filter::eq("status", Value::Null)).await,
            ["c", "d (1).*", "e"]
        );
        assert_eq!(
            n(Filter::Ne("status".into(), Value::Null)).await,
            ["a", "b"]
        );
        assert_eq!(
            n(Filter::Gt("amount".into(), json!(2))).await,
            ["a", "d (1).*"]
        );
        assert_eq!(n(Filter::Lt("amount".into(), json!("z"))).await, ["e"]);
        assert_eq!(
            n(Filter::In("amount".into(), vec![json!(1.5), json!(3.0)])).await,
            ["a", "b", "d (1).*"]
        );
        assert_eq!(
            n(Filter::Nin("tags".into(), vec![json!("x")])).await,
            ["b", "c", "d (1).*", "e"]
        );
        assert_eq!(
            n(Filter::All("tags".into(), vec![json!("y"), json!("x")])).await,
            ["a"]
        );
        assert!(n(Filter::All("tags".into(), vec![])).await.is_empty());
        assert_eq!(
            n(Filter::Exists("custom.tier".into(), true)).await,
            ["d (1).*"]
        );
        assert_eq!(n(Filter::eq("custom.tier", "gold")).await, ["d (1).*"]);
        assert_eq!(
            n(Filter::Contains("name".into(), "(1).".into())).await,
            ["d (1).*"]
        );
        assert!(
            n(Filter::Contains("name".into(), "d.*".into()))
                .await
                .is_empty()
        );
        assert_eq!(n(Filter::Contains("tags".into(), "X".into())).await, ["a"]);
        assert_eq!(
            n(Filter::Or(vec![Filter::eq("name", "a"), Filter::eq("status", "won")]).negate())
                .await,
            ["c", "d (1).*", "e"]
        );

        // Sort: numbers before text, missing first ascending; `_id` breaks ties.
        let opts = FindOptions {
            sort: vec![SortKey::desc("amount")],
            skip: 1,
            limit: Some(3),
        };
        let got: Vec<String> = s
            .find(a, &ITEM, &Filter::all(), &opts)
            .await
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, ["a", "d (1).*", "b"]);
        let zero = FindOptions {
            limit: Some(0),
            ..Default::default()
        };
        assert!(
            s.find(a, &ITEM, &Filter::all(), &zero)
                .await
                .unwrap()
                .is_empty()
        );

        // Keyset paging visits every document once. ("e" holds text in a number field: keyset
        // comparisons are type-bracketed, in the engine as in MongoDB, so it is left out.)
        let numeric = Filter::Ne("name".into(), json!("e"));
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = find_page(
                &s,
                a,
                &ITEM,
                &numeric,
                &[SortKey::asc("amount")],
                &PageRequest::Cursor { after, limit: 2 },
            )
            .await
            .unwrap();
            seen.extend(
                page.items
                    .iter()
                    .map(|d| d["name"].as_str().unwrap().to_owned()),
            );
            match page.pagination {
                crm_core::paging::Pagination::Cursor {
                    next_cursor: Some(c),
                    ..
                } => after = Some(c),
                _ => break,
            }
        }
        assert_eq!(seen, ["c", "b", "a", "d (1).*"]);
    })
    .await;
}

#[tokio::test]
async fn text_search_fallback_is_substring_per_word() {
    with_store(|s| async move {
        let s = s.with_text_fallback();
        assert_eq!(s.text_mode(), TextMode::Regex);
        let (a, b) = (ws(), ws());
        s.insert_many(
            a,
            &ITEM,
            vec![
                doc(json!({"name": "Ada Lovelace", "email": "ada@analytical.org"})),
                doc(json!({"name": "Grace Hopper", "email": "grace@navy.mil"})),
                doc(json!({"name": "Alan (Turing)", "email": "alan@bletchley.uk"})),
            ],
        )
        .await
        .unwrap();
        s.insert(b, &ITEM, doc(json!({"name": "Ada Other"})))
            .await
            .unwrap();
        let t = |q: &str| Filter::Text(q.into());
        assert_eq!(names(&s, a, &t("ada")).await, ["Ada Lovelace"]);
        assert_eq!(names(&s, a, &t("LACE  analytical")).await, ["Ada Lovelace"]);
        assert_eq!(names(&s, a, &t("ada navy")).await, Vec::<String>::new());
        assert_eq!(
            names(&s, a, &t("a")).await,
            ["Ada Lovelace", "Alan (Turing)", "Grace Hopper"]
        );
        assert_eq!(names(&s, a, &t("(turing)")).await, ["Alan (Turing)"]);
        assert!(names(&s, a, &t("a.a")).await.is_empty());
        assert_eq!(names(&s, a, &t(".mil")).await, ["Grace Hopper"]);
        assert_eq!(
            names(
                &s,
                a,
                &Filter::Or(vec![t("hopper"), Filter::eq("name", "Ada Lovelace")])
            )
            .await,
            ["Ada Lovelace", "Grace Hopper"]
        );
        assert_eq!(s.count(a, &ITEM, &t("ada").negate()).await.unwrap(), 2);
        assert!(matches!(
            s.count(a, &ITEM, &t("   ")).await,
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            s.count(Tenant::Global, &ACCOUNT, &t("x")).await,
            Err(Error::Invalid { .. })
        ));
    })
    .await;
}

/// On a server with text indexes, `$text` serves whole words; elsewhere the store says so.
#[tokio::test]
async fn text_search_by_index_where_supported() {
    with_store(|s| async move {
        let a = ws();
        s.insert(
            a,
            &ITEM,
            doc(json!({"name": "Ada Lovelace", "email": "ada@x.org"})),
        )
        .await
        .unwrap();
        s.insert(a, &ITEM, doc(json!({"name": "Grace Hopper"})))
            .await
            .unwrap();
        if !s.supports_text_index() {
            assert_eq!(s.text_mode(), TextMode::Regex);
        }
        let f = Filter::Text("lovelace ADA".into());
        assert_eq!(names(&s, a, &f).await, ["Ada Lovelace"]);
        assert!(
            names(&s, a, &Filter::Text("lovelace hopper".into()))
                .await
                .is_empty()
        );
        let g = GroupBy {
            filter: Filter::Text("grace".into()),
            key: "name".into(),
            sums: vec![],
        };
        assert_eq!(s.aggregate(a, &ITEM, &g).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn updates_and_find_one_and_update() {
    with_store(|s| async move {
        let a = ws();
        // A per-workspace counter: upsert then increments.
        let key = Filter::eq("name", "ticket");
        for want in 1..=3 {
            let d = s
                .find_one_and_update(a, &ITEM, &key, &Update::new().inc("amount", 1), true)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(d["amount"], json!(want));
            assert_eq!(d["name"], json!("ticket"));
        }
        let on_insert = Update::new()
            .set_on_insert("status", "new")
            .inc("amount", 1);
        let d = s
            .find_one_and_update(a, &ITEM, &key, &on_insert, true)
            .await
            .unwrap()
            .unwrap();
        assert!(d.get("status").is_none());
        let d = s
            .find_one_and_update(a, &ITEM, &Filter::eq("name", "fresh"), &on_insert, true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d["status"], json!("new"));
        assert_eq!(
            s.find_one_and_update(a, &ITEM, &Filter::eq("name", "none"), &on_insert, false)
                .await
                .unwrap(),
            None
        );
        // First match by `_id`.
        let first = s
            .find_one_and_update(
                a,
                &ITEM,
                &Filter::all(),
                &Update::new().set("active", true),
                false,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first["name"], json!("ticket"));

        let id = id_of(&first);
        let u = Update::new()
            .add_to_set("tags", "x")
            .push("history", json!({"at": "2026-01-01T00:00:00Z", "k": 1}))
            .unset("active");
        s.update_one(a, &ITEM, id, &u).await.unwrap();
        let u = Update::new()
            .add_to_set("tags", "x")
            .push("history", json!({"k": 2}))
            .set("custom.deep.x", 1);
        s.update_one(a, &ITEM, id, &u).await.unwrap();
        let u = Update::new()
            .pull("history", json!({"k": 2}))
            .push("tags", "y");
        let d = s.update_one(a, &ITEM, id, &u).await.unwrap();
        assert_eq!(d["tags"], json!(["x", "y"]));
        assert_eq!(
            d["history"],
            json!([{"at": "2026-01-01T00:00:00.000Z", "k": 1}])
        );
        assert_eq!(d["custom"], json!({"deep": {"x": 1}}));
        assert!(d.get("active").is_none());
        assert_eq!(s.update_one(a, &ITEM, id, &Update::new()).await.unwrap(), d);

        // Type errors are Invalid and name the path; the document stays as it was.
        let err = s
            .update_one(a, &ITEM, id, &Update::new().set("x", 1).inc("name", 1))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "name"),
            "{err:?}"
        );
        assert!(matches!(
            s.update_one(a, &ITEM, id, &Update::new().push("name", 1))
                .await,
            Err(Error::Invalid { .. })
        ));
        assert_eq!(s.get(a, &ITEM, id).await.unwrap(), d);

        // update_many counts matches; with transactions a failure leaves every document as it was.
        assert_eq!(
            s.update_many(a, &ITEM, &Filter::all(), &Update::new().set("status", "s"))
                .await
                .unwrap(),
            2
        );
        let bad = Update::new().inc("status", 1).set("touched", true);
        let other = s
            .insert(a, &ITEM, doc(json!({"name": "zz", "status": 5})))
            .await
            .unwrap();
        let r = s.update_many(a, &ITEM, &Filter::all(), &bad).await;
        assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
        if s.supports_transactions() {
            let touched = s
                .count(a, &ITEM, &Filter::Exists("touched".into(), true))
                .await
                .unwrap();
            assert_eq!(touched, 0);
            assert_eq!(s.get(a, &ITEM, id_of(&other)).await.unwrap(), other);
        }

        assert_eq!(
            s.delete_many(a, &ITEM, &Filter::eq("status", "s"))
                .await
                .unwrap(),
            2
        );
        s.delete_one(a, &ITEM, id_of(&other)).await.unwrap();
        assert_eq!(
            s.delete_one(a, &ITEM, id_of(&other)).await,
            Err(Error::NotFound)
        );
        assert_eq!(s.count(a, &ITEM, &Filter::all()).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn aggregation_counts_and_sums_per_key() {
    with_store(|s| async move {
        let (a, b) = (ws(), ws());
        let owner = ObjectId::new().to_string();
        s.insert_many(
            a,
            &ITEM,
            vec![
                doc(json!({"name": "1", "status": "won", "amount": 1, "ownerId": owner})),
                doc(json!({"name": "2", "status": "won", "amount": 2.5, "ownerId": owner})),
                doc(json!({"name": "3", "status": "lost", "amount": "x"})),
                doc(json!({"name": "4", "amount": 4})),
                doc(json!({"name": "5", "status": null})),
            ],
        )
        .await
        .unwrap();
        s.insert(
            b,
            &ITEM,
            doc(json!({"name": "b", "status": "won", "amount": 100})),
        )
        .await
        .unwrap();
        let g = GroupBy {
            filter: Filter::all(),
            key: "status".into(),
            sums: vec!["amount".into()],
        };
        let rows = s.aggregate(a, &ITEM, &g).await.unwrap();
        let got: Vec<(Value, u64, Vec<f64>)> =
            rows.into_iter().map(|r| (r.key, r.count, r.sums)).collect();
        assert_eq!(
            got,
            vec![
                (Value::Null, 2, vec![4.0]),
                (json!("lost"), 1, vec![0.0]),
                (json!("won"), 2, vec![3.5]),
            ]
        );
        let g = GroupBy {
            filter: Filter::Gte("amount".into(), json!(2)),
            key: "ownerId".into(),
            sums: vec!["amount".into(), "missing".into()],
        };
        let rows = s.aggregate(a, &ITEM, &g).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].key.clone(), rows[0].count), (Value::Null, 1));
        assert_eq!(rows[1].key, json!(owner));
        assert_eq!(rows[1].sums, vec![2.5, 0.0]);
    })
    .await;
}

#[tokio::test]
async fn update_all_tenants_reaches_every_workspace() {
    with_store(|s| async move {
        let (a, b) = (ws(), ws());
        s.insert(a, &ITEM, doc(json!({"name": "a"}))).await.unwrap();
        s.insert(b, &ITEM, doc(json!({"name": "b", "status": "kept"})))
            .await
            .unwrap();
        let n = s
            .update_all_tenants(
                &ITEM,
                &Filter::Exists("status".into(), false),
                &Update::new().set("status", "lead"),
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(names(&s, a, &Filter::eq("status", "lead")).await, ["a"]);
        assert_eq!(names(&s, b, &Filter::eq("status", "kept")).await, ["b"]);
        assert!(matches!(
            s.update_all_tenants(&ITEM, &Filter::all(), &Update::new().unset("workspaceId"))
                .await,
            Err(Error::Invalid { .. })
        ));
    })
    .await;
}

/// SecantusDB answers a findAndModify upsert that loses the insert race with a null document
/// (its update applied); the store's own upsert loop must still hand every caller its value.
#[tokio::test]
async fn concurrent_upserts_each_see_their_own_increment() {
    with_store(|s| async move {
        let a = ws();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let s = s.clone();
            tasks.spawn(async move {
                let key = Filter::eq("email", "counter@x.y");
                let u = Update::new()
                    .inc("amount", 1)
                    .set_on_insert("name", "counter");
                let d = s.find_one_and_update(a, &ITEM, &key, &u, true).await;
                d.unwrap().unwrap()["amount"].as_i64().unwrap()
            });
        }
        let mut seen = tasks.join_all().await;
        seen.sort_unstable();
        assert_eq!(seen, (1..=16).collect::<Vec<i64>>());
        assert_eq!(s.count(a, &ITEM, &Filter::all()).await.unwrap(), 1);
    })
    .await;
}

/// A standalone server has no transactions: the contract's batch cases must still hold there
/// (the earlier ops of a failed batch are undone).
#[tokio::test]
async fn batches_are_all_or_nothing_without_transactions_too() {
    for (name, case) in storage_contract::all_cases()
        .into_iter()
        .filter(|(name, _)| name.starts_with("batch_"))
    {
        let db = format!("clianta_test_{:016x}", rand::random::<u64>());
        let store = connect(&db).await.without_transactions();
        let outcome = AssertUnwindSafe(case(crm_core::Storage::new(std::sync::Arc::new(
            store.clone(),
        ))))
        .catch_unwind()
        .await;
        store.drop_database().await.unwrap();
        if let Err(p) = outcome {
            eprintln!("batch case {name} failed without transactions");
            std::panic::resume_unwind(p);
        }
    }
}

/// Guarded writers racing on one record: one wins, every other is told its read is stale,
/// with transactions (write conflicts retried) and without.
#[tokio::test]
async fn racing_guarded_batches_let_exactly_one_win() {
    with_store(|s| async move {
        for store in [s.clone(), s.clone().without_transactions()] {
            let a = ws();
            let rec = store
                .insert(a, &ITEM, doc(json!({"name": "raced", "amount": 0})))
                .await
                .unwrap();
            let id = id_of(&rec);
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..8 {
                let store = store.clone();
                tasks.spawn(async move {
                    store
                        .write_batch(vec![
                            WriteOp::Update {
                                t: a,
                                def: &ITEM,
                                id,
                                update: Update::new()
                                    .inc("amount", 1)
                                    .set("status", format!("w{i}")),
                                guard: Filter::eq("amount", 0),
                            },
                            WriteOp::Insert {
                                t: Tenant::Global,
                                def: &ACCOUNT,
                                doc: doc(json!({"n": i})),
                            },
                        ])
                        .await
                });
            }
            let results = tasks.join_all().await;
            let won = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(won, 1, "{results:?}");
            assert!(
                results
                    .iter()
                    .all(|r| r.is_ok() || matches!(r, Err(Error::Stale))),
                "{results:?}"
            );
            let after = store.get(a, &ITEM, id).await.unwrap();
            assert_eq!(after["amount"], json!(1));
            let entries = store
                .count(Tenant::Global, &ACCOUNT, &Filter::all())
                .await
                .unwrap();
            assert_eq!(entries, 1, "only the winner's second op is kept");
            store
                .delete_many(Tenant::Global, &ACCOUNT, &Filter::all())
                .await
                .unwrap();
        }
    })
    .await;
}
