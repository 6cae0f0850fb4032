//! SQL functions registered on every connection. Each one delegates to `crm_core::engine`, so the
//! parts of a filter that SQLite cannot express natively keep the reference semantics exactly.

use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use serde_json::Value;

use crm_core::engine::{self, Document, icontains};
use crm_core::schema::Tenancy;
use crm_core::{EntityDef, FieldPath, Filter};

/// The entity the single-value leaf checks run against; `matches` only reads it for text search.
static LEAF: EntityDef = EntityDef {
    name: "leaf",
    collection: "leaf",
    tenancy: Tenancy::Global,
    timestamps: false,
    fields: &[],
    unique: &[],
    indexes: &[],
    text: &[],
};

pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("crm_icontains", 2, flags, |ctx| {
        Ok(match (text_arg(ctx, 0), text_arg(ctx, 1)) {
            (Some(h), Some(n)) => icontains(h, n),
            _ => false,
        })
    })?;
    conn.create_scalar_function("crm_text_any", 2, flags, |ctx| {
        let (Some(frag), Some(needle)) = (text_arg(ctx, 0), text_arg(ctx, 1)) else {
            return Ok(false);
        };
        let v = parse(frag)?;
        let mut hay = Vec::new();
        text_values(Some(&v), &mut hay);
        Ok(hay.iter().any(|h| icontains(h, needle)))
    })?;
    conn.create_scalar_function("crm_sortkey", 1, flags, |ctx| {
        let mut out = Vec::with_capacity(16);
        match text_arg(ctx, 0) {
            None => encode_key(&Value::Null, &mut out),
            Some(frag) => encode_key(&parse(frag)?, &mut out),
        }
        Ok(out)
    })?;
    conn.create_scalar_function("crm_leaf", 3, flags, |ctx| {
        let operand: Arc<Value> = ctx.get_or_create_aux(2, |v| match v {
            ValueRef::Text(b) => serde_json::from_slice::<Value>(b).map_err(|e| e.to_string()),
            _ => Err("crm_leaf needs a JSON operand".to_owned()),
        })?;
        let op = text_arg(ctx, 0).unwrap_or_default();
        let mut doc = Document::new();
        if let Some(frag) = text_arg(ctx, 1) {
            doc.insert("v".into(), parse(frag)?);
        }
        let p = FieldPath::from_static("v");
        let v = (*operand).clone();
        let f = match op {
            "eq" => Filter::Eq(p, v),
            "gt" => Filter::Gt(p, v),
            "gte" => Filter::Gte(p, v),
            "lt" => Filter::Lt(p, v),
            "lte" => Filter::Lte(p, v),
            other => return Err(user_err(format!("crm_leaf: unknown operator {other}"))),
        };
        Ok(engine::matches(&LEAF, &doc, &f))
    })?;
    Ok(())
}

fn text_arg<'a>(ctx: &'a Context<'_>, i: usize) -> Option<&'a str> {
    match ctx.get_raw(i) {
        ValueRef::Text(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

fn user_err(msg: String) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(msg.into())
}

fn parse(frag: &str) -> rusqlite::Result<Value> {
    serde_json::from_str(frag).map_err(|e| user_err(format!("stored JSON does not parse: {e}")))
}

/// The strings of a value and of its (nested) arrays, as text search sees them.
pub(crate) fn text_values<'a>(v: Option<&'a Value>, out: &mut Vec<&'a str>) {
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

/// Appends a byte string whose `memcmp` order is `engine::cmp_values` order, so SQLite can sort
/// and group any JSON value exactly as the engine does.
pub(crate) fn encode_key(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(1),
        Value::Number(n) => {
            out.push(2);
            let f = n.as_f64().unwrap_or(f64::NAN);
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
            // Integers beyond f64's exact range are compared as integers by the engine.
            match n.as_i64() {
                Some(i) if i.unsigned_abs() > (1u64 << 53) => {
                    out.push(1);
                    out.extend_from_slice(&((i as u64) ^ (1 << 63)).to_be_bytes());
                }
                _ => out.push(0),
            }
        }
        Value::String(s) => {
            out.push(3);
            encode_str(s, out);
        }
        Value::Object(m) => {
            out.push(4);
            for (k, x) in m {
                out.push(1);
                encode_str(k, out);
                encode_key(x, out);
            }
            out.push(0);
        }
        Value::Array(items) => {
            out.push(5);
            for x in items {
                out.push(1);
                encode_key(x, out);
            }
            out.push(0);
        }
        Value::Bool(b) => {
            out.push(6);
            out.push(u8::from(*b));
        }
    }
}

/// Bytes with 0 escaped as 0,255 and terminated by 0,0: a prefix sorts first, as in `str::cmp`.
fn encode_str(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(255);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::engine::cmp_values;
    use serde_json::json;
    use std::cmp::Ordering;

    fn key(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(v, &mut out);
        out
    }

    #[test]
    fn sort_key_order_is_engine_order() {
        let vals = [
            json!(null),
            json!(-3.5),
            json!(-1),
            json!(0),
            json!(1),
            json!(1.0),
            json!(2),
            json!(10),
            json!(9_007_199_254_740_993_i64),
            json!(9_007_199_254_740_995_i64),
            json!(-9_007_199_254_740_995_i64),
            json!(1e300),
            json!(""),
            json!("\u{0}"),
            json!("a"),
            json!("a\u{0}"),
            json!("ab"),
            json!("b"),
            json!("é"),
            json!({}),
            json!({"a": 1}),
            json!({"a": 2}),
            json!({"a": 1, "b": 1}),
            json!({"b": 0}),
            json!([]),
            json!([null]),
            json!([1]),
            json!([1, 2]),
            json!([9]),
            json!([10]),
            json!(["a"]),
            json!([[1]]),
            json!(false),
            json!(true),
        ];
        for a in &vals {
            for b in &vals {
                let want = cmp_values(a, b);
                let got = key(a).cmp(&key(b));
                assert_eq!(got, want, "{a} vs {b}");
            }
        }
        assert_eq!(key(&json!(1)).cmp(&key(&json!(1.0))), Ordering::Equal);
    }

    #[test]
    fn functions_follow_the_engine() {
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        let q = |sql: &str| -> bool { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert!(q("SELECT crm_icontains('Ada LOVELACE', 'lovel')"));
        assert!(!q("SELECT crm_icontains(5, '5')"));
        assert!(q("SELECT crm_text_any('[\"x\", [\"Babbage\"]]', 'BAB')"));
        assert!(!q("SELECT crm_text_any('[{\"a\": \"Babbage\"}]', 'bab')"));
        assert!(q("SELECT crm_leaf('eq', '[[1, 2], 3]', '[1, 2.0]')"));
        assert!(q("SELECT crm_leaf('gt', '[[1, 2], 3]', '[1, 1]')"));
        assert!(!q("SELECT crm_leaf('gt', '{\"a\": 1}', '[1, 1]')"));
        assert!(q("SELECT crm_leaf('eq', NULL, 'null')"));
        assert!(q("SELECT crm_sortkey('[10]') > crm_sortkey('[9]')"));
        assert!(q("SELECT crm_sortkey(NULL) = crm_sortkey('null')"));
        let frag: String = c
            .query_row("SELECT '{\"a\": 1.0}' -> '$.a'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(frag, "1.0", "JSON fragments keep numbers as written");
    }
}
