//! The differential property test: random documents of [`THING`], then random filters, sorts,
//! counts, aggregations and writes, run on every store; every answer must be the same.
//!
//! Only single-record writes and write batches may fail (they are atomic everywhere); other
//! multi-record writes are drawn so they cannot fail, because MongoDB applies `update_many`
//! record by record. Batches mix inserts (some clashing on `_id` or the unique `code`), risky
//! guarded updates and guarded deletes, so a failure part-way must leave nothing everywhere.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crm_core::engine::Document;
use crm_core::store::WriteOp;
use crm_core::{
    Error, Filter, FindOptions, GroupBy, GroupRow, ObjectId, SortKey, Storage, Tenant, Update,
    UpdateOp, WorkspaceId,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use serde_json::{Number, Value};

use crate::support::{same_doc, same_docs, same_value};
use crate::thing::THING;

/// How much to generate.
#[derive(Debug, Clone)]
pub struct DiffConfig {
    /// Random cases to pass (each: a fresh workspace, its documents and a few steps).
    pub cases: u32,
    /// A fixed seed reproduces a run; `None` takes `PROPTEST_RNG_SEED` or a random one.
    pub seed: Option<u64>,
    /// Bound on shrinking once a case fails (each try replays a case on every store).
    pub max_shrink_iters: u32,
    pub max_docs: usize,
    pub max_steps: usize,
}

impl DiffConfig {
    pub fn new(cases: u32) -> Self {
        Self {
            cases,
            seed: None,
            max_shrink_iters: 200,
            max_docs: 10,
            max_steps: 8,
        }
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// What a run exercised, so a caller can check the generator is not vacuous.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffReport {
    pub seed: u64,
    /// Cases run (shrinking included).
    pub runs: u64,
    pub steps: u64,
    /// Steps on which every store failed alike.
    pub agreed_errors: u64,
    pub finds: u64,
    /// Finds that returned some but not all of the live records.
    pub partial_finds: u64,
    /// Writes that changed or removed at least one record.
    pub effective_writes: u64,
    /// Aggregations with at least two groups.
    pub multi_group_aggregates: u64,
}

#[derive(Debug, Default)]
struct Stats {
    runs: AtomicU64,
    steps: AtomicU64,
    agreed_errors: AtomicU64,
    finds: AtomicU64,
    partial_finds: AtomicU64,
    effective_writes: AtomicU64,
    multi_group_aggregates: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Runs the differential test; panics with the seed and a minimal failing case when the stores
/// disagree. `cases` bounds the work (e.g. 16 with MongoDB, 200 for memory against SQLite).
pub async fn differential_check(stores: &[(&str, Storage)], cases: u32) -> DiffReport {
    match try_differential_check(stores, &DiffConfig::new(cases)).await {
        Ok(r) => r,
        Err(why) => panic!("{why}"),
    }
}

/// As [`differential_check`], returning the disagreement instead of panicking.
pub async fn try_differential_check(
    stores: &[(&str, Storage)],
    cfg: &DiffConfig,
) -> Result<DiffReport, String> {
    if stores.len() < 2 {
        return Err("a differential check needs at least two stores".into());
    }
    for (name, s) in stores {
        s.admin
            .ensure_schema(&[&THING])
            .await
            .map_err(|e| format!("{name}: ensure_schema failed: {e}"))?;
    }
    let seed = cfg
        .seed
        .or_else(|| std::env::var("PROPTEST_RNG_SEED").ok()?.parse().ok())
        .unwrap_or_else(|| RandomState::new().hash_one(0u8));
    let owned: Vec<(String, Storage)> = stores
        .iter()
        .map(|(n, s)| ((*n).to_owned(), s.clone()))
        .collect();
    let stats = Arc::new(Stats::default());
    let handle = tokio::runtime::Handle::current();
    let (cfg, st) = (cfg.clone(), stats.clone());
    // The runner is synchronous; it drives each async case from a blocking thread.
    let outcome = tokio::task::spawn_blocking(move || {
        let config = Config {
            cases: cfg.cases,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(seed),
            max_shrink_iters: cfg.max_shrink_iters,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        runner
            .run(&case_strategy(&cfg), |case| {
                handle.block_on(run_case(&owned, &case, &st))
            })
            .map_err(|e| match e {
                TestError::Fail(why, case) => {
                    format!("stores disagree (seed {seed}): {why}\nminimal case: {case:#?}")
                }
                TestError::Abort(why) => format!("differential run aborted (seed {seed}): {why}"),
            })
    })
    .await
    .map_err(|e| format!("differential runner died: {e}"))?;
    outcome?;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Ok(DiffReport {
        seed,
        runs: get(&stats.runs),
        steps: get(&stats.steps),
        agreed_errors: get(&stats.agreed_errors),
        finds: get(&stats.finds),
        partial_finds: get(&stats.partial_finds),
        effective_writes: get(&stats.effective_writes),
        multi_group_aggregates: get(&stats.multi_group_aggregates),
    })
}

// ---------------------------------------------------------------------------------------------
// generation

const WORDS: &[&str] = &[
    "alpha",
    "Alpha",
    "beta",
    "BETA",
    "gamma",
    "a.b",
    "x(y)",
    "50%",
    "under_score",
    "back\\slash",
    "",
    "ab",
    "zeta alpha",
    "[x]",
    "$x",
    "*",
];
const NEEDLES: &[&str] = &[
    "a", "AL", ".", "(", "%", "_", "\\", "", "eta", "*", "[", "x(y", "0%", "a_b", "l.a", "$",
];
const IDS: &[&str] = &[
    "5f00000000000000000000b1",
    "5f00000000000000000000b2",
    "5f00000000000000000000b3",
];
const DATES: &[&str] = &[
    "2023-12-31T23:59:59.999Z",
    "2024-01-01T00:00:00.000Z",
    "2024-06-01T12:00:00.000Z",
    "2025-02-03T04:05:06.007Z",
];
const QUERY_PATHS: &[&str] = &[
    "name",
    "score",
    "rank",
    "active",
    "tags",
    "ownerId",
    "dueAt",
    "note",
    "customFields.tier",
    "customFields.size",
    "customFields.flag",
    "address.city",
    "ghost",
];
/// Text-holding paths: `Contains` on ids and dates is left out, as MongoDB stores those typed.
const CONTAINS_PATHS: &[&str] = &[
    "name",
    "note",
    "tags",
    "customFields.tier",
    "customFields.size",
    "address.city",
    "score",
    "ghost",
];
/// Arrays are left out: MongoDB sorts an array by its smallest or largest element.
const SORT_PATHS: &[&str] = &[
    "name",
    "score",
    "rank",
    "active",
    "ownerId",
    "dueAt",
    "note",
    "customFields.tier",
    "customFields.size",
    "ghost",
    "_id",
];
const GROUP_KEYS: &[&str] = &[
    "name",
    "score",
    "rank",
    "active",
    "ownerId",
    "dueAt",
    "customFields.tier",
    "customFields.size",
    "ghost",
];
const SUM_PATHS: &[&str] = &["score", "rank", "customFields.size", "name"];

fn word() -> BoxedStrategy<Value> {
    select(WORDS).prop_map(Value::from).boxed()
}

fn phrase() -> BoxedStrategy<Value> {
    vec(select(WORDS), 1..3)
        .prop_map(|ws| Value::from(ws.join(" ")))
        .boxed()
}

fn int() -> BoxedStrategy<Value> {
    (-3i64..13).prop_map(Value::from).boxed()
}

/// Integers and exact quarters (`2.0` among them), so sums stay exact.
fn num() -> BoxedStrategy<Value> {
    prop_oneof![
        int(),
        (-8i32..41).prop_map(|k| Value::from(f64::from(k) / 4.0))
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Number> {
    prop_oneof![
        (-3i64..6).prop_map(Number::from),
        (-4i32..9).prop_filter_map("finite", |k| Number::from_f64(f64::from(k) / 4.0)),
    ]
    .boxed()
}

fn boolean() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::from).boxed()
}

fn words() -> BoxedStrategy<Value> {
    vec(select(WORDS), 0..4)
        .prop_map(|ws| Value::from(ws.into_iter().map(Value::from).collect::<Vec<_>>()))
        .boxed()
}

fn id() -> BoxedStrategy<Value> {
    select(IDS).prop_map(Value::from).boxed()
}

fn date() -> BoxedStrategy<Value> {
    select(DATES).prop_map(Value::from).boxed()
}

fn mixed() -> BoxedStrategy<Value> {
    prop_oneof![word(), num(), boolean(), Just(Value::Null)].boxed()
}

fn nullable(s: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![4 => s, 1 => Just(Value::Null)].boxed()
}

fn custom_fields() -> BoxedStrategy<Value> {
    btree_map(select(&["tier", "size", "flag"][..]), mixed(), 0..3)
        .prop_map(|m| {
            Value::Object(
                m.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<serde_json::Map<_, _>>(),
            )
        })
        .boxed()
}

fn address() -> BoxedStrategy<Value> {
    option::of(word())
        .prop_map(|city| {
            let mut m = serde_json::Map::new();
            if let Some(c) = city {
                m.insert("city".into(), c);
            }
            Value::Object(m)
        })
        .boxed()
}

/// The value a stored field may hold; writes use the same, so kinds stay as declared.
fn stored_value(path: &str) -> BoxedStrategy<Value> {
    match path {
        "name" | "address.city" => word(),
        "score" => nullable(num()),
        "rank" => int(),
        "active" => nullable(boolean()),
        "tags" => words(),
        "ownerId" => nullable(id()),
        "dueAt" => nullable(date()),
        "note" => nullable(phrase()),
        "customFields" => custom_fields(),
        "address" => address(),
        _ => mixed(),
    }
}

fn doc_strategy() -> impl Strategy<Value = Document> {
    const OPTIONAL: &[&str] = &[
        "score",
        "rank",
        "active",
        "tags",
        "ownerId",
        "dueAt",
        "note",
        "customFields",
        "address",
    ];
    let fields: Vec<BoxedStrategy<Option<Value>>> = OPTIONAL
        .iter()
        .map(|p| option::weighted(0.75, stored_value(p)).boxed())
        .collect();
    (word(), fields).prop_map(|(name, values)| {
        let mut d = Document::new();
        d.insert("name".into(), name);
        for (p, v) in OPTIONAL.iter().zip(values) {
            if let Some(v) = v {
                d.insert((*p).to_owned(), v);
            }
        }
        d
    })
}

/// Operands for a path: mostly of its kind, sometimes of another (type bracketing).
fn operand(path: &'static str) -> BoxedStrategy<Value> {
    match path {
        "ownerId" => prop_oneof![
            3 => id(),
            1 => select(IDS).prop_map(|s| Value::from(s.to_uppercase())),
            1 => Just(Value::Null),
        ]
        .boxed(),
        "dueAt" => prop_oneof![
            3 => date(),
            1 => Just(Value::from("2024-01-01T01:00:00+01:00")),
            1 => Just(Value::Null),
        ]
        .boxed(),
        "tags" => prop_oneof![3 => word(), 1 => words(), 1 => Just(Value::Null)].boxed(),
        _ => prop_oneof![3 => stored_value(path), 1 => mixed()].boxed(),
    }
}

fn leaf_filter() -> BoxedStrategy<Filter> {
    let path = || select(QUERY_PATHS);
    prop_oneof![
        3 => path().prop_flat_map(|p| operand(p).prop_map(move |v| Filter::Eq(p.into(), v))),
        2 => path().prop_flat_map(|p| operand(p).prop_map(move |v| Filter::Ne(p.into(), v))),
        3 => (0..4u8, path()).prop_flat_map(|(op, p)| {
            operand(p).prop_map(move |v| {
                let p = p.into();
                match op {
                    0 => Filter::Gt(p, v),
                    1 => Filter::Gte(p, v),
                    2 => Filter::Lt(p, v),
                    _ => Filter::Lte(p, v),
                }
            })
        }),
        2 => (any::<bool>(), path()).prop_flat_map(|(nin, p)| {
            vec(operand(p), 0..4).prop_map(move |vs| {
                if nin {
                    Filter::Nin(p.into(), vs)
                } else {
                    Filter::In(p.into(), vs)
                }
            })
        }),
        1 => (path(), any::<bool>()).prop_map(|(p, b)| Filter::Exists(p.into(), b)),
        2 => (select(CONTAINS_PATHS), select(NEEDLES))
            .prop_map(|(p, n)| Filter::Contains(p.into(), n.to_owned())),
        1 => vec(word(), 0..3).prop_map(|vs| Filter::All("tags".into(), vs)),
        1 => vec(select(&WORDS[..10]), 1..3).prop_map(|ws| Filter::Text(ws.join(" "))),
    ]
    .boxed()
}

fn filter() -> BoxedStrategy<Filter> {
    leaf_filter()
        .prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..3).prop_map(Filter::And),
                vec(inner.clone(), 1..3).prop_map(Filter::Or),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
        .boxed()
}

fn sort() -> BoxedStrategy<Vec<SortKey>> {
    vec((select(SORT_PATHS), any::<bool>()), 0..3)
        .prop_map(|keys| {
            keys.into_iter()
                .map(|(p, asc)| {
                    if asc {
                        SortKey::asc(p)
                    } else {
                        SortKey::desc(p)
                    }
                })
                .collect()
        })
        .boxed()
}

/// Paths an update may set, each with values of its stored kind.
const SET_PATHS: &[&str] = &[
    "name",
    "score",
    "rank",
    "active",
    "tags",
    "ownerId",
    "dueAt",
    "note",
    "customFields",
    "customFields.tier",
    "customFields.size",
    "address.city",
];

/// An operation that cannot fail on any record this generator makes.
fn safe_op() -> BoxedStrategy<UpdateOp> {
    let set_path = || select(SET_PATHS);
    prop_oneof![
        4 => set_path().prop_flat_map(|p| stored_value(p).prop_map(move |v| UpdateOp::Set(p.into(), v))),
        2 => select(&SET_PATHS[1..]).prop_map(|p| UpdateOp::Unset(p.into())),
        2 => number().prop_map(|n| UpdateOp::Inc("rank".into(), n)),
        1 => word().prop_map(|v| UpdateOp::Push("tags".into(), v)),
        1 => word().prop_map(|v| UpdateOp::AddToSet("tags".into(), v)),
        1 => word().prop_map(|v| UpdateOp::Pull("tags".into(), v)),
        1 => set_path().prop_flat_map(|p| stored_value(p).prop_map(move |v| UpdateOp::SetOnInsert(p.into(), v))),
    ]
    .boxed()
}

/// Operations that fail on some records (a null score, text in a custom field, a text note).
fn risky_op() -> BoxedStrategy<UpdateOp> {
    prop_oneof![
        4 => safe_op(),
        1 => number().prop_map(|n| UpdateOp::Inc("score".into(), n)),
        1 => number().prop_map(|n| UpdateOp::Inc("customFields.size".into(), n)),
        1 => word().prop_map(|v| UpdateOp::Push("note".into(), v)),
        1 => word().prop_map(|v| UpdateOp::Set("note.inner".into(), v)),
    ]
    .boxed()
}

/// 1 to 3 operations on distinct, non-overlapping paths.
fn update(op: fn() -> BoxedStrategy<UpdateOp>) -> BoxedStrategy<Update> {
    vec(op(), 1..4)
        .prop_map(|ops| {
            let mut kept: Vec<UpdateOp> = Vec::new();
            for o in ops {
                if !kept.iter().any(|k| k.path().overlaps(o.path())) {
                    kept.push(o);
                }
            }
            Update { ops: kept }
        })
        .boxed()
}

/// One op of a [`Step::Batch`]; targets index the case's records as in the other steps.
#[derive(Debug, Clone)]
enum BatchStep {
    /// A new record, or one reusing a case record's `_id` (a conflict unless it was deleted).
    Insert {
        doc: Document,
        code: Option<&'static str>,
        reuse: Option<usize>,
    },
    Update {
        target: usize,
        update: Update,
        guard: Filter,
    },
    Delete {
        target: usize,
        guard: Filter,
    },
}

#[derive(Debug, Clone)]
enum Step {
    Find {
        filter: Filter,
        sort: Vec<SortKey>,
        skip: u64,
        limit: Option<u64>,
    },
    Count(Filter),
    Aggregate(GroupBy),
    /// `target` indexes the case's records; one past the end is an id nobody has.
    UpdateOne {
        target: usize,
        update: Update,
    },
    UpdateMany {
        filter: Filter,
        update: Update,
    },
    FindOneAndUpdate {
        filter: Filter,
        update: Update,
    },
    /// An upsert keyed by `_id` (so every store makes the same record) and name.
    Upsert {
        target: usize,
        name: Value,
        update: Update,
    },
    DeleteOne(usize),
    DeleteMany(Filter),
    Batch(Vec<BatchStep>),
}

/// Most batches are unguarded or guarded by a filter that holds; some guards do not.
fn guard() -> BoxedStrategy<Filter> {
    prop_oneof![2 => Just(Filter::all()), 1 => filter()].boxed()
}

fn batch_step() -> BoxedStrategy<BatchStep> {
    prop_oneof![
        2 => (
            doc_strategy(),
            option::of(select(&["k1", "k2"][..])),
            option::weighted(0.2, any::<usize>()),
        )
            .prop_map(|(doc, code, reuse)| BatchStep::Insert { doc, code, reuse }),
        3 => (any::<usize>(), update(risky_op), guard())
            .prop_map(|(target, update, guard)| BatchStep::Update { target, update, guard }),
        1 => (any::<usize>(), guard()).prop_map(|(target, guard)| BatchStep::Delete { target, guard }),
    ]
    .boxed()
}

/// Most ops one batch holds, and so the fresh ids a step needs.
const BATCH_MAX: usize = 4;

impl Step {
    fn writes(&self) -> bool {
        !matches!(
            self,
            Step::Find { .. } | Step::Count(_) | Step::Aggregate(_)
        )
    }
}

fn step() -> BoxedStrategy<Step> {
    prop_oneof![
        5 => (filter(), sort(), 0u64..4, option::of(1u64..6))
            .prop_map(|(filter, sort, skip, limit)| Step::Find { filter, sort, skip, limit }),
        1 => filter().prop_map(Step::Count),
        2 => (filter(), select(GROUP_KEYS), vec(select(SUM_PATHS), 0..3)).prop_map(
            |(filter, key, sums)| Step::Aggregate(GroupBy {
                filter,
                key: key.into(),
                sums: sums.into_iter().map(Into::into).collect(),
            })
        ),
        2 => (any::<usize>(), update(risky_op))
            .prop_map(|(target, update)| Step::UpdateOne { target, update }),
        2 => (filter(), update(safe_op))
            .prop_map(|(filter, update)| Step::UpdateMany { filter, update }),
        1 => (filter(), update(risky_op))
            .prop_map(|(filter, update)| Step::FindOneAndUpdate { filter, update }),
        1 => (any::<usize>(), word(), update(safe_op))
            .prop_map(|(target, name, update)| Step::Upsert { target, name, update }),
        1 => any::<usize>().prop_map(Step::DeleteOne),
        1 => filter().prop_map(Step::DeleteMany),
        2 => vec(batch_step(), 1..=BATCH_MAX).prop_map(Step::Batch),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct Case {
    docs: Vec<Document>,
    steps: Vec<Step>,
}

fn case_strategy(cfg: &DiffConfig) -> impl Strategy<Value = Case> {
    (
        vec(doc_strategy(), 0..=cfg.max_docs),
        vec(step(), 1..=cfg.max_steps.max(1)),
    )
        .prop_map(|(docs, steps)| Case { docs, steps })
}

// ---------------------------------------------------------------------------------------------
// running and comparing

#[derive(Debug)]
enum Outcome {
    Docs(Vec<Document>),
    Count(u64),
    Rows(Vec<GroupRow>),
    Doc(Option<Document>),
    Batch(Vec<Option<Document>>),
    Done,
}

type Answer = Result<Outcome, Error>;

fn same_rows(a: &[GroupRow], b: &[GroupRow]) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()));
    a.len() == b.len()
        && a.iter().zip(b).all(|(r, s)| {
            same_value(&r.key, &s.key)
                && r.count == s.count
                && r.sums.len() == s.sums.len()
                && r.sums.iter().zip(&s.sums).all(|(x, y)| close(*x, *y))
        })
}

fn same_answer(a: &Answer, b: &Answer) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => match (x, y) {
            (Outcome::Docs(p), Outcome::Docs(q)) => same_docs(p, q),
            (Outcome::Count(p), Outcome::Count(q)) => p == q,
            (Outcome::Rows(p), Outcome::Rows(q)) => same_rows(p, q),
            (Outcome::Doc(p), Outcome::Doc(q)) => match (p, q) {
                (Some(p), Some(q)) => same_docs(std::slice::from_ref(p), std::slice::from_ref(q)),
                (None, None) => true,
                _ => false,
            },
            (Outcome::Batch(p), Outcome::Batch(q)) => {
                p.len() == q.len()
                    && p.iter().zip(q).all(|(x, y)| match (x, y) {
                        (Some(x), Some(y)) => same_doc(x, y),
                        (None, None) => true,
                        _ => false,
                    })
            }
            (Outcome::Done, Outcome::Done) => true,
            _ => false,
        },
        (Err(x), Err(y)) => std::mem::discriminant(x) == std::mem::discriminant(y),
        _ => false,
    }
}

/// The record a target index names, or `spare` (an id no store has) one past the end.
fn target_id(ids: &[ObjectId], target: usize, spare: ObjectId) -> ObjectId {
    let i = target % (ids.len() + 1);
    ids.get(i).copied().unwrap_or(spare)
}

async fn run_step(
    s: &Storage,
    t: Tenant,
    step: &Step,
    ids: &[ObjectId],
    spare: ObjectId,
    fresh: &[ObjectId],
) -> Answer {
    let d = s.docs.as_ref();
    Ok(match step {
        Step::Find {
            filter,
            sort,
            skip,
            limit,
        } => {
            let opts = FindOptions {
                sort: sort.clone(),
                skip: *skip,
                limit: *limit,
            };
            Outcome::Docs(d.find(t, &THING, filter, &opts).await?)
        }
        Step::Count(f) => Outcome::Count(d.count(t, &THING, f).await?),
        Step::Aggregate(g) => Outcome::Rows(d.aggregate(t, &THING, g).await?),
        Step::UpdateOne { target, update } => {
            let id = target_id(ids, *target, spare);
            Outcome::Doc(Some(d.update_one(t, &THING, id, update).await?))
        }
        Step::UpdateMany { filter, update } => {
            Outcome::Count(d.update_many(t, &THING, filter, update).await?)
        }
        Step::FindOneAndUpdate { filter, update } => Outcome::Doc(
            d.find_one_and_update(t, &THING, filter, update, false)
                .await?,
        ),
        Step::Upsert {
            target,
            name,
            update,
        } => {
            let id = target_id(ids, *target, spare);
            let key = Filter::eq("_id", id.to_hex()).and(Filter::Eq("name".into(), name.clone()));
            Outcome::Doc(d.find_one_and_update(t, &THING, &key, update, true).await?)
        }
        Step::DeleteOne(target) => {
            d.delete_one(t, &THING, target_id(ids, *target, spare))
                .await?;
            Outcome::Done
        }
        Step::DeleteMany(f) => Outcome::Count(d.delete_many(t, &THING, f).await?),
        Step::Batch(ops) => {
            let ops = ops
                .iter()
                .zip(fresh)
                .map(|(op, new_id)| match op {
                    BatchStep::Insert { doc, code, reuse } => {
                        let mut doc = doc.clone();
                        let id = reuse.map_or(*new_id, |r| target_id(ids, r, spare));
                        doc.insert("_id".into(), Value::from(id.to_hex()));
                        if let Some(c) = code {
                            doc.insert("code".into(), Value::from(*c));
                        }
                        WriteOp::Insert {
                            t,
                            def: &THING,
                            doc,
                        }
                    }
                    BatchStep::Update {
                        target,
                        update,
                        guard,
                    } => WriteOp::Update {
                        t,
                        def: &THING,
                        id: target_id(ids, *target, spare),
                        update: update.clone(),
                        guard: guard.clone(),
                    },
                    BatchStep::Delete { target, guard } => WriteOp::Delete {
                        t,
                        def: &THING,
                        id: target_id(ids, *target, spare),
                        guard: guard.clone(),
                    },
                })
                .collect();
            Outcome::Batch(d.write_batch(ops).await?)
        }
    })
}

async fn state(s: &Storage, t: Tenant) -> Answer {
    Ok(Outcome::Docs(
        s.docs
            .find(t, &THING, &Filter::all(), &FindOptions::default())
            .await?,
    ))
}

/// Fails the case unless every store gave the first store's answer.
fn agree(
    stores: &[(String, Storage)],
    answers: &[Answer],
    what: &str,
) -> Result<(), TestCaseError> {
    let (Some((first_name, _)), Some(first)) = (stores.first(), answers.first()) else {
        return Err(TestCaseError::fail("no stores"));
    };
    for ((name, _), a) in stores.iter().zip(answers).skip(1) {
        if !same_answer(first, a) {
            return Err(TestCaseError::fail(format!(
                "{what}\n  {first_name}: {first:?}\n  {name}: {a:?}"
            )));
        }
    }
    Ok(())
}

async fn run_case(
    stores: &[(String, Storage)],
    case: &Case,
    stats: &Stats,
) -> Result<(), TestCaseError> {
    bump(&stats.runs);
    let t = Tenant::Workspace(WorkspaceId::new());
    let ids: Vec<ObjectId> = case.docs.iter().map(|_| ObjectId::new()).collect();
    let docs: Vec<Document> = case
        .docs
        .iter()
        .zip(&ids)
        .map(|(d, id)| {
            let mut d = d.clone();
            d.insert("_id".into(), Value::from(id.to_hex()));
            d
        })
        .collect();
    let mut answers = Vec::new();
    for (_, s) in stores {
        answers.push(
            s.docs
                .insert_many(t, &THING, docs.clone())
                .await
                .map(Outcome::Count),
        );
    }
    agree(stores, &answers, "insert_many of the case's records")?;
    if let Some(Err(e)) = answers.first() {
        return Err(TestCaseError::fail(format!(
            "insert_many failed everywhere: {e}"
        )));
    }
    let mut live = docs.len();
    for (i, step) in case.steps.iter().enumerate() {
        bump(&stats.steps);
        let spare = ObjectId::new();
        let fresh: Vec<ObjectId> = (0..BATCH_MAX).map(|_| ObjectId::new()).collect();
        let mut answers = Vec::new();
        for (_, s) in stores {
            answers.push(run_step(s, t, step, &ids, spare, &fresh).await);
        }
        agree(stores, &answers, &format!("step {i}: {step:?}"))?;
        match &answers[0] {
            Err(_) => bump(&stats.agreed_errors),
            Ok(Outcome::Docs(found)) => {
                bump(&stats.finds);
                if !found.is_empty() && found.len() < live {
                    bump(&stats.partial_finds);
                }
            }
            Ok(Outcome::Rows(rows)) if rows.len() >= 2 => bump(&stats.multi_group_aggregates),
            Ok(Outcome::Count(n)) if step.writes() && *n > 0 => bump(&stats.effective_writes),
            Ok(Outcome::Doc(Some(_)) | Outcome::Done | Outcome::Batch(_)) => {
                bump(&stats.effective_writes);
            }
            Ok(_) => {}
        }
        if step.writes() {
            let mut states = Vec::new();
            for (_, s) in stores {
                states.push(state(s, t).await);
            }
            agree(
                stores,
                &states,
                &format!("records after step {i}: {step:?}"),
            )?;
            if let Some(Ok(Outcome::Docs(all))) = states.first() {
                live = all.len();
            }
        }
    }
    Ok(())
}
