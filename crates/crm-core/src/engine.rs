//! The reference semantics of filters, sorts and updates over JSON documents: MongoDB's, for the
//! subset the query language has. The memory adapter runs it directly; the SQLite adapter uses its
//! update half and matches its filter half in SQL; the differential tests hold all three to it.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::path::FieldPath;
use crate::query::{Filter, GroupBy, GroupRow, SortKey, Update, UpdateOp};
use crate::schema::{Dir, EntityDef, FieldKind, ID_FIELD};
use crate::time::Timestamp;

/// A stored record: a JSON object with `_id` (hex) and, when scoped, the tenant field.
pub type Document = Map<String, Value>;

/// The value at a dotted path, following embedded objects.
pub fn resolve<'a>(doc: &'a Document, path: &FieldPath) -> Option<&'a Value> {
    let mut segs = path.segments();
    let mut cur = doc.get(segs.next()?)?;
    for s in segs {
        cur = cur.as_object()?.get(s)?;
    }
    Some(cur)
}

fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

/// Equality as MongoDB sees it: numbers by value, whatever their representation.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => as_f64(x) == as_f64(y),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| ka == kb && values_equal(va, vb))
        }
        _ => a == b,
    }
}

/// MongoDB's order of types: null, numbers, text, objects, arrays, booleans.
fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        Value::Object(_) => 3,
        Value::Array(_) => 4,
        Value::Bool(_) => 8,
    }
}

/// Total order over values, for sorting (missing counts as null).
pub fn cmp_values(a: &Value, b: &Value) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => as_f64(x).total_cmp(&as_f64(y)),
        },
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = cmp_values(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
                let o = ka.cmp(kb).then_with(|| cmp_values(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => Ordering::Equal,
    }
}

/// Case-insensitive substring test, the one all adapters use (SQLite registers it as a function).
pub fn icontains(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        return h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// The words of a text search.
pub fn text_terms(q: &str) -> Vec<&str> {
    q.split_whitespace().collect()
}

fn candidates(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(x) => vec![x],
        None => Vec::new(),
    }
}

fn eq_match(v: Option<&Value>, want: &Value) -> bool {
    match v {
        None => want.is_null(),
        Some(x) => {
            values_equal(x, want)
                || matches!(x, Value::Array(items) if items.iter().any(|e| values_equal(e, want)))
        }
    }
}

fn cmp_match(v: Option<&Value>, want: &Value, ok: fn(Ordering) -> bool) -> bool {
    if want.is_null() {
        // MongoDB: $gte/$lte null match null or missing; $gt/$lt null match nothing.
        return ok(Ordering::Equal) && eq_match(v, want);
    }
    let rank = type_rank(want);
    candidates(v)
        .into_iter()
        .any(|c| type_rank(c) == rank && ok(cmp_values(c, want)))
}

fn text_values<'a>(v: Option<&'a Value>, out: &mut Vec<&'a str>) {
    match v {
        Some(Value::String(s)) => out.push(s),
        Some(Value::Array(items)) => {
            for i in items {
                text_values(Some(i), out);
            }
        }
        _ => {}
    }
}

/// Does the document satisfy the filter?
pub fn matches(def: &EntityDef, doc: &Document, filter: &Filter) -> bool {
    match filter {
        Filter::Eq(p, v) => eq_match(resolve(doc, p), v),
        Filter::Ne(p, v) => !eq_match(resolve(doc, p), v),
        Filter::In(p, vs) => {
            let x = resolve(doc, p);
            vs.iter().any(|v| eq_match(x, v))
        }
        Filter::Nin(p, vs) => {
            let x = resolve(doc, p);
            !vs.iter().any(|v| eq_match(x, v))
        }
        Filter::Gt(p, v) => cmp_match(resolve(doc, p), v, |o| o == Ordering::Greater),
        Filter::Gte(p, v) => cmp_match(resolve(doc, p), v, |o| o != Ordering::Less),
        Filter::Lt(p, v) => cmp_match(resolve(doc, p), v, |o| o == Ordering::Less),
        Filter::Lte(p, v) => cmp_match(resolve(doc, p), v, |o| o != Ordering::Greater),
        Filter::Exists(p, want) => resolve(doc, p).is_some() == *want,
        Filter::Contains(p, needle) => candidates(resolve(doc, p))
            .into_iter()
            .any(|c| matches!(c, Value::String(s) if icontains(s, needle))),
        Filter::All(p, vs) => {
            let x = resolve(doc, p);
            !vs.is_empty() && vs.iter().all(|v| eq_match(x, v))
        }
        Filter::And(fs) => fs.iter().all(|f| matches(def, doc, f)),
        Filter::Or(fs) => fs.iter().any(|f| matches(def, doc, f)),
        Filter::Not(f) => !matches(def, doc, f),
        Filter::Text(q) => {
            let mut hay = Vec::new();
            for t in def.text {
                text_values(resolve(doc, &FieldPath::from_static(t)), &mut hay);
            }
            let terms = text_terms(q);
            !terms.is_empty() && terms.iter().all(|t| hay.iter().any(|h| icontains(h, t)))
        }
    }
}

/// Orders documents by an effective sort (see [`crate::query::effective_sort`]).
pub fn cmp_docs(a: &Document, b: &Document, sort: &[SortKey]) -> Ordering {
    for k in sort {
        let (x, y) = (
            resolve(a, &k.path).unwrap_or(&Value::Null),
            resolve(b, &k.path).unwrap_or(&Value::Null),
        );
        let o = cmp_values(x, y);
        let o = if k.dir == Dir::Desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Checks operands against declared kinds and puts dates in canonical form, so that every adapter
/// compares the same text (and MongoDB gets real ObjectIds and Dates).
pub fn normalize_filter(def: &EntityDef, filter: &Filter) -> Result<Filter> {
    let norm = |p: &FieldPath, v: &Value| normalize_value(def, p, v);
    let norm_all = |p: &FieldPath, vs: &[Value]| -> Result<Vec<Value>> {
        vs.iter().map(|v| normalize_value(def, p, v)).collect()
    };
    Ok(match filter {
        Filter::Eq(p, v) => Filter::Eq(p.clone(), norm(p, v)?),
        Filter::Ne(p, v) => Filter::Ne(p.clone(), norm(p, v)?),
        Filter::Gt(p, v) => Filter::Gt(p.clone(), norm(p, v)?),
        Filter::Gte(p, v) => Filter::Gte(p.clone(), norm(p, v)?),
        Filter::Lt(p, v) => Filter::Lt(p.clone(), norm(p, v)?),
        Filter::Lte(p, v) => Filter::Lte(p.clone(), norm(p, v)?),
        Filter::In(p, vs) => Filter::In(p.clone(), norm_all(p, vs)?),
        Filter::Nin(p, vs) => Filter::Nin(p.clone(), norm_all(p, vs)?),
        Filter::All(p, vs) => Filter::All(p.clone(), norm_all(p, vs)?),
        Filter::And(fs) => Filter::And(
            fs.iter()
                .map(|f| normalize_filter(def, f))
                .collect::<Result<_>>()?,
        ),
        Filter::Or(fs) => {
            if fs.is_empty() {
                return Err(Error::invalid(
                    "filter",
                    "an `or` needs at least one condition",
                ));
            }
            Filter::Or(
                fs.iter()
                    .map(|f| normalize_filter(def, f))
                    .collect::<Result<_>>()?,
            )
        }
        Filter::Not(f) => Filter::Not(Box::new(normalize_filter(def, f)?)),
        Filter::Text(q) => {
            if def.text.is_empty() {
                return Err(Error::invalid("search", "this entity has no text search"));
            }
            if text_terms(q).is_empty() {
                return Err(Error::invalid("search", "must contain a word"));
            }
            Filter::Text(q.clone())
        }
        Filter::Contains(p, needle) => {
            check_path(def, p)?;
            if matches!(
                def.kind_of(p.as_str()),
                FieldKind::Id | FieldKind::Ids | FieldKind::Date
            ) {
                return Err(Error::invalid(p.as_str(), "contains needs a text field"));
            }
            Filter::Contains(p.clone(), needle.clone())
        }
        Filter::Exists(p, b) => {
            check_path(def, p)?;
            Filter::Exists(p.clone(), *b)
        }
    })
}

/// Paths may not pass through an array: MongoDB would look inside each element, the other
/// stores would not, so such a filter is refused rather than answered differently.
fn check_path(def: &EntityDef, p: &FieldPath) -> Result<()> {
    let s = p.as_str();
    for (i, _) in s.match_indices('.') {
        if matches!(
            def.kind_of(&s[..i]),
            FieldKind::Array | FieldKind::Ids | FieldKind::Texts
        ) {
            return Err(Error::invalid(
                s,
                "filters cannot reach inside an array of documents",
            ));
        }
    }
    Ok(())
}

fn normalize_value(def: &EntityDef, p: &FieldPath, v: &Value) -> Result<Value> {
    check_path(def, p)?;
    match (def.kind_of(p.as_str()), v) {
        (_, Value::Null) => Ok(Value::Null),
        (FieldKind::Id | FieldKind::Ids, Value::String(s)) => ObjectId::parse_str(s)
            .map(|id| Value::String(id.to_hex()))
            .map_err(|_| Error::invalid(p.as_str(), "must be a 24-hex-digit id")),
        (FieldKind::Id | FieldKind::Ids, _) => Err(Error::invalid(p.as_str(), "must be an id")),
        (FieldKind::Date, Value::String(s)) => Timestamp::parse(s)
            .map(|t| Value::String(t.to_canonical()))
            .map_err(|_| Error::invalid(p.as_str(), "must be an RFC 3339 timestamp")),
        (FieldKind::Date, _) => Err(Error::invalid(p.as_str(), "must be a timestamp")),
        (FieldKind::Object | FieldKind::Array | FieldKind::Any, _) => Ok(v.clone()),
        (_, Value::Object(_)) => Err(Error::invalid(p.as_str(), "must be a plain value")),
        _ => Ok(v.clone()),
    }
}

/// Rejects updates that touch `_id` or the tenant field, or touch one path twice.
pub fn validate_update(def: &EntityDef, update: &Update) -> Result<()> {
    for (i, op) in update.ops.iter().enumerate() {
        let p = op.path();
        let protected = [Some(ID_FIELD), def.tenant_field()];
        if protected
            .iter()
            .flatten()
            .any(|f| p.overlaps(&FieldPath::from_static(f)))
        {
            return Err(Error::invalid(p.as_str(), "cannot be changed"));
        }
        if update.ops[..i].iter().any(|o| o.path().overlaps(p)) {
            return Err(Error::invalid(p.as_str(), "changed twice in one update"));
        }
        if let UpdateOp::Set(_, v) | UpdateOp::SetOnInsert(_, v) = op {
            normalize_value(def, p, v).or_else(|e| {
                if v.is_array() || v.is_object() {
                    Ok(v.clone())
                } else {
                    Err(e)
                }
            })?;
        }
    }
    Ok(())
}

fn parent_mut<'a>(
    doc: &'a mut Document,
    path: &FieldPath,
    create: bool,
) -> Result<Option<(&'a mut Document, String)>> {
    let segs: Vec<&str> = path.segments().collect();
    let (last, init) = match segs.split_last() {
        Some(x) => x,
        None => return Ok(None),
    };
    let mut cur = doc;
    for s in init {
        if !cur.contains_key(*s) {
            if !create {
                return Ok(None);
            }
            cur.insert((*s).to_owned(), Value::Object(Map::new()));
        }
        cur = match cur.get_mut(*s) {
            Some(Value::Object(m)) => m,
            Some(_) if create => {
                return Err(Error::invalid(
                    path.as_str(),
                    "a parent of this path is not an object",
                ));
            }
            _ => return Ok(None),
        };
    }
    Ok(Some((cur, (*last).to_owned())))
}

fn add_numbers(a: &Number, b: &Number, path: &FieldPath) -> Result<Number> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x
            .checked_add(y)
            .map(Number::from)
            .ok_or_else(|| Error::invalid(path.as_str(), "integer overflow"));
    }
    Number::from_f64(as_f64(a) + as_f64(b))
        .ok_or_else(|| Error::invalid(path.as_str(), "not a finite number"))
}

/// Applies an update in place. `inserting` enables `SetOnInsert`.
pub fn apply_update(
    def: &EntityDef,
    doc: &mut Document,
    update: &Update,
    inserting: bool,
) -> Result<()> {
    validate_update(def, update)?;
    for op in &update.ops {
        let p = op.path();
        match op {
            UpdateOp::Set(_, v) => {
                if let Some((parent, key)) = parent_mut(doc, p, true)? {
                    parent.insert(key, normalize_stored(def, p, v));
                }
            }
            UpdateOp::SetOnInsert(_, v) => {
                if inserting && let Some((parent, key)) = parent_mut(doc, p, true)? {
                    parent.insert(key, normalize_stored(def, p, v));
                }
            }
            UpdateOp::Unset(_) => {
                if let Some((parent, key)) = parent_mut(doc, p, false)? {
                    parent.remove(&key);
                }
            }
            UpdateOp::Inc(_, n) => {
                if let Some((parent, key)) = parent_mut(doc, p, true)? {
                    let next = match parent.get(&key) {
                        None => n.clone(),
                        Some(Value::Number(cur)) => add_numbers(cur, n, p)?,
                        Some(_) => return Err(Error::invalid(p.as_str(), "is not a number")),
                    };
                    parent.insert(key, Value::Number(next));
                }
            }
            UpdateOp::Push(_, v) | UpdateOp::AddToSet(_, v) => {
                if let Some((parent, key)) = parent_mut(doc, p, true)? {
                    let v = normalize_stored(def, p, v);
                    match parent.get_mut(&key) {
                        None => {
                            parent.insert(key, Value::Array(vec![v]));
                        }
                        Some(Value::Array(items)) => {
                            let add_to_set = matches!(op, UpdateOp::AddToSet(..));
                            if !(add_to_set && items.iter().any(|e| values_equal(e, &v))) {
                                items.push(v);
                            }
                        }
                        Some(_) => return Err(Error::invalid(p.as_str(), "is not an array")),
                    }
                }
            }
            UpdateOp::Pull(_, v) => {
                if let Some((parent, key)) = parent_mut(doc, p, false)? {
                    let v = normalize_stored(def, p, v);
                    match parent.get_mut(&key) {
                        None => {}
                        Some(Value::Array(items)) => items.retain(|e| !values_equal(e, &v)),
                        Some(_) => return Err(Error::invalid(p.as_str(), "is not an array")),
                    }
                }
            }
        }
    }
    Ok(())
}

/// Dates in canonical text, whatever RFC 3339 form they came in.
fn normalize_stored(def: &EntityDef, p: &FieldPath, v: &Value) -> Value {
    match (def.kind_of(p.as_str()), v) {
        (FieldKind::Date, Value::String(s)) => Timestamp::parse(s)
            .map(|t| Value::String(t.to_canonical()))
            .unwrap_or_else(|_| v.clone()),
        _ => v.clone(),
    }
}

/// The document an upsert starts from: the filter's top-level equalities.
pub fn upsert_seed(filter: &Filter) -> Result<Document> {
    let mut doc = Document::new();
    fn collect(f: &Filter, doc: &mut Document) -> Result<()> {
        match f {
            Filter::Eq(p, v) => {
                if let Some((parent, key)) = parent_mut(doc, p, true)? {
                    parent.insert(key, v.clone());
                }
            }
            Filter::And(fs) => {
                for f in fs {
                    collect(f, doc)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    collect(filter, &mut doc)?;
    Ok(doc)
}

/// The values of a unique key in a document, or `None` when the key does not apply (a field is
/// missing or not of its declared type).
pub fn unique_values<'a>(
    def: &EntityDef,
    doc: &'a Document,
    fields: &[&'static str],
) -> Option<Vec<&'a Value>> {
    fields
        .iter()
        .map(|f| {
            let v = resolve(doc, &FieldPath::from_static(f))?;
            let ok = match def.kind_of(f) {
                FieldKind::Id | FieldKind::Text | FieldKind::Date => v.is_string(),
                FieldKind::Number => v.is_number(),
                FieldKind::Bool => v.is_boolean(),
                _ => false,
            };
            ok.then_some(v)
        })
        .collect()
}

/// The name of the first unique key two documents share, if any.
pub fn unique_clash(def: &EntityDef, a: &Document, b: &Document) -> Option<&'static str> {
    def.unique.iter().find_map(|uk| {
        let x = unique_values(def, a, uk.fields)?;
        let y = unique_values(def, b, uk.fields)?;
        x.iter()
            .zip(&y)
            .all(|(p, q)| values_equal(p, q))
            .then_some(uk.name)
    })
}

/// Groups documents (already filtered); rows ordered by key.
pub fn group<'a>(docs: impl Iterator<Item = &'a Document>, g: &GroupBy) -> Vec<GroupRow> {
    let mut rows: Vec<GroupRow> = Vec::new();
    for d in docs {
        let key = resolve(d, &g.key).cloned().unwrap_or(Value::Null);
        let idx = match rows.iter().position(|r| values_equal(&r.key, &key)) {
            Some(i) => i,
            None => {
                rows.push(GroupRow {
                    key,
                    count: 0,
                    sums: vec![0.0; g.sums.len()],
                });
                rows.len() - 1
            }
        };
        let row = &mut rows[idx];
        row.count += 1;
        for (i, p) in g.sums.iter().enumerate() {
            if let Some(Value::Number(n)) = resolve(d, p) {
                row.sums[i] += as_f64(n);
            }
        }
    }
    rows.sort_by(|a, b| cmp_values(&a.key, &b.key));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static DEF: EntityDef = EntityDef {
        name: "T",
        collection: "ts",
        tenancy: crate::schema::Tenancy::Workspace {
            field: "workspaceId",
        },
        timestamps: true,
        fields: &[],
        unique: &[],
        indexes: &[],
        text: &["name"],
    };

    fn doc(v: Value) -> Document {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn eq_on_arrays_and_null() {
        let d = doc(json!({"tags": ["a", "b"], "n": 1}));
        assert!(matches(&DEF, &d, &Filter::eq("tags", "a")));
        assert!(matches(&DEF, &d, &Filter::eq("missing", Value::Null)));
        assert!(!matches(&DEF, &d, &Filter::eq("n", Value::Null)));
        assert!(matches(&DEF, &d, &Filter::eq("n", 1.0)));
        assert!(matches(&DEF, &d, &Filter::Ne("tags".into(), json!("c"))));
    }

    #[test]
    fn ordered_comparisons_are_type_bracketed() {
        let d = doc(json!({"s": "abc", "n": 5}));
        assert!(!matches(&DEF, &d, &Filter::Gt("s".into(), json!(1))));
        assert!(matches(&DEF, &d, &Filter::Gt("s".into(), json!("ab"))));
        assert!(matches(&DEF, &d, &Filter::Lte("n".into(), json!(5.0))));
        assert!(matches(
            &DEF,
            &d,
            &Filter::Gte("missing".into(), Value::Null)
        ));
        assert!(!matches(
            &DEF,
            &d,
            &Filter::Gt("missing".into(), Value::Null)
        ));
    }

    #[test]
    fn contains_is_literal_and_case_insensitive() {
        let d = doc(json!({"name": "Ada (Lovelace).*"}));
        assert!(matches(
            &DEF,
            &d,
            &Filter::Contains("name".into(), "(love".into())
        ));
        assert!(!matches(
            &DEF,
            &d,
            &Filter::Contains("name".into(), "a.*x".into())
        ));
        assert!(matches(&DEF, &d, &Filter::Text("ADA lovelace".into())));
        assert!(!matches(&DEF, &d, &Filter::Text("ada babbage".into())));
    }

    #[test]
    fn updates() {
        let mut d = doc(json!({"n": 1, "tags": ["a"]}));
        let u = Update::new()
            .inc("n", 2)
            .add_to_set("tags", "a")
            .push("list", 1)
            .set("a.b", true)
            .set_on_insert("x", 1);
        apply_update(&DEF, &mut d, &u, false).unwrap();
        assert_eq!(
            Value::Object(d.clone()),
            json!({"n": 3, "tags": ["a"], "list": [1], "a": {"b": true}})
        );
        let bad = Update::new().inc("tags", 1);
        assert!(matches!(
            apply_update(&DEF, &mut d, &bad, false),
            Err(Error::Invalid { .. })
        ));
        let twice = Update::new().set("a", 1).unset("a.b");
        assert!(apply_update(&DEF, &mut d, &twice, false).is_err());
        assert!(apply_update(&DEF, &mut d, &Update::new().set("workspaceId", "x"), false).is_err());
    }

    #[test]
    fn filters_that_stores_would_answer_differently_are_refused() {
        use crate::entities::contact::CONTACT;
        let into_array = Filter::eq("mergeHistory.mergedBy", "000000000000000000000001");
        assert!(normalize_filter(&CONTACT, &into_array).is_err());
        let contains_id = Filter::Contains("userId".into(), "00".into());
        assert!(normalize_filter(&CONTACT, &contains_id).is_err());
        let date = Filter::Gte("createdAt".into(), json!("2024-01-01T00:00:00Z"));
        assert_eq!(
            normalize_filter(&CONTACT, &date).unwrap(),
            Filter::Gte("createdAt".into(), json!("2024-01-01T00:00:00.000Z"))
        );
        assert!(normalize_filter(&CONTACT, &Filter::eq("userId", "nope")).is_err());
    }

    #[test]
    fn sort_order_puts_null_first() {
        let mut v = [json!("b"), json!(null), json!(2), json!("a"), json!(true)];
        v.sort_by(cmp_values);
        assert_eq!(
            v.to_vec(),
            vec![json!(null), json!(2), json!("a"), json!("b"), json!(true)]
        );
    }
}
