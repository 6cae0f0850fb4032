//! Migration 3: the original's unique *sparse* `{workspaceId, email}` index on contacts becomes
//! the declared partial one (only contacts whose email is a string take part), so a workspace
//! may hold many contacts without an email. Nothing changes while data conflicts with the new
//! key: the error lists the records.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::doctor::{PAGE, unique_keys};
use super::{IndexInfo, LegacyAdmin};
use crate::entities::contact::CONTACT;
use crate::error::{Error, Result};
use crate::schema::ID_FIELD;

/// The name start-up gives the declared key (`uniq_<collection>_<key>`).
pub const PARTIAL_NAME: &str = "uniq_contacts_email";
/// Mongoose's default name for the original's index.
pub const ORIGINAL_NAME: &str = "workspaceId_1_email_1";
/// Conflicts listed in the error, at most.
const LISTED: usize = 20;

fn keys() -> Vec<(String, Value)> {
    unique_keys(&CONTACT)
        .into_iter()
        .next()
        .map(|(_, k)| k)
        .unwrap_or_default()
}

fn same(a: &[(String, Value)], b: &[(String, Value)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.as_f64() == vb.as_f64())
}

fn is_declared(i: &IndexInfo) -> bool {
    i.unique && !i.sparse && i.partial.is_some()
}

pub fn partial_index() -> IndexInfo {
    IndexInfo {
        name: PARTIAL_NAME.to_owned(),
        keys: keys(),
        unique: true,
        sparse: false,
        partial: Some(json!({"email": {"$type": "string"}})),
    }
}

pub fn original_index() -> IndexInfo {
    IndexInfo {
        name: ORIGINAL_NAME.to_owned(),
        keys: keys(),
        unique: true,
        sparse: true,
        partial: None,
    }
}

/// Contacts sharing a `(workspace, email)` where `email` is a string (the new key) or, with
/// `sparse`, any contact at all: a compound sparse index skips only documents lacking every key
/// field, and `workspaceId` is always there, so a missing email counts as null.
pub async fn conflicts(legacy: &dyn LegacyAdmin, sparse: bool) -> Result<Vec<String>> {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let page = legacy
            .scan_page(CONTACT.collection, Some(&CONTACT), after.as_ref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.get(ID_FIELD).cloned();
        let full = page.len() == PAGE;
        for doc in page {
            let email = match doc.get("email") {
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(v) if sparse => v.clone(),
                None if sparse => Value::Null,
                _ => continue,
            };
            let ws = doc.get("workspaceId").cloned().unwrap_or(Value::Null);
            let id = doc.get(ID_FIELD).cloned().unwrap_or(Value::Null);
            let id = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
            let key = format!("workspace {ws} email {email}");
            match seen.get(&key) {
                Some(first) => out.push(format!("{key}: contacts {first} and {id}")),
                None => {
                    seen.insert(key, id);
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

fn refuse(what: &str, found: &[String]) -> Error {
    let mut listed: Vec<&str> = found.iter().take(LISTED).map(String::as_str).collect();
    if found.len() > LISTED {
        listed.push("...");
    }
    Error::invalid(
        "contacts.email",
        format!(
            "{} contacts conflict with {what}; nothing was changed. Merge or edit them, then \
             run the migration again: {}",
            found.len(),
            listed.join("; ")
        ),
    )
}

/// Creates the partial index (unless present) and drops any other index on the same keys.
pub async fn up(legacy: &dyn LegacyAdmin) -> Result<()> {
    let Some(present) = legacy.indexes(CONTACT.collection).await? else {
        return Ok(());
    };
    let keys = keys();
    let old: Vec<&IndexInfo> = present
        .iter()
        .filter(|i| same(&i.keys, &keys) && !is_declared(i))
        .collect();
    let has_partial = present
        .iter()
        .any(|i| same(&i.keys, &keys) && is_declared(i));
    if old.is_empty() && has_partial {
        return Ok(());
    }
    let found = conflicts(legacy, false).await?;
    if !found.is_empty() {
        return Err(refuse("the unique key (workspace, email)", &found));
    }
    // New before old, so the key is never unguarded.
    if !has_partial {
        legacy
            .create_index(CONTACT.collection, &partial_index())
            .await?;
    }
    for i in old {
        legacy.drop_index(CONTACT.collection, &i.name).await?;
    }
    Ok(())
}

/// Puts the original's sparse index back (for running the original again) and drops the partial
/// one. When the data no longer fits the original's index (two contacts of a workspace without
/// an email, which the new key allows), the partial index stays, so emails stay unique, and the
/// records are logged: the original then runs as it does when its index build fails.
pub async fn down(legacy: &dyn LegacyAdmin) -> Result<()> {
    let Some(present) = legacy.indexes(CONTACT.collection).await? else {
        return Ok(());
    };
    let keys = keys();
    let has_original = present
        .iter()
        .any(|i| same(&i.keys, &keys) && i.unique && i.sparse);
    if !has_original {
        let found = conflicts(legacy, true).await?;
        if !found.is_empty() {
            tracing::warn!(
                "keeping the partial contact email index: {}",
                refuse("the original's sparse unique index", &found)
            );
            return Ok(());
        }
        legacy
            .create_index(CONTACT.collection, &original_index())
            .await?;
    }
    for i in present
        .iter()
        .filter(|i| same(&i.keys, &keys) && is_declared(i))
    {
        legacy.drop_index(CONTACT.collection, &i.name).await?;
    }
    Ok(())
}
