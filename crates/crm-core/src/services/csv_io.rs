//! CSV import and export of contacts and companies.
//!
//! Import validates every row with the create route's rules (`contacts`/`companies` field tables,
//! reference checks, `build` with the custom-field checks) before anything is written, so a
//! rejected or dry-run import writes nothing; new records then go in batches of
//! [`WRITE_BATCH`] through `insert_many`. Export writes a stable column order (`_id`, the
//! writable fields, `createdAt`, `updatedAt`, then `custom.<key>` per active definition) that
//! import reads back.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::contacts::{
    FieldSpec, Kind, Parsed, WriteCtx, build, check_assignee, check_company, parse_body,
    patch_update,
};
use crate::engine::Document;
use crate::entities::company::{Company, CompanyId};
use crate::entities::contact::{Contact, ContactId};
use crate::entities::custom_field::{CustomFieldDefinition, CustomFieldEntity, CustomFieldType};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::query::{Filter, FindOptions};
use crate::repo::{WorkspaceEntity, WorkspaceScope, to_document};
use crate::services::{companies, contacts, custom_fields};

/// Most data rows one import may hold.
pub const MAX_ROWS: usize = 10_000;
/// Records per `insert_many`.
pub const WRITE_BATCH: usize = 500;
/// Keys per duplicate lookup query.
const LOOKUP_BATCH: usize = 200;
/// Joins list cells (tags, multiselect values).
pub const LIST_SEPARATOR: char = ';';
/// Columns export writes and import ignores: the store owns them.
const SERVER_COLUMNS: &[&str] = &["_id", "createdAt", "updatedAt"];
const ADDRESS_PARTS: &[&str] = &["street", "city", "state", "country", "zipCode"];

/// Why an import could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// Not CSV: bad quoting, a row with a different number of cells, not UTF-8.
    #[error("malformed CSV at line {line}: {detail}")]
    Malformed { line: u64, detail: String },
    #[error(transparent)]
    Core(#[from] Error),
}

/// What a row whose key matches an existing record (or an earlier row) does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnDuplicate {
    #[default]
    Skip,
    /// Any duplicate or invalid row rejects the whole import.
    Fail,
    /// The row patches the existing record.
    Update,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub on_duplicate: OnDuplicate,
    pub dry_run: bool,
    /// CSV header -> field path (`firstName`, `address.city`, `custom.<key>`); `""` ignores the
    /// column. Headers not named here are matched by name.
    pub mapping: HashMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    Created,
    Updated,
    Skipped,
    Failed,
    /// Passed validation but was not written (the import was rejected).
    Valid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub field: Option<String>,
    /// `invalid`, `duplicate` or `not_found`.
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowReport {
    /// The 1-based line the row starts on (the header is line 1).
    pub row: u64,
    pub status: RowStatus,
    pub errors: Vec<RowError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub total: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    pub dry_run: bool,
    pub rows: Vec<RowReport>,
}

/// `Rejected`: `onDuplicate=fail` met a duplicate or invalid row; nothing was written.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportOutcome {
    Done(ImportReport),
    Rejected(ImportReport),
}

/// An entity CSV can carry.
pub trait CsvEntity: WorkspaceEntity + Clone {
    /// The create route's field table.
    const FIELDS: &'static [FieldSpec];
    const ENTITY_TYPE: &'static str;
    const CUSTOM: CustomFieldEntity;
    /// Reference fields and what they name.
    const REFS: &'static [(&'static str, RefKind)];
    fn base(ctx: &WriteCtx) -> Self;
    fn id_hex(&self) -> String;
    /// Keys that make two records duplicates (`email:..`, `name:..`, `domain:..`).
    fn dup_keys(p: &Parsed) -> Vec<String>;
    /// Existing records holding any of `keys`: (key, id, in the trash).
    fn find_by_keys(
        scope: &WorkspaceScope,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String, bool)>>> + Send;
    /// The patch route's service.
    fn patch(ctx: &WriteCtx, id: ObjectId, p: Parsed) -> impl Future<Output = Result<Self>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefKind {
    Company,
    Member,
}

fn str_keys<'a>(keys: &'a [String], prefix: &str) -> Vec<&'a str> {
    keys.iter().filter_map(|k| k.strip_prefix(prefix)).collect()
}

impl CsvEntity for Contact {
    const FIELDS: &'static [FieldSpec] = contacts::CONTACT_FIELDS;
    const ENTITY_TYPE: &'static str = "contact";
    const CUSTOM: CustomFieldEntity = CustomFieldEntity::Contact;
    const REFS: &'static [(&'static str, RefKind)] = &[
        ("companyId", RefKind::Company),
        ("assignedTo", RefKind::Member),
    ];

    fn base(ctx: &WriteCtx) -> Self {
        Contact::new(ctx.scope.id(), ctx.actor, "")
    }

    fn id_hex(&self) -> String {
        self.id.to_string()
    }

    fn dup_keys(p: &Parsed) -> Vec<String> {
        p.set_value("email")
            .and_then(Value::as_str)
            .map(|e| vec![format!("email:{e}")])
            .unwrap_or_default()
    }

    async fn find_by_keys(
        scope: &WorkspaceScope,
        keys: &[String],
    ) -> Result<Vec<(String, String, bool)>> {
        let emails = str_keys(keys, "email:");
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        // The unique key covers the trash too, so trashed contacts count.
        let found = scope
            .repo::<Contact>()
            .find(
                &Filter::In(
                    "email".into(),
                    emails.iter().map(|e| Value::from(*e)).collect(),
                ),
                &FindOptions::default(),
            )
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|c| {
                let email = c.email.clone()?;
                Some((
                    format!("email:{email}"),
                    c.id.to_string(),
                    c.deleted_at.is_some(),
                ))
            })
            .collect())
    }

    async fn patch(ctx: &WriteCtx, id: ObjectId, p: Parsed) -> Result<Self> {
        contacts::patch(ctx, ContactId::from(id), &contacts::ContactPatch(p)).await
    }
}

/// The host of a web address, lower-cased, without `www.`.
pub fn domain_of(website: &str) -> Option<String> {
    let lower = website.trim().to_ascii_lowercase();
    let rest = lower.split_once("://").map_or(lower.as_str(), |(_, r)| r);
    let host = rest
        .split(['/', '?', '#'])
        .next()?
        .rsplit('@')
        .next()?
        .split(':')
        .next()?;
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!host.is_empty()).then(|| host.to_owned())
}

fn company_keys(name: Option<&str>, website: Option<&str>) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
        keys.push(format!("name:{}", n.to_lowercase()));
    }
    if let Some(d) = website.and_then(domain_of) {
        keys.push(format!("domain:{d}"));
    }
    keys
}

impl CsvEntity for Company {
    const FIELDS: &'static [FieldSpec] = companies::COMPANY_FIELDS;
    const ENTITY_TYPE: &'static str = "company";
    const CUSTOM: CustomFieldEntity = CustomFieldEntity::Company;
    const REFS: &'static [(&'static str, RefKind)] = &[
        ("parentCompanyId", RefKind::Company),
        ("assignedTo", RefKind::Member),
    ];

    fn base(ctx: &WriteCtx) -> Self {
        Company::new(ctx.scope.id(), ctx.actor, "")
    }

    fn id_hex(&self) -> String {
        self.id.to_string()
    }

    fn dup_keys(p: &Parsed) -> Vec<String> {
        company_keys(
            p.set_value("name").and_then(Value::as_str),
            p.set_value("website").and_then(Value::as_str),
        )
    }

    async fn find_by_keys(
        scope: &WorkspaceScope,
        keys: &[String],
    ) -> Result<Vec<(String, String, bool)>> {
        // Names and domains are compared case-insensitively, so candidates come from substring
        // matches and are compared exactly here.
        let mut any: Vec<Filter> = str_keys(keys, "name:")
            .into_iter()
            .map(|n| Filter::Contains("name".into(), n.to_owned()))
            .collect();
        any.extend(
            str_keys(keys, "domain:")
                .into_iter()
                .map(|d| Filter::Contains("website".into(), d.to_owned())),
        );
        if any.is_empty() {
            return Ok(Vec::new());
        }
        let found = scope
            .repo::<Company>()
            .find(
                &Filter::Or(any).and(contacts::live()),
                &FindOptions::default(),
            )
            .await?;
        let wanted: HashSet<&String> = keys.iter().collect();
        let mut out = Vec::new();
        for c in found {
            for k in company_keys(Some(&c.name), c.website.as_deref()) {
                if wanted.contains(&k) {
                    out.push((k, c.id.to_string(), false));
                }
            }
        }
        Ok(out)
    }

    async fn patch(ctx: &WriteCtx, id: ObjectId, p: Parsed) -> Result<Self> {
        companies::patch(ctx, CompanyId::from(id), &companies::CompanyPatch(p)).await
    }
}

// ---- columns ----

/// Where a CSV column goes.
#[derive(Debug, Clone)]
enum Dest {
    Field(&'static FieldSpec),
    Address(&'static str),
    Custom(String),
    Ignore,
}

impl PartialEq for Dest {
    fn eq(&self, other: &Self) -> bool {
        self.path() == other.path()
    }
}

impl Dest {
    fn path(&self) -> Option<String> {
        match self {
            Dest::Field(s) => Some(s.name.to_owned()),
            Dest::Address(p) => Some(format!("address.{p}")),
            Dest::Custom(k) => Some(format!("customFields.{k}")),
            Dest::Ignore => None,
        }
    }
}

/// Lower-case letters and digits only: "First Name", "first_name" and "firstName" agree.
fn squash(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn resolve(name: &str, specs: &'static [FieldSpec], defs: &[CustomFieldDefinition]) -> Dest {
    let name = name.trim();
    if name.is_empty() {
        return Dest::Ignore;
    }
    if SERVER_COLUMNS.iter().any(|c| c.eq_ignore_ascii_case(name)) {
        return Dest::Ignore;
    }
    let custom = |key: &str| {
        let sq = squash(key);
        defs.iter()
            .find(|d| d.field_key == key)
            .or_else(|| defs.iter().find(|d| squash(&d.field_key) == sq))
            .map_or_else(|| key.to_owned(), |d| d.field_key.clone())
    };
    for prefix in ["customFields.", "custom."] {
        if let Some(key) = strip_prefix_ci(name, prefix) {
            return Dest::Custom(custom(key.trim()));
        }
    }
    let sq = squash(strip_prefix_ci(name, "address.").unwrap_or(name));
    if let Some(s) = specs
        .iter()
        .find(|s| !matches!(s.kind, Kind::Custom | Kind::Address) && squash(s.name) == sq)
    {
        return Dest::Field(s);
    }
    if specs.iter().any(|s| s.kind == Kind::Address)
        && let Some(p) = ADDRESS_PARTS.iter().find(|p| squash(p) == sq)
    {
        return Dest::Address(p);
    }
    if let Some(d) = defs
        .iter()
        .find(|d| squash(&d.field_key) == sq || squash(&d.field_label) == sq)
    {
        return Dest::Custom(d.field_key.clone());
    }
    Dest::Custom(name.to_owned())
}

fn columns(
    headers: &csv::StringRecord,
    mapping: &HashMap<String, String>,
    specs: &'static [FieldSpec],
    defs: &[CustomFieldDefinition],
) -> Result<Vec<Dest>> {
    for k in mapping.keys() {
        if !headers.iter().any(|h| h == k) {
            return Err(Error::invalid(
                format!("mapping.{k}"),
                "no column has this header",
            ));
        }
    }
    let mut out: Vec<Dest> = Vec::with_capacity(headers.len());
    for h in headers {
        let dest = match mapping.get(h) {
            Some(path) => {
                let d = resolve(path, specs, defs);
                if d == Dest::Custom(path.trim().to_owned())
                    && !strip_prefix_ci(path.trim(), "custom").is_some_and(|r| r.contains('.'))
                {
                    return Err(Error::invalid(
                        format!("mapping.{h}"),
                        format!("`{path}` is not a field"),
                    ));
                }
                d
            }
            None => resolve(h, specs, defs),
        };
        if dest != Dest::Ignore && out.contains(&dest) {
            return Err(Error::invalid(
                "header",
                format!("two columns map to `{}`", dest.path().unwrap_or_default()),
            ));
        }
        out.push(dest);
    }
    Ok(out)
}

/// Export's guard against spreadsheet formulas, undone on import.
fn unguard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => cell,
    }
}

fn number(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        return Value::from(i);
    }
    s.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or_else(|| Value::String(s.to_owned()), Value::Number)
}

fn boolean(s: &str) -> Value {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Value::Bool(true),
        "false" | "no" | "0" => Value::Bool(false),
        _ => Value::String(s.to_owned()),
    }
}

fn list(s: &str) -> Value {
    Value::Array(
        s.split(LIST_SEPARATOR)
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(|x| Value::String(x.to_owned()))
            .collect(),
    )
}

/// A cell as the JSON value the create route would get; values that do not fit the type stay
/// text, so the field's own check names the problem.
fn cell_value(dest: &Dest, s: &str, defs: &[CustomFieldDefinition]) -> Value {
    match dest {
        Dest::Field(spec) => match spec.kind {
            Kind::Tags => list(s),
            Kind::NonNegative | Kind::Count | Kind::Score => number(s),
            Kind::Bool => boolean(s),
            _ => Value::String(s.to_owned()),
        },
        Dest::Custom(key) => match defs.iter().find(|d| &d.field_key == key) {
            Some(d) => match d.field_type {
                CustomFieldType::Number | CustomFieldType::Currency => number(s),
                CustomFieldType::Boolean => boolean(s),
                CustomFieldType::Multiselect => list(s),
                CustomFieldType::Relation if d.relation_config.allow_multiple => list(s),
                _ => Value::String(s.to_owned()),
            },
            None => Value::String(s.to_owned()),
        },
        Dest::Address(_) | Dest::Ignore => Value::String(s.to_owned()),
    }
}

/// One row as a create body; blank cells are left out.
fn row_body(cols: &[Dest], rec: &csv::StringRecord, defs: &[CustomFieldDefinition]) -> Document {
    let mut body = Map::new();
    let mut address = Map::new();
    let mut custom = Map::new();
    for (dest, raw) in cols.iter().zip(rec.iter()) {
        let s = unguard(raw.trim()).trim();
        if s.is_empty() {
            continue;
        }
        let v = cell_value(dest, s, defs);
        match dest {
            Dest::Field(spec) => {
                body.insert(spec.name.to_owned(), v);
            }
            Dest::Address(p) => {
                address.insert((*p).to_owned(), v);
            }
            Dest::Custom(k) => {
                custom.insert(k.clone(), v);
            }
            Dest::Ignore => {}
        }
    }
    if !address.is_empty() {
        body.insert("address".into(), Value::Object(address));
    }
    if !custom.is_empty() {
        body.insert("customFields".into(), Value::Object(custom));
    }
    body
}

fn malformed(e: &csv::Error) -> CsvError {
    let line = e.position().map_or(1, csv::Position::line);
    let detail = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} cells, found {len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_owned(),
        _ => e.to_string(),
    };
    CsvError::Malformed { line, detail }
}

/// The header and the data rows with the line each starts on.
fn read(bytes: &[u8]) -> Result<(csv::StringRecord, Vec<(u64, csv::StringRecord)>), CsvError> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = r.headers().map_err(|e| malformed(&e))?.clone();
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(CsvError::Malformed {
            line: 1,
            detail: "the first line must name the columns".into(),
        });
    }
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| malformed(&e))?;
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(Error::invalid("file", format!("holds more than {MAX_ROWS} rows")).into());
        }
        let line = rec.position().map_or(0, csv::Position::line);
        rows.push((line, rec));
    }
    Ok((headers, rows))
}

// ---- import ----

fn row_error(e: Error) -> Result<RowError> {
    Ok(match e {
        Error::Invalid { field, reason } => RowError {
            field: Some(field),
            code: "invalid".into(),
            message: reason,
        },
        Error::Conflict { key } => RowError {
            message: format!("a record with this `{key}` exists"),
            field: Some(key),
            code: "duplicate".into(),
        },
        Error::NotFound => RowError {
            field: None,
            code: "not_found".into(),
            message: "the record to update is gone".into(),
        },
        other => return Err(other),
    })
}

fn duplicate(key: &str, message: String) -> RowError {
    RowError {
        field: key.split_once(':').map(|(f, _)| match f {
            "domain" => "website".to_owned(),
            f => f.to_owned(),
        }),
        code: "duplicate".into(),
        message,
    }
}

enum Plan<E> {
    Create(Box<E>),
    Update(ObjectId, Parsed),
    /// A duplicate left alone: the existing record's id when it is stored.
    Skip(Option<String>, RowError),
    Fail(Vec<RowError>),
}

/// Reference checks of the create and patch routes, remembered per value: a file names the
/// same few companies and owners many times.
struct RefCache<'a> {
    ctx: &'a WriteCtx,
    seen: HashMap<(RefKind, String), Option<Error>>,
}

impl RefCache<'_> {
    async fn check<E: CsvEntity>(&mut self, p: &Parsed) -> Result<()> {
        for (name, kind) in E::REFS {
            let Some(v) = p.set_value(name) else {
                continue;
            };
            let key = (*kind, v.to_string());
            let outcome = match self.seen.get(&key) {
                Some(o) => o.clone(),
                None => {
                    let r = match kind {
                        RefKind::Company => check_company(&self.ctx.scope, v, name).await,
                        RefKind::Member => check_assignee(self.ctx, v, name).await,
                    };
                    let o = match r {
                        Ok(()) => None,
                        Err(e @ Error::Invalid { .. }) => Some(e),
                        Err(e) => return Err(e),
                    };
                    self.seen.insert(key, o.clone());
                    o
                }
            };
            if let Some(e) = outcome {
                // The cached error names the field of the row that first met the value.
                return Err(match e {
                    Error::Invalid { reason, .. } => Error::invalid(*name, reason),
                    other => other,
                });
            }
        }
        Ok(())
    }
}

async fn existing<E: CsvEntity>(
    scope: &WorkspaceScope,
    keys: Vec<String>,
) -> Result<HashMap<String, (String, bool)>> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(LOOKUP_BATCH) {
        for (k, id, trashed) in E::find_by_keys(scope, chunk).await? {
            out.entry(k).or_insert((id, trashed));
        }
    }
    Ok(out)
}

/// Validates every row, then (unless a dry run or rejected) writes: new records in batches,
/// updates one by one through the patch service.
pub async fn import<E: CsvEntity>(
    ctx: &WriteCtx,
    bytes: &[u8],
    opts: &ImportOptions,
) -> Result<ImportOutcome, CsvError> {
    let (headers, records) = read(bytes)?;
    let defs = custom_fields::active_definitions(&ctx.scope, E::CUSTOM).await?;
    let cols = columns(&headers, &opts.mapping, E::FIELDS, &defs)?;

    // Shapes first (no store access), to learn each row's duplicate keys.
    let mut shaped: Vec<(u64, Document, Result<Parsed>)> = Vec::with_capacity(records.len());
    let mut all_keys: Vec<String> = Vec::new();
    let mut seen_keys: HashSet<String> = HashSet::new();
    for (line, rec) in &records {
        let body = row_body(&cols, rec, &defs);
        let parsed = parse_body(E::FIELDS, &body, true);
        if let Ok(p) = &parsed {
            for k in E::dup_keys(p) {
                if seen_keys.insert(k.clone()) {
                    all_keys.push(k);
                }
            }
        }
        shaped.push((*line, body, parsed));
    }
    let stored = existing::<E>(&ctx.scope, all_keys).await?;

    let mut refs = RefCache {
        ctx,
        seen: HashMap::new(),
    };
    // Keys claimed by earlier rows of the file, with their line.
    let mut claimed: HashMap<String, u64> = HashMap::new();
    let mut plans: Vec<(u64, Plan<E>)> = Vec::with_capacity(shaped.len());
    for (line, body, parsed) in shaped {
        let plan = match parsed {
            Err(e) => Plan::Fail(vec![row_error(e)?]),
            Ok(p) => {
                let row = Row {
                    line,
                    body: &body,
                    partial: p,
                };
                plan_row::<E>(&mut refs, opts.on_duplicate, &stored, &mut claimed, row).await?
            }
        };
        plans.push((line, plan));
    }

    let rejected = opts.on_duplicate == OnDuplicate::Fail
        && plans
            .iter()
            .any(|(_, p)| matches!(p, Plan::Fail(_) | Plan::Skip(..)));
    if rejected || opts.dry_run {
        let report = dry_report(&plans, opts.dry_run, rejected);
        return Ok(if rejected {
            ImportOutcome::Rejected(report)
        } else {
            ImportOutcome::Done(report)
        });
    }
    write(ctx, opts.on_duplicate, plans)
        .await
        .map(ImportOutcome::Done)
}

struct Row<'a> {
    line: u64,
    body: &'a Document,
    /// The body checked field by field without the required ones (learns the keys).
    partial: Parsed,
}

/// A failed check becomes the row's error; store failures abort the import.
macro_rules! or_fail {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Plan::Fail(vec![row_error(e)?])),
        }
    };
}

async fn plan_row<E: CsvEntity>(
    refs: &mut RefCache<'_>,
    mode: OnDuplicate,
    stored: &HashMap<String, (String, bool)>,
    claimed: &mut HashMap<String, u64>,
    row: Row<'_>,
) -> Result<Plan<E>> {
    let ctx = refs.ctx;
    let keys = E::dup_keys(&row.partial);
    if let Some((k, first)) = keys.iter().find_map(|k| claimed.get(k).map(|l| (k, *l))) {
        let e = duplicate(k, format!("repeats the record of line {first}"));
        // Which of two rows should win an update is a guess; neither is made.
        return Ok(match mode {
            OnDuplicate::Update => Plan::Fail(vec![e]),
            _ => Plan::Skip(None, e),
        });
    }
    let found = keys
        .iter()
        .find_map(|k| stored.get(k).map(|(id, trashed)| (k, id, *trashed)));
    let plan = match found {
        Some((k, id, true)) => {
            let e = duplicate(k, "a record in the trash has this value".into());
            match mode {
                OnDuplicate::Update => Plan::Fail(vec![e]),
                _ => Plan::Skip(Some(id.clone()), e),
            }
        }
        Some((k, id, false)) if mode != OnDuplicate::Update => Plan::Skip(
            Some(id.clone()),
            duplicate(k, "a record with this value exists".into()),
        ),
        Some((_, id, false)) => {
            let oid = or_fail!(ObjectId::parse_str(id).map_err(|_| Error::NotFound));
            or_fail!(refs.check::<E>(&row.partial).await);
            // The patch route's checks, without writing: the update is built and dropped.
            or_fail!(patch_update(&ctx.scope, &row.partial, E::ENTITY_TYPE).await);
            Plan::Update(oid, row.partial)
        }
        None => {
            let full = or_fail!(parse_body(E::FIELDS, row.body, false));
            or_fail!(refs.check::<E>(&full).await);
            let e = or_fail!(build(&ctx.scope, &E::base(ctx), &full, E::ENTITY_TYPE).await);
            Plan::Create(Box::new(e))
        }
    };
    if matches!(plan, Plan::Create(_) | Plan::Update(..)) {
        for k in keys {
            claimed.insert(k, row.line);
        }
    }
    Ok(plan)
}

fn tally(rows: Vec<RowReport>, dry_run: bool) -> ImportReport {
    let count = |s: RowStatus| rows.iter().filter(|r| r.status == s).count() as u64;
    ImportReport {
        total: rows.len() as u64,
        created: count(RowStatus::Created),
        updated: count(RowStatus::Updated),
        skipped: count(RowStatus::Skipped),
        failed: count(RowStatus::Failed),
        dry_run,
        rows,
    }
}

fn report_row(row: u64, status: RowStatus, errors: Vec<RowError>, id: Option<String>) -> RowReport {
    RowReport {
        row,
        status,
        errors,
        id,
    }
}

/// What the plans would do (dry run), or why they were rejected (nothing written).
fn dry_report<E: CsvEntity>(
    plans: &[(u64, Plan<E>)],
    dry_run: bool,
    rejected: bool,
) -> ImportReport {
    let ok = |s: RowStatus| if rejected { RowStatus::Valid } else { s };
    let rows = plans
        .iter()
        .map(|(line, p)| match p {
            Plan::Create(_) => report_row(*line, ok(RowStatus::Created), Vec::new(), None),
            Plan::Update(id, _) => {
                report_row(*line, ok(RowStatus::Updated), Vec::new(), Some(id.to_hex()))
            }
            Plan::Skip(id, e) => {
                let s = if rejected {
                    RowStatus::Failed
                } else {
                    RowStatus::Skipped
                };
                report_row(*line, s, vec![e.clone()], id.clone())
            }
            Plan::Fail(errs) => report_row(*line, RowStatus::Failed, errs.clone(), None),
        })
        .collect();
    tally(rows, dry_run)
}

async fn write<E: CsvEntity>(
    ctx: &WriteCtx,
    mode: OnDuplicate,
    plans: Vec<(u64, Plan<E>)>,
) -> Result<ImportReport, CsvError> {
    let mut rows: Vec<RowReport> = Vec::with_capacity(plans.len());
    let mut creates: Vec<(usize, E)> = Vec::new();
    let mut updates: Vec<(usize, ObjectId, Parsed)> = Vec::new();
    for (i, (line, plan)) in plans.into_iter().enumerate() {
        let r = match plan {
            Plan::Create(e) => {
                let id = e.id_hex();
                creates.push((i, *e));
                report_row(line, RowStatus::Created, Vec::new(), Some(id))
            }
            Plan::Update(id, p) => {
                updates.push((i, id, p));
                report_row(line, RowStatus::Updated, Vec::new(), Some(id.to_hex()))
            }
            Plan::Skip(id, e) => report_row(line, RowStatus::Skipped, vec![e], id),
            Plan::Fail(errs) => report_row(line, RowStatus::Failed, errs, None),
        };
        rows.push(r);
    }
    let repo = ctx.scope.repo::<E>();
    for batch in creates.chunks(WRITE_BATCH) {
        let es: Vec<E> = batch.iter().map(|(_, e)| e.clone()).collect();
        match repo.insert_many(&es).await {
            Ok(_) => {}
            // Someone wrote a duplicate since validation: one by one, to find the rows it hit.
            Err(Error::Conflict { .. }) => {
                for (i, e) in batch {
                    match repo.insert(e).await {
                        Ok(_) => {}
                        Err(err @ Error::Conflict { .. }) => {
                            let r = &mut rows[*i];
                            r.status = match mode {
                                OnDuplicate::Skip => RowStatus::Skipped,
                                _ => RowStatus::Failed,
                            };
                            r.id = None;
                            r.errors.push(row_error(err)?);
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    for (i, id, p) in updates {
        if let Err(e) = E::patch(ctx, id, p).await {
            let r = &mut rows[i];
            r.status = RowStatus::Failed;
            r.errors.push(row_error(e)?);
        }
    }
    Ok(tally(rows, false))
}

// ---- export ----

/// One export column: its header and the document path it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub header: String,
    path: Vec<String>,
}

/// `_id`, the writable fields (the address split in parts), `createdAt`, `updatedAt`, then one
/// `custom.<key>` per definition, in the definitions' order.
pub fn export_columns<E: CsvEntity>(defs: &[CustomFieldDefinition]) -> Vec<Column> {
    let col = |header: String, path: &[&str]| Column {
        header,
        path: path.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut out = vec![col("_id".into(), &["_id"])];
    for spec in E::FIELDS {
        match spec.kind {
            Kind::Custom => {}
            Kind::Address => out.extend(
                ADDRESS_PARTS
                    .iter()
                    .map(|p| col(format!("address.{p}"), &["address", p])),
            ),
            _ => out.push(col(spec.name.into(), &[spec.name])),
        }
    }
    out.push(col("createdAt".into(), &["createdAt"]));
    out.push(col("updatedAt".into(), &["updatedAt"]));
    out.extend(defs.iter().map(|d| {
        col(
            format!("custom.{}", d.field_key),
            &["customFields", &d.field_key],
        )
    }));
    out
}

/// Cells a spreadsheet would run as a formula get a leading `'`.
fn guard(s: String) -> String {
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => guard(s.clone()),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Array(items)) => guard(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(&LIST_SEPARATOR.to_string()),
        ),
        Some(obj @ Value::Object(_)) => guard(obj.to_string()),
    }
}

fn lookup<'a>(doc: &'a Document, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(doc.get(first)?, |v, seg| v.as_object()?.get(seg))
}

fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new())
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>> {
    w.into_inner().map_err(|e| Error::internal(e.error()))
}

/// The header line.
pub fn header_line(cols: &[Column]) -> Result<Vec<u8>> {
    let mut w = writer();
    w.write_record(cols.iter().map(|c| c.header.as_str()))
        .map_err(Error::internal)?;
    finish(w)
}

/// One line per record, RFC 4180 quoted.
pub fn record_lines<E: CsvEntity>(cols: &[Column], records: &[E]) -> Result<Vec<u8>> {
    let mut w = writer();
    for r in records {
        let doc = to_document(r)?;
        w.write_record(cols.iter().map(|c| cell(lookup(&doc, &c.path))))
            .map_err(Error::internal)?;
    }
    finish(w)
}
