//! Driver errors to `crm_core::Error`, in one place.

use crm_core::{EntityDef, Error, Update};
use mongodb::error::{ErrorKind, WriteFailure};

use crate::raw::unique_index_name;

const DUPLICATE_KEY: [i32; 3] = [11000, 11001, 12582];

/// Server answers that mean "try again later": not primary, shutting down, timeouts.
const UNAVAILABLE: [i32; 14] = [
    6, 7, 50, 89, 91, 189, 202, 262, 9001, 10107, 11600, 11602, 13435, 13436,
];

/// Server answers to an update that does not fit the stored document (wrong type, bad path).
const INVALID: [i32; 11] = [2, 9, 14, 28, 40, 52, 55, 56, 57, 66, 10334];

/// What was being done, to name the field or unique key in the error.
#[derive(Clone, Copy, Default)]
pub(crate) struct Ctx<'a> {
    pub def: Option<&'a EntityDef>,
    pub update: Option<&'a Update>,
}

impl<'a> Ctx<'a> {
    pub fn def(def: &'a EntityDef) -> Self {
        Self {
            def: Some(def),
            update: None,
        }
    }
    pub fn update(def: &'a EntityDef, update: &'a Update) -> Self {
        Self {
            def: Some(def),
            update: Some(update),
        }
    }
}

/// The first server error code and message in any of the driver's error shapes.
fn server_error(e: &mongodb::error::Error) -> Option<(i32, String)> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some((c.code, c.message.clone())),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some((w.code, w.message.clone())),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|ws| ws.iter().min_by_key(|w| w.index))
            .map(|w| (w.code, w.message.clone())),
        ErrorKind::BulkWrite(b) => b
            .write_errors
            .iter()
            .min_by_key(|(i, _)| **i)
            .map(|(_, w)| (w.code, w.message.clone())),
        _ => None,
    }
}

fn is_unavailable(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        ErrorKind::InsertMany(m) => m.write_errors.is_none() && m.write_concern_error.is_some(),
        _ => {
            e.contains_label("TransientTransactionError") || e.contains_label("RetryableWriteError")
        }
    }
}

/// The declared unique key a duplicate-key message names (`index: uniq_<collection>_<key>`).
fn conflict_key(def: Option<&EntityDef>, msg: &str) -> String {
    let index = msg
        .split("index: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default();
    if index == "_id_" {
        return "_id".to_owned();
    }
    if let Some(def) = def {
        if let Some(uk) = def
            .unique
            .iter()
            .find(|uk| unique_index_name(def, uk) == index)
        {
            return uk.name.to_owned();
        }
        if index.is_empty() && def.unique.len() == 1 {
            return def.unique[0].name.to_owned();
        }
    }
    if index.is_empty() {
        "unknown".to_owned()
    } else {
        index.to_owned()
    }
}

/// The update path the server complains about; servers quote the last segment (`'s'`).
fn invalid_field(update: Option<&Update>, msg: &str) -> String {
    let Some(u) = update else {
        return "document".to_owned();
    };
    u.ops
        .iter()
        .map(|o| o.path())
        .find(|p| {
            let last = p.as_str().rsplit('.').next().unwrap_or_default();
            msg.contains(&format!("'{last}'")) || msg.contains(&format!("'{}'", p.as_str()))
        })
        .or_else(|| u.ops.first().map(|o| o.path()))
        .map_or_else(|| "update".to_owned(), |p| p.as_str().to_owned())
}

pub(crate) fn map(e: mongodb::error::Error, ctx: Ctx<'_>) -> Error {
    if let Some((code, msg)) = server_error(&e) {
        if DUPLICATE_KEY.contains(&code) {
            return Error::conflict(conflict_key(ctx.def, &msg));
        }
        if UNAVAILABLE.contains(&code) {
            return Error::Unavailable(format!("MongoDB: {msg} (code {code})"));
        }
        if INVALID.contains(&code) && ctx.update.is_some() {
            let reason = msg
                .rsplit(":: caused by :: ")
                .next()
                .unwrap_or(&msg)
                .to_owned();
            return Error::invalid(invalid_field(ctx.update, &msg), reason);
        }
        // Field names the server refuses, or a document over 16 MB.
        if [52, 55, 56, 57, 10334].contains(&code) {
            return Error::invalid("document", msg);
        }
    }
    if is_unavailable(&e) {
        return Error::Unavailable(format!("MongoDB: {e}"));
    }
    Error::Internal(format!("MongoDB: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::schema::{Tenancy, UniqueKey};

    static DEF: EntityDef = EntityDef {
        name: "T",
        collection: "contacts",
        tenancy: Tenancy::Workspace {
            field: "workspaceId",
        },
        timestamps: true,
        fields: &[],
        unique: &[
            UniqueKey {
                name: "email",
                fields: &["email"],
            },
            UniqueKey {
                name: "email_phone",
                fields: &["email", "phone"],
            },
        ],
        indexes: &[],
        text: &[],
    };

    #[test]
    fn duplicate_key_names_the_declared_key() {
        let msg = "E11000 duplicate key error collection: db.contacts index: uniq_contacts_email_phone dup key: { x: 1 }";
        assert_eq!(conflict_key(Some(&DEF), msg), "email_phone");
        let msg = "E11000 duplicate key error collection: db.contacts index: uniq_contacts_email dup key: { x: 1 }";
        assert_eq!(conflict_key(Some(&DEF), msg), "email");
        let msg =
            "E11000 duplicate key error collection: db.contacts index: _id_ dup key: { _id: 1 }";
        assert_eq!(conflict_key(Some(&DEF), msg), "_id");
    }

    #[test]
    fn invalid_update_names_the_path() {
        let u = Update::new().set("a", 1).inc("b.count", 1);
        let msg = "Cannot apply $inc to a value of non-numeric type. {_id: 2} has the field 'count' of non-numeric type string";
        assert_eq!(invalid_field(Some(&u), msg), "b.count");
        assert_eq!(invalid_field(Some(&u), "something else"), "a");
    }
}
