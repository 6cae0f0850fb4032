use std::path::PathBuf;

use serde_json::json;

use super::*;
use crm_core::FieldPath;
use crm_core::engine::{self, cmp_docs, matches};
use crm_core::entities::contact::CONTACT;
use crm_core::paging::{PageRequest, Pagination, find_page, keyset_after};
use crm_core::query::{SortKey, effective_sort};
use crm_core::schema::{Dir, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};

static THING: EntityDef = EntityDef {
    name: "Thing",
    collection: "things",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: false,
    fields: &[
        f("s", Text),
        f("n", Number),
        f("b", Bool),
        f("d", Date),
        f("tags", Texts),
        f("o", Object),
        f("o.x", Number),
        f("h-y", Text),
        f("email", Text),
        f("rank", Number),
    ],
    unique: &[
        UniqueKey {
            name: "email",
            fields: &["email"],
        },
        UniqueKey {
            name: "rank",
            fields: &["rank"],
        },
    ],
    indexes: &[
        IndexDef::on(&[("n", Dir::Asc)]),
        IndexDef::on(&[("s", Dir::Desc), ("n", Dir::Asc)]),
    ],
    text: &["s", "tags"],
};

static GLOBAL: EntityDef = EntityDef {
    name: "Global",
    collection: "globals",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[f("name", Text)],
    unique: &[UniqueKey {
        name: "name",
        fields: &["name"],
    }],
    indexes: &[],
    text: &[],
};

fn obj(v: Value) -> Document {
    v.as_object().cloned().unwrap()
}

fn ws() -> WorkspaceId {
    WorkspaceId::new()
}

fn temp_path() -> PathBuf {
    std::env::temp_dir()
        .join(format!("storage-sqlite-test-{}", ObjectId::new()))
        .join("db.sqlite")
}

/// A small deterministic generator (xorshift), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

const WORDS: &[&str] = &[
    "", "a", "A", "ab", "abc", "Abc", "aBcD", "b", "é", "École", "z", "10", "9",
];
const DATES: &[&str] = &[
    "2024-01-01T00:00:00.000Z",
    "2024-06-01T12:00:00.000Z",
    "2025-01-01T00:00:00.000Z",
];

fn scalar(r: &mut Rng) -> Value {
    match r.below(8) {
        0 => Value::Null,
        1 => json!(r.chance(50)),
        2 => json!(r.below(5) as i64 - 2),
        3 => json!(*r.pick(&[0.5, 1.0, 2.5, -1.5])),
        4 => json!(*r.pick(DATES)),
        _ => json!(*r.pick(WORDS)),
    }
}

fn any_value(r: &mut Rng, depth: u32) -> Value {
    match r.below(if depth == 0 { 6 } else { 9 }) {
        6 | 7 => Value::Array((0..r.below(4)).map(|_| any_value(r, depth - 1)).collect()),
        8 => json!({ "x": any_value(r, depth - 1) }),
        _ => scalar(r),
    }
}

/// A value of the field's declared kind (or missing/null), or anything when `dirty`.
fn field_value(r: &mut Rng, path: &str, dirty: bool) -> Option<Value> {
    if r.chance(15) {
        return None;
    }
    if r.chance(10) {
        return Some(Value::Null);
    }
    if dirty && r.chance(40) {
        return Some(any_value(r, 2));
    }
    Some(match path {
        "s" | "h-y" => json!(*r.pick(WORDS)),
        "n" => {
            if r.chance(50) {
                json!(r.below(5) as i64 - 2)
            } else {
                json!(*r.pick(&[0.5, 1.0, 2.5]))
            }
        }
        "b" => json!(r.chance(50)),
        "d" => json!(*r.pick(DATES)),
        "tags" => Value::Array((0..r.below(4)).map(|_| json!(*r.pick(WORDS))).collect()),
        "o" => json!({ "x": r.below(4) }),
        _ => any_value(r, 2),
    })
}

fn random_doc(r: &mut Rng, dirty: bool) -> Document {
    let mut d = Document::new();
    for p in ["s", "n", "b", "d", "tags", "o", "h-y", "u", "a"] {
        if let Some(v) = field_value(r, p, dirty) {
            d.insert(p.into(), v);
        }
    }
    d
}

const PATHS: &[&str] = &[
    "s", "n", "b", "d", "tags", "o", "o.x", "h-y", "u", "a", "_id", "missing",
];

fn random_path(r: &mut Rng) -> &'static str {
    PATHS[r.below(PATHS.len())]
}

fn operand(r: &mut Rng, path: &str, ids: &[String]) -> Value {
    match path {
        "_id" => json!(r.pick(ids).clone()),
        "d" => {
            if r.chance(85) {
                json!(*r.pick(DATES))
            } else {
                Value::Null
            }
        }
        _ if r.chance(15) => any_value(r, 1),
        _ => scalar(r),
    }
}

fn random_filter(r: &mut Rng, ids: &[String], depth: u32) -> Filter {
    let top = if depth == 0 { 12 } else { 16 };
    let p = random_path(r);
    let fp = FieldPath::from_static(p);
    match r.below(top) {
        0 => Filter::Eq(fp, operand(r, p, ids)),
        1 => Filter::Ne(fp, operand(r, p, ids)),
        2 => Filter::In(fp, (0..r.below(3)).map(|_| operand(r, p, ids)).collect()),
        3 => Filter::Nin(fp, (0..r.below(3)).map(|_| operand(r, p, ids)).collect()),
        4 => Filter::Gt(fp, operand(r, p, ids)),
        5 => Filter::Gte(fp, operand(r, p, ids)),
        6 => Filter::Lt(fp, operand(r, p, ids)),
        7 => Filter::Lte(fp, operand(r, p, ids)),
        8 => Filter::Exists(fp, r.chance(50)),
        9 => Filter::Contains(fp, (*r.pick(WORDS)).to_owned()),
        10 => Filter::All(fp, (0..r.below(3)).map(|_| operand(r, p, ids)).collect()),
        11 => {
            let words: Vec<&str> = (0..1 + r.below(2)).map(|_| *r.pick(WORDS)).collect();
            Filter::Text(words.join(" "))
        }
        12 => Filter::Not(Box::new(random_filter(r, ids, depth - 1))),
        13 => Filter::Or(
            (0..1 + r.below(3))
                .map(|_| random_filter(r, ids, depth - 1))
                .collect(),
        ),
        _ => Filter::And(
            (0..r.below(3))
                .map(|_| random_filter(r, ids, depth - 1))
                .collect(),
        ),
    }
}

fn random_sort(r: &mut Rng) -> Vec<SortKey> {
    (0..r.below(3))
        .map(|_| SortKey {
            path: FieldPath::from_static(random_path(r)),
            dir: if r.chance(50) { Dir::Asc } else { Dir::Desc },
        })
        .collect()
}

fn ids_of(docs: &[Document]) -> Vec<Value> {
    docs.iter().map(|d| d[ID_FIELD].clone()).collect()
}

/// Runs random filters, sorts and groups against the store and against the engine over the
/// same documents, and demands the same answers.
fn random_update(r: &mut Rng) -> Update {
    let mut u = Update::new();
    let mut used: Vec<&str> = Vec::new();
    for _ in 0..1 + r.below(2) {
        let p = *r.pick(&["s", "n", "b", "d", "tags", "o.x", "u", "a", "h-y"]);
        if used.contains(&p) {
            continue;
        }
        used.push(p);
        u = match r.below(7) {
            0 | 1 => {
                let dirty = r.chance(30);
                u.set(p, field_value(r, p, dirty).unwrap_or(Value::Null))
            }
            2 => u.unset(p),
            3 => u.inc(p, *r.pick(&[1, -2])),
            4 => u.push(p, scalar(r)),
            5 => u.add_to_set(p, scalar(r)),
            _ => u.pull(p, scalar(r)),
        };
    }
    u
}

async fn differential(store: &SqliteStore, w: WorkspaceId, docs: &mut [Document], r: &mut Rng) {
    let t = Tenant::Workspace(w);
    let ids: Vec<String> = docs
        .iter()
        .map(|d| d[ID_FIELD].as_str().unwrap().to_owned())
        .collect();
    let (mut checked, mut updated) = (0, 0);
    for round in 0..400 {
        let filter = random_filter(r, &ids, 3);
        let norm = match normalize_filter(&THING, &filter) {
            Ok(f) => f,
            Err(_) => {
                assert!(store.count(t, &THING, &filter).await.is_err());
                continue;
            }
        };
        checked += 1;
        let sort = random_sort(r);
        let full = effective_sort(&sort);
        let mut want: Vec<&Document> = docs.iter().filter(|d| matches(&THING, d, &norm)).collect();
        want.sort_by(|a, b| cmp_docs(a, b, &full));
        let want: Vec<Document> = want.into_iter().cloned().collect();
        let opts = FindOptions {
            sort: sort.clone(),
            skip: 0,
            limit: None,
        };
        let got = store.find(t, &THING, &filter, &opts).await.unwrap();
        assert_eq!(
            ids_of(&got),
            ids_of(&want),
            "round {round}: filter {filter:?} sort {sort:?}"
        );
        assert_eq!(got, want, "documents round-trip");
        let (skip, limit) = (r.below(5) as u64, r.below(6) as u64);
        let page = FindOptions {
            sort: sort.clone(),
            skip,
            limit: Some(limit),
        };
        let got = store.find(t, &THING, &filter, &page).await.unwrap();
        let slice: Vec<Document> = want
            .iter()
            .skip(skip as usize)
            .take(limit as usize)
            .cloned()
            .collect();
        assert_eq!(got, slice, "skip {skip} limit {limit}");
        let n = store.count(t, &THING, &filter).await.unwrap();
        assert_eq!(n, want.len() as u64, "count {filter:?}");
        if round % 4 == 0 {
            let key = FieldPath::from_static(random_path(r));
            let g = GroupBy {
                filter: filter.clone(),
                key,
                sums: vec!["n".into(), "o.x".into(), "u".into()],
            };
            let got = store.aggregate(t, &THING, &g).await.unwrap();
            // The reference groups documents in `_id` order, as the memory store feeds them.
            let mut by_id = want.clone();
            by_id.sort_by(|a, b| cmp_docs(a, b, &effective_sort(&[])));
            let want = engine::group(by_id.iter(), &g);
            assert_eq!(got, want, "group {g:?}");
        }
        if round % 3 == 0 {
            let update = random_update(r);
            let mut next = docs.to_vec();
            let mut n = 0u64;
            let mut expected = validate_update(&THING, &update);
            for d in next
                .iter_mut()
                .filter(|d| matches(&THING, d, &norm))
                .take_while(|_| expected.is_ok())
            {
                n += 1;
                if let Err(e) = apply_update(&THING, d, &update, false) {
                    expected = Err(e);
                    break;
                }
            }
            let got = store.update_many(t, &THING, &filter, &update).await;
            match expected {
                Ok(()) => {
                    assert_eq!(got, Ok(n), "update {update:?} where {filter:?}");
                    docs.clone_from_slice(&next);
                    updated += usize::from(n > 0);
                }
                Err(_) => assert!(got.is_err(), "update {update:?} should fail"),
            }
        }
    }
    assert!(checked > 300, "too few filters were valid: {checked}");
    assert!(updated > 4, "too few updates changed documents: {updated}");
}

#[tokio::test]
async fn matches_the_engine_on_random_filters_and_sorts() {
    let seeds: u64 = std::env::var("DIFF_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for seed in 0..seeds {
        differential_run(0x9e37_79b9_7f4a_7c15 ^ (seed * 0x1234_5678_9abc)).await;
    }
}

async fn differential_run(seed: u64) {
    let store = SqliteStore::open_in_memory().unwrap();
    let w = ws();
    let mut r = Rng(seed);
    // Clean phase: declared fields hold their kinds, so indexes and plain sorts are used.
    let mut docs = Vec::new();
    for _ in 0..120 {
        docs.push(
            store
                .insert(Tenant::Workspace(w), &THING, random_doc(&mut r, false))
                .await
                .unwrap(),
        );
    }
    // Another tenant's documents must never show.
    for _ in 0..30 {
        store
            .insert(Tenant::Workspace(ws()), &THING, random_doc(&mut r, false))
            .await
            .unwrap();
    }
    let coll = store.inner.coll(&THING).unwrap();
    assert!(coll.is_clean("s") && coll.is_clean("n") && coll.is_clean("d"));
    differential(&store, w, &mut docs, &mut r).await;
    // Dirty phase: anything anywhere; the store must notice and stay exact.
    for _ in 0..120 {
        docs.push(
            store
                .insert(Tenant::Workspace(w), &THING, random_doc(&mut r, true))
                .await
                .unwrap(),
        );
    }
    assert!(!coll.is_clean("s") && !coll.is_clean("n"));
    differential(&store, w, &mut docs, &mut r).await;
}

async fn find_ids(store: &SqliteStore, w: WorkspaceId, f: Filter) -> Vec<String> {
    store
        .find(Tenant::Workspace(w), &THING, &f, &FindOptions::default())
        .await
        .unwrap()
        .into_iter()
        .map(|d| d["s"].as_str().unwrap_or("-").to_owned())
        .collect()
}

#[tokio::test]
async fn tricky_cases_null_arrays_mixed_types_not() {
    let store = SqliteStore::open_in_memory().unwrap();
    let w = ws();
    let t = Tenant::Workspace(w);
    for d in [
        json!({"s": "missing"}),
        json!({"s": "null", "u": null}),
        json!({"s": "text", "u": "abc"}),
        json!({"s": "five", "u": 5}),
        json!({"s": "fivepoint", "u": 5.0}),
        json!({"s": "true", "u": true}),
        json!({"s": "one", "u": 1}),
        json!({"s": "arr", "u": [1, "abc", null, [2]]}),
        json!({"s": "obj", "u": {"x": 1}}),
        json!({"s": "jsontext", "u": "[1]"}),
    ] {
        store.insert(t, &THING, obj(d)).await.unwrap();
    }
    let q = |f: Filter| find_ids(&store, w, f);
    // Eq null: missing, null, and arrays holding null.
    assert_eq!(
        q(Filter::eq("u", Value::Null)).await,
        ["missing", "null", "arr"]
    );
    // Ne null is its exact complement; NOT over SQL NULLs stays two-valued.
    assert_eq!(
        q(Filter::Ne("u".into(), Value::Null)).await,
        [
            "text",
            "five",
            "fivepoint",
            "true",
            "one",
            "obj",
            "jsontext"
        ]
    );
    // Numbers by value across int/real; booleans are not numbers; array elements count.
    assert_eq!(q(Filter::eq("u", 5)).await, ["five", "fivepoint"]);
    assert_eq!(q(Filter::eq("u", 1)).await, ["one", "arr"]);
    assert_eq!(q(Filter::eq("u", true)).await, ["true"]);
    assert_eq!(q(Filter::eq("u", json!([2]))).await, ["arr"]);
    assert_eq!(q(Filter::eq("u", json!([1]))).await, Vec::<String>::new());
    assert_eq!(q(Filter::eq("u", json!({"x": 1.0}))).await, ["obj"]);
    // Ordered comparisons are bracketed by type: 'abc' is not > 0, true is not > 0.
    assert_eq!(
        q(Filter::Gt("u".into(), json!(0))).await,
        ["five", "fivepoint", "one", "arr"]
    );
    assert_eq!(q(Filter::Gt("u".into(), json!("a"))).await, ["text", "arr"]);
    assert_eq!(q(Filter::Gte("u".into(), json!(false))).await, ["true"]);
    assert_eq!(
        q(Filter::Lte("u".into(), Value::Null)).await,
        ["missing", "null", "arr"]
    );
    assert_eq!(
        q(Filter::Lt("u".into(), Value::Null)).await,
        Vec::<String>::new()
    );
    // Not(Gt) includes the missing and mistyped values SQL comparisons would call NULL.
    assert_eq!(
        q(Filter::Gt("u".into(), json!(1)).negate()).await,
        [
            "missing", "null", "text", "true", "one", "arr", "obj", "jsontext"
        ]
    );
    assert_eq!(q(Filter::Exists("u".into(), false)).await, ["missing"]);
    assert_eq!(
        q(Filter::Contains("u".into(), "BC".into())).await,
        ["text", "arr"]
    );
    assert_eq!(q(Filter::Nin("u".into(), vec![])).await.len(), 10);
    assert_eq!(q(Filter::In("u".into(), vec![])).await.len(), 0);
    assert_eq!(q(Filter::All("u".into(), vec![])).await.len(), 0);
    assert_eq!(
        q(Filter::All("u".into(), vec![json!(1), json!("abc")])).await,
        ["arr"]
    );
    // Paths into non-objects resolve to nothing.
    assert_eq!(q(Filter::Exists("u.x".into(), true)).await, ["obj"]);
    assert_eq!(
        q(Filter::Exists("s.x".into(), true)).await,
        Vec::<String>::new()
    );
    // Sort: null < numbers < text < objects < arrays < booleans, as the engine.
    let sorted = store
        .find(
            t,
            &THING,
            &Filter::all(),
            &FindOptions {
                sort: vec![SortKey::asc("u")],
                ..FindOptions::default()
            },
        )
        .await
        .unwrap();
    let names: Vec<&str> = sorted.iter().map(|d| d["s"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "missing",
            "null",
            "one",
            "five",
            "fivepoint",
            "jsontext",
            "text",
            "obj",
            "arr",
            "true"
        ]
    );
}

#[tokio::test]
async fn text_search_uses_the_trigram_index_and_stays_exact() {
    let store = SqliteStore::open_in_memory().unwrap();
    let w = ws();
    let t = Tenant::Workspace(w);
    for d in [
        json!({"s": "Ada Lovelace", "tags": ["math", ["Analytical"]]}),
        json!({"s": "Charles Babbage", "tags": ["engine"]}),
        json!({"s": "Grace", "tags": [{"x": "lovelace"}]}),
        json!({"s": "ÉCOLE Ωmega"}),
    ] {
        store.insert(t, &THING, obj(d)).await.unwrap();
    }
    let q = |s: &str| find_ids(&store, w, Filter::Text(s.into()));
    assert_eq!(q("lovelace").await, ["Ada Lovelace"]);
    assert_eq!(q("ADA analyt").await, ["Ada Lovelace"]);
    assert_eq!(q("ada engine").await, Vec::<String>::new());
    assert_eq!(q("es").await, ["Charles Babbage"]);
    assert_eq!(q("école ωMEGA").await, ["ÉCOLE Ωmega"]);
    assert_eq!(
        q("a").await,
        ["Ada Lovelace", "Charles Babbage", "Grace", "ÉCOLE Ωmega"]
    );
    let plan = explain(&store, &THING, w, &Filter::Text("lovelace".into()), &[]);
    assert!(plan.contains("things__fts"), "{plan}");
    // Updates and deletes keep the index in step.
    let id = store
        .find(
            t,
            &THING,
            &Filter::Text("babbage".into()),
            &FindOptions::default(),
        )
        .await
        .unwrap()[0][ID_FIELD]
        .as_str()
        .unwrap()
        .parse::<ObjectId>()
        .unwrap();
    store
        .update_one(t, &THING, id, &Update::new().set("s", "Charles Xavier"))
        .await
        .unwrap();
    assert_eq!(q("babbage").await, Vec::<String>::new());
    assert_eq!(q("xavier").await, ["Charles Xavier"]);
    store.delete_one(t, &THING, id).await.unwrap();
    assert_eq!(q("xavier").await, Vec::<String>::new());
    assert!(matches!(
        store.count(t, &THING, &Filter::Text("  ".into())).await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn tenants_are_isolated_and_stamped() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (a, b) = (ws(), ws());
    let doc = store
        .insert(Tenant::Workspace(a), &THING, obj(json!({"s": "x"})))
        .await
        .unwrap();
    assert_eq!(doc["workspaceId"], json!(a.to_string()));
    let id: ObjectId = doc[ID_FIELD].as_str().unwrap().parse().unwrap();
    assert_eq!(
        store.get(Tenant::Workspace(a), &THING, id).await.unwrap(),
        doc
    );
    for r in [
        store
            .get(Tenant::Workspace(b), &THING, id)
            .await
            .map(|_| ()),
        store
            .update_one(
                Tenant::Workspace(b),
                &THING,
                id,
                &Update::new().set("s", "y"),
            )
            .await
            .map(|_| ()),
        store.delete_one(Tenant::Workspace(b), &THING, id).await,
    ] {
        assert_eq!(r, Err(Error::NotFound));
    }
    assert_eq!(
        store
            .count(Tenant::Workspace(b), &THING, &Filter::all())
            .await
            .unwrap(),
        0
    );
    let foreign = obj(json!({"workspaceId": b.to_string()}));
    assert!(matches!(
        store.insert(Tenant::Workspace(a), &THING, foreign).await,
        Err(Error::Invalid { field, .. }) if field == "workspaceId"
    ));
    for bad in [json!({"_id": "xyz"}), json!({"_id": 5})] {
        assert!(matches!(
            store.insert(Tenant::Workspace(a), &THING, obj(bad)).await,
            Err(Error::Invalid { field, .. }) if field == "_id"
        ));
    }
    let upper = "507F1F77BCF86CD799439011";
    let d = store
        .insert(Tenant::Workspace(a), &THING, obj(json!({"_id": upper})))
        .await
        .unwrap();
    assert_eq!(d[ID_FIELD], json!(upper.to_lowercase()));
    // `_id` is unique across the collection, as in MongoDB.
    assert_eq!(
        store
            .insert(Tenant::Workspace(b), &THING, obj(json!({"_id": upper})))
            .await,
        Err(Error::conflict("_id"))
    );
    assert!(matches!(
        store.insert(Tenant::Global, &THING, Document::new()).await,
        Err(Error::Internal(_))
    ));
    assert!(matches!(
        store
            .update_one(
                Tenant::Workspace(a),
                &THING,
                id,
                &Update::new().set("workspaceId", "x")
            )
            .await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn unique_keys_conflict_and_failed_writes_change_nothing() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (a, b) = (ws(), ws());
    let t = Tenant::Workspace(a);
    store
        .insert(t, &THING, obj(json!({"email": "x@y", "rank": 1})))
        .await
        .unwrap();
    let second = store
        .insert(t, &THING, obj(json!({"email": "z@y", "rank": 2})))
        .await
        .unwrap();
    assert_eq!(
        store.insert(t, &THING, obj(json!({"email": "x@y"}))).await,
        Err(Error::conflict("email"))
    );
    assert_eq!(
        store.insert(t, &THING, obj(json!({"rank": 1.0}))).await,
        Err(Error::conflict("rank"))
    );
    // Only values of the declared kind are unique; missing values never clash.
    store
        .insert(t, &THING, obj(json!({"rank": "1"})))
        .await
        .unwrap();
    store.insert(t, &THING, Document::new()).await.unwrap();
    store.insert(t, &THING, Document::new()).await.unwrap();
    // Unique per workspace.
    store
        .insert(Tenant::Workspace(b), &THING, obj(json!({"email": "x@y"})))
        .await
        .unwrap();
    let id: ObjectId = second[ID_FIELD].as_str().unwrap().parse().unwrap();
    assert_eq!(
        store
            .update_one(t, &THING, id, &Update::new().set("email", "x@y"))
            .await,
        Err(Error::conflict("email"))
    );
    assert_eq!(store.get(t, &THING, id).await.unwrap(), second);
    // All or nothing: the second document of the batch clashes.
    let before = store.count(t, &THING, &Filter::all()).await.unwrap();
    assert_eq!(
        store
            .insert_many(
                t,
                &THING,
                vec![obj(json!({"email": "new@y"})), obj(json!({"email": "x@y"}))]
            )
            .await,
        Err(Error::conflict("email"))
    );
    assert_eq!(
        store.count(t, &THING, &Filter::all()).await.unwrap(),
        before
    );
    assert_eq!(
        store
            .update_many(
                t,
                &THING,
                &Filter::Exists("email".into(), true),
                &Update::new().set("email", "same")
            )
            .await,
        Err(Error::conflict("email"))
    );
    assert_eq!(
        store
            .count(t, &THING, &Filter::eq("email", "same"))
            .await
            .unwrap(),
        0
    );
    // Consecutive ranks shifted by one clash row by row but not in the final state.
    let n = store
        .update_many(
            t,
            &THING,
            &Filter::Exists("email".into(), true),
            &Update::new().inc("rank", 1),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    let ranks: Vec<Value> = store
        .find(
            t,
            &THING,
            &Filter::Exists("email".into(), true),
            &FindOptions {
                sort: vec![SortKey::asc("rank")],
                ..FindOptions::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|d| d["rank"].clone())
        .collect();
    assert_eq!(ranks, [json!(2), json!(3)]);
    // A failing update (inc on text) rolls the whole batch back.
    store
        .insert(t, &THING, obj(json!({"s": "t", "n": "text"})))
        .await
        .unwrap();
    assert!(matches!(
        store
            .update_many(t, &THING, &Filter::all(), &Update::new().inc("n", 1))
            .await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(
        store
            .count(t, &THING, &Filter::Exists("n".into(), true))
            .await
            .unwrap(),
        1
    );
    // Global entities: unique over the whole table.
    let g = Tenant::Global;
    store
        .insert(g, &GLOBAL, obj(json!({"name": "a"})))
        .await
        .unwrap();
    assert_eq!(
        store.insert(g, &GLOBAL, obj(json!({"name": "a"}))).await,
        Err(Error::conflict("name"))
    );
}

#[tokio::test]
async fn find_one_and_update_and_upsert() {
    let store = SqliteStore::open_in_memory().unwrap();
    let w = ws();
    let t = Tenant::Workspace(w);
    let filter = Filter::eq("s", "counter").and(Filter::eq("d", "2024-01-01T00:00:00Z"));
    let up = Update::new().inc("n", 1).set_on_insert("b", true);
    assert_eq!(
        store
            .find_one_and_update(t, &THING, &filter, &up, false)
            .await
            .unwrap(),
        None
    );
    let first = store
        .find_one_and_update(t, &THING, &filter, &up, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first["n"], json!(1));
    assert_eq!(first["b"], json!(true));
    assert_eq!(first["d"], json!("2024-01-01T00:00:00.000Z"));
    assert_eq!(first["workspaceId"], json!(w.to_string()));
    let second = store
        .find_one_and_update(t, &THING, &filter, &up, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second["n"], json!(2));
    assert_eq!(second[ID_FIELD], first[ID_FIELD]);
    assert_eq!(store.count(t, &THING, &Filter::all()).await.unwrap(), 1);
    let n = store
        .delete_many(t, &THING, &Filter::eq("s", "counter"))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(store.count(t, &THING, &Filter::all()).await.unwrap(), 0);
}

#[tokio::test]
async fn persists_across_reopen() {
    let path = temp_path();
    let w = ws();
    let t = Tenant::Workspace(w);
    let id;
    {
        let store = SqliteStore::open(&path).unwrap();
        store.ensure_schema(&[&THING]).await.unwrap();
        let d = store
            .insert(
                t,
                &THING,
                obj(json!({"s": "Persisted text", "email": "p@q", "n": "dirty"})),
            )
            .await
            .unwrap();
        id = d[ID_FIELD].as_str().unwrap().parse::<ObjectId>().unwrap();
        store
            .record_migration(&AppliedMigration {
                version: 3,
                name: "three".into(),
                applied_at: Timestamp::parse("2026-01-02T03:04:05.006Z").unwrap(),
            })
            .await
            .unwrap();
        store
            .record_migration(&AppliedMigration {
                version: 1,
                name: "one".into(),
                applied_at: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
            })
            .await
            .unwrap();
        store.forget_migration(3).await.unwrap();
        assert!(!store.inner.coll(&THING).unwrap().is_clean("n"));
    }
    let store = SqliteStore::open(&path).unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.ensure_schema(&[&THING]).await.unwrap();
    let d = store.get(t, &THING, id).await.unwrap();
    assert_eq!(d["s"], json!("Persisted text"));
    let coll = store.inner.coll(&THING).unwrap();
    assert!(!coll.is_clean("n"), "dirtiness is remembered");
    assert!(coll.is_clean("s"));
    assert_eq!(
        find_ids(&store, w, Filter::Text("persisted".into())).await,
        ["Persisted text"]
    );
    assert_eq!(
        store.insert(t, &THING, obj(json!({"email": "p@q"}))).await,
        Err(Error::conflict("email"))
    );
    let applied = store.applied_migrations().await.unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].version, 1);
    assert_eq!(applied[0].name, "one");
    assert_eq!(
        applied[0].applied_at.to_canonical(),
        "2026-01-01T00:00:00.000Z"
    );
    drop(store);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn update_all_tenants_ignores_the_workspace() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (a, b) = (ws(), ws());
    for w in [a, b] {
        store
            .insert(Tenant::Workspace(w), &THING, obj(json!({"s": "x"})))
            .await
            .unwrap();
        store
            .insert(Tenant::Workspace(w), &THING, obj(json!({"s": "y", "n": 1})))
            .await
            .unwrap();
    }
    let n = store
        .update_all_tenants(
            &THING,
            &Filter::Exists("n".into(), false),
            &Update::new().set("n", 0),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    for w in [a, b] {
        assert_eq!(
            store
                .count(Tenant::Workspace(w), &THING, &Filter::eq("n", 0))
                .await
                .unwrap(),
            1
        );
    }
}

/// The plan SQLite chooses for a `find`.
fn explain(
    store: &SqliteStore,
    def: &'static EntityDef,
    w: WorkspaceId,
    filter: &Filter,
    sort: &[SortKey],
) -> String {
    let coll = store.inner.coll(def).unwrap();
    let filter = normalize_filter(def, filter).unwrap();
    let opts = FindOptions {
        sort: sort.to_vec(),
        skip: 0,
        limit: Some(21),
    };
    let q = find_plan(&coll, &w.to_string(), &filter, &opts).unwrap();
    store
        .inner
        .read(|c| {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {}", q.sql)).unwrap();
            let rows = st
                .query_map(params_from_iter(&q.params), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap();
            Ok(rows.join("\n"))
        })
        .unwrap()
}

fn contact(i: usize) -> Document {
    let at = Timestamp::from_millis(1_700_000_000_000 + (i as i64 / 3) * 1000);
    obj(json!({
        "userId": ObjectId::new().to_hex(),
        "firstName": format!("Person {i}"),
        "email": format!("p{i}@example.com"),
        "status": "lead",
        "tags": ["a"],
        "createdAt": at.to_canonical(),
        "updatedAt": at.to_canonical(),
    }))
}

#[tokio::test]
async fn keyset_pages_seek_the_created_at_index() {
    let path = temp_path();
    let store = SqliteStore::open(&path).unwrap();
    store
        .ensure_schema(&crm_core::entities::all())
        .await
        .unwrap();
    let (a, b) = (ws(), ws());
    store
        .insert_many(
            Tenant::Workspace(a),
            &CONTACT,
            (0..300).map(contact).collect(),
        )
        .await
        .unwrap();
    store
        .insert_many(
            Tenant::Workspace(b),
            &CONTACT,
            (300..400).map(contact).collect(),
        )
        .await
        .unwrap();
    let sort = [SortKey::desc("createdAt")];
    let full = effective_sort(&sort);
    let last = [json!("2023-11-14T22:14:20.000Z"), json!("0".repeat(24))];
    let keyset = keyset_after(&CONTACT, &full, &last).unwrap();
    let index = "USING INDEX contacts__ix__workspaceId_asc__createdAt_desc";
    let first = explain(&store, &CONTACT, a, &Filter::all(), &sort);
    assert!(first.contains(&format!("{index} (ws=?)")), "{first}");
    let deep = explain(&store, &CONTACT, a, &keyset, &sort);
    assert!(
        deep.contains(&format!("{index} (ws=? AND <expr><?)")),
        "{deep}"
    );
    for plan in [first, deep] {
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
    // And the cursor walk visits every contact of the workspace once, in order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = find_page(
            &store,
            Tenant::Workspace(a),
            &CONTACT,
            &Filter::all(),
            &sort,
            &PageRequest::Cursor { after, limit: 7 },
        )
        .await
        .unwrap();
        seen.extend(page.items.iter().map(|d| d[ID_FIELD].clone()));
        match page.pagination {
            Pagination::Cursor {
                next_cursor: Some(c),
                ..
            } => after = Some(c),
            _ => break,
        }
    }
    let all = store
        .find(
            Tenant::Workspace(a),
            &CONTACT,
            &Filter::all(),
            &FindOptions {
                sort: sort.to_vec(),
                ..FindOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(seen.len(), 300);
    assert_eq!(seen, ids_of(&all));
    drop(store);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_live_status_list_newest_first_walks_the_status_index() {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .ensure_schema(&crm_core::entities::all())
        .await
        .unwrap();
    let a = ws();
    let docs = (0..40)
        .map(|i| {
            let mut d = contact(i);
            d.insert("status".into(), json!(["lead", "customer"][i % 2]));
            d
        })
        .collect();
    store
        .insert_many(Tenant::Workspace(a), &CONTACT, docs)
        .await
        .unwrap();
    // What the contact list sends: one status, the live records, newest first, a keyset page.
    let live = Filter::eq("status", "customer").and(Filter::eq("deletedAt", Value::Null));
    let sort = [SortKey::desc("createdAt")];
    let full = effective_sort(&sort);
    let last = [json!("2023-11-14T22:13:30.000Z"), json!("0".repeat(24))];
    let keyset = live
        .clone()
        .and(keyset_after(&CONTACT, &full, &last).unwrap());
    let index = "USING INDEX contacts__ix__workspaceId_asc__status_asc__createdAt_desc";
    let first = explain(&store, &CONTACT, a, &live, &sort);
    assert!(
        first.contains(&format!("{index} (ws=? AND <expr>=?)")),
        "{first}"
    );
    let deep = explain(&store, &CONTACT, a, &keyset, &sort);
    assert!(deep.contains(index), "{deep}");
    for plan in [first, deep] {
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
    let page = store
        .find(
            Tenant::Workspace(a),
            &CONTACT,
            &live,
            &FindOptions {
                sort: sort.to_vec(),
                skip: 0,
                limit: Some(5),
            },
        )
        .await
        .unwrap();
    let statuses: Vec<&Value> = page.iter().map(|d| &d["status"]).collect();
    assert_eq!(statuses, vec![&json!("customer"); 5]);
    let created: Vec<&Value> = page.iter().map(|d| &d["createdAt"]).collect();
    let mut sorted = created.clone();
    sorted.sort_by(|x, y| y.as_str().cmp(&x.as_str()));
    assert_eq!(created, sorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_commit_together_and_each_failure_stays_its_own() {
    let path = temp_path();
    let store = SqliteStore::open(&path).unwrap();
    let t = Tenant::Workspace(ws());
    store
        .insert(t, &THING, obj(json!({"email": "taken@x.io"})))
        .await
        .unwrap();
    // While the writer is held the writes queue up, so they are committed in one or two batches
    // that mix failing and succeeding writes.
    let held = store.inner.writer.lock();
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let email = if i % 5 == 0 {
                "taken@x.io".to_owned()
            } else {
                format!("w{i}@x.io")
            };
            tokio::spawn(async move {
                store
                    .insert(t, &THING, obj(json!({"email": email, "n": i})))
                    .await
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    for (i, w) in writes.into_iter().enumerate() {
        let out = w.await.unwrap();
        if i % 5 == 0 {
            assert_eq!(out.unwrap_err(), Error::conflict("email"), "write {i}");
        } else {
            assert_eq!(out.unwrap()["n"], json!(i), "write {i}");
        }
    }
    let stored = store
        .find(t, &THING, &Filter::all(), &FindOptions::default())
        .await
        .unwrap();
    let mut ns: Vec<i64> = stored
        .iter()
        .filter_map(|d| d.get("n").and_then(Value::as_i64))
        .collect();
    ns.sort_unstable();
    let expected: Vec<i64> = (0..20).filter(|i| i % 5 != 0).collect();
    assert_eq!(ns, expected);
    // A failed write inside a batch leaves the next batch working.
    store
        .insert(t, &THING, obj(json!({"email": "later@x.io"})))
        .await
        .unwrap();
    drop(store);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_batches_commit_together_and_a_failing_one_rolls_back_alone() {
    let path = temp_path();
    let store = SqliteStore::open(&path).unwrap();
    let t = Tenant::Workspace(ws());
    store
        .insert(t, &THING, obj(json!({"email": "taken@x.io"})))
        .await
        .unwrap();
    // Queued behind the held writer, the batches share group commits; every fifth one fails at
    // its last op, after two inserts of its own.
    let held = store.inner.writer.lock();
    let batches: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let last = if i % 5 == 0 {
                "taken@x.io".to_owned()
            } else {
                format!("b{i}@x.io")
            };
            tokio::spawn(async move {
                let op = |d: Value| WriteOp::Insert {
                    t,
                    def: &THING,
                    doc: obj(d),
                };
                store
                    .write_batch(vec![
                        op(json!({"email": format!("a{i}@x.io"), "n": i})),
                        op(json!({"n": i, "s": "second"})),
                        op(json!({"email": last, "n": i, "s": "third"})),
                    ])
                    .await
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    for (i, b) in batches.into_iter().enumerate() {
        let out = b.await.unwrap();
        if i % 5 == 0 {
            assert_eq!(out.unwrap_err(), Error::conflict("email"), "batch {i}");
        } else {
            assert_eq!(out.unwrap().len(), 3, "batch {i}");
        }
    }
    for i in 0..20_i64 {
        let n = store.count(t, &THING, &Filter::eq("n", i)).await.unwrap();
        assert_eq!(n, if i % 5 == 0 { 0 } else { 3 }, "records of batch {i}");
    }
    drop(store);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers_on_a_file() {
    let path = temp_path();
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let w = ws();
    let t = Tenant::Workspace(w);
    let writers: Vec<_> = (0..2)
        .map(|k| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..150 {
                    // Halfway, one writer stores a mistyped value: readers must stay exact.
                    let n = if k == 1 && i == 75 {
                        json!("x")
                    } else {
                        json!(i)
                    };
                    let d = store
                        .insert(t, &THING, obj(json!({"n": n, "s": format!("w{k}")})))
                        .await
                        .unwrap();
                    let id = d[ID_FIELD].as_str().unwrap().parse::<ObjectId>().unwrap();
                    // A write is visible to every reader connection once it returns.
                    assert_eq!(store.get(t, &THING, id).await.unwrap(), d);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut last = 0;
                for _ in 0..100 {
                    let n = store.count(t, &THING, &Filter::all()).await.unwrap();
                    assert!(n >= last, "counts never go back");
                    last = n;
                    let big = store
                        .find(
                            t,
                            &THING,
                            &Filter::Gte("n".into(), json!(100)),
                            &FindOptions::default(),
                        )
                        .await
                        .unwrap();
                    assert!(
                        big.iter()
                            .all(|d| d["n"].as_i64().is_some_and(|n| n >= 100))
                    );
                }
            })
        })
        .collect();
    for h in writers.into_iter().chain(readers) {
        h.await.unwrap();
    }
    assert_eq!(store.count(t, &THING, &Filter::all()).await.unwrap(), 300);
    assert_eq!(
        store
            .count(t, &THING, &Filter::Gte("n".into(), json!(100)))
            .await
            .unwrap(),
        100
    );
    assert!(!store.inner.coll(&THING).unwrap().is_clean("n"));
    drop(store);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

static EVOLVING_V1: EntityDef = EntityDef {
    name: "Evolving",
    collection: "evolving",
    tenancy: Tenancy::Global,
    timestamps: false,
    fields: &[f("email", Text)],
    unique: &[UniqueKey {
        name: "email",
        fields: &["email"],
    }],
    indexes: &[IndexDef::on(&[("email", Dir::Asc)])],
    text: &["email"],
};

static EVOLVING_V2: EntityDef = EntityDef {
    name: "Evolving",
    collection: "evolving",
    tenancy: Tenancy::Global,
    timestamps: false,
    fields: &[f("email", Text), f("n", Number), f("bio", Text)],
    unique: &[],
    indexes: &[IndexDef::on(&[("n", Dir::Desc)])],
    text: &["email", "bio"],
};

#[tokio::test]
async fn the_schema_follows_the_declaration_across_versions() {
    let path = temp_path();
    let g = Tenant::Global;
    {
        let v1 = SqliteStore::open(&path).unwrap();
        v1.ensure_schema(&[&EVOLVING_V1]).await.unwrap();
        let d = obj(json!({"email": "a@b", "n": "not a number", "bio": "Lovelace"}));
        v1.insert(g, &EVOLVING_V1, d).await.unwrap();
        assert_eq!(
            v1.insert(g, &EVOLVING_V1, obj(json!({"email": "a@b"})))
                .await,
            Err(Error::conflict("email"))
        );
    }
    let v2 = SqliteStore::open(&path).unwrap();
    v2.ensure_schema(&[&EVOLVING_V2]).await.unwrap();
    // The unique key is gone, and so is its index.
    v2.insert(g, &EVOLVING_V2, obj(json!({"email": "a@b", "n": 1})))
        .await
        .unwrap();
    let names: Vec<String> = v2
        .inner
        .read(|c| {
            let mut st = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE tbl_name = 'evolving' AND type = 'index'",
                )
                .unwrap();
            Ok(st
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap())
        })
        .unwrap();
    assert!(names.iter().all(|n| !n.contains("__uq__")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("__n_desc")), "{names:?}");
    assert!(
        !names.iter().any(|n| n.contains("__email_asc")),
        "{names:?}"
    );
    // A newly declared field is checked against what is already stored.
    assert!(!v2.inner.coll(&EVOLVING_V2).unwrap().is_clean("n"));
    let gt0 = v2
        .count(g, &EVOLVING_V2, &Filter::Gt("n".into(), json!(0)))
        .await
        .unwrap();
    assert_eq!(gt0, 1);
    // The full-text index was rebuilt for the new text fields.
    let hits = v2
        .count(g, &EVOLVING_V2, &Filter::Text("lovelace".into()))
        .await
        .unwrap();
    assert_eq!(hits, 1);
    drop(v2);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
