//! The query language to MongoDB documents. Semantics are `crm_core::engine`'s, which are
//! MongoDB's own for this subset, so most operators map one to one.

use crm_core::engine::{normalize_filter, text_terms};
use crm_core::query::effective_sort;
use crm_core::{Dir, EntityDef, Filter, GroupBy, Result, SortKey, Update, UpdateOp};
use mongodb::bson::{Bson, Document, doc};
use serde_json::Value;

use crate::convert::{number, to_bson};

/// How `Filter::Text` is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    /// `$text` over the entity's text index (a real MongoDB).
    Index,
    /// Every word an escaped, case-insensitive `$regex` on one of the text fields (servers
    /// without text indexes, such as SecantusDB). Exactly the engine's semantics.
    Regex,
}

/// Escapes regex metacharacters so a needle matches literally, in PCRE (MongoDB) and in
/// Python's `re` (SecantusDB) alike: a backslash before punctuation is a literal in both.
pub fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '.'
                | '+'
                | '*'
                | '?'
                | '('
                | ')'
                | '|'
                | '['
                | ']'
                | '{'
                | '}'
                | '^'
                | '$'
                | '#'
                | '&'
                | '-'
                | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn icontains(path: &str, needle: &str) -> Document {
    doc! { path: { "$regex": escape_regex(needle), "$options": "i" } }
}

/// The MongoDB query for a filter (without the tenant, which `raw` adds).
pub fn filter(def: &EntityDef, f: &Filter, mode: TextMode) -> Result<Document> {
    let f = normalize_filter(def, f)?;
    let mut text_used = false;
    let mut clauses = Vec::new();
    top_level(def, &f, mode, &mut text_used, &mut clauses);
    Ok(merge(clauses))
}

/// Top-level clauses as one document when their keys differ (`{a: .., b: ..}` means the same as
/// `$and` to MongoDB, and SecantusDB only plans indexes for the plain form), else `$and`.
fn merge(clauses: Vec<Document>) -> Document {
    let mut merged = Document::new();
    for c in &clauses {
        if c.len() != 1 || c.keys().any(|k| merged.contains_key(k)) {
            return doc! { "$and": clauses };
        }
        merged.extend(c.clone());
    }
    merged
}

/// `$text` may appear once and only at the top (or in a top-level `$and`), so conjunctions at
/// the top are flattened and only there may a text search use the index.
fn top_level(
    def: &EntityDef,
    f: &Filter,
    mode: TextMode,
    text_used: &mut bool,
    out: &mut Vec<Document>,
) {
    match f {
        Filter::And(fs) => fs
            .iter()
            .for_each(|x| top_level(def, x, mode, text_used, out)),
        Filter::Text(q) if mode == TextMode::Index && !*text_used && !q.contains('"') => {
            *text_used = true;
            out.push(text_index_query(q));
        }
        other => out.push(clause(def, other)),
    }
}

/// Each word a quoted phrase, so every word must occur (the engine's rule), not any.
fn text_index_query(q: &str) -> Document {
    let search = text_terms(q)
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(" ");
    doc! { "$text": { "$search": search } }
}

/// The fallback: `$and` over words of `$or` over fields.
fn text_regex_query(def: &EntityDef, q: &str) -> Document {
    let words: Vec<Document> = text_terms(q)
        .iter()
        .map(|w| {
            let fields: Vec<Document> = def.text.iter().map(|p| icontains(p, w)).collect();
            doc! { "$or": fields }
        })
        .collect();
    doc! { "$and": words }
}

fn op(def: &EntityDef, p: &crm_core::FieldPath, name: &str, v: &Value) -> Document {
    let path = p.as_str();
    let mut inner = Document::new();
    inner.insert(name, to_bson(def, path, v));
    doc! { path: inner }
}

fn op_list(def: &EntityDef, p: &crm_core::FieldPath, name: &str, vs: &[Value]) -> Document {
    let path = p.as_str();
    let list: Vec<Bson> = vs.iter().map(|v| to_bson(def, path, v)).collect();
    let mut inner = Document::new();
    inner.insert(name, list);
    doc! { path: inner }
}

/// MongoDB also compares a whole array with an array operand; the engine compares only the
/// elements, which `$elemMatch` does.
fn ordered(def: &EntityDef, p: &crm_core::FieldPath, name: &str, v: &Value) -> Document {
    if !v.is_array() {
        return op(def, p, name, v);
    }
    let mut inner = Document::new();
    inner.insert(name, to_bson(def, p.as_str(), v));
    doc! { p.as_str(): { "$elemMatch": inner } }
}

fn clause(def: &EntityDef, f: &Filter) -> Document {
    match f {
        Filter::Eq(p, v) => op(def, p, "$eq", v),
        Filter::Ne(p, v) => op(def, p, "$ne", v),
        Filter::Gt(p, v) => ordered(def, p, "$gt", v),
        Filter::Gte(p, v) => ordered(def, p, "$gte", v),
        Filter::Lt(p, v) => ordered(def, p, "$lt", v),
        Filter::Lte(p, v) => ordered(def, p, "$lte", v),
        Filter::In(p, vs) => op_list(def, p, "$in", vs),
        Filter::Nin(p, vs) => op_list(def, p, "$nin", vs),
        Filter::All(p, vs) => op_list(def, p, "$all", vs),
        Filter::Exists(p, b) => doc! { p.as_str(): { "$exists": *b } },
        Filter::Contains(p, needle) => icontains(p.as_str(), needle),
        // MongoDB refuses an empty `$and`; an empty conjunction is "everything".
        Filter::And(fs) if fs.is_empty() => Document::new(),
        Filter::And(fs) => doc! { "$and": fs.iter().map(|x| clause(def, x)).collect::<Vec<_>>() },
        Filter::Or(fs) => doc! { "$or": fs.iter().map(|x| clause(def, x)).collect::<Vec<_>>() },
        Filter::Not(x) => doc! { "$nor": [clause(def, x)] },
        Filter::Text(q) => text_regex_query(def, q),
    }
}

/// The effective sort (given keys, then `_id`).
pub fn sort(keys: &[SortKey]) -> Document {
    effective_sort(keys)
        .iter()
        .map(|k| {
            let dir = if k.dir == Dir::Desc { -1 } else { 1 };
            (k.path.as_str().to_owned(), Bson::Int32(dir))
        })
        .collect()
}

/// The update operators document. `crm_core::engine::validate_update` must have passed.
pub fn update(def: &EntityDef, u: &Update) -> Document {
    let mut groups: Vec<(&'static str, Document)> = Vec::new();
    let mut put = |opname: &'static str, path: &str, v: Bson| {
        let at = match groups.iter().position(|(n, _)| *n == opname) {
            Some(i) => i,
            None => {
                groups.push((opname, Document::new()));
                groups.len() - 1
            }
        };
        groups[at].1.insert(path, v);
    };
    for o in &u.ops {
        let path = o.path().as_str();
        match o {
            UpdateOp::Set(_, v) => put("$set", path, to_bson(def, path, v)),
            UpdateOp::SetOnInsert(_, v) => put("$setOnInsert", path, to_bson(def, path, v)),
            UpdateOp::Unset(_) => put("$unset", path, Bson::String(String::new())),
            UpdateOp::Inc(_, n) => put("$inc", path, number(n)),
            UpdateOp::Push(_, v) => put("$push", path, to_bson(def, path, v)),
            UpdateOp::AddToSet(_, v) => put("$addToSet", path, to_bson(def, path, v)),
            // A document operand of `$pull` is a query (it would also pull elements with more
            // fields); `$eq` makes it plain equality, as in the engine.
            UpdateOp::Pull(_, v @ Value::Object(_)) => put(
                "$pull",
                path,
                Bson::Document(doc! { "$eq": to_bson(def, path, v) }),
            ),
            UpdateOp::Pull(_, v) => put("$pull", path, to_bson(def, path, v)),
        }
    }
    groups
        .into_iter()
        .map(|(n, d)| (n.to_owned(), Bson::Document(d)))
        .collect()
}

/// The stages after the filter's `$match`: one group per key, counting and summing.
pub fn group_stages(g: &GroupBy) -> Vec<Document> {
    let mut group = doc! { "_id": format!("${}", g.key.as_str()), "count": { "$sum": 1 } };
    for (i, p) in g.sums.iter().enumerate() {
        group.insert(format!("s{i}"), doc! { "$sum": format!("${}", p.as_str()) });
    }
    vec![doc! { "$group": group }, doc! { "$sort": { "_id": 1 } }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::schema::{FieldKind, Tenancy, f};
    use serde_json::json;

    static DEF: EntityDef = EntityDef {
        name: "T",
        collection: "ts",
        tenancy: Tenancy::Workspace {
            field: "workspaceId",
        },
        timestamps: true,
        fields: &[
            f("ownerId", FieldKind::Id),
            f("name", FieldKind::Text),
            f("email", FieldKind::Text),
            f("due", FieldKind::Date),
            f("tags", FieldKind::Texts),
        ],
        unique: &[],
        indexes: &[],
        text: &["name", "email"],
    };

    const ID: &str = "65a1b2c3d4e5f60718293a4b";

    #[test]
    fn operators_and_values_by_kind() {
        let f = Filter::eq("ownerId", ID)
            .and(Filter::Gte(
                "due".into(),
                json!("2026-01-02T04:04:05+01:00"),
            ))
            .and(Filter::Not(Box::new(Filter::In(
                "tags".into(),
                vec![json!("a")],
            ))))
            .and(Filter::Contains("name".into(), "a.b(c)".into()));
        let d = filter(&DEF, &f, TextMode::Regex).unwrap();
        assert_eq!(d.len(), 4);
        let owner = d.get_document("ownerId").unwrap();
        assert!(matches!(owner.get("$eq"), Some(Bson::ObjectId(o)) if o.to_hex() == ID));
        let due = d.get_document("due").unwrap();
        assert!(matches!(due.get("$gte"), Some(Bson::DateTime(_))));
        assert_eq!(
            d.get_array("$nor").unwrap(),
            &vec![Bson::Document(doc! { "tags": { "$in": ["a"] } })]
        );
        assert_eq!(
            d.get_document("name").unwrap(),
            &doc! { "$regex": "a\\.b\\(c\\)", "$options": "i" }
        );
        // The same path twice stays a conjunction.
        let twice = Filter::Gt("due".into(), json!("2026-01-01T00:00:00Z"))
            .and(Filter::Lt("due".into(), json!("2027-01-01T00:00:00Z")));
        let d = filter(&DEF, &twice, TextMode::Regex).unwrap();
        assert_eq!(d.get_array("$and").unwrap().len(), 2);
    }

    #[test]
    fn empty_conjunctions_match_everything() {
        assert_eq!(
            filter(&DEF, &Filter::all(), TextMode::Regex).unwrap(),
            doc! {}
        );
        let d = filter(
            &DEF,
            &Filter::Or(vec![Filter::all(), Filter::eq("name", "x")]),
            TextMode::Regex,
        )
        .unwrap();
        assert_eq!(d, doc! { "$or": [ {}, { "name": { "$eq": "x" } } ] });
        assert!(filter(&DEF, &Filter::Or(vec![]), TextMode::Regex).is_err());
    }

    #[test]
    fn text_with_index_is_one_quoted_phrase_per_word() {
        let f = Filter::Text("ada  lovelace".into()).and(Filter::eq("name", "x"));
        let d = filter(&DEF, &f, TextMode::Index).unwrap();
        assert_eq!(
            d,
            doc! {
                "$text": { "$search": "\"ada\" \"lovelace\"" },
                "name": { "$eq": "x" },
            }
        );
        // Not allowed under `$or`/`$nor` or twice: those fall back to the regex form.
        let nested = Filter::Or(vec![Filter::Text("ada".into()), Filter::eq("name", "x")]);
        let d = filter(&DEF, &nested, TextMode::Index).unwrap();
        assert!(!format!("{d}").contains("$text"));
    }

    #[test]
    fn text_without_index_is_and_of_or_of_escaped_regexes() {
        let d = filter(&DEF, &Filter::Text("a+ b".into()), TextMode::Regex).unwrap();
        assert_eq!(
            d,
            doc! { "$and": [
                { "$or": [
                    { "name": { "$regex": "a\\+", "$options": "i" } },
                    { "email": { "$regex": "a\\+", "$options": "i" } },
                ] },
                { "$or": [
                    { "name": { "$regex": "b", "$options": "i" } },
                    { "email": { "$regex": "b", "$options": "i" } },
                ] },
            ] }
        );
    }

    #[test]
    fn escape_covers_metacharacters() {
        assert_eq!(escape_regex(r"a.b*c\d"), r"a\.b\*c\\d");
        assert_eq!(escape_regex("ünï ~#&-"), r"ünï \~\#\&\-");
    }

    #[test]
    fn sort_ends_with_id() {
        assert_eq!(sort(&[SortKey::desc("due")]), doc! { "due": -1, "_id": 1 });
        assert_eq!(sort(&[]), doc! { "_id": 1 });
    }

    #[test]
    fn update_groups_operators_and_converts_values() {
        let u = Update::new()
            .set("due", "2026-01-02T03:04:05Z")
            .set("name", "x")
            .unset("email")
            .inc("n", 2)
            .push("tags", "t")
            .pull("list", json!({"a": 1}))
            .set_on_insert("ownerId", ID);
        let d = update(&DEF, &u);
        let set = d.get_document("$set").unwrap();
        assert!(matches!(set.get("due"), Some(Bson::DateTime(_))));
        assert_eq!(set.get_str("name").unwrap(), "x");
        assert_eq!(d.get_document("$unset").unwrap(), &doc! { "email": "" });
        assert_eq!(d.get_document("$inc").unwrap(), &doc! { "n": 2_i64 });
        assert_eq!(
            d.get_document("$pull").unwrap(),
            &doc! { "list": { "$eq": { "a": 1_i64 } } }
        );
        assert!(matches!(
            d.get_document("$setOnInsert").unwrap().get("ownerId"),
            Some(Bson::ObjectId(_))
        ));
    }

    #[test]
    fn group_pipeline() {
        let g = GroupBy {
            filter: Filter::all(),
            key: "status".into(),
            sums: vec!["amount".into()],
        };
        assert_eq!(
            group_stages(&g),
            vec![
                doc! { "$group": { "_id": "$status", "count": { "$sum": 1 }, "s0": { "$sum": "$amount" } } },
                doc! { "$sort": { "_id": 1 } },
            ]
        );
    }
}
