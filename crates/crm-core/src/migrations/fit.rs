//! Whether a stored document fits: its declared field kinds, and (for typed entities) whether it
//! decodes, each failure named by collection, `_id` and field.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::engine::Document;
use crate::id::ObjectId;
use crate::schema::{EntityDef, FieldKind, ID_FIELD};
use crate::time::Timestamp;

/// A stored document that does not fit, and the first reason found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unfit {
    pub collection: String,
    #[serde(rename = "_id")]
    pub id: String,
    /// Dotted path (`value`, `stageHistory[0].enteredAt`); `.` for the document itself.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: `{}` {}",
            self.collection, self.id, self.field, self.reason
        )
    }
}

fn id_text(doc: &Document) -> String {
    match doc.get(ID_FIELD) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "(no _id)".to_owned(),
    }
}

fn unfit(def: &EntityDef, doc: &Document, field: &str, reason: String) -> Unfit {
    Unfit {
        collection: def.collection.to_owned(),
        id: id_text(doc),
        field: field.to_owned(),
        reason,
    }
}

/// Decodes a stored document as `E`, or says which field stopped it. A top-level null reads as
/// absent: Mongoose stores an optional field sent as null as null, and a field with a default
/// (`lastName`, `tags`) must then take the default rather than fail the record.
pub fn decode_reporting<E: DeserializeOwned>(
    def: &EntityDef,
    mut doc: Document,
) -> Result<E, Unfit> {
    let id = id_text(&doc);
    doc.retain(|_, v| !v.is_null());
    serde_path_to_error::deserialize(Value::Object(doc)).map_err(|e| Unfit {
        collection: def.collection.to_owned(),
        id,
        field: e.path().to_string(),
        reason: e.inner().to_string(),
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn is_hex_id(v: &Value) -> bool {
    v.as_str().is_some_and(|s| ObjectId::parse_str(s).is_ok())
}

fn kind_fits(kind: FieldKind, v: &Value) -> Option<&'static str> {
    let ok = match kind {
        FieldKind::Id => is_hex_id(v),
        FieldKind::Ids => v.as_array().is_some_and(|a| a.iter().all(is_hex_id)),
        FieldKind::Date => v.as_str().is_some_and(|s| Timestamp::parse(s).is_ok()),
        FieldKind::Text => v.is_string(),
        FieldKind::Texts => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        FieldKind::Number => v.is_number(),
        FieldKind::Bool => v.is_boolean(),
        FieldKind::Object => v.is_object(),
        FieldKind::Array => v.is_array(),
        FieldKind::Any => true,
    };
    if ok {
        return None;
    }
    Some(match kind {
        FieldKind::Id => "an ObjectId",
        FieldKind::Ids => "an array of ObjectIds",
        FieldKind::Date => "a date",
        FieldKind::Text => "a string",
        FieldKind::Texts => "an array of strings",
        FieldKind::Number => "a number",
        FieldKind::Bool => "a boolean",
        FieldKind::Object => "an embedded document",
        FieldKind::Array => "an array",
        FieldKind::Any => "anything",
    })
}

/// Every value at a dotted path, stepping into arrays of embedded documents on the way.
fn values_at<'a>(v: &'a Value, segs: &[&str], at: String, out: &mut Vec<(String, &'a Value)>) {
    let Some((first, rest)) = segs.split_first() else {
        out.push((at, v));
        return;
    };
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(*first) {
                let at = if at.is_empty() {
                    (*first).to_owned()
                } else {
                    format!("{at}.{first}")
                };
                values_at(x, rest, at, out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                values_at(x, segs, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The declared kinds a document breaks: `_id`, the tenant field, required fields present and not
/// null, each declared path's type (null is allowed where not required). Fields the declaration
/// does not name are not checked: they are kept as they are.
pub fn check_document(def: &EntityDef, doc: &Document) -> Vec<Unfit> {
    let mut out = Vec::new();
    // `counters` keeps string ids; every other collection uses ObjectIds.
    if def.collection != "counters" && !doc.get(ID_FIELD).is_some_and(is_hex_id) {
        out.push(unfit(def, doc, ID_FIELD, "is not an ObjectId".to_owned()));
    }
    if let Some(t) = def.tenant_field() {
        match doc.get(t) {
            Some(v) if is_hex_id(v) => {}
            Some(v) => out.push(unfit(
                def,
                doc,
                t,
                format!("expected an ObjectId, found {}", short(v)),
            )),
            None => out.push(unfit(def, doc, t, "is missing (no workspace)".to_owned())),
        }
    }
    let root = Value::Object(doc.clone());
    for fd in def.fields {
        let segs: Vec<&str> = fd.path.split('.').collect();
        if fd.required && !fd.path.contains('.') {
            match doc.get(fd.path) {
                None => {
                    out.push(unfit(
                        def,
                        doc,
                        fd.path,
                        "is required but missing".to_owned(),
                    ));
                    continue;
                }
                Some(Value::Null) => {
                    out.push(unfit(def, doc, fd.path, "is required but null".to_owned()));
                    continue;
                }
                Some(_) => {}
            }
        }
        let mut found = Vec::new();
        values_at(&root, &segs, String::new(), &mut found);
        for (at, v) in found {
            if v.is_null() {
                continue;
            }
            if let Some(want) = kind_fits(fd.kind, v) {
                out.push(unfit(
                    def,
                    doc,
                    &at,
                    format!("expected {want}, found {}", short(v)),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::contact::{CONTACT, Contact};
    use crate::entities::opportunity::OPPORTUNITY;
    use serde_json::json;

    fn doc(v: Value) -> Document {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    const ID: &str = "65a1b2c3d4e5f60718293a4b";

    #[test]
    fn a_fitting_original_contact_has_no_findings_and_decodes() {
        let d = doc(json!({
            "_id": ID, "workspaceId": ID, "userId": ID, "firstName": "Ada", "__v": 0,
            "customFields": {"custom_size": 3}, "legacyThing": {"x": 1}, "lastName": null,
            "tags": null, "status": null,
            "tags": ["a"], "createdAt": "2024-01-02T03:04:05.000Z"
        }));
        assert_eq!(check_document(&CONTACT, &d), vec![]);
        let c: Contact = decode_reporting(&CONTACT, d).unwrap_or_else(|u| panic!("{u}"));
        assert_eq!(c.first_name, "Ada");
        assert_eq!(c.last_name, "", "null reads as absent: the default");
    }

    #[test]
    fn misfits_are_named_by_field() {
        let d = doc(json!({
            "_id": ID, "workspaceId": ID, "userId": "nope", "tags": "x",
            "createdAt": "yesterday"
        }));
        let found: Vec<(String, String)> = check_document(&CONTACT, &d)
            .into_iter()
            .map(|u| (u.field, u.reason))
            .collect();
        let fields: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            fields,
            ["userId", "firstName", "tags"],
            "{found:?} (createdAt is implicit, checked by decoding)"
        );
        let u = decode_reporting::<Contact>(&CONTACT, d).unwrap_err();
        assert_eq!((u.collection.as_str(), u.id.as_str()), ("contacts", ID));
        // Decoding stops at the first field that fails; which one depends on the map's key
        // order (sorted, or insertion order when a crate enables serde_json's preserve_order).
        assert!(
            ["createdAt", "userId", "tags", "firstName"].contains(&u.field.as_str()),
            "{u}"
        );

        let one = doc(json!({
            "_id": ID, "workspaceId": ID, "userId": ID, "firstName": "Ada",
            "stageless": 1, "lifecycleStage": "whale"
        }));
        let u = decode_reporting::<Contact>(&CONTACT, one).unwrap_err();
        assert_eq!(u.field, "lifecycleStage", "{u}");
        assert!(u.reason.contains("whale"), "{u}");
    }

    #[test]
    fn element_fields_of_arrays_are_checked_by_position() {
        let d = doc(json!({
            "_id": ID, "workspaceId": ID, "userId": ID, "pipelineId": ID, "stageId": ID,
            "title": "t", "value": 5,
            "stageHistory": [{"enteredAt": "2024-01-02T03:04:05.000Z"}, {"enteredAt": 7}]
        }));
        let found = check_document(&OPPORTUNITY, &d);
        assert!(
            found.iter().any(|u| u.field == "stageHistory[1].enteredAt"),
            "{found:?}"
        );
    }
}
