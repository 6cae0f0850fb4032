//! `doctor`: a read-only check of a database before (and after) pointing the server at it.
//!
//! Reads every declared collection in `_id` pages over every tenant and reports, per collection:
//! documents read, documents that do not fit (first reasons), references to records that are gone
//! (a workspace, or an opportunity's contact, company or pipeline), documents that would break a
//! declared unique key, and indexes present, missing and to be replaced. Memory grows with the ids
//! of the referenced collections and the unique-key values, never with whole documents.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::fit::{Unfit, check_document, decode_reporting};
use super::{IndexInfo, LegacyAdmin, key_text};
use crate::engine::Document;
use crate::entities;
use crate::error::Result;
use crate::schema::{Dir, EntityDef, FieldKind, ID_FIELD};

/// Documents read per round trip.
pub const PAGE: usize = 1_000;
/// Examples kept per kind of finding and collection.
pub const FIRST: usize = 5;
/// Progress is reported every this many documents.
pub const PROGRESS_EVERY: u64 = 10_000;

/// Where references point: `(collection, field, target collection)`.
const REFS: &[(&str, &str, &str)] = &[
    ("contacts", "companyId", "companies"),
    ("opportunities", "contactId", "contacts"),
    ("opportunities", "companyId", "companies"),
    ("opportunities", "pipelineId", "pipelines"),
    ("tasks", "relatedContactId", "contacts"),
    ("tasks", "relatedCompanyId", "companies"),
    ("tasks", "relatedOpportunityId", "opportunities"),
    ("activities", "opportunityId", "opportunities"),
];

/// Collections whose ids are kept for the reference checks, scanned first in this order.
const TARGETS: &[&str] = &[
    "projects",
    "companies",
    "pipelines",
    "contacts",
    "opportunities",
];

/// The original's legacy deals, folded into opportunities by migration 4.
pub const LEGACY_DEALS: &str = "deals";

type Decode = fn(&EntityDef, Document) -> Option<Unfit>;

fn typed<E: DeserializeOwned>(def: &EntityDef, doc: Document) -> Option<Unfit> {
    decode_reporting::<E>(def, doc).err()
}

/// The typed model of a core collection, to try each document against.
fn decoder(collection: &str) -> Option<Decode> {
    use entities::*;
    Some(match collection {
        "contacts" => typed::<contact::Contact>,
        "companies" => typed::<company::Company>,
        "opportunities" => typed::<opportunity::Opportunity>,
        "pipelines" => typed::<pipeline::Pipeline>,
        "tasks" => typed::<task::Task>,
        "activities" => typed::<activity::Activity>,
        "tickets" => typed::<ticket::Ticket>,
        "users" => typed::<user::User>,
        "projects" => typed::<project::Project>,
        "teammembers" => typed::<team_member::TeamMember>,
        "customfielddefinitions" => typed::<custom_field::CustomFieldDefinition>,
        _ => return None,
    })
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexReport {
    pub present: Vec<String>,
    /// Declared but absent: start-up creates them.
    pub missing: Vec<String>,
    /// An index on a declared unique key's fields that is not the declared one (the original's
    /// sparse `{workspaceId, email}`): a migration replaces it.
    pub replace: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectionReport {
    pub collection: String,
    pub read: u64,
    pub unfit: u64,
    pub unfit_first: Vec<Unfit>,
    pub orphans: u64,
    pub orphans_first: Vec<String>,
    pub conflicts: u64,
    pub conflicts_first: Vec<String>,
    /// `None` where the store keeps its own indexes (SQLite).
    pub indexes: Option<IndexReport>,
}

impl CollectionReport {
    fn new(collection: &str) -> Self {
        Self {
            collection: collection.to_owned(),
            ..Self::default()
        }
    }

    /// Findings that need a decision: documents that do not fit, dangling references, unique
    /// conflicts, indexes to replace. Missing indexes are not: start-up creates them.
    pub fn findings(&self) -> u64 {
        self.unfit
            + self.orphans
            + self.conflicts
            + self.indexes.as_ref().map_or(0, |i| i.replace.len() as u64)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub backend: String,
    pub collections: Vec<CollectionReport>,
    /// Documents in the legacy `deals` collection, when it exists.
    pub legacy_deals: Option<u64>,
    /// What migration 4 would do with them (a dry run).
    pub deals_fold: Option<super::deals::FoldReport>,
}

impl Report {
    /// Collection findings plus the legacy deals the fold cannot place.
    pub fn findings(&self) -> u64 {
        let deals = self
            .deals_fold
            .as_ref()
            .map_or(0, |f| f.blocked.len() as u64);
        self.collections
            .iter()
            .map(CollectionReport::findings)
            .sum::<u64>()
            + deals
    }

    pub fn get(&self, collection: &str) -> Option<&CollectionReport> {
        self.collections.iter().find(|c| c.collection == collection)
    }

    pub fn read(&self) -> u64 {
        self.collections.iter().map(|c| c.read).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "doctor: {} store, read-only", self.backend)?;
        let quiet = |c: &&CollectionReport| {
            c.read == 0
                && c.findings() == 0
                && c.indexes.as_ref().is_none_or(|i| i.missing.is_empty())
        };
        let hidden = self.collections.iter().filter(quiet).count();
        for c in self.collections.iter().filter(|c| !quiet(c)) {
            let mut line = format!("{:<24} read {:>8}", c.collection, c.read);
            let _ = write!(
                line,
                "  unfit {}  orphans {}  conflicts {}",
                c.unfit, c.orphans, c.conflicts
            );
            if let Some(ix) = &c.indexes {
                let _ = write!(
                    line,
                    "  indexes {} present, {} missing, {} to replace",
                    ix.present.len(),
                    ix.missing.len(),
                    ix.replace.len()
                );
            }
            writeln!(f, "{line}")?;
            for u in &c.unfit_first {
                writeln!(f, "    unfit     {u}")?;
            }
            for o in &c.orphans_first {
                writeln!(f, "    orphan    {o}")?;
            }
            for k in &c.conflicts_first {
                writeln!(f, "    conflict  {k}")?;
            }
            if let Some(ix) = &c.indexes {
                for m in &ix.missing {
                    writeln!(f, "    missing   {m} (created at start-up)")?;
                }
                for r in &ix.replace {
                    writeln!(f, "    replace   {r}")?;
                }
            }
        }
        if let Some(n) = self.legacy_deals {
            writeln!(
                f,
                "legacy `deals`: {n} documents (fold into opportunities: migration 4)"
            )?;
        }
        if let Some(p) = &self.deals_fold {
            writeln!(
                f,
                "    dry run   {} to fold, {} folded already, {} cannot be folded",
                p.folded,
                p.already,
                p.blocked.len()
            )?;
            for b in p.blocked.iter().take(FIRST) {
                writeln!(f, "    blocked   {b}")?;
            }
        }
        if hidden > 0 {
            writeln!(
                f,
                "({hidden} empty collections with nothing to report not shown)"
            )?;
        }
        let findings = self.findings();
        writeln!(
            f,
            "summary: {} collections, {} documents read, {} findings{}",
            self.collections.len(),
            self.read(),
            findings,
            if findings == 0 { " (clean)" } else { "" }
        )
    }
}

fn dir_value(d: Dir) -> Value {
    Value::from(if d == Dir::Asc { 1 } else { -1 })
}

fn keys_of(pairs: &[(&str, Dir)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, d)| ((*k).to_owned(), dir_value(*d)))
        .collect()
}

fn same_keys(a: &[(String, Value)], b: &[(String, Value)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.as_f64() == vb.as_f64())
}

/// The declared unique keys as index keys (tenant first).
pub fn unique_keys(def: &EntityDef) -> Vec<(&'static str, Vec<(String, Value)>)> {
    def.unique
        .iter()
        .map(|uk| {
            let mut keys = Vec::new();
            if let Some(t) = def.tenant_field() {
                keys.push((t, Dir::Asc));
            }
            keys.extend(uk.fields.iter().map(|f| (*f, Dir::Asc)));
            (uk.name, keys_of(&keys))
        })
        .collect()
}

/// Present, missing and to-replace indexes of one collection.
pub fn compare_indexes(def: &EntityDef, present: &[IndexInfo]) -> IndexReport {
    let mut r = IndexReport {
        present: present
            .iter()
            .map(|i| format!("{} {}", i.name, i.key_text()))
            .collect(),
        ..IndexReport::default()
    };
    let uniques = unique_keys(def);
    // The original's global unique indexes on a key this server scopes per workspace (its
    // `ticketNumber`) keep refusing what the declared key allows.
    if let Some(t) = def.tenant_field() {
        for (name, keys) in &uniques {
            let unscoped: Vec<(String, Value)> =
                keys.iter().filter(|(k, _)| k != t).cloned().collect();
            for i in present
                .iter()
                .filter(|i| i.unique && same_keys(&i.keys, &unscoped))
            {
                r.replace.push(format!(
                    "{} {} unique across workspaces -> per-workspace `{name}` (drop it by hand)",
                    i.name,
                    i.key_text()
                ));
            }
        }
    }
    for (name, keys) in &uniques {
        let declared = present
            .iter()
            .any(|i| same_keys(&i.keys, keys) && i.unique && i.partial.is_some() && !i.sparse);
        for i in present.iter().filter(|i| same_keys(&i.keys, keys)) {
            if !(i.unique && i.partial.is_some() && !i.sparse) {
                r.replace.push(format!(
                    "{} {}{}{} -> partial unique `{name}`",
                    i.name,
                    i.key_text(),
                    if i.unique { " unique" } else { "" },
                    if i.sparse { " sparse" } else { "" },
                ));
            }
        }
        if !declared {
            r.missing
                .push(format!("{} unique partial (key `{name}`)", key_text(keys)));
        }
    }
    for keys in def.effective_indexes() {
        let keys = keys_of(&keys);
        if uniques.iter().any(|(_, u)| same_keys(u, &keys)) {
            continue;
        }
        if !present.iter().any(|i| same_keys(&i.keys, &keys)) {
            r.missing.push(key_text(&keys));
        }
    }
    r
}

/// The text a unique key compares, when the document takes part in it (every field present
/// with its declared type, as the partial index says).
fn unique_value(def: &EntityDef, fields: &[&str], doc: &Document) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(t) = def.tenant_field() {
        parts.push(doc.get(t)?.to_string());
    }
    for f in fields {
        let v = crate::engine::resolve(doc, &crate::path::FieldPath::parse(f).ok()?)?;
        let fits = match def.kind_of(f) {
            FieldKind::Text => v.is_string(),
            FieldKind::Number => v.is_number(),
            FieldKind::Bool => v.is_boolean(),
            FieldKind::Id | FieldKind::Date => v.is_string(),
            _ => false,
        };
        if !fits {
            return None;
        }
        parts.push(v.to_string());
    }
    Some(parts.join(" "))
}

fn id_of(doc: &Document) -> String {
    match doc.get(ID_FIELD) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "?".to_owned(),
    }
}

/// Runs the checks over `defs` (every declared entity). `progress` is called with the collection
/// and the documents read so far, every [`PROGRESS_EVERY`] documents and at the end of each.
pub async fn run(
    legacy: &dyn LegacyAdmin,
    backend: &str,
    defs: &[&'static EntityDef],
    progress: &mut (dyn FnMut(&str, u64) + Send),
) -> Result<Report> {
    let existing: HashSet<String> = legacy.collections().await?.into_iter().collect();
    let mut order: Vec<&'static EntityDef> = Vec::new();
    for t in TARGETS {
        order.extend(defs.iter().filter(|d| d.collection == *t));
    }
    order.extend(defs.iter().filter(|d| !TARGETS.contains(&d.collection)));
    let mut seen = HashSet::new();
    order.retain(|d| existing.contains(d.collection) && seen.insert(d.collection));

    let mut ids: HashMap<&'static str, HashSet<String>> = HashMap::new();
    let mut report = Report {
        backend: backend.to_owned(),
        ..Report::default()
    };
    for def in order {
        let mut c = CollectionReport::new(def.collection);
        let keep_ids = TARGETS.contains(&def.collection);
        let refs: Vec<(&str, &str)> = REFS
            .iter()
            .filter(|(coll, _, _)| *coll == def.collection)
            .map(|(_, field, target)| (*field, *target))
            .collect();
        let decode = decoder(def.collection);
        let mut unique_seen: Vec<HashMap<String, String>> = vec![HashMap::new(); def.unique.len()];
        if keep_ids {
            ids.entry(def.collection).or_default();
        }
        {
            let mut visit = |doc: Document| {
                c.read += 1;
                let id = id_of(&doc);
                if keep_ids {
                    ids.entry(def.collection).or_default().insert(id.clone());
                }
                let mut bad = check_document(def, &doc);
                if bad.is_empty()
                    && let Some(d) = decode
                    && let Some(u) = d(def, doc.clone())
                {
                    bad.push(u);
                }
                if let Some(first) = bad.into_iter().next() {
                    c.unfit += 1;
                    if c.unfit_first.len() < FIRST {
                        c.unfit_first.push(first);
                    }
                }
                let mut dangling = Vec::new();
                if let (Some(t), Some(projects)) = (def.tenant_field(), ids.get("projects"))
                    && def.collection != "projects"
                    && let Some(Value::String(ws)) = doc.get(t)
                    && !projects.contains(ws)
                {
                    dangling.push(format!("{t} {ws} (workspace gone)"));
                }
                for (field, target) in &refs {
                    if let (Some(Value::String(r)), Some(set)) = (doc.get(*field), ids.get(target))
                        && !set.contains(r)
                    {
                        dangling.push(format!("{field} {r} ({target} gone)"));
                    }
                }
                if !dangling.is_empty() {
                    c.orphans += 1;
                    if c.orphans_first.len() < FIRST {
                        c.orphans_first.push(format!(
                            "{} {id}: {}",
                            def.collection,
                            dangling.join(", ")
                        ));
                    }
                }
                for (i, uk) in def.unique.iter().enumerate() {
                    if let Some(v) = unique_value(def, uk.fields, &doc) {
                        if let Some(first) = unique_seen[i].get(&v) {
                            c.conflicts += 1;
                            if c.conflicts_first.len() < FIRST {
                                c.conflicts_first.push(format!(
                                    "{} {id} and {first}: same `{}` ({v})",
                                    def.collection, uk.name
                                ));
                            }
                        } else {
                            unique_seen[i].insert(v, id.clone());
                        }
                    }
                }
                if c.read.is_multiple_of(PROGRESS_EVERY) {
                    progress(def.collection, c.read);
                }
            };
            legacy.scan(def.collection, Some(def), &mut visit).await?;
        }
        progress(def.collection, c.read);
        c.indexes = legacy
            .indexes(def.collection)
            .await?
            .map(|present| compare_indexes(def, &present));
        report.collections.push(c);
    }
    if existing.contains(LEGACY_DEALS) {
        let mut n = 0;
        let mut after: Option<Value> = None;
        loop {
            let page = legacy
                .scan_page(LEGACY_DEALS, None, after.as_ref(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.get(ID_FIELD).cloned();
            n += page.len() as u64;
            if page.len() < PAGE {
                break;
            }
        }
        report.legacy_deals = Some(n);
        report.deals_fold = Some(super::deals::fold(legacy, true).await?);
    }
    Ok(report)
}
