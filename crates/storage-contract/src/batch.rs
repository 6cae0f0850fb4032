//! Contract cases for `DocumentStore::write_batch`: ops apply in order, all or none, each with
//! its own tenant; guarded updates and deletes fail with `Stale` once their record changed.

use crm_core::engine::Document;
use crm_core::events::OUTBOX_ENTRY;
use crm_core::schema::ID_FIELD;
use crm_core::store::WriteOp;
use crm_core::{
    EntityDef, Error, Filter, FindOptions, ObjectId, Storage, Tenant, Timestamp, Update,
    WorkspaceId,
};
use serde_json::{Value, json};

use crate::support::{Must, doc, fresh_workspace, same_doc, setup, text_at};
use crate::thing::THING;

/// A named op that must fail its batch, and the error it must fail with.
type Expect = (&'static str, WriteOp, fn(&Error) -> bool);

fn id_of(d: &Document) -> ObjectId {
    ObjectId::parse_str(text_at(d, ID_FIELD)).must("stored `_id` is 24 hex digits")
}

fn insert(t: Tenant, d: Value) -> WriteOp {
    WriteOp::Insert {
        t,
        def: &THING,
        doc: doc(d),
    }
}

fn update(t: Tenant, id: ObjectId, u: Update, guard: Filter) -> WriteOp {
    WriteOp::Update {
        t,
        def: &THING,
        id,
        update: u,
        guard,
    }
}

fn delete(t: Tenant, id: ObjectId, guard: Filter) -> WriteOp {
    WriteOp::Delete {
        t,
        def: &THING,
        id,
        guard,
    }
}

fn outbox_doc(ws: WorkspaceId) -> Document {
    doc(json!({
        "eventId": ObjectId::new().to_hex(),
        "workspaceId": ws.to_string(),
        "eventType": "contract.batched",
        "occurredAt": Timestamp::now().to_canonical(),
    }))
}

async fn all(s: &Storage, t: Tenant, def: &'static EntityDef) -> Vec<Document> {
    s.docs
        .find(t, def, &Filter::all(), &FindOptions::default())
        .await
        .must("find everything")
}

/// Every record of the tenant, exactly as before.
#[track_caller]
fn assert_same_records(before: &[Document], after: &[Document], what: &str) {
    assert!(
        before.len() == after.len() && before.iter().zip(after).all(|(a, b)| same_doc(a, b)),
        "{what}: the failed batch left changes\n before: {before:?}\n after: {after:?}"
    );
}

fn ws_of(t: Tenant) -> WorkspaceId {
    match t {
        Tenant::Workspace(ws) => ws,
        Tenant::Global => panic!("the cases batch in a workspace"),
    }
}

/// Two records to change: `a` (code "a-code") and `b` (code "b-code").
async fn two_records(s: &Storage, t: Tenant) -> (ObjectId, ObjectId) {
    let a = s
        .docs
        .insert(
            t,
            &THING,
            doc(json!({"name": "a", "code": "a-code", "score": 1})),
        )
        .await
        .must("insert a");
    let b = s
        .docs
        .insert(
            t,
            &THING,
            doc(json!({"name": "b", "code": "b-code", "score": 2})),
        )
        .await
        .must("insert b");
    (id_of(&a), id_of(&b))
}

pub async fn batch_applies_ops_in_order_and_returns_each_result(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let (a, b) = two_records(&s, t).await;
    let new = ObjectId::new();
    let out = s
        .docs
        .write_batch(vec![
            insert(t, json!({"_id": new.to_hex(), "name": "new", "score": 5})),
            // Sees the insert before it.
            update(
                t,
                new,
                Update::new().inc("score", 1),
                Filter::eq("score", 5),
            ),
            update(
                t,
                a,
                Update::new().set("name", "a2"),
                Filter::eq("name", "a"),
            ),
            delete(t, b, Filter::eq("name", "b")),
            // Frees "a-code" and takes it again in one batch: uniqueness holds per op.
            update(t, a, Update::new().set("code", "a-new"), Filter::all()),
            insert(t, json!({"name": "c", "code": "a-code"})),
        ])
        .await
        .must("the batch");
    assert_eq!(out.len(), 6, "one result per op: {out:?}");
    let first = out[0].as_ref().must("an insert returns its document");
    assert_eq!(text_at(first, ID_FIELD), new.to_hex());
    assert_eq!(
        text_at(first, "workspaceId"),
        ws_of(t).to_string(),
        "the tenant is stamped on inserts"
    );
    let second = out[1].as_ref().must("an update returns its document after");
    assert_eq!(second.get("score").and_then(Value::as_f64), Some(6.0));
    assert_eq!(text_at(out[2].as_ref().must("update of a"), "name"), "a2");
    assert!(out[3].is_none(), "a delete returns None: {:?}", out[3]);
    assert_eq!(
        text_at(out[4].as_ref().must("second update of a"), "name"),
        "a2",
        "a later op sees the earlier op's result"
    );
    assert_eq!(text_at(out[5].as_ref().must("insert c"), "code"), "a-code");
    let stored = s.docs.get(t, &THING, new).await.must("get new");
    assert!(same_doc(&stored, second), "stored {stored:?} vs {second:?}");
    match s.docs.get(t, &THING, b).await {
        Err(Error::NotFound) => {}
        other => panic!("b was deleted by the batch, got {other:?}"),
    }
    assert_eq!(all(&s, t, &THING).await.len(), 3);
}

pub async fn batch_that_fails_at_its_third_op_writes_nothing(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let (a, b) = two_records(&s, t).await;
    let failing: Vec<Expect> = vec![
        (
            "a unique-key conflict",
            insert(t, json!({"name": "dup", "code": "b-code"})),
            |e| matches!(e, Error::Conflict { key } if key == "code"),
        ),
        (
            "a taken _id",
            insert(t, json!({"_id": b.to_hex(), "name": "dup"})),
            |e| matches!(e, Error::Conflict { key } if key == ID_FIELD),
        ),
        (
            "a stale update",
            update(
                t,
                b,
                Update::new().set("name", "x"),
                Filter::eq("name", "not b"),
            ),
            |e| matches!(e, Error::Stale),
        ),
        (
            "a stale delete",
            delete(t, b, Filter::eq("score", 99)),
            |e| matches!(e, Error::Stale),
        ),
        (
            "an update of a missing record",
            update(
                t,
                ObjectId::new(),
                Update::new().set("name", "x"),
                Filter::all(),
            ),
            |e| matches!(e, Error::NotFound),
        ),
        (
            "a delete of a missing record",
            delete(t, ObjectId::new(), Filter::all()),
            |e| matches!(e, Error::NotFound),
        ),
        (
            "an update that does not fit the data",
            update(t, b, Update::new().inc("name", 1), Filter::all()),
            |e| matches!(e, Error::Invalid { .. }),
        ),
    ];
    let before = all(&s, t, &THING).await;
    let outbox_before = all(&s, Tenant::Global, &OUTBOX_ENTRY).await.len();
    for (what, third, expected) in failing {
        let x = ObjectId::new();
        let r = s
            .docs
            .write_batch(vec![
                insert(t, json!({"_id": x.to_hex(), "name": "x", "code": "x-code"})),
                update(
                    t,
                    a,
                    Update::new().set("name", "changed").inc("score", 10),
                    Filter::eq("name", "a"),
                ),
                third,
                WriteOp::Insert {
                    t: Tenant::Global,
                    def: &OUTBOX_ENTRY,
                    doc: outbox_doc(ws_of(t)),
                },
            ])
            .await;
        match &r {
            Err(e) if expected(e) => {}
            other => panic!("{what}: unexpected answer {other:?}"),
        }
        assert_same_records(&before, &all(&s, t, &THING).await, what);
        assert_eq!(
            all(&s, Tenant::Global, &OUTBOX_ENTRY).await.len(),
            outbox_before,
            "{what}: the batch's outbox entry was kept"
        );
        // The failed batch left nothing behind that blocks the same writes now.
        let again = s
            .docs
            .insert(
                t,
                &THING,
                doc(json!({"_id": x.to_hex(), "code": "x-code", "name": "x"})),
            )
            .await
            .must(what);
        s.docs
            .delete_one(t, &THING, id_of(&again))
            .await
            .must("clean up");
    }
    // A run of inserts into one collection (which an adapter may send as one bulk insert) that
    // clashes at its third record, or at its first, keeps none of them.
    for clash in [2, 0] {
        let mut ops: Vec<WriteOp> = (0..4)
            .map(|i| {
                insert(
                    t,
                    json!({"name": format!("run{i}"), "code": format!("run-{i}")}),
                )
            })
            .collect();
        ops[clash] = insert(t, json!({"name": "clash", "code": "a-code"}));
        ops.push(WriteOp::Insert {
            t: Tenant::Global,
            def: &OUTBOX_ENTRY,
            doc: outbox_doc(ws_of(t)),
        });
        let r = s.docs.write_batch(ops).await;
        assert!(
            matches!(&r, Err(Error::Conflict { key }) if key == "code"),
            "a run clashing at {clash}: {r:?}"
        );
        assert_same_records(&before, &all(&s, t, &THING).await, "a run of inserts");
        assert_eq!(
            all(&s, Tenant::Global, &OUTBOX_ENTRY).await.len(),
            outbox_before
        );
    }
}

pub async fn batch_guards_are_checked_against_the_stored_record(s: Storage) {
    setup(&s, &[&THING]).await;
    let t = fresh_workspace();
    let (a, b) = two_records(&s, t).await;
    let stamp = "2026-01-02T03:04:05.000Z";
    s.docs
        .update_one(t, &THING, a, &Update::new().set("dueAt", stamp))
        .await
        .must("set dueAt");
    // The guard a repository writes: the value it read, here a date.
    let read = Filter::eq("dueAt", stamp).and(Filter::eq("name", "a"));
    let out = s
        .docs
        .write_batch(vec![update(
            t,
            a,
            Update::new()
                .set("dueAt", "2026-01-02T03:04:06.000Z")
                .set("name", "a1"),
            read.clone(),
        )])
        .await
        .must("an update whose guard holds");
    assert_eq!(text_at(out[0].as_ref().must("after"), "name"), "a1");
    // The same guard again: the record changed since, so it is stale.
    let r = s
        .docs
        .write_batch(vec![update(t, a, Update::new().set("name", "a2"), read)])
        .await;
    assert!(
        matches!(r, Err(Error::Stale)),
        "second guarded write: {r:?}"
    );
    assert_eq!(
        text_at(&s.docs.get(t, &THING, a).await.must("get a"), "name"),
        "a1"
    );
    // A guard on a field the record lacks (as `Eq(null)` matches missing, `Exists` does not).
    let r = s
        .docs
        .write_batch(vec![delete(t, b, Filter::Exists("note".into(), true))])
        .await;
    assert!(
        matches!(r, Err(Error::Stale)),
        "delete guarded on Exists: {r:?}"
    );
    s.docs
        .write_batch(vec![delete(t, b, Filter::eq("note", Value::Null))])
        .await
        .must("delete guarded on a missing field being null");
    assert!(matches!(
        s.docs.get(t, &THING, b).await,
        Err(Error::NotFound)
    ));
}

pub async fn batch_mixes_global_and_workspace_tenants(s: Storage) {
    setup(&s, &[&THING, &OUTBOX_ENTRY]).await;
    let t = fresh_workspace();
    let ws = ws_of(t);
    let out = s
        .docs
        .write_batch(vec![
            insert(t, json!({"name": "with event"})),
            WriteOp::Insert {
                t: Tenant::Global,
                def: &OUTBOX_ENTRY,
                doc: outbox_doc(ws),
            },
        ])
        .await
        .must("a workspace insert and a global insert");
    let thing = out[0].as_ref().must("thing");
    let entry = out[1].as_ref().must("outbox entry");
    assert_eq!(text_at(thing, "workspaceId"), ws.to_string());
    let stored = s
        .docs
        .get(Tenant::Global, &OUTBOX_ENTRY, id_of(entry))
        .await
        .must("the global entry");
    assert_eq!(
        text_at(&stored, "workspaceId"),
        ws.to_string(),
        "data, not tenant"
    );
    s.docs
        .get(t, &THING, id_of(thing))
        .await
        .must("the workspace record");

    // Each op's tenant is checked on its own: a wrong one fails the whole batch.
    let before = all(&s, Tenant::Global, &OUTBOX_ENTRY).await.len();
    for (what, wrong) in [
        (
            "a workspace entity under Global",
            insert(Tenant::Global, json!({"name": "nobody's"})),
        ),
        (
            "a global entity under a workspace",
            WriteOp::Insert {
                t,
                def: &OUTBOX_ENTRY,
                doc: outbox_doc(ws),
            },
        ),
    ] {
        let r = s
            .docs
            .write_batch(vec![
                WriteOp::Insert {
                    t: Tenant::Global,
                    def: &OUTBOX_ENTRY,
                    doc: outbox_doc(ws),
                },
                wrong,
            ])
            .await;
        assert!(matches!(r, Err(Error::Internal(_))), "{what}: {r:?}");
        assert_eq!(
            all(&s, Tenant::Global, &OUTBOX_ENTRY).await.len(),
            before,
            "{what}: the batch's first op was kept"
        );
    }
}

pub async fn batch_never_reaches_another_workspace(s: Storage) {
    setup(&s, &[&THING]).await;
    let mine = fresh_workspace();
    let theirs = fresh_workspace();
    let (their_a, _) = two_records(&s, theirs).await;
    let their_before = all(&s, theirs, &THING).await;
    let ops: Vec<Expect> = vec![
        (
            "an update of their id",
            update(
                mine,
                their_a,
                Update::new().set("name", "mine"),
                Filter::all(),
            ),
            |e| matches!(e, Error::NotFound),
        ),
        (
            "a delete of their id",
            delete(mine, their_a, Filter::all()),
            |e| matches!(e, Error::NotFound),
        ),
        (
            "an insert stamped with their workspace",
            insert(
                mine,
                json!({"name": "x", "workspaceId": ws_of(theirs).to_string()}),
            ),
            |e| matches!(e, Error::Invalid { .. }),
        ),
        (
            "an insert taking their record's _id",
            insert(mine, json!({"_id": their_a.to_hex(), "name": "x"})),
            |e| matches!(e, Error::Conflict { .. }),
        ),
        (
            "an update moving a record to their workspace",
            update(
                mine,
                ObjectId::new(),
                Update::new().set("workspaceId", ws_of(theirs).to_string()),
                Filter::all(),
            ),
            |e| matches!(e, Error::Invalid { .. }),
        ),
    ];
    for (what, op, expected) in ops {
        let r = s
            .docs
            .write_batch(vec![insert(mine, json!({"name": "mine"})), op])
            .await;
        match &r {
            Err(e) if expected(e) => {}
            other => panic!("{what}: unexpected answer {other:?}"),
        }
        assert!(
            all(&s, mine, &THING).await.is_empty(),
            "{what}: the batch's own insert was kept"
        );
        assert_same_records(&their_before, &all(&s, theirs, &THING).await, what);
    }
}
