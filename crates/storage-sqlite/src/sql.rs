//! Filters and sorts translated to SQL with exactly `crm_core::engine`'s semantics.
//!
//! Every leaf is written so that it is TRUE where the engine matches and FALSE or NULL where it
//! does not; AND/OR keep that, and NOT is written `NOT coalesce(x, 0)`, so SQL's three-valued
//! logic never shows. Operands are always bound (numbered parameters, so a fragment can be used
//! twice); only validated JSON paths are spliced, because expression indexes only match literal
//! paths.
//!
//! A path is *clean* when it is declared with a scalar kind and the store has checked that every
//! stored value there is missing, null or of that kind (see `schema`). Clean paths hold no
//! arrays, so the array branches drop out and `json_extract` sorts exactly like the engine: that
//! is what lets declared indexes serve equalities, ranges and sorts.

use rusqlite::types::Value as Sql;
use serde_json::{Number, Value};

use crm_core::engine::text_terms;
use crm_core::query::{SortKey, effective_sort};
use crm_core::schema::{Dir, EntityDef, FieldKind};
use crm_core::{Error, FieldPath, Filter, Result};

/// A JSON path for SQLite: `$.a.b`, segments with `-` quoted. Segments are checked again here
/// because the path is spliced into SQL.
pub(crate) fn json_path(p: &str) -> Result<String> {
    let mut out = String::from("$");
    for seg in p.split('.') {
        let ok = !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(Error::invalid(p, "not a valid field path"));
        }
        if seg.contains('-') {
            out.push_str(".\"");
            out.push_str(seg);
            out.push('"');
        } else {
            out.push('.');
            out.push_str(seg);
        }
    }
    Ok(out)
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQL expression a declared index or a sort uses for a path; queries and `CREATE INDEX`
/// must produce the same text for the planner to match them.
pub(crate) fn extract_expr(table: &str, jp: &str) -> String {
    format!("json_extract({table}doc, '{jp}')")
}

/// The pieces of SQL that read one path of the row aliased `t`.
struct PathSql {
    /// The value (`json_extract`; true/false come out as 1/0, containers as JSON text).
    x: String,
    /// Its JSON type name, NULL when missing.
    t: String,
    /// Its JSON text, NULL when missing.
    j: String,
    /// The table-valued function over its elements.
    each: String,
    clean: bool,
    /// For a clean path: the declared kind, which tells when a type test is redundant.
    kind: FieldKind,
}

impl PathSql {
    /// Whether the operand's type is implied by the SQL value alone: on a clean path of that
    /// declared kind `json_extract` gives text only for text, numbers only for numbers, 1/0
    /// only for booleans. Then the type test goes and an index can cover the leaf.
    fn exact_type(&self, v: &Value) -> bool {
        use FieldKind as K;
        self.clean
            && matches!(
                (v, self.kind),
                (Value::String(_), K::Id | K::Text | K::Date)
                    | (Value::Number(_), K::Number)
                    | (Value::Bool(_), K::Bool)
            )
    }
}

/// Builds one statement's SQL and parameters.
pub(crate) struct Builder<'a> {
    def: &'a EntityDef,
    clean: &'a dyn Fn(&str) -> bool,
    fts: Option<&'a str>,
    pub(crate) params: Vec<Sql>,
}

fn or(parts: Vec<String>) -> String {
    match parts.len() {
        0 => "0".into(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("({})", parts.join(" OR ")),
    }
}

fn and(parts: Vec<String>) -> String {
    match parts.len() {
        0 => "1".into(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("({})", parts.join(" AND ")),
    }
}

fn number(n: &Number) -> Sql {
    match n.as_i64() {
        Some(i) => Sql::Integer(i),
        None => Sql::Real(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// The type test an ordered comparison with `v` needs, on a type-name expression.
fn type_guard(t: &str, v: &Value) -> String {
    match v {
        Value::String(_) => format!("{t} = 'text'"),
        Value::Number(_) => format!("{t} IN ('integer', 'real')"),
        _ => format!("{t} IN ('true', 'false')"),
    }
}

impl<'a> Builder<'a> {
    /// `clean` says whether a path is clean (see the module doc); `fts` names the entity's
    /// full-text table, if it has one.
    pub(crate) fn new(
        def: &'a EntityDef,
        clean: &'a dyn Fn(&str) -> bool,
        fts: Option<&'a str>,
    ) -> Self {
        Self {
            def,
            clean,
            fts,
            params: Vec::new(),
        }
    }

    pub(crate) fn bind(&mut self, v: Sql) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }

    fn bind_json(&mut self, v: &Value) -> String {
        self.bind(Sql::Text(v.to_string()))
    }

    fn path(&self, p: &FieldPath) -> Result<PathSql> {
        if p.is_id() {
            return Ok(PathSql {
                x: "t.id".into(),
                t: "'text'".into(),
                j: "json_quote(t.id)".into(),
                each: "json_each('[]')".into(),
                clean: true,
                kind: FieldKind::Id,
            });
        }
        let jp = json_path(p.as_str())?;
        Ok(PathSql {
            x: extract_expr("t.", &jp),
            t: format!("json_type(t.doc, '{jp}')"),
            j: format!("(t.doc -> '{jp}')"),
            each: format!("json_each(t.doc, '{jp}')"),
            clean: (self.clean)(p.as_str()),
            kind: self.def.kind_of(p.as_str()),
        })
    }

    /// The condition for a (normalized) filter.
    pub(crate) fn filter(&mut self, f: &Filter) -> Result<String> {
        Ok(match f {
            Filter::Eq(p, v) => self.eq_any(p, std::slice::from_ref(v))?,
            Filter::Ne(p, v) => not(self.eq_any(p, std::slice::from_ref(v))?),
            Filter::In(p, vs) => self.eq_any(p, vs)?,
            Filter::Nin(p, vs) => not(self.eq_any(p, vs)?),
            Filter::Gt(p, v) => self.cmp(p, ">", "gt", v)?,
            Filter::Gte(p, v) => self.cmp(p, ">=", "gte", v)?,
            Filter::Lt(p, v) => self.cmp(p, "<", "lt", v)?,
            Filter::Lte(p, v) => self.cmp(p, "<=", "lte", v)?,
            Filter::Exists(p, want) => {
                let ps = self.path(p)?;
                if *want {
                    format!("{} IS NOT NULL", ps.t)
                } else {
                    format!("{} IS NULL", ps.t)
                }
            }
            Filter::Contains(p, needle) => {
                let ps = self.path(p)?;
                let n = self.bind(Sql::Text(needle.clone()));
                let mut parts = vec![format!(
                    "({} = 'text' AND crm_icontains({}, {n}))",
                    ps.t, ps.x
                )];
                if !ps.clean {
                    parts.push(format!(
                        "({} = 'array' AND EXISTS (SELECT 1 FROM {} AS e \
                         WHERE e.type = 'text' AND crm_icontains(e.value, {n})))",
                        ps.t, ps.each
                    ));
                }
                or(parts)
            }
            Filter::All(p, vs) => {
                if vs.is_empty() {
                    "0".into()
                } else {
                    let parts = vs
                        .iter()
                        .map(|v| self.eq_any(p, std::slice::from_ref(v)))
                        .collect::<Result<Vec<_>>>()?;
                    and(parts)
                }
            }
            Filter::And(fs) => {
                let parts = fs
                    .iter()
                    .map(|f| self.filter(f))
                    .collect::<Result<Vec<_>>>()?;
                and(parts)
            }
            Filter::Or(fs) => {
                let parts = fs
                    .iter()
                    .map(|f| self.filter(f))
                    .collect::<Result<Vec<_>>>()?;
                or(parts)
            }
            Filter::Not(f) => not(self.filter(f)?),
            Filter::Text(q) => self.text(q)?,
        })
    }

    /// `eq_match` against any of `vs`: equal, or an equal element of an array; null also matches
    /// a missing field.
    fn eq_any(&mut self, p: &FieldPath, vs: &[Value]) -> Result<String> {
        let ps = self.path(p)?;
        let (mut texts, mut nums, mut containers) = (Vec::new(), Vec::new(), Vec::new());
        let (mut null, mut yes, mut no) = (false, false, false);
        for v in vs {
            match v {
                Value::Null => null = true,
                Value::Bool(true) => yes = true,
                Value::Bool(false) => no = true,
                Value::String(s) => texts.push(self.bind(Sql::Text(s.clone()))),
                Value::Number(n) => nums.push(self.bind(number(n))),
                Value::Array(_) | Value::Object(_) => containers.push(self.bind_json(v)),
            }
        }
        // `typed` says the value's type is implied by its SQL value (see `exact_type`).
        let scalars = |x: &str, t: &str, typed: &dyn Fn(&Value) -> bool| {
            let mut parts = Vec::new();
            if !texts.is_empty() {
                let list = texts.join(", ");
                parts.push(if typed(&Value::String(String::new())) {
                    format!("{x} IN ({list})")
                } else {
                    format!("({t} = 'text' AND {x} IN ({list}))")
                });
            }
            if !nums.is_empty() {
                let list = nums.join(", ");
                parts.push(if typed(&Value::from(0)) {
                    format!("{x} IN ({list})")
                } else {
                    format!("({t} IN ('integer', 'real') AND {x} IN ({list}))")
                });
            }
            let bools = typed(&Value::Bool(true));
            for (wanted, name, bit) in [(yes, "true", 1), (no, "false", 0)] {
                if wanted {
                    parts.push(if bools {
                        format!("{x} = {bit}")
                    } else {
                        format!("{t} = '{name}'")
                    });
                }
            }
            parts
        };
        let mut parts = Vec::new();
        if null {
            // json_extract is NULL exactly for a missing field and a JSON null.
            parts.push(format!("{} IS NULL", ps.x));
        }
        parts.extend(scalars(&ps.x, &ps.t, &|v| ps.exact_type(v)));
        if !ps.clean {
            let mut elems = scalars("e.value", "e.type", &|_| false);
            if null {
                elems.push("e.type = 'null'".into());
            }
            if !elems.is_empty() {
                parts.push(format!(
                    "({} = 'array' AND EXISTS (SELECT 1 FROM {} AS e WHERE {}))",
                    ps.t,
                    ps.each,
                    or(elems)
                ));
            }
        }
        for c in containers {
            parts.push(format!("crm_leaf('eq', {}, {c})", ps.j));
        }
        Ok(or(parts))
    }

    /// `cmp_match`: only values (or array elements) of the operand's type compare.
    fn cmp(&mut self, p: &FieldPath, op: &str, name: &str, v: &Value) -> Result<String> {
        match v {
            Value::Null if op.ends_with('=') => self.eq_any(p, &[Value::Null]),
            Value::Null => Ok("0".into()),
            Value::Array(_) | Value::Object(_) => {
                let ps = self.path(p)?;
                let b = self.bind_json(v);
                Ok(format!("crm_leaf('{name}', {}, {b})", ps.j))
            }
            _ => {
                let ps = self.path(p)?;
                let b = match v {
                    Value::Bool(x) => self.bind(Sql::Integer(i64::from(*x))),
                    Value::Number(n) => self.bind(number(n)),
                    Value::String(s) => self.bind(Sql::Text(s.clone())),
                    _ => return Err(Error::internal("unreachable operand")),
                };
                if ps.exact_type(v) {
                    return Ok(format!("{} {op} {b}", ps.x));
                }
                let direct = format!("({} AND {} {op} {b})", type_guard(&ps.t, v), ps.x);
                if ps.clean {
                    return Ok(direct);
                }
                Ok(format!(
                    "({direct} OR ({} = 'array' AND EXISTS (SELECT 1 FROM {} AS e \
                     WHERE {} AND e.value {op} {b})))",
                    ps.t,
                    ps.each,
                    type_guard("e.type", v)
                ))
            }
        }
    }

    /// Every word a case-insensitive substring of some text value of the declared text fields.
    /// The trigram index only narrows the rows; the exact test decides.
    fn text(&mut self, q: &str) -> Result<String> {
        let terms = text_terms(q);
        if terms.is_empty() || self.def.text.is_empty() {
            return Ok("0".into());
        }
        let mut parts = Vec::new();
        let long: Vec<String> = terms
            .iter()
            .map(|t| t.to_lowercase())
            .filter(|t| t.chars().count() >= 3)
            .collect();
        if let (Some(fts), false) = (self.fts, long.is_empty()) {
            let expr = long
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(" AND ");
            let b = self.bind(Sql::Text(expr));
            parts.push(format!(
                "t.rid IN (SELECT rowid FROM {fts} WHERE {fts} MATCH {b})"
            ));
        }
        for term in terms {
            let n = self.bind(Sql::Text(term.to_owned()));
            let mut alts = Vec::new();
            for field in self.def.text {
                let ps = self.path(&FieldPath::from_static(field))?;
                alts.push(format!(
                    "({} = 'text' AND crm_icontains({}, {n}))",
                    ps.t, ps.x
                ));
                if !ps.clean {
                    alts.push(format!(
                        "({} = 'array' AND crm_text_any({}, {n}))",
                        ps.t, ps.j
                    ));
                }
            }
            parts.push(or(alts));
        }
        Ok(and(parts))
    }

    /// `ORDER BY` terms for the effective sort (the given keys, then `_id`).
    pub(crate) fn order_by(&self, sort: &[SortKey]) -> Result<String> {
        let mut terms = Vec::new();
        for k in effective_sort(sort) {
            let dir = if k.dir == Dir::Desc { "DESC" } else { "ASC" };
            let ps = self.path(&k.path)?;
            let expr = if ps.clean {
                ps.x
            } else {
                format!("crm_sortkey({})", ps.j)
            };
            terms.push(format!("{expr} {dir}"));
        }
        Ok(terms.join(", "))
    }

    /// The JSON text of a path (for grouping) and, for sums, its value when it is a number.
    pub(crate) fn json_of(&self, p: &FieldPath) -> Result<String> {
        Ok(self.path(p)?.j)
    }

    pub(crate) fn number_of(&self, p: &FieldPath) -> Result<String> {
        let ps = self.path(p)?;
        Ok(format!(
            "CASE WHEN {} IN ('integer', 'real') THEN {} END",
            ps.t, ps.x
        ))
    }
}

fn not(x: String) -> String {
    format!("NOT coalesce({x}, 0)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::schema::Tenancy;
    use serde_json::json;

    static DEF: EntityDef = EntityDef {
        name: "T",
        collection: "ts",
        tenancy: Tenancy::Global,
        timestamps: false,
        fields: &[],
        unique: &[],
        indexes: &[],
        text: &["name"],
    };

    fn sql(f: &Filter, clean: bool) -> (String, Vec<Sql>) {
        let c = move |_: &str| clean;
        let mut b = Builder::new(&DEF, &c, None);
        let s = b.filter(f).unwrap();
        (s, b.params)
    }

    #[test]
    fn json_paths_are_checked_and_quoted() {
        assert_eq!(json_path("a.b-c.d").unwrap(), "$.a.\"b-c\".d");
        for bad in ["a'b", "a..b", "", "a.\"b", "a b", "$x"] {
            assert!(json_path(bad).is_err(), "{bad}");
        }
        let c = |_: &str| true;
        let mut b = Builder::new(&DEF, &c, None);
        let bad = FieldPath::from_static("x') OR 1 --");
        assert!(b.filter(&Filter::Eq(bad, json!(1))).is_err());
    }

    #[test]
    fn operands_are_bound_never_spliced() {
        let (s, p) = sql(&Filter::eq("name", "x' OR '1'='1"), false);
        assert!(!s.contains("OR '1'"), "{s}");
        assert_eq!(p, vec![Sql::Text("x' OR '1'='1".into())]);
    }

    #[test]
    fn negation_is_two_valued() {
        let (s, _) = sql(&Filter::Ne("a".into(), json!(1)), true);
        assert!(s.starts_with("NOT coalesce("), "{s}");
    }

    #[test]
    fn clean_paths_drop_array_branches() {
        let (dirty, _) = sql(&Filter::Gt("a".into(), json!(1)), false);
        let (clean, _) = sql(&Filter::Gt("a".into(), json!(1)), true);
        assert!(dirty.contains("json_each"), "{dirty}");
        assert!(!clean.contains("json_each"), "{clean}");
        // Undeclared, so even a clean path keeps its type test.
        assert_eq!(
            clean,
            "(json_type(t.doc, '$.a') IN ('integer', 'real') AND json_extract(t.doc, '$.a') > ?1)"
        );
    }

    #[test]
    fn null_comparisons() {
        assert_eq!(sql(&Filter::Gt("a".into(), Value::Null), false).0, "0");
        let (gte, _) = sql(&Filter::Gte("a".into(), Value::Null), true);
        assert_eq!(gte, "json_extract(t.doc, '$.a') IS NULL");
        let (id, _) = sql(&Filter::eq("_id", Value::Null), false);
        assert_eq!(id, "t.id IS NULL");
    }
}
