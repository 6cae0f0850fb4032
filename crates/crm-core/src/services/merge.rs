//! Contact duplicates and merges (ADR 0011).
//!
//! Duplicates: a bounded scan of the newest live contacts, grouped by normalised email, phone
//! digits, and first + last name within a company. The normalised keys are not stored, so the
//! store cannot group them; the scan stops at [`DUPLICATE_SCAN_MAX`] and says so.
//!
//! Merge: the primary keeps its values, empty ones are filled from the duplicates (or taken as
//! `fields` says), tags and custom fields are unioned, every reference to a duplicate is moved to
//! the primary, and the duplicates go to the trash with `mergedInto`. Writes are ordered so an
//! interruption leaves no reference to a missing record: the merge record (with snapshots) first,
//! then references, then the duplicates' trashing, then the primary's values.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::Document;
use crate::entities::activity::Activity;
use crate::entities::attachment::Attachment;
use crate::entities::contact::{Contact, ContactId};
use crate::entities::contact_list::ContactList;
use crate::entities::contact_merge::{ContactMerge, ContactMergeId};
use crate::entities::opportunity::Opportunity;
use crate::entities::task::Task;
use crate::entities::ticket::Ticket;
use crate::error::{Error, Result};
use crate::paging::{PageRequest, Pagination};
use crate::query::{Filter, SortKey, Update};
use crate::repo::{WorkspaceScope, to_document};
use crate::services::contacts::{
    CONTACT_FIELDS, TAGS_MAX, WriteCtx, full_name, get_live, live, parse_id, trash, update_live,
};
use crate::services::opportunities;

/// Most duplicates one merge may take.
pub const MERGE_MAX: usize = 10;
/// Most contacts one duplicate search reads (the newest first).
pub const DUPLICATE_SCAN_MAX: u64 = 20_000;
const SCAN_PAGE: u64 = 500;
/// Fewest digits a phone number needs to count as a match.
pub const PHONE_MIN_DIGITS: usize = 7;

// ---- duplicates ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MatchReason {
    Email,
    Phone,
    NameAndCompany,
}

impl MatchReason {
    /// How sure a match by this rule is, 0 to 100.
    pub fn score(self) -> u8 {
        match self {
            Self::Email => 95,
            Self::Phone => 80,
            Self::NameAndCompany => 70,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateGroup {
    pub reason: MatchReason,
    /// The normalised value the contacts share.
    pub key: String,
    pub score: u8,
    /// Oldest first: the first is the natural primary.
    pub contact_ids: Vec<ContactId>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateReport {
    pub groups: Vec<DuplicateGroup>,
    /// Live contacts read.
    pub scanned: u64,
    /// False when the workspace has more live contacts than one search reads.
    pub complete: bool,
    /// False when more groups were found than `limit`.
    pub all_groups: bool,
}

pub fn normal_email(s: &str) -> Option<String> {
    let e = s.trim().to_lowercase();
    (!e.is_empty()).then_some(e)
}

pub fn normal_phone(s: &str) -> Option<String> {
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    (d.len() >= PHONE_MIN_DIGITS).then_some(d)
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// First and last name within a company (the company record, else the company name); none
/// without a company or a last name, where a shared name says little.
pub fn name_key(c: &Contact) -> Option<String> {
    let company = match (&c.company_id, &c.company) {
        (Some(id), _) => format!("#{id}"),
        (None, Some(name)) if !name.trim().is_empty() => fold(name),
        _ => return None,
    };
    let (first, last) = (fold(&c.first_name), fold(&c.last_name));
    (!first.is_empty() && !last.is_empty()).then(|| format!("{first} {last} @ {company}"))
}

fn keys(c: &Contact) -> Vec<(MatchReason, String)> {
    let mut out = Vec::with_capacity(3);
    if let Some(e) = c.email.as_deref().and_then(normal_email) {
        out.push((MatchReason::Email, e));
    }
    if let Some(p) = c.phone.as_deref().and_then(normal_phone) {
        out.push((MatchReason::Phone, p));
    }
    if let Some(n) = name_key(c) {
        out.push((MatchReason::NameAndCompany, n));
    }
    out
}

/// Groups contacts (given newest first) sharing a key; best score first, then larger groups.
pub fn group_duplicates(contacts: &[Contact]) -> Vec<DuplicateGroup> {
    let mut by_key: HashMap<(MatchReason, String), Vec<ContactId>> = HashMap::new();
    for c in contacts.iter().rev() {
        for k in keys(c) {
            by_key.entry(k).or_default().push(c.id);
        }
    }
    let mut groups: Vec<DuplicateGroup> = by_key
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|((reason, key), contact_ids)| DuplicateGroup {
            reason,
            key,
            score: reason.score(),
            contact_ids,
        })
        .collect();
    groups.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.contact_ids.len().cmp(&a.contact_ids.len()))
            .then_with(|| a.key.cmp(&b.key))
    });
    groups
}

/// Duplicate groups among the newest [`DUPLICATE_SCAN_MAX`] live contacts, at most `limit`.
pub async fn find_duplicates(scope: &WorkspaceScope, limit: usize) -> Result<DuplicateReport> {
    let repo = scope.repo::<Contact>();
    let sort = [SortKey::desc("createdAt"), SortKey::desc("_id")];
    let mut contacts: Vec<Contact> = Vec::new();
    let mut after: Option<String> = None;
    let complete = loop {
        let room = DUPLICATE_SCAN_MAX - contacts.len() as u64;
        if room == 0 {
            break repo.count(&live()).await? <= DUPLICATE_SCAN_MAX;
        }
        let page = repo
            .page(
                &live(),
                &sort,
                &PageRequest::Cursor {
                    after: after.take(),
                    limit: room.min(SCAN_PAGE),
                },
            )
            .await?;
        contacts.extend(page.items);
        match page.pagination {
            Pagination::Cursor {
                next_cursor: Some(c),
                ..
            } => after = Some(c),
            _ => break true,
        }
    };
    let mut groups = group_duplicates(&contacts);
    let all_groups = groups.len() <= limit;
    groups.truncate(limit);
    Ok(DuplicateReport {
        groups,
        scanned: contacts.len() as u64,
        complete,
        all_groups,
    })
}

// ---- merge ----

/// A parsed merge request.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeCommand {
    pub primary: ContactId,
    pub duplicates: Vec<ContactId>,
    /// Field name to the contact to take it from.
    pub fields: Vec<(&'static str, ContactId)>,
}

/// The fields a merge fills or takes by choice: the writable ones but tags and custom fields,
/// which are unioned.
fn mergeable(name: &str) -> Option<&'static str> {
    CONTACT_FIELDS
        .iter()
        .map(|s| s.name)
        .find(|n| *n == name && *n != "tags" && *n != "customFields")
}

impl MergeCommand {
    pub fn parse(
        primary: &str,
        duplicates: &[String],
        fields: &Map<String, Value>,
    ) -> Result<Self> {
        let primary = ContactId::from(parse_id(&Value::String(primary.to_owned()), "primaryId")?);
        if duplicates.is_empty() || duplicates.len() > MERGE_MAX {
            return Err(Error::invalid(
                "duplicateIds",
                format!("must list 1 to {MERGE_MAX} ids"),
            ));
        }
        let mut dups: Vec<ContactId> = Vec::with_capacity(duplicates.len());
        for (i, d) in duplicates.iter().enumerate() {
            let at = format!("duplicateIds[{i}]");
            let id = ContactId::from(parse_id(&Value::String(d.clone()), &at)?);
            if id == primary {
                return Err(Error::invalid(at, "is the primary contact"));
            }
            if !dups.contains(&id) {
                dups.push(id);
            }
        }
        let mut chosen = Vec::with_capacity(fields.len());
        for (k, v) in fields {
            let at = format!("fields.{k}");
            let name = mergeable(k)
                .ok_or_else(|| Error::invalid(at.as_str(), "is not a field a merge can take"))?;
            let from = ContactId::from(parse_id(v, &at)?);
            if from != primary && !dups.contains(&from) {
                return Err(Error::invalid(
                    at,
                    "must be the primary or one of the duplicates",
                ));
            }
            chosen.push((name, from));
        }
        Ok(Self {
            primary,
            duplicates: dups,
            fields: chosen,
        })
    }
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    }
}

/// What the primary's document becomes: fields set (`Some`) or removed (`None`), in the order of
/// the field table, then `tags` and `customFields` when they change.
pub fn merged_changes(
    primary: &Document,
    duplicates: &[(ContactId, Document)],
    cmd: &MergeCommand,
) -> Result<Vec<(&'static str, Option<Value>)>> {
    let source = |id: ContactId| -> Option<&Document> {
        if id == cmd.primary {
            Some(primary)
        } else {
            duplicates
                .iter()
                .find(|(d, _)| *d == id)
                .map(|(_, doc)| doc)
        }
    };
    let mut out: Vec<(&'static str, Option<Value>)> = Vec::new();
    for name in CONTACT_FIELDS.iter().filter_map(|s| mergeable(s.name)) {
        let mine = primary.get(name);
        let taken = match cmd.fields.iter().find(|(n, _)| *n == name) {
            Some((_, from)) => source(*from).and_then(|d| d.get(name)),
            None if is_empty(mine) => duplicates
                .iter()
                .map(|(_, d)| d.get(name))
                .find(|v| !is_empty(*v))
                .flatten(),
            None => continue,
        };
        let taken = taken.filter(|v| !is_empty(Some(*v)));
        if taken == mine.filter(|v| !is_empty(Some(*v))) {
            continue;
        }
        // firstName is required: an empty choice keeps the primary's.
        if name == "firstName" && taken.is_none() {
            continue;
        }
        out.push((name, taken.cloned()));
    }

    let text_list = |d: &Document, k: &str| -> Vec<Value> {
        d.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut tags = text_list(primary, "tags");
    let before = tags.len();
    for (_, d) in duplicates {
        for t in text_list(d, "tags") {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    if tags.len() > TAGS_MAX {
        return Err(Error::invalid(
            "duplicateIds",
            format!("the merged contact would have more than {TAGS_MAX} tags"),
        ));
    }
    if tags.len() != before {
        out.push(("tags", Some(Value::Array(tags))));
    }

    let obj = |d: &Document| -> Map<String, Value> {
        d.get("customFields")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let mut custom = obj(primary);
    let mut changed = false;
    for (_, d) in duplicates {
        for (k, v) in obj(d) {
            if !v.is_null() && custom.get(&k).is_none_or(Value::is_null) {
                custom.insert(k, v);
                changed = true;
            }
        }
    }
    if changed {
        out.push(("customFields", Some(Value::Object(custom))));
    }
    Ok(out)
}

fn refused(field: String) -> impl FnOnce(Error) -> Error {
    move |e| match e {
        Error::NotFound => Error::invalid(field, "no such live contact in this workspace"),
        e => e,
    }
}

/// Moves every reference to the duplicates onto the primary. Idempotent, so a merge interrupted
/// here can simply be run again.
async fn move_references(
    scope: &WorkspaceScope,
    dups: &[ContactId],
    primary: ContactId,
    primary_name: &str,
) -> Result<()> {
    let p = primary.to_string();
    let hexes: Vec<Value> = dups.iter().map(|d| Value::String(d.to_string())).collect();
    let any = |path: &'static str| Filter::In(path.into(), hexes.clone());
    scope
        .repo::<Activity>()
        .update_many(
            &Filter::eq("entityType", "contact").and(any("entityId")),
            &Update::new().set("entityId", p.clone()),
        )
        .await?;
    scope
        .repo::<Task>()
        .update_many(
            &any("relatedContactId"),
            &Update::new().set("relatedContactId", p.clone()),
        )
        .await?;
    let tickets = scope.repo::<Ticket>();
    tickets
        .update_many(
            &any("relatedContactId"),
            &Update::new().set("relatedContactId", p.clone()),
        )
        .await?;
    tickets
        .update_many(
            &any("requesterId"),
            &Update::new().set("requesterId", p.clone()),
        )
        .await?;
    let deals = scope.repo::<Opportunity>();
    deals
        .update_many(
            &any("contactId"),
            &Update::new()
                .set("contactId", p.clone())
                .set("contactName", primary_name),
        )
        .await?;
    scope
        .repo::<Attachment>()
        .update_many(
            &any("contactId"),
            &Update::new().set("contactId", p.clone()),
        )
        .await?;
    scope
        .repo::<Contact>()
        .update_many(
            &any("linkedContactId"),
            &Update::new().set("linkedContactId", p.clone()),
        )
        .await?;
    // Arrays: add the primary where a duplicate is, then take the duplicate out (one update may
    // change a path only once). Primary first, so no record loses its member in between.
    let lists = scope.repo::<ContactList>();
    for d in &hexes {
        let holds = |path: &'static str| Filter::eq(path, d.clone());
        deals
            .update_many(
                &holds("associatedContacts"),
                &Update::new().add_to_set("associatedContacts", p.clone()),
            )
            .await?;
        deals
            .update_many(
                &holds("associatedContacts"),
                &Update::new().pull("associatedContacts", d.clone()),
            )
            .await?;
        lists
            .update_many(
                &holds("contacts"),
                &Update::new().add_to_set("contacts", p.clone()),
            )
            .await?;
        lists
            .update_many(
                &holds("contacts"),
                &Update::new().pull("contacts", d.clone()),
            )
            .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome {
    pub contact: Contact,
    pub merge: ContactMerge,
}

/// Merges the duplicates into the primary. Every id must be a live contact of the workspace
/// (422 naming it otherwise, before anything is written).
pub async fn merge(ctx: &WriteCtx, cmd: &MergeCommand) -> Result<MergeOutcome> {
    let scope = &ctx.scope;
    let primary = get_live::<Contact>(scope, cmd.primary.into())
        .await
        .map_err(refused("primaryId".into()))?;
    let mut dups: Vec<(ContactId, Document)> = Vec::with_capacity(cmd.duplicates.len());
    for (i, d) in cmd.duplicates.iter().enumerate() {
        let c = get_live::<Contact>(scope, (*d).into())
            .await
            .map_err(refused(format!("duplicateIds[{i}]")))?;
        dups.push((*d, to_document(&c)?));
    }
    let before = to_document(&primary)?;
    let changes = merged_changes(&before, &dups, cmd)?;
    let changed = |k: &str| changes.iter().find(|(n, _)| *n == k).map(|(_, v)| v);
    let text_of = |k: &str, fallback: &str| -> String {
        match changed(k) {
            Some(Some(Value::String(s))) => s.clone(),
            Some(_) => String::new(),
            None => fallback.to_owned(),
        }
    };
    let name = format!(
        "{} {}",
        text_of("firstName", &primary.first_name),
        text_of("lastName", &primary.last_name)
    )
    .trim()
    .to_owned();

    let merges = scope.repo::<ContactMerge>();
    let record = merges
        .insert(&ContactMerge {
            id: ContactMergeId::new(),
            workspace_id: scope.id(),
            primary_id: cmd.primary,
            duplicate_ids: cmd.duplicates.clone(),
            merged_by: ctx.actor,
            fields: cmd
                .fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String(v.to_string())))
                .collect(),
            primary_snapshot: Value::Object(before),
            duplicate_snapshots: dups.iter().map(|(_, d)| Value::Object(d.clone())).collect(),
            completed_at: None,
            created_at: None,
            updated_at: None,
        })
        .await?;

    move_references(scope, &cmd.duplicates, cmd.primary, &name).await?;
    for d in &cmd.duplicates {
        // One trashed meanwhile is as good as trashed here.
        match trash(ctx, *d, Some(cmd.primary)).await {
            Ok(()) | Err(Error::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    let mut u = Update::new();
    for (k, v) in &changes {
        u = match v {
            Some(v) => u.set(*k, v.clone()),
            None => u.unset(*k),
        };
    }
    let contact = if u.is_empty() {
        primary.clone()
    } else {
        update_live::<Contact>(scope, cmd.primary.into(), &u).await?
    };
    if full_name(&contact) != full_name(&primary) {
        opportunities::sync_contact_name(scope, cmd.primary, Some(&full_name(&contact))).await?;
    }
    let merge = merges
        .update(
            record.id,
            &Update::new().set("completedAt", ctx.now.to_canonical()),
        )
        .await?;
    Ok(MergeOutcome { contact, merge })
}

/// The merges a contact took part in (as primary or duplicate), newest first.
pub fn merges_of(id: ContactId) -> Filter {
    let hex = id.to_string();
    Filter::Or(vec![
        Filter::eq("primaryId", hex.clone()),
        Filter::eq("duplicateIds", hex),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::id::{ObjectId, UserId, WorkspaceId};

    fn contact(first: &str, last: &str) -> Contact {
        Contact::new(WorkspaceId::new(), UserId::new(), first).with_last(last)
    }

    trait Last {
        fn with_last(self, l: &str) -> Self;
    }
    impl Last for Contact {
        fn with_last(mut self, l: &str) -> Self {
            self.last_name = l.into();
            self
        }
    }

    fn doc(v: Value) -> Document {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn field_of<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn normalisation() {
        assert_eq!(normal_email("  Ada@X.COM "), Some("ada@x.com".into()));
        assert_eq!(normal_email("  "), None);
        assert_eq!(normal_phone("+1 (555) 010-99"), Some("155501099".into()));
        assert_eq!(normal_phone("12-34-56"), None);
        let mut a = contact("Ada", " Lovelace ");
        assert_eq!(name_key(&a), None);
        a.company = Some(" Analytical  Engines ".into());
        assert_eq!(
            name_key(&a),
            Some("ada lovelace @ analytical engines".into())
        );
    }

    #[test]
    fn groups_by_each_rule_oldest_first() {
        let mut a = contact("Ada", "Lovelace").with_email("ada@x.com");
        a.phone = Some("+44 20 7946 0000".into());
        let mut b = contact("Ada", "Lovelace");
        b.email = Some("ADA@x.com ".into());
        let mut c = contact("ADA", "lovelace");
        c.phone = Some("442079460000".into());
        c.company = Some("Engines".into());
        let mut d = contact("Ada", "Lovelace");
        d.company = Some("engines".into());
        let e = contact("Grace", "Hopper").with_email("grace@x.com");
        // Newest first, as the scan reads them.
        let newest_first = [e, d.clone(), c.clone(), b.clone(), a.clone()];
        let groups = group_duplicates(&newest_first);
        assert_eq!(groups.len(), 3, "{groups:?}");
        assert_eq!(groups[0].reason, MatchReason::Email);
        assert_eq!(groups[0].contact_ids, vec![a.id, b.id]);
        assert_eq!(groups[1].reason, MatchReason::Phone);
        assert_eq!(groups[1].contact_ids, vec![a.id, c.id]);
        assert_eq!(groups[2].reason, MatchReason::NameAndCompany);
        assert_eq!(groups[2].contact_ids, vec![c.id, d.id]);
        assert!(groups[0].score > groups[1].score && groups[1].score > groups[2].score);
    }

    #[test]
    fn parse_refuses_bad_requests() {
        let p = ObjectId::new().to_hex();
        let d = ObjectId::new().to_hex();
        let none = Map::new();
        assert_eq!(
            field_of(MergeCommand::parse("x", std::slice::from_ref(&d), &none)),
            "primaryId"
        );
        assert_eq!(
            field_of(MergeCommand::parse(&p, &[], &none)),
            "duplicateIds"
        );
        let eleven: Vec<String> = (0..=MERGE_MAX).map(|_| ObjectId::new().to_hex()).collect();
        assert_eq!(
            field_of(MergeCommand::parse(&p, &eleven, &none)),
            "duplicateIds"
        );
        assert_eq!(
            field_of(MergeCommand::parse(&p, &[d.clone(), p.clone()], &none)),
            "duplicateIds[1]"
        );
        let f = doc(json!({"email": ObjectId::new().to_hex()}));
        assert_eq!(
            field_of(MergeCommand::parse(&p, std::slice::from_ref(&d), &f)),
            "fields.email"
        );
        let f = doc(json!({"tags": d}));
        assert_eq!(
            field_of(MergeCommand::parse(&p, std::slice::from_ref(&d), &f)),
            "fields.tags"
        );
        let f = doc(json!({"email": d, "phone": p}));
        let cmd = MergeCommand::parse(&p, &[d.clone(), d.clone()], &f).unwrap();
        assert_eq!(cmd.duplicates.len(), 1);
        assert_eq!(cmd.fields.len(), 2);
    }

    #[test]
    fn fills_empty_fields_takes_choices_and_unions() {
        let p = ContactId::new();
        let d1 = ContactId::new();
        let d2 = ContactId::new();
        let primary = doc(json!({"firstName": "Ada", "lastName": "", "phone": "1",
            "tags": ["a"], "customFields": {"k1": 1, "k2": null}}));
        let dups = vec![
            (
                d1,
                doc(
                    json!({"firstName": "Augusta", "lastName": "King", "phone": "2",
                "jobTitle": "", "tags": ["b", "a"], "customFields": {"k1": 9, "k2": 2}}),
                ),
            ),
            (
                d2,
                doc(
                    json!({"firstName": "A", "jobTitle": "Countess", "email": "a@x.com",
                "tags": ["c"], "customFields": {"k3": 3}}),
                ),
            ),
        ];
        let cmd = MergeCommand {
            primary: p,
            duplicates: vec![d1, d2],
            fields: vec![("phone", d1), ("firstName", d1)],
        };
        let ch = merged_changes(&primary, &dups, &cmd).unwrap();
        let get = |k: &str| ch.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("firstName"), Some(Some(json!("Augusta"))));
        assert_eq!(get("lastName"), Some(Some(json!("King"))));
        assert_eq!(get("phone"), Some(Some(json!("2"))));
        assert_eq!(get("jobTitle"), Some(Some(json!("Countess"))));
        assert_eq!(get("email"), Some(Some(json!("a@x.com"))));
        assert_eq!(get("tags"), Some(Some(json!(["a", "b", "c"]))));
        assert_eq!(
            get("customFields"),
            Some(Some(json!({"k1": 1, "k2": 2, "k3": 3})))
        );
        assert_eq!(get("company"), None);

        // Choosing a duplicate's empty value removes the primary's.
        let cmd = MergeCommand {
            primary: p,
            duplicates: vec![d2],
            fields: vec![("phone", d2)],
        };
        let ch = merged_changes(&primary, &dups[1..], &cmd).unwrap();
        assert!(ch.contains(&("phone", None)), "{ch:?}");
    }

    #[test]
    fn too_many_tags_is_refused() {
        let p = ContactId::new();
        let d = ContactId::new();
        let tags = |n: &str| -> Value { (0..60).map(|i| json!(format!("{n}{i}"))).collect() };
        let primary = doc(json!({"firstName": "A", "tags": tags("p")}));
        let dups = vec![(d, doc(json!({"firstName": "B", "tags": tags("d")})))];
        let cmd = MergeCommand {
            primary: p,
            duplicates: vec![d],
            fields: Vec::new(),
        };
        assert_eq!(
            field_of(merged_changes(&primary, &dups, &cmd)),
            "duplicateIds"
        );
    }
}
