//! JSON documents to BSON and back, driven by the entity declaration.
//!
//! Writing: a path declared `Id`/`Ids` becomes an ObjectId when its text parses (else it stays
//! text), a `Date` path becomes a BSON date when its text is RFC 3339, integers become Int64 (one
//! width, so a value reads back exactly as written and `$inc` never narrows), other numbers
//! Double. Paths ignore array positions: an element of `tags` has the kind of `tags`, a field of
//! an element of `mergeHistory` the kind of `mergeHistory.<field>`.
//!
//! Reading: ObjectId → 24 hex digits, date → canonical RFC 3339 text, Int32/Int64 → integer,
//! Double → float, whatever the declaration says (documents written by other tools included).

use crm_core::schema::FieldKind;
use crm_core::{Document as JsonDoc, EntityDef, Timestamp};
use mongodb::bson::{Bson, DateTime, Document, oid::ObjectId};
use serde_json::{Number, Value};

/// A stored ObjectId from a crm id.
pub(crate) fn oid(id: crm_core::ObjectId) -> ObjectId {
    ObjectId::from_bytes(id.bytes())
}

fn scalar_text(kind: FieldKind, s: &str) -> Bson {
    match kind {
        FieldKind::Id | FieldKind::Ids => ObjectId::parse_str(s)
            .map(Bson::ObjectId)
            .unwrap_or_else(|_| Bson::String(s.to_owned())),
        FieldKind::Date => Timestamp::parse(s)
            .map(|t| Bson::DateTime(DateTime::from_millis(t.millis())))
            .unwrap_or_else(|_| Bson::String(s.to_owned())),
        _ => Bson::String(s.to_owned()),
    }
}

pub(crate) fn number(n: &Number) -> Bson {
    match n.as_i64() {
        Some(i) => Bson::Int64(i),
        None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// The BSON for a JSON value found at `path` (dotted, without array positions).
pub(crate) fn to_bson(def: &EntityDef, path: &str, v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number(n),
        Value::String(s) => scalar_text(def.kind_of(path), s),
        Value::Array(items) => Bson::Array(items.iter().map(|x| to_bson(def, path, x)).collect()),
        Value::Object(m) => Bson::Document(
            m.iter()
                .map(|(k, x)| (k.clone(), to_bson(def, &format!("{path}.{k}"), x)))
                .collect(),
        ),
    }
}

/// A whole document for writing.
pub(crate) fn to_document(def: &EntityDef, doc: &JsonDoc) -> Document {
    doc.iter()
        .map(|(k, v)| (k.clone(), to_bson(def, k, v)))
        .collect()
}

pub(crate) fn from_bson(b: Bson) -> Value {
    match b {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(x) => Value::Bool(x),
        Bson::Int32(i) => Value::from(i),
        Bson::Int64(i) => Value::from(i),
        Bson::Double(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Bson::String(s) => Value::String(s),
        Bson::ObjectId(o) => Value::String(o.to_hex()),
        Bson::DateTime(d) => {
            Value::String(Timestamp::from_millis(d.timestamp_millis()).to_canonical())
        }
        Bson::Array(items) => Value::Array(items.into_iter().map(from_bson).collect()),
        Bson::Document(d) => Value::Object(from_document(d)),
        // Written by other tools (Mongoose Decimal128): a float is the nearest JSON has.
        Bson::Decimal128(d) => d
            .to_string()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(d.to_string()), Value::Number),
        other => other.into_relaxed_extjson(),
    }
}

pub(crate) fn from_document(d: Document) -> JsonDoc {
    d.into_iter().map(|(k, v)| (k, from_bson(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::schema::{Tenancy, f};
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
            f("refs", FieldKind::Ids),
            f("due", FieldKind::Date),
            f("history", FieldKind::Array),
            f("history.at", FieldKind::Date),
            f("history.by", FieldKind::Id),
            f("custom", FieldKind::Any),
        ],
        unique: &[],
        indexes: &[],
        text: &[],
    };

    #[test]
    fn declared_kinds_become_bson_types_and_read_back() {
        let id = "65a1b2c3d4e5f60718293a4b";
        let doc = json!({
            "_id": id, "workspaceId": id, "ownerId": "not-an-id", "refs": [id, id],
            "due": "2026-01-02T04:04:05+01:00", "createdAt": "2026-01-02T03:04:05.123Z",
            "history": [{"at": "2026-01-02T03:04:05Z", "by": id, "note": id}],
            "custom": {"x": id, "d": "2026-01-02T03:04:05Z"}, "n": 3, "x": 1.5, "big": u64::MAX
        });
        let b = to_document(&DEF, doc.as_object().unwrap());
        assert!(matches!(b.get("_id"), Some(Bson::ObjectId(_))));
        assert!(matches!(b.get("workspaceId"), Some(Bson::ObjectId(_))));
        assert_eq!(b.get("ownerId"), Some(&Bson::String("not-an-id".into())));
        assert!(
            matches!(b.get("refs"), Some(Bson::Array(a)) if a.iter().all(|x| matches!(x, Bson::ObjectId(_))))
        );
        assert!(matches!(b.get("due"), Some(Bson::DateTime(_))));
        assert!(matches!(b.get("createdAt"), Some(Bson::DateTime(_))));
        let h = b.get_array("history").unwrap()[0].as_document().unwrap();
        assert!(matches!(h.get("at"), Some(Bson::DateTime(_))));
        assert!(matches!(h.get("by"), Some(Bson::ObjectId(_))));
        assert!(matches!(h.get("note"), Some(Bson::String(_))));
        let c = b.get_document("custom").unwrap();
        assert!(matches!(c.get("x"), Some(Bson::String(_))));
        assert!(matches!(c.get("d"), Some(Bson::String(_))));
        assert_eq!(b.get("n"), Some(&Bson::Int64(3)));
        assert_eq!(b.get("x"), Some(&Bson::Double(1.5)));
        assert!(matches!(b.get("big"), Some(Bson::Double(_))));

        let back = Value::Object(from_document(b));
        assert_eq!(back["due"], json!("2026-01-02T03:04:05.000Z"));
        assert_eq!(back["createdAt"], json!("2026-01-02T03:04:05.123Z"));
        assert_eq!(back["_id"], json!(id));
        assert_eq!(back["refs"], json!([id, id]));
        assert_eq!(back["history"][0]["at"], json!("2026-01-02T03:04:05.000Z"));
        assert_eq!(back["n"], json!(3));
        assert_eq!(back["x"], json!(1.5));
        assert_eq!(back["custom"], doc["custom"]);
    }

    #[test]
    fn other_writers_types_read_as_json() {
        let b = mongodb::bson::doc! { "i": 7_i32, "d": 2.0_f64, "nan": f64::NAN };
        let v = Value::Object(from_document(b));
        assert_eq!(v, json!({"i": 7, "d": 2.0, "nan": null}));
    }
}
