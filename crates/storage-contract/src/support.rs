//! Small helpers the cases and the differential harness share.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};

use crm_core::engine::{Document, resolve};
use crm_core::schema::{CREATED_AT, FieldKind, UPDATED_AT};
use crm_core::time::{Clock, Timestamp};
use crm_core::{EntityDef, FieldPath, ObjectId, Storage, Tenant, WorkspaceId};
use serde_json::{Map, Value, json};

/// Unwraps a result in a contract case, naming the step that failed.
pub trait Must<T> {
    fn must(self, what: &str) -> T;
}

impl<T, E: Debug> Must<T> for Result<T, E> {
    #[track_caller]
    fn must(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{what}: unexpected error {e:?}"),
        }
    }
}

impl<T> Must<T> for Option<T> {
    #[track_caller]
    fn must(self, what: &str) -> T {
        match self {
            Some(v) => v,
            None => panic!("{what}: unexpected None"),
        }
    }
}

/// A JSON object literal as a document.
#[track_caller]
pub fn doc(v: Value) -> Document {
    match v {
        Value::Object(m) => m,
        other => panic!("not a JSON object: {other}"),
    }
}

/// A workspace no other case uses, so cases can share one database.
pub fn fresh_workspace() -> Tenant {
    Tenant::Workspace(WorkspaceId::new())
}

/// Creates the schema for the entities a case uses.
pub async fn setup(s: &Storage, defs: &[&'static EntityDef]) {
    s.admin.ensure_schema(defs).await.must("ensure_schema");
}

/// Sets a (possibly dotted) path, creating parent objects.
pub fn set_path(doc: &mut Document, path: &str, v: Value) {
    let mut segs: Vec<&str> = path.split('.').collect();
    let Some(last) = segs.pop() else { return };
    let mut cur = doc;
    for s in segs {
        let slot = cur
            .entry(s.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(m) = slot else { return };
        cur = m;
    }
    cur.insert(last.to_owned(), v);
}

/// A value of a declared kind; text is unique, so unique keys of the product entities never clash.
pub fn sample_value(kind: FieldKind) -> Value {
    let unique = ObjectId::new().to_hex();
    match kind {
        FieldKind::Id => json!(ObjectId::new().to_hex()),
        FieldKind::Ids => json!([ObjectId::new().to_hex()]),
        FieldKind::Date => json!(Timestamp::now().to_canonical()),
        FieldKind::Text => json!(format!("contract-{unique}")),
        FieldKind::Texts => json!([format!("contract-{unique}")]),
        FieldKind::Number => json!(1),
        FieldKind::Bool => json!(true),
        FieldKind::Object => json!({}),
        FieldKind::Array => json!([]),
        FieldKind::Any => json!(format!("contract-{unique}")),
    }
}

/// The smallest document the declaration calls valid: its required fields (and timestamps).
pub fn minimal_doc(def: &EntityDef) -> Document {
    let mut d = Document::new();
    for fd in def.fields.iter().filter(|f| f.required) {
        set_path(&mut d, fd.path, sample_value(fd.kind));
    }
    if def.timestamps {
        let now = json!(Timestamp::now().to_canonical());
        d.insert(CREATED_AT.into(), now.clone());
        d.insert(UPDATED_AT.into(), now);
    }
    d
}

/// JSON equality with numbers compared by value (`2` equals `2.0`) and key order ignored.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Object(x), Value::Object(y)) => same_doc(x, y),
        _ => a == b,
    }
}

pub fn same_doc(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| same_value(v, w)))
}

pub fn same_docs(a: &[Document], b: &[Document]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_doc(x, y))
}

/// The text at a path, or "" (for messages and name lists).
pub fn text_at<'a>(d: &'a Document, path: &'static str) -> &'a str {
    resolve(d, &FieldPath::from_static(path))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A number at a path.
pub fn number_at(d: &Document, path: &'static str) -> Option<f64> {
    resolve(d, &FieldPath::from_static(path)).and_then(Value::as_f64)
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(AtomicI64::new(t.millis()))
    }
    pub fn advance_seconds(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}
