//! Contacts: create and patch commands parsed from JSON bodies, reference checks, the soft delete
//! / restore / purge life cycle, bulk operations, list filters and `expand=company`.
//!
//! The field machinery here (`FieldSpec`, `parse_body`) and the record life cycle are shared with
//! companies (`super::companies`).
//!
//! Bodies are strict: a key that is not a writable field answers 422 naming it, so a typo or a
//! server-owned field (`_id`, `userId`, `createdAt`...) is never silently dropped.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::accounts::Email;
use crate::engine::Document;
use crate::entities::activity::Activity;
use crate::entities::company::Company;
use crate::entities::contact::{Contact, ContactId};
use crate::entities::contact_list::ContactList;
use crate::entities::contact_merge::ContactMerge;
use crate::entities::opportunity::Opportunity;
use crate::entities::task::Task;
use crate::entities::team_member::TeamMember;
use crate::entities::ticket::Ticket;
use crate::error::{Error, Result};
use crate::id::{ObjectId, UserId};
use crate::path::FieldPath;
use crate::query::{Filter, FindOptions, Update};
use crate::repo::{WorkspaceEntity, WorkspaceScope, from_document, to_document};
use crate::services::{custom_fields, opportunities};
use crate::time::Timestamp;

/// Most ids one bulk request may name.
pub const BULK_MAX: usize = 500;
/// Most tags on one record, and most tags one bulk tag request may add or remove.
pub const TAGS_MAX: usize = 100;
pub const TAG_MAX_CHARS: usize = 100;

pub const DELETED_AT: &str = "deletedAt";

/// Who writes, in which workspace, and when.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub scope: WorkspaceScope,
    pub actor: UserId,
    /// The workspace owner: assignable without a membership row (the original's owners have none).
    pub owner: UserId,
    pub now: Timestamp,
}

/// How one writable field is checked and stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Trimmed text of at most `max` characters; blank or null removes the field.
    Text { max: usize },
    /// A web address: `http(s)://host...` or a bare `host.tld/...`, no spaces; blank removes it.
    Url,
    /// Like `Text`, but blank or null stores `""` (the typed field is a plain string).
    TextOrEmpty { max: usize },
    /// Trimmed, lower-cased, checked; blank or null removes it.
    Email,
    /// One of the spellings; never null (a default applies).
    Enum(&'static [&'static str]),
    /// One of the spellings; null or blank removes it.
    OptionalEnum(&'static [&'static str]),
    /// Trimmed, blanks dropped, duplicates dropped; null stores `[]`.
    Tags,
    /// `{street, city, state, country, zipCode}`, each trimmed text.
    Address,
    /// A record or user id; its existence is checked by the entity's service.
    Ref,
    /// A finite number of 0 or more.
    NonNegative,
    /// A whole number of 0 or more.
    Count,
    /// A number from 0 to 100.
    Score,
    /// true or false; null stores false.
    Bool,
    /// `customFields`: checked against the workspace's definitions.
    Custom,
}

#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

pub const fn field(name: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
    }
}

pub const fn required(name: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: true,
    }
}

pub const CONTACT_STATUSES: &[&str] = &[
    "lead",
    "prospect",
    "customer",
    "inactive",
    "disqualified",
    "nurture",
];
pub const LIFECYCLE_STAGES: &[&str] = &[
    "subscriber",
    "lead",
    "mql",
    "sql",
    "sal",
    "opportunity",
    "customer",
    "evangelist",
    "churned",
    "disqualified",
];

/// The fields a client may set on a contact. Derived and integration-owned fields (scores,
/// enrichment, merge history, Salesforce sync, lifecycle history) are not among them.
pub const CONTACT_FIELDS: &[FieldSpec] = &[
    required("firstName", Kind::Text { max: 50 }),
    field("lastName", Kind::TextOrEmpty { max: 50 }),
    field("email", Kind::Email),
    field("phone", Kind::Text { max: 50 }),
    field("company", Kind::Text { max: 100 }),
    field("jobTitle", Kind::Text { max: 100 }),
    field("title", Kind::Text { max: 100 }),
    field("tags", Kind::Tags),
    field("source", Kind::Text { max: 100 }),
    field("status", Kind::Enum(CONTACT_STATUSES)),
    field("lifecycleStage", Kind::Enum(LIFECYCLE_STAGES)),
    field("linkedin", Kind::Text { max: 500 }),
    field("twitter", Kind::Text { max: 500 }),
    field("website", Kind::Url),
    field("address", Kind::Address),
    field("assignedTo", Kind::Ref),
    field("companyId", Kind::Ref),
    field("notes", Kind::Text { max: 10_000 }),
    field("customFields", Kind::Custom),
];

const ADDRESS_KEYS: &[&str] = &["street", "city", "state", "country", "zipCode"];
const ADDRESS_PART_MAX: usize = 200;

fn text<'a>(v: &'a Value, name: &str) -> Result<&'a str> {
    v.as_str()
        .map(str::trim)
        .ok_or_else(|| Error::invalid(name, "must be text"))
}

fn bounded(s: &str, name: &str, max: usize) -> Result<String> {
    if s.chars().count() > max {
        return Err(Error::invalid(
            name,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(s.to_owned())
}

pub fn parse_id(v: &Value, name: &str) -> Result<ObjectId> {
    v.as_str()
        .and_then(|s| ObjectId::parse_str(s.trim()).ok())
        .ok_or_else(|| Error::invalid(name, "must be an id of 24 hexadecimal characters"))
}

/// Trimmed, non-blank, distinct tags, in the order given.
pub fn parse_tags(v: &Value, name: &str) -> Result<Vec<String>> {
    let items = v
        .as_array()
        .ok_or_else(|| Error::invalid(name, "must be a list of text"))?;
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{name}[{i}]");
        let t = text(item, &at)?;
        if t.is_empty() || out.iter().any(|x| x == t) {
            continue;
        }
        out.push(bounded(t, &at, TAG_MAX_CHARS)?);
    }
    if out.len() > TAGS_MAX {
        return Err(Error::invalid(
            name,
            format!("must hold at most {TAGS_MAX} tags"),
        ));
    }
    Ok(out)
}

fn parse_address(v: &Value, name: &str) -> Result<Option<Value>> {
    let m = v
        .as_object()
        .ok_or_else(|| Error::invalid(name, "must be an object"))?;
    let mut out = Map::new();
    for (k, x) in m {
        let at = format!("{name}.{k}");
        if !ADDRESS_KEYS.contains(&k.as_str()) {
            return Err(Error::invalid(at, "is not an address field"));
        }
        if x.is_null() {
            continue;
        }
        let s = text(x, &at)?;
        if !s.is_empty() {
            out.insert(k.clone(), Value::String(bounded(s, &at, ADDRESS_PART_MAX)?));
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

const URL_MAX_CHARS: usize = 2048;

/// `http://` or `https://` (or no scheme) and a host with a dot or `localhost`; no whitespace.
fn plausible_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let rest = match lower.split_once("://") {
        Some(("http" | "https", rest)) => rest,
        Some(_) => return false,
        None => lower.as_str(),
    };
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && (host == "localhost"
            || (host.contains('.')
                && !host.starts_with('.')
                && !host.ends_with('.')
                && host
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '.' || c == '-')))
}

/// One field's value as stored; `None` removes the field.
pub fn parse_value(spec: &FieldSpec, v: &Value) -> Result<Option<Value>> {
    let name = spec.name;
    if v.is_null() {
        if spec.required {
            return Err(Error::invalid(name, "is required"));
        }
        return match spec.kind {
            Kind::Enum(_) => Err(Error::invalid(name, "cannot be null")),
            Kind::Custom => Err(Error::invalid(
                name,
                "must be an object; send a key with null to remove that key",
            )),
            Kind::Tags => Ok(Some(Value::Array(Vec::new()))),
            Kind::TextOrEmpty { .. } => Ok(Some(Value::String(String::new()))),
            Kind::Bool => Ok(Some(Value::Bool(false))),
            _ => Ok(None),
        };
    }
    let out = match spec.kind {
        Kind::Text { max } | Kind::TextOrEmpty { max } => {
            let s = text(v, name)?;
            if s.is_empty() {
                if spec.required {
                    return Err(Error::invalid(name, "is required"));
                }
                return Ok(match spec.kind {
                    Kind::TextOrEmpty { .. } => Some(Value::String(String::new())),
                    _ => None,
                });
            }
            Value::String(bounded(s, name, max)?)
        }
        Kind::Url => {
            let s = text(v, name)?;
            if s.is_empty() {
                return Ok(None);
            }
            if !plausible_url(s) {
                return Err(Error::invalid(name, "must be a web address"));
            }
            Value::String(bounded(s, name, URL_MAX_CHARS)?)
        }
        Kind::Email => {
            let s = text(v, name)?;
            if s.is_empty() {
                if spec.required {
                    return Err(Error::invalid(name, "is required"));
                }
                return Ok(None);
            }
            Value::String(String::from(Email::parse_field(s, name)?))
        }
        Kind::Enum(allowed) | Kind::OptionalEnum(allowed) => {
            let s = v.as_str().map(str::trim).unwrap_or_default();
            if s.is_empty() && matches!(spec.kind, Kind::OptionalEnum(_)) {
                return Ok(None);
            }
            if !allowed.contains(&s) {
                return Err(Error::invalid(
                    name,
                    format!("must be one of {}", allowed.join(", ")),
                ));
            }
            Value::String(s.to_owned())
        }
        Kind::Tags => Value::Array(
            parse_tags(v, name)?
                .into_iter()
                .map(Value::String)
                .collect(),
        ),
        Kind::Address => return parse_address(v, name),
        Kind::Ref => Value::String(parse_id(v, name)?.to_hex()),
        Kind::NonNegative => {
            v.as_f64()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| Error::invalid(name, "must be a number of 0 or more"))?;
            v.clone()
        }
        Kind::Count => {
            let n = v
                .as_u64()
                .filter(|n| i64::try_from(*n).is_ok())
                .ok_or_else(|| Error::invalid(name, "must be a whole number of 0 or more"))?;
            Value::from(n)
        }
        Kind::Score => {
            v.as_f64()
                .filter(|n| (0.0..=100.0).contains(n))
                .ok_or_else(|| Error::invalid(name, "must be a number from 0 to 100"))?;
            v.clone()
        }
        Kind::Bool => Value::Bool(
            v.as_bool()
                .ok_or_else(|| Error::invalid(name, "must be true or false"))?,
        ),
        Kind::Custom => {
            if !v.is_object() {
                return Err(Error::invalid(name, "must be an object"));
            }
            v.clone()
        }
    };
    Ok(Some(out))
}

/// A body parsed against a field table: the plain fields (`None` removes one) and the custom
/// fields as sent (checked later against the workspace's definitions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub fields: Vec<(&'static str, Option<Value>)>,
    pub custom: Option<Map<String, Value>>,
}

impl Parsed {
    pub fn get(&self, name: &str) -> Option<&Option<Value>> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The value being set for `name`, if any.
    pub fn set_value(&self, name: &str) -> Option<&Value> {
        self.get(name).and_then(Option::as_ref)
    }
}

/// Checks every key of `body` against `specs`. Unknown keys are refused (422 naming the key);
/// without `partial`, required fields must be present.
pub fn parse_body(specs: &[FieldSpec], body: &Map<String, Value>, partial: bool) -> Result<Parsed> {
    let mut out = Parsed::default();
    for (k, v) in body {
        let spec = specs
            .iter()
            .find(|s| s.name == k)
            .ok_or_else(|| Error::invalid(k.as_str(), "is not a field that can be set"))?;
        if spec.kind == Kind::Custom {
            if let Some(Value::Object(m)) = parse_value(spec, v)? {
                out.custom = Some(m);
            }
            continue;
        }
        out.fields.push((spec.name, parse_value(spec, v)?));
    }
    if !partial {
        for s in specs.iter().filter(|s| s.required) {
            if out.set_value(s.name).is_none() {
                return Err(Error::invalid(s.name, "is required"));
            }
        }
    }
    Ok(out)
}

/// Records not in the trash.
pub fn live() -> Filter {
    Filter::eq(DELETED_AT, Value::Null)
}

pub fn by_id(id: ObjectId) -> Filter {
    Filter::eq("_id", id.to_hex())
}

/// A new record: `base` (the entity's defaults) overlaid with the parsed fields and the checked
/// custom fields (defaults applied).
pub async fn build<E: WorkspaceEntity>(
    scope: &WorkspaceScope,
    base: &E,
    parsed: &Parsed,
    entity_type: &str,
) -> Result<E> {
    let mut doc = to_document(base)?;
    for (k, v) in &parsed.fields {
        match v {
            Some(v) => doc.insert((*k).to_owned(), v.clone()),
            None => doc.remove(*k),
        };
    }
    let custom = custom_fields::check_record_values(
        scope,
        entity_type,
        parsed.custom.as_ref().unwrap_or(&Map::new()),
        false,
    )
    .await?;
    doc.insert("customFields".into(), Value::Object(custom));
    from_document(E::DEF, doc)
}

/// The update a patch makes: plain fields set or removed, custom fields merged key by key.
pub async fn patch_update(
    scope: &WorkspaceScope,
    parsed: &Parsed,
    entity_type: &str,
) -> Result<Update> {
    let mut u = Update::new();
    for (k, v) in &parsed.fields {
        u = match v {
            Some(v) => u.set(*k, v.clone()),
            None => u.unset(*k),
        };
    }
    if let Some(custom) = parsed.custom.as_ref().filter(|c| !c.is_empty()) {
        let checked = custom_fields::check_record_values(scope, entity_type, custom, true).await?;
        for (k, v) in checked {
            let path = FieldPath::parse(&format!("customFields.{k}"))?;
            u = match v {
                Value::Null => u.unset(path),
                v => u.set(path, v),
            };
        }
    }
    Ok(u)
}

/// The record, unless missing, of another workspace, or in the trash.
pub async fn get_live<E: WorkspaceEntity>(scope: &WorkspaceScope, id: ObjectId) -> Result<E> {
    scope
        .repo::<E>()
        .find(
            &by_id(id).and(live()),
            &FindOptions {
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound)
}

/// Applies `update` to the live record; `NotFound` when it is missing or in the trash.
pub async fn update_live<E: WorkspaceEntity>(
    scope: &WorkspaceScope,
    id: ObjectId,
    update: &Update,
) -> Result<E> {
    scope
        .repo::<E>()
        .find_one_and_update(&by_id(id).and(live()), update, false)
        .await?
        .ok_or(Error::NotFound)
}

/// Moves a live record to the trash.
pub async fn soft_delete<E: WorkspaceEntity>(ctx: &WriteCtx, id: ObjectId) -> Result<()> {
    let n = ctx
        .scope
        .repo::<E>()
        .update_many(
            &by_id(id).and(live()),
            &Update::new().set(DELETED_AT, ctx.now.to_canonical()),
        )
        .await?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Takes a record out of the trash; a live record is returned as it is.
pub async fn restore<E: WorkspaceEntity>(scope: &WorkspaceScope, id: ObjectId) -> Result<E> {
    let restored = scope
        .repo::<E>()
        .find_one_and_update(
            &by_id(id).and(Filter::Ne(DELETED_AT.into(), Value::Null)),
            &Update::new().unset(DELETED_AT),
            false,
        )
        .await?;
    match restored {
        Some(e) => Ok(e),
        None => get_live(scope, id).await,
    }
}

/// Moves the live records among `ids` to the trash; returns how many moved.
pub async fn bulk_soft_delete<E: WorkspaceEntity>(ctx: &WriteCtx, ids: &[ObjectId]) -> Result<u64> {
    ctx.scope
        .repo::<E>()
        .update_many(
            &ids_filter(ids).and(live()),
            &Update::new().set(DELETED_AT, ctx.now.to_canonical()),
        )
        .await
}

pub fn ids_filter(ids: &[ObjectId]) -> Filter {
    Filter::In(
        "_id".into(),
        ids.iter().map(|id| Value::String(id.to_hex())).collect(),
    )
}

/// 1 to [`BULK_MAX`] ids, duplicates dropped; a bad one is named by its index (`ids[3]`).
pub fn parse_ids(ids: &[String], name: &str) -> Result<Vec<ObjectId>> {
    if ids.is_empty() || ids.len() > BULK_MAX {
        return Err(Error::invalid(
            name,
            format!("must list 1 to {BULK_MAX} ids"),
        ));
    }
    let mut out: Vec<ObjectId> = Vec::with_capacity(ids.len());
    for (i, s) in ids.iter().enumerate() {
        let id = ObjectId::parse_str(s.trim()).map_err(|_| {
            Error::invalid(
                format!("{name}[{i}]"),
                "must be an id of 24 hexadecimal characters",
            )
        })?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// 422 on `field` unless `id` is a live company of the workspace.
pub async fn check_company(scope: &WorkspaceScope, id: &Value, field: &str) -> Result<()> {
    let id = parse_id(id, field)?;
    match get_live::<Company>(scope, id).await {
        Ok(_) => Ok(()),
        Err(Error::NotFound) => Err(Error::invalid(field, "no such company in this workspace")),
        Err(e) => Err(e),
    }
}

/// 422 on `field` unless `id` is the owner or an active member of the workspace.
pub async fn check_assignee(ctx: &WriteCtx, id: &Value, field: &str) -> Result<()> {
    let id = parse_id(id, field)?;
    if UserId::from(id) == ctx.owner {
        return Ok(());
    }
    let n = ctx
        .scope
        .repo::<TeamMember>()
        .count(&Filter::eq("userId", id.to_hex()).and(Filter::eq("status", "active")))
        .await?;
    if n == 0 {
        return Err(Error::invalid(field, "no such member in this workspace"));
    }
    Ok(())
}

/// `a,b` as a filter on `path` (one of `allowed` each); `None` when nothing is given.
pub fn enum_filter(
    raw: Option<&str>,
    path: &'static str,
    allowed: &[&str],
) -> Result<Option<Filter>> {
    let vals: Vec<&str> = raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if vals.is_empty() {
        return Ok(None);
    }
    for v in &vals {
        if !allowed.contains(v) {
            return Err(Error::invalid(
                path,
                format!("must be one of {}", allowed.join(", ")),
            ));
        }
    }
    Ok(Some(Filter::In(
        path.into(),
        vals.into_iter()
            .map(|v| Value::String(v.to_owned()))
            .collect(),
    )))
}

/// An id filter on `path`; an id of another workspace simply matches nothing.
pub fn id_filter(raw: Option<&str>, path: &'static str) -> Result<Option<Filter>> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let id = parse_id(&Value::String(s.to_owned()), path)?;
            Ok(Filter::eq(path, id.to_hex()))
        })
        .transpose()
}

/// The trash or the live records.
pub fn trash_filter(deleted: bool) -> Filter {
    if deleted {
        Filter::Ne(DELETED_AT.into(), Value::Null)
    } else {
        live()
    }
}

// ---- contacts ----

/// A parsed contact create command.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContact(pub Parsed);

impl NewContact {
    pub fn parse(body: &Map<String, Value>) -> Result<Self> {
        parse_body(CONTACT_FIELDS, body, false).map(Self)
    }
}

/// A parsed contact patch: fields set or removed, custom fields merged.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactPatch(pub Parsed);

impl ContactPatch {
    pub fn parse(body: &Map<String, Value>) -> Result<Self> {
        parse_body(CONTACT_FIELDS, body, true).map(Self)
    }
}

async fn check_contact_refs(ctx: &WriteCtx, p: &Parsed) -> Result<()> {
    if let Some(id) = p.set_value("companyId") {
        check_company(&ctx.scope, id, "companyId").await?;
    }
    if let Some(id) = p.set_value("assignedTo") {
        check_assignee(ctx, id, "assignedTo").await?;
    }
    Ok(())
}

/// Creates a contact owned by the actor. A duplicate email in the workspace is a `Conflict` on
/// the unique key `email` (the field of the same name).
pub async fn create(ctx: &WriteCtx, cmd: &NewContact) -> Result<Contact> {
    check_contact_refs(ctx, &cmd.0).await?;
    let base = Contact::new(ctx.scope.id(), ctx.actor, "");
    let contact = build(&ctx.scope, &base, &cmd.0, "contact").await?;
    let repo = ctx.scope.repo::<Contact>();
    match repo.insert(&contact).await {
        Err(Error::Conflict { key }) if key == "email" => {
            let email = cmd.0.set_value("email").cloned().unwrap_or(Value::Null);
            if release_trashed_email(&ctx.scope, &email).await? {
                repo.insert(&contact).await
            } else {
                Err(Error::Conflict { key })
            }
        }
        other => other,
    }
}

/// Patches a live contact. A lifecycle stage change records the previous stage and when.
pub async fn patch(ctx: &WriteCtx, id: ContactId, cmd: &ContactPatch) -> Result<Contact> {
    let current = get_live::<Contact>(&ctx.scope, id.into()).await?;
    check_contact_refs(ctx, &cmd.0).await?;
    let mut u = patch_update(&ctx.scope, &cmd.0, "contact").await?;
    if let Some(stage) = cmd.0.set_value("lifecycleStage") {
        let before = serde_json::to_value(current.lifecycle_stage).map_err(Error::internal)?;
        if &before != stage {
            u = u
                .set("previousLifecycleStage", before)
                .set("lifecycleStageUpdatedAt", ctx.now.to_canonical());
        }
    }
    if u.is_empty() {
        return Ok(current);
    }
    let updated: Contact = match update_live(&ctx.scope, id.into(), &u).await {
        Err(Error::Conflict { key }) if key == "email" => {
            let email = cmd.0.set_value("email").cloned().unwrap_or(Value::Null);
            if !release_trashed_email(&ctx.scope, &email).await? {
                return Err(Error::Conflict { key });
            }
            update_live(&ctx.scope, id.into(), &u).await?
        }
        other => other?,
    };
    let name = full_name(&updated);
    if name != full_name(&current) {
        opportunities::sync_contact_name(&ctx.scope, id, Some(&name)).await?;
    }
    Ok(updated)
}

/// The name deals show for a contact (as `opportunities` derives it).
pub fn full_name(c: &Contact) -> String {
    format!("{} {}", c.first_name, c.last_name)
        .trim()
        .to_owned()
}

/// One step of a contact purge. Later features (lead scores, workflow and campaign enrollments,
/// attachments) add theirs here; the contact itself is always the last step, so an interrupted
/// purge leaves the contact in place and no record pointing at a missing one (ADR 0011).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeStep {
    /// Deletes the contact's timeline.
    Activities,
    /// Takes the contact out of static lists.
    ListMemberships,
    /// Clears `contactId` and `contactName` on deals (deals outlive their contact).
    DealContact,
    /// Takes the contact out of deals' `associatedContacts`.
    DealAssociations,
    /// Clears `relatedContactId` on tasks.
    Tasks,
    /// Clears `relatedContactId` and `requesterId` on tickets (the requester's email stays).
    Tickets,
    /// Clears `linkedContactId` on other contacts.
    LinkedContacts,
    /// Deletes the merge records whose primary is the contact (they hold personal data).
    MergeRecords,
    /// Deletes the contact.
    Contact,
}

/// The purge, children first and the contact last.
pub const PURGE_STEPS: &[PurgeStep] = &[
    PurgeStep::Activities,
    PurgeStep::ListMemberships,
    PurgeStep::DealContact,
    PurgeStep::DealAssociations,
    PurgeStep::Tasks,
    PurgeStep::Tickets,
    PurgeStep::LinkedContacts,
    PurgeStep::MergeRecords,
    PurgeStep::Contact,
];

/// Runs one purge step; returns how many records it changed.
pub async fn purge_step(scope: &WorkspaceScope, id: ContactId, step: PurgeStep) -> Result<u64> {
    let hex = id.to_string();
    let is = |path: &'static str| Filter::eq(path, hex.clone());
    match step {
        PurgeStep::Activities => {
            scope
                .repo::<Activity>()
                .delete_many(&Filter::eq("entityType", "contact").and(is("entityId")))
                .await
        }
        PurgeStep::ListMemberships => {
            scope
                .repo::<ContactList>()
                .update_many(
                    &is("contacts"),
                    &Update::new().pull("contacts", hex.clone()),
                )
                .await
        }
        PurgeStep::DealContact => {
            scope
                .repo::<Opportunity>()
                .update_many(
                    &is("contactId"),
                    &Update::new().unset("contactId").unset("contactName"),
                )
                .await
        }
        PurgeStep::DealAssociations => {
            scope
                .repo::<Opportunity>()
                .update_many(
                    &is("associatedContacts"),
                    &Update::new().pull("associatedContacts", hex.clone()),
                )
                .await
        }
        PurgeStep::Tasks => {
            scope
                .repo::<Task>()
                .update_many(
                    &is("relatedContactId"),
                    &Update::new().unset("relatedContactId"),
                )
                .await
        }
        PurgeStep::Tickets => {
            let tickets = scope.repo::<Ticket>();
            let a = tickets
                .update_many(
                    &is("relatedContactId"),
                    &Update::new().unset("relatedContactId"),
                )
                .await?;
            let b = tickets
                .update_many(&is("requesterId"), &Update::new().unset("requesterId"))
                .await?;
            Ok(a + b)
        }
        PurgeStep::LinkedContacts => {
            scope
                .repo::<Contact>()
                .update_many(
                    &is("linkedContactId"),
                    &Update::new().unset("linkedContactId"),
                )
                .await
        }
        PurgeStep::MergeRecords => {
            scope
                .repo::<ContactMerge>()
                .delete_many(&is("primaryId"))
                .await
        }
        PurgeStep::Contact => scope.repo::<Contact>().delete(id).await.map(|()| 1),
    }
}

/// Deletes a contact for good (live or in the trash) with its timeline and list memberships,
/// clearing every other record's reference to it, in [`PURGE_STEPS`] order.
pub async fn purge(scope: &WorkspaceScope, id: ContactId) -> Result<()> {
    // NotFound before any step touches a reference.
    scope.repo::<Contact>().get(id).await?;
    for step in PURGE_STEPS {
        purge_step(scope, id, *step).await?;
    }
    Ok(())
}

/// The update that moves a contact to the trash. Its email moves to `trashedEmail`, outside the
/// unique key, so a new contact may take it; restoring checks it again (ADR 0011).
fn trash_update(now: Timestamp, email: Option<&str>, merged_into: Option<ContactId>) -> Update {
    let mut u = Update::new().set(DELETED_AT, now.to_canonical());
    if let Some(e) = email {
        u = u.unset("email").set("trashedEmail", e);
    }
    if let Some(p) = merged_into {
        u = u.set("mergedInto", p.to_string());
    }
    u
}

/// Moves `c` (as read) to the trash unless it changed email or left the live records meanwhile;
/// returns whether it moved.
async fn trash_as_read(
    ctx: &WriteCtx,
    c: &Contact,
    merged_into: Option<ContactId>,
) -> Result<bool> {
    let same = by_id(c.id.into()).and(live()).and(Filter::eq(
        "email",
        c.email.clone().map_or(Value::Null, Value::String),
    ));
    let n = ctx
        .scope
        .repo::<Contact>()
        .update_many(
            &same,
            &trash_update(ctx.now, c.email.as_deref(), merged_into),
        )
        .await?;
    Ok(n > 0)
}

/// Moves a live contact to the trash (`merged_into`: the contact a merge moved it into).
pub async fn trash(ctx: &WriteCtx, id: ContactId, merged_into: Option<ContactId>) -> Result<()> {
    // A concurrent email change makes the guarded write miss; read again, a few times.
    for _ in 0..3 {
        let c = get_live::<Contact>(&ctx.scope, id.into()).await?;
        if trash_as_read(ctx, &c, merged_into).await? {
            return Ok(());
        }
    }
    Err(Error::Unavailable(
        "the contact kept changing while being deleted; retry".into(),
    ))
}

/// Moves the live contacts among `ids` to the trash; returns how many moved.
pub async fn bulk_trash(ctx: &WriteCtx, ids: &[ObjectId]) -> Result<u64> {
    let found = ctx
        .scope
        .repo::<Contact>()
        .find(
            &ids_filter(ids).and(live()),
            &FindOptions {
                limit: Some(ids.len() as u64),
                ..FindOptions::default()
            },
        )
        .await?;
    let mut moved = 0;
    for c in &found {
        if trash_as_read(ctx, c, None).await? {
            moved += 1;
            continue;
        }
        match trash(ctx, c.id, None).await {
            Ok(()) => moved += 1,
            Err(Error::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}

/// Takes a contact out of the trash (a live one is returned as it is), giving it back its email:
/// 409 on `email` when a live contact took it meanwhile.
pub async fn restore_contact(scope: &WorkspaceScope, id: ContactId) -> Result<Contact> {
    let c = scope.repo::<Contact>().get(id).await?;
    if c.deleted_at.is_none() {
        return Ok(c);
    }
    let mut u = Update::new().unset(DELETED_AT).unset("mergedInto");
    if let Some(e) = &c.trashed_email {
        u = u.set("email", e.clone()).unset("trashedEmail");
    }
    let restored = scope
        .repo::<Contact>()
        .find_one_and_update(
            &by_id(id.into()).and(Filter::Ne(DELETED_AT.into(), Value::Null)),
            &u,
            false,
        )
        .await?;
    match restored {
        Some(c) => Ok(c),
        None => get_live(scope, id.into()).await,
    }
}

/// Frees `email` when a contact in the trash still holds it (trashed before emails were set
/// aside); returns whether one did.
async fn release_trashed_email(scope: &WorkspaceScope, email: &Value) -> Result<bool> {
    let Value::String(e) = email else {
        return Ok(false);
    };
    let n = scope
        .repo::<Contact>()
        .update_many(
            &Filter::eq("email", e.clone()).and(trash_filter(true)),
            &Update::new().unset("email").set("trashedEmail", e.clone()),
        )
        .await?;
    Ok(n > 0)
}

/// What a contact listing may filter on, besides `search` and `tags`.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Comma-separated statuses (any of).
    pub status: Option<String>,
    /// Comma-separated stages (any of).
    pub lifecycle_stage: Option<String>,
    pub assigned_to: Option<String>,
    pub company_id: Option<String>,
    /// The trash instead of the live contacts.
    pub deleted: bool,
}

impl ContactFilter {
    pub fn to_filter(&self) -> Result<Filter> {
        let mut f = trash_filter(self.deleted);
        for x in [
            enum_filter(self.status.as_deref(), "status", CONTACT_STATUSES)?,
            enum_filter(
                self.lifecycle_stage.as_deref(),
                "lifecycleStage",
                LIFECYCLE_STAGES,
            )?,
            id_filter(self.assigned_to.as_deref(), "assignedTo")?,
            id_filter(self.company_id.as_deref(), "companyId")?,
        ]
        .into_iter()
        .flatten()
        {
            f = f.and(x);
        }
        Ok(f)
    }
}

/// Replaces each document's `companyId` by the company (or null when it is missing or in the
/// trash), reading every company of the page in one query.
pub async fn expand_company(scope: &WorkspaceScope, docs: &mut [Document]) -> Result<()> {
    let mut ids: Vec<Value> = Vec::new();
    for d in docs.iter() {
        if let Some(v @ Value::String(_)) = d.get("companyId")
            && !ids.contains(v)
        {
            ids.push(v.clone());
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let n = ids.len() as u64;
    let companies = scope
        .repo::<Company>()
        .find(
            &Filter::In("_id".into(), ids).and(live()),
            &FindOptions {
                limit: Some(n),
                ..FindOptions::default()
            },
        )
        .await?;
    let by_id: HashMap<String, Value> = companies
        .iter()
        .map(|c| Ok((c.id.to_string(), Value::Object(to_document(c)?))))
        .collect::<Result<_>>()?;
    for d in docs.iter_mut() {
        if let Some(Value::String(id)) = d.get("companyId") {
            let v = by_id.get(id).cloned().unwrap_or(Value::Null);
            d.insert("companyId".into(), v);
        }
    }
    Ok(())
}

/// A bulk tag change: tags added (set-like) and removed on up to [`BULK_MAX`] contacts.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkTags {
    pub ids: Vec<ObjectId>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl BulkTags {
    pub fn parse(ids: &[String], add: &[String], remove: &[String]) -> Result<Self> {
        let ids = parse_ids(ids, "ids")?;
        let tags = |v: &[String], name: &str| {
            parse_tags(
                &Value::Array(v.iter().cloned().map(Value::String).collect()),
                name,
            )
        };
        let (add, remove) = (tags(add, "add")?, tags(remove, "remove")?);
        if add.is_empty() && remove.is_empty() {
            return Err(Error::invalid("add", "add or remove at least one tag"));
        }
        if let Some(t) = add.iter().find(|t| remove.contains(t)) {
            return Err(Error::invalid(
                "remove",
                format!("`{t}` is both added and removed"),
            ));
        }
        Ok(Self { ids, add, remove })
    }
}

/// Applies a bulk tag change to the live contacts among the ids; returns how many matched.
/// One update per tag: an update may change a path only once.
pub async fn bulk_tags(ctx: &WriteCtx, cmd: &BulkTags) -> Result<u64> {
    let repo = ctx.scope.repo::<Contact>();
    let filter = ids_filter(&cmd.ids).and(live());
    for t in &cmd.add {
        repo.update_many(&filter, &Update::new().add_to_set("tags", t.clone()))
            .await?;
    }
    for t in &cmd.remove {
        repo.update_many(&filter, &Update::new().pull("tags", t.clone()))
            .await?;
    }
    repo.count(&filter).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::entities::contact::{ContactStatus, LifecycleStage};
    use crate::id::WorkspaceId;
    use crate::query::{GroupBy, GroupRow};
    use crate::repo::Stores;
    use crate::schema::EntityDef;
    use crate::store::{DocumentStore, Tenant};
    use crate::time::SystemClock;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn err_field<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn enum_lists_match_the_entity_enums() {
        for s in CONTACT_STATUSES {
            serde_json::from_value::<ContactStatus>(json!(s)).unwrap();
        }
        for s in LIFECYCLE_STAGES {
            serde_json::from_value::<LifecycleStage>(json!(s)).unwrap();
        }
        assert!(serde_json::from_value::<ContactStatus>(json!("vip")).is_err());
    }

    #[test]
    fn create_needs_first_name_and_normalises() {
        assert_eq!(err_field(NewContact::parse(&obj(json!({})))), "firstName");
        assert_eq!(
            err_field(NewContact::parse(&obj(json!({"firstName": "   "})))),
            "firstName"
        );
        let c = NewContact::parse(&obj(json!({
            "firstName": " Ada ",
            "email": "  Ada@Example.COM ",
            "tags": [" a", "b", "a", ""],
            "address": {"city": " Oslo ", "street": ""},
            "lastName": null,
        })))
        .unwrap()
        .0;
        assert_eq!(c.set_value("firstName"), Some(&json!("Ada")));
        assert_eq!(c.set_value("email"), Some(&json!("ada@example.com")));
        assert_eq!(c.set_value("tags"), Some(&json!(["a", "b"])));
        assert_eq!(c.set_value("address"), Some(&json!({"city": "Oslo"})));
        assert_eq!(c.set_value("lastName"), Some(&json!("")));
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (json!({"firstName": "x".repeat(51)}), "firstName"),
            (
                json!({"firstName": "A", "lastName": "y".repeat(51)}),
                "lastName",
            ),
            (json!({"firstName": "A", "email": "not-an-email"}), "email"),
            (json!({"firstName": "A", "status": "vip"}), "status"),
            (json!({"firstName": "A", "status": null}), "status"),
            (
                json!({"firstName": "A", "lifecycleStage": "mql2"}),
                "lifecycleStage",
            ),
            (json!({"firstName": "A", "companyId": "nope"}), "companyId"),
            (json!({"firstName": "A", "tags": ["ok", 3]}), "tags[1]"),
            (
                json!({"firstName": "A", "address": {"planet": "Mars"}}),
                "address.planet",
            ),
            (
                json!({"firstName": "A", "customFields": []}),
                "customFields",
            ),
            (
                json!({"firstName": "A", "userId": "000000000000000000000001"}),
                "userId",
            ),
            (json!({"firstName": "A", "frstName": "typo"}), "frstName"),
        ];
        for (body, field) in cases {
            assert_eq!(
                err_field(NewContact::parse(&obj(body.clone()))),
                field,
                "{body}"
            );
        }
    }

    #[test]
    fn patch_sets_and_unsets_without_requiring() {
        let p = ContactPatch::parse(&obj(json!({"email": "", "phone": null, "tags": null})))
            .unwrap()
            .0;
        assert_eq!(p.get("email"), Some(&None));
        assert_eq!(p.get("phone"), Some(&None));
        assert_eq!(p.get("tags"), Some(&Some(json!([]))));
        assert_eq!(
            err_field(ContactPatch::parse(&obj(json!({"firstName": null})))),
            "firstName"
        );
    }

    #[test]
    fn web_addresses() {
        let spec = field("website", Kind::Url);
        for ok in [
            "https://acme.com",
            "http://acme.co.uk/about?x=1",
            "acme.com",
            "www.acme.com/path",
        ] {
            assert_eq!(
                parse_value(&spec, &json!(ok)).unwrap(),
                Some(json!(ok)),
                "{ok}"
            );
        }
        for bad in [
            "ftp://acme.com",
            "acme",
            "https://",
            "acme .com",
            "javascript:alert(1)",
        ] {
            assert!(parse_value(&spec, &json!(bad)).is_err(), "{bad}");
        }
        assert_eq!(parse_value(&spec, &json!(" ")).unwrap(), None);
    }

    #[test]
    fn numbers_and_scores() {
        let spec = field("n", Kind::Count);
        assert_eq!(parse_value(&spec, &json!(3)).unwrap(), Some(json!(3)));
        assert!(parse_value(&spec, &json!(-1)).is_err());
        assert!(parse_value(&spec, &json!(1.5)).is_err());
        let spec = field("n", Kind::NonNegative);
        assert!(parse_value(&spec, &json!(-0.5)).is_err());
        assert_eq!(parse_value(&spec, &json!(2.5)).unwrap(), Some(json!(2.5)));
        let spec = field("n", Kind::Score);
        assert!(parse_value(&spec, &json!(101)).is_err());
    }

    #[test]
    fn bulk_ids_are_bounded_and_named() {
        let many: Vec<String> = (0..=BULK_MAX).map(|_| ObjectId::new().to_hex()).collect();
        assert_eq!(err_field(parse_ids(&many, "ids")), "ids");
        assert_eq!(err_field(parse_ids(&[], "ids")), "ids");
        let bad = vec![ObjectId::new().to_hex(), "zz".to_owned()];
        assert_eq!(err_field(parse_ids(&bad, "ids")), "ids[1]");
        let id = ObjectId::new().to_hex();
        assert_eq!(parse_ids(&[id.clone(), id], "ids").unwrap().len(), 1);
        let ok = [ObjectId::new().to_hex()];
        assert_eq!(
            err_field(BulkTags::parse(&ok, &["a".into()], &["a".into()])),
            "remove"
        );
        assert_eq!(err_field(BulkTags::parse(&ok, &[], &[])), "add");
    }

    /// A store that records (operation, collection) and fails the `fail_at`-th write.
    #[derive(Debug, Default)]
    struct Recorder {
        ops: std::sync::Mutex<Vec<(&'static str, &'static str)>>,
        fail_at: Option<usize>,
    }

    impl Recorder {
        fn log(&self, op: &'static str, def: &'static EntityDef) -> Result<()> {
            let mut ops = self.ops.lock().unwrap();
            let writes = ops.iter().filter(|(o, _)| *o != "get").count();
            if op != "get" && self.fail_at == Some(writes) {
                return Err(Error::Unavailable("interrupted".into()));
            }
            ops.push((op, def.collection));
            Ok(())
        }
        fn ops(&self) -> Vec<(&'static str, &'static str)> {
            self.ops.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl DocumentStore for Recorder {
        async fn insert(
            &self,
            _: Tenant,
            def: &'static EntityDef,
            d: Document,
        ) -> Result<Document> {
            self.log("insert", def).map(|()| d)
        }
        async fn insert_many(
            &self,
            _: Tenant,
            def: &'static EntityDef,
            d: Vec<Document>,
        ) -> Result<u64> {
            self.log("insert_many", def).map(|()| d.len() as u64)
        }
        async fn get(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<Document> {
            self.log("get", def)?;
            let Tenant::Workspace(ws) = t else {
                return Err(Error::NotFound);
            };
            let mut c = Contact::new(ws, UserId::new(), "Ada");
            c.id = id.into();
            to_document(&c)
        }
        async fn find(
            &self,
            _: Tenant,
            def: &'static EntityDef,
            _: &Filter,
            _: &FindOptions,
        ) -> Result<Vec<Document>> {
            self.log("find", def).map(|()| Vec::new())
        }
        async fn count(&self, _: Tenant, def: &'static EntityDef, _: &Filter) -> Result<u64> {
            self.log("count", def).map(|()| 0)
        }
        async fn update_one(
            &self,
            t: Tenant,
            def: &'static EntityDef,
            id: ObjectId,
            _: &Update,
        ) -> Result<Document> {
            self.log("update_one", def)?;
            self.get(t, def, id).await
        }
        async fn update_many(
            &self,
            _: Tenant,
            def: &'static EntityDef,
            _: &Filter,
            _: &Update,
        ) -> Result<u64> {
            self.log("update_many", def).map(|()| 1)
        }
        async fn find_one_and_update(
            &self,
            _: Tenant,
            def: &'static EntityDef,
            _: &Filter,
            _: &Update,
            _: bool,
        ) -> Result<Option<Document>> {
            self.log("find_one_and_update", def).map(|()| None)
        }
        async fn delete_one(&self, _: Tenant, def: &'static EntityDef, _: ObjectId) -> Result<()> {
            self.log("delete_one", def)
        }
        async fn delete_many(&self, _: Tenant, def: &'static EntityDef, _: &Filter) -> Result<u64> {
            self.log("delete_many", def).map(|()| 1)
        }
        async fn aggregate(
            &self,
            _: Tenant,
            def: &'static EntityDef,
            _: &GroupBy,
        ) -> Result<Vec<GroupRow>> {
            self.log("aggregate", def).map(|()| Vec::new())
        }
    }

    fn scope_over(store: std::sync::Arc<Recorder>) -> WorkspaceScope {
        Stores::new(store, std::sync::Arc::new(SystemClock)).workspace(WorkspaceId::new())
    }

    fn data_writes(ops: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        ops.iter()
            .filter(|(o, c)| {
                *o != "get" && !["useractions", "domainevents", "eventoutbox"].contains(c)
            })
            .copied()
            .collect()
    }

    #[tokio::test]
    async fn purge_clears_children_before_deleting_the_contact() {
        let store = std::sync::Arc::new(Recorder::default());
        purge(&scope_over(store.clone()), ContactId::new())
            .await
            .unwrap();
        let writes = data_writes(&store.ops());
        assert_eq!(
            writes.last(),
            Some(&("delete_one", "contacts")),
            "{writes:?}"
        );
        for c in [
            "activities",
            "contactlists",
            "opportunities",
            "tasks",
            "tickets",
            "contactmerges",
        ] {
            let at = writes.iter().position(|(_, x)| *x == c);
            assert!(at.is_some_and(|i| i < writes.len() - 1), "{c}: {writes:?}");
        }
        assert_eq!(PURGE_STEPS.last(), Some(&PurgeStep::Contact));
        assert_eq!(
            PURGE_STEPS
                .iter()
                .filter(|s| **s == PurgeStep::Contact)
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn an_interrupted_purge_keeps_the_contact() {
        let full = std::sync::Arc::new(Recorder::default());
        purge(&scope_over(full.clone()), ContactId::new())
            .await
            .unwrap();
        let writes: Vec<_> = full
            .ops()
            .into_iter()
            .filter(|(o, _)| *o != "get")
            .collect();
        let n = writes.len();
        // This double writes a batch op by op; the contact's audit and event follow its delete.
        let delete_at = writes
            .iter()
            .position(|w| *w == ("delete_one", "contacts"))
            .unwrap();
        for fail_at in 0..n {
            let store = std::sync::Arc::new(Recorder {
                fail_at: Some(fail_at),
                ..Recorder::default()
            });
            let r = purge(&scope_over(store.clone()), ContactId::new()).await;
            assert!(r.is_err(), "write {fail_at} failed but the purge succeeded");
            let contact_gone = store
                .ops()
                .iter()
                .any(|(o, c)| *o == "delete_one" && *c == "contacts");
            assert!(
                !contact_gone || fail_at > delete_at,
                "write {fail_at}: {:?}",
                store.ops()
            );
        }
    }

    #[test]
    fn trashing_moves_the_email_out_of_the_unique_key() {
        let now = Timestamp::now();
        let p = ContactId::new();
        let u = trash_update(now, Some("ada@x.com"), Some(p));
        let paths: Vec<&str> = u.ops.iter().map(|o| o.path().as_str()).collect();
        assert_eq!(paths, ["deletedAt", "email", "trashedEmail", "mergedInto"]);
        assert!(matches!(&u.ops[1], crate::query::UpdateOp::Unset(_)));
        let u = trash_update(now, None, None);
        assert_eq!(u.ops.len(), 1);
    }

    #[test]
    fn list_filters() {
        let f = ContactFilter {
            status: Some("lead,customer".into()),
            company_id: Some(ObjectId::new().to_hex()),
            ..ContactFilter::default()
        };
        assert!(matches!(f.to_filter().unwrap(), Filter::And(v) if v.len() == 3));
        let bad = ContactFilter {
            lifecycle_stage: Some("x".into()),
            ..ContactFilter::default()
        };
        assert_eq!(err_field(bad.to_filter()), "lifecycleStage");
        let bad = ContactFilter {
            assigned_to: Some("me".into()),
            ..ContactFilter::default()
        };
        assert_eq!(err_field(bad.to_filter()), "assignedTo");
    }
}
