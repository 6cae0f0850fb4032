//! AIClientMemory (`aiclientmemories`): what agents learned about a contact, company or deal,
//! and how it is recalled (ADR 0023).
//!
//! A contact's memory keeps the original's shape (one document per `(workspace, contactId)`,
//! facts, preferences, the last 50 interactions, insights); company and deal memories are the
//! same document keyed by `entityType`/`entityId` instead. Each fact carries its provenance and
//! may expire; an expired fact is never recalled.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crm_core::define_id;
use crm_core::entities::company::{Company, CompanyId};
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::entities::opportunity::{Opportunity, OpportunityId};
use crm_core::repo::{Entity, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{Error, Filter, FindOptions, ObjectId, Result, Timestamp, Update, WorkspaceId};

/// The original recalls facts only from this confidence up.
pub const MIN_RECALL_CONFIDENCE: f64 = 40.0;
/// The original keeps the last 50 interactions.
pub const MAX_INTERACTIONS: usize = 50;
pub const DEFAULT_RECALL_LIMIT: usize = 10;
pub const MAX_RECALL_LIMIT: usize = 100;
/// Recency halves every 30 days.
pub const RECENCY_HALF_LIFE_DAYS: f64 = 30.0;
/// Score = relevance·W_REL + confidence/100·W_CONF + recency·W_REC.
pub const W_RELEVANCE: f64 = 0.6;
pub const W_CONFIDENCE: f64 = 0.25;
pub const W_RECENCY: f64 = 0.15;

define_id!(MemoryId);

pub static AI_CLIENT_MEMORY: EntityDef = EntityDef {
    name: "AIClientMemory",
    collection: "aiclientmemories",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("contactId", Id),
        f("companyId", Id),
        f("entityType", Text),
        f("entityId", Id),
        f("facts", Array),
        f("facts.key", Text),
        f("facts.value", Text),
        f("facts.confidence", Number),
        f("facts.source", Text),
        f("facts.extractedAt", Date),
        f("facts.confirmedCount", Number),
        f("facts.expiresAt", Date),
        f("facts.provenance", Object),
        f("preferences", Array),
        f("interactions", Array),
        f("insights", Array),
        f("insights.content", Text),
        f("totalInteractions", Number),
        f("positiveOutcomeRate", Number),
        f("lastInteractionAt", Date),
    ],
    unique: &[
        UniqueKey {
            name: "contactId",
            fields: &["contactId"],
        },
        UniqueKey {
            name: "entity",
            fields: &["entityType", "entityId"],
        },
    ],
    indexes: &[
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("companyId", Asc)]),
        IndexDef::on(&[("lastInteractionAt", Desc)]),
    ],
    text: &["facts.key", "facts.value", "insights.content"],
};

/// What a memory is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityType {
    Contact,
    Company,
    Deal,
}

/// One record a memory is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Contact(ContactId),
    Company(CompanyId),
    Deal(OpportunityId),
}

impl Subject {
    pub fn entity_type(self) -> EntityType {
        match self {
            Subject::Contact(_) => EntityType::Contact,
            Subject::Company(_) => EntityType::Company,
            Subject::Deal(_) => EntityType::Deal,
        }
    }

    pub fn id(self) -> ObjectId {
        match self {
            Subject::Contact(c) => c.0,
            Subject::Company(c) => c.0,
            Subject::Deal(d) => d.0,
        }
    }

    /// The field a request names it by (`contactId`, `companyId`, `dealId`).
    pub fn field(self) -> &'static str {
        match self {
            Subject::Contact(_) => "contactId",
            Subject::Company(_) => "companyId",
            Subject::Deal(_) => "dealId",
        }
    }

    /// The filter of its memory document. Contact memories are found by `contactId`, so the
    /// original's documents (which lack `entityType`) are found too.
    fn filter(self) -> Filter {
        match self {
            Subject::Contact(c) => Filter::eq("contactId", c.to_string()),
            s => Filter::eq("entityType", entity_type_str(s.entity_type()))
                .and(Filter::eq("entityId", s.id().to_hex())),
        }
    }

    /// `NotFound`-free check that the record exists in this workspace: a missing one, another
    /// workspace's, or a contact in the trash is `Error::Invalid` on the naming field.
    pub async fn check_exists(self, scope: &WorkspaceScope) -> Result<()> {
        let found = match self {
            Subject::Contact(c) => scope
                .repo::<Contact>()
                .get(c)
                .await
                .map(|c| c.deleted_at.is_none()),
            Subject::Company(c) => scope.repo::<Company>().get(c).await.map(|_| true),
            Subject::Deal(d) => scope.repo::<Opportunity>().get(d).await.map(|_| true),
        };
        match found {
            Ok(true) => Ok(()),
            Ok(false) | Err(Error::NotFound) => Err(Error::invalid(
                self.field(),
                "no such record in this workspace",
            )),
            Err(e) => Err(e),
        }
    }
}

fn entity_type_str(t: EntityType) -> &'static str {
    match t {
        EntityType::Contact => "contact",
        EntityType::Company => "company",
        EntityType::Deal => "deal",
    }
}

/// Where a fact came from, beyond the original's free-text `source`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// The agent that extracted it (e.g. `sales`, `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// What it was learned from: `email`, `call`, `meeting`, `manual`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// The record it was learned from (an email message, activity, call recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// The writer, as the audit log describes actors.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub recorded_by: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fact {
    pub key: String,
    pub value: String,
    #[serde(default = "fifty")]
    pub confidence: f64,
    pub source: String,
    pub extracted_at: Timestamp,
    #[serde(default = "one")]
    pub confirmed_count: u32,
    /// Never recalled from this instant on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl Fact {
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

fn fifty() -> f64 {
    50.0
}
fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preference {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    #[serde(default = "one_f")]
    pub strength: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed: Option<Timestamp>,
}

fn one_f() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Positive,
    #[default]
    Neutral,
    Negative,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interaction {
    pub date: Timestamp,
    pub agent_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub summary: String,
    #[serde(default)]
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lessons_learned: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Insight {
    #[serde(rename = "type")]
    pub kind: String,
    pub content: String,
    #[serde(default = "fifty")]
    pub confidence: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    #[serde(default)]
    pub acted_upon: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AIClientMemory {
    #[serde(rename = "_id")]
    pub id: MemoryId,
    pub workspace_id: WorkspaceId,
    /// Set for contact memories (the original's required key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// The contact's company (contact memories), as the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<CompanyId>,
    /// `contact` when absent (the original's documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<EntityType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<ObjectId>,
    #[serde(default)]
    pub facts: Vec<Fact>,
    #[serde(default)]
    pub preferences: Vec<Preference>,
    #[serde(default)]
    pub interactions: Vec<Interaction>,
    #[serde(default)]
    pub insights: Vec<Insight>,
    #[serde(default)]
    pub total_interactions: u64,
    #[serde(default)]
    pub positive_outcome_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_interaction_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for AIClientMemory {
    const DEF: &'static EntityDef = &AI_CLIENT_MEMORY;
}
impl WorkspaceEntity for AIClientMemory {}

impl AIClientMemory {
    pub fn new(ws: WorkspaceId, subject: Subject) -> Self {
        let (contact_id, entity_id) = match subject {
            Subject::Contact(c) => (Some(c), Some(c.0)),
            s => (None, Some(s.id())),
        };
        Self {
            id: MemoryId::new(),
            workspace_id: ws,
            contact_id,
            company_id: None,
            entity_type: Some(subject.entity_type()),
            entity_id,
            facts: Vec::new(),
            preferences: Vec::new(),
            interactions: Vec::new(),
            insights: Vec::new(),
            total_interactions: 0,
            positive_outcome_rate: 0.0,
            last_interaction_at: None,
            created_at: None,
            updated_at: None,
        }
    }

    /// The facts not expired at `now`.
    pub fn live_facts(&self, now: Timestamp) -> impl Iterator<Item = &Fact> {
        self.facts.iter().filter(move |f| !f.expired(now))
    }
}

/// The memory of `subject`, if any.
pub async fn find(scope: &WorkspaceScope, subject: Subject) -> Result<Option<AIClientMemory>> {
    let opts = FindOptions {
        limit: Some(1),
        ..FindOptions::default()
    };
    Ok(scope
        .repo::<AIClientMemory>()
        .find(&subject.filter(), &opts)
        .await?
        .into_iter()
        .next())
}

/// What a caller teaches: upserted by `key`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFact {
    pub key: String,
    pub value: String,
    pub confidence: Option<f64>,
    pub source: String,
    pub provenance: Option<Provenance>,
    /// Seconds from now after which the fact is never recalled.
    pub ttl_secs: Option<i64>,
}

fn bounded(field: &str, s: &str, max: usize) -> Result<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > max {
        return Err(Error::invalid(field, format!("1 to {max} characters")));
    }
    Ok(s.to_owned())
}

/// Rounds a guarded rewrite of the facts is retried when another writer got there first.
const RETRIES: usize = 5;

/// Adds a fact, or confirms the fact of the same key: `confirmedCount` + 1, confidence the
/// higher of the two, value, source and provenance the newest, expiry renewed. Writes are
/// guarded by the `updatedAt` read, so concurrent writers never lose each other's facts.
pub async fn upsert_fact(
    scope: &WorkspaceScope,
    subject: Subject,
    new: NewFact,
    now: Timestamp,
) -> Result<AIClientMemory> {
    let key = bounded("key", &new.key, 100)?;
    let value = bounded("value", &new.value, 2000)?;
    let source = bounded("source", &new.source, 200)?;
    let confidence = new.confidence.unwrap_or(50.0);
    if !(0.0..=100.0).contains(&confidence) {
        return Err(Error::invalid("confidence", "0 to 100"));
    }
    let expires_at = match new.ttl_secs {
        Some(s) if s <= 0 => return Err(Error::invalid("ttlSeconds", "must be positive")),
        Some(s) => Some(now.plus_seconds(s)),
        None => None,
    };
    let mut provenance = new.provenance.unwrap_or_default();
    provenance.recorded_by = scope.actor().describe();
    for _ in 0..RETRIES {
        let Some(current) = find_or_create(scope, subject).await? else {
            continue;
        };
        let mut facts = current.facts.clone();
        match facts.iter_mut().find(|f| f.key == key) {
            Some(f) => {
                f.confirmed_count = f.confirmed_count.saturating_add(1);
                f.confidence = f.confidence.max(confidence);
                f.value.clone_from(&value);
                f.source.clone_from(&source);
                f.extracted_at = now;
                f.expires_at = expires_at;
                f.provenance = Some(provenance.clone());
            }
            None => facts.push(Fact {
                key: key.clone(),
                value: value.clone(),
                confidence,
                source: source.clone(),
                extracted_at: now,
                confirmed_count: 1,
                expires_at,
                provenance: Some(provenance.clone()),
            }),
        }
        if let Some(m) = write_facts(scope, &current, &facts).await? {
            return Ok(m);
        }
    }
    Err(Error::Stale)
}

/// Replaces the facts of `current` unless it changed since it was read (`None` then).
async fn write_facts(
    scope: &WorkspaceScope,
    current: &AIClientMemory,
    facts: &[Fact],
) -> Result<Option<AIClientMemory>> {
    let facts = serde_json::to_value(facts).map_err(Error::internal)?;
    guarded(scope, current, Update::new().set("facts", facts)).await
}

/// Applies `update` to `current` unless it changed since it was read (`None` then).
async fn guarded(
    scope: &WorkspaceScope,
    current: &AIClientMemory,
    update: Update,
) -> Result<Option<AIClientMemory>> {
    let mut guard = Filter::eq("_id", current.id.to_string());
    if let Some(u) = current.updated_at {
        guard = guard.and(Filter::eq("updatedAt", u.to_canonical()));
    }
    scope
        .repo::<AIClientMemory>()
        .find_one_and_update(&guard, &update, false)
        .await
}

/// The memory of `subject`, created empty when there is none yet.
async fn find_or_create(
    scope: &WorkspaceScope,
    subject: Subject,
) -> Result<Option<AIClientMemory>> {
    if let Some(m) = find(scope, subject).await? {
        return Ok(Some(m));
    }
    match scope
        .repo::<AIClientMemory>()
        .insert(&AIClientMemory::new(scope.id(), subject))
        .await
    {
        Ok(m) => Ok(Some(m)),
        // Created concurrently: the caller reads it on its next round.
        Err(Error::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records an agent interaction: kept newest last, only the last [`MAX_INTERACTIONS`];
/// `totalInteractions`, `positiveOutcomeRate` (over every interaction ever recorded) and
/// `lastInteractionAt` follow.
pub async fn record_interaction(
    scope: &WorkspaceScope,
    subject: Subject,
    mut it: Interaction,
) -> Result<AIClientMemory> {
    it.agent_type = bounded("agentType", &it.agent_type, 100)?;
    it.summary = bounded("summary", &it.summary, 1000)?;
    if it.query.as_ref().is_some_and(|q| q.chars().count() > 500) {
        return Err(Error::invalid("query", "at most 500 characters"));
    }
    if it
        .lessons_learned
        .as_ref()
        .is_some_and(|q| q.chars().count() > 500)
    {
        return Err(Error::invalid("lessonsLearned", "at most 500 characters"));
    }
    if it
        .feedback_score
        .is_some_and(|f| !(-1.0..=1.0).contains(&f))
    {
        return Err(Error::invalid("feedbackScore", "-1 to 1"));
    }
    for _ in 0..RETRIES {
        let Some(current) = find_or_create(scope, subject).await? else {
            continue;
        };
        let mut list = current.interactions.clone();
        list.push(it.clone());
        if list.len() > MAX_INTERACTIONS {
            list.drain(..list.len() - MAX_INTERACTIONS);
        }
        let n = current.total_interactions;
        let positive = if it.outcome == Outcome::Positive {
            1.0
        } else {
            0.0
        };
        let rate = (current.positive_outcome_rate * n as f64 + positive) / (n + 1) as f64;
        let last = current
            .last_interaction_at
            .map_or(it.date, |l| l.max(it.date));
        let update = Update::new()
            .set(
                "interactions",
                serde_json::to_value(&list).map_err(Error::internal)?,
            )
            .set("totalInteractions", n + 1)
            .set("positiveOutcomeRate", rate)
            .set("lastInteractionAt", last.to_canonical());
        if let Some(m) = guarded(scope, &current, update).await? {
            return Ok(m);
        }
    }
    Err(Error::Stale)
}

/// Forgets the fact `key`; `NotFound` when there is none.
pub async fn delete_fact(scope: &WorkspaceScope, subject: Subject, key: &str) -> Result<()> {
    for _ in 0..RETRIES {
        let current = find(scope, subject).await?.ok_or(Error::NotFound)?;
        if !current.facts.iter().any(|f| f.key == key) {
            return Err(Error::NotFound);
        }
        let facts: Vec<Fact> = current
            .facts
            .iter()
            .filter(|f| f.key != key)
            .cloned()
            .collect();
        if write_facts(scope, &current, &facts).await?.is_some() {
            return Ok(());
        }
    }
    Err(Error::Stale)
}

/// Deletes every memory of a contact (the contact was deleted for good); returns how many.
pub async fn erase_contact(scope: &WorkspaceScope, contact: ContactId) -> Result<u64> {
    scope
        .repo::<AIClientMemory>()
        .delete_many(&Subject::Contact(contact).filter())
        .await
}

/// One recalled fact with the parts of its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recalled {
    #[serde(flatten)]
    pub fact: Fact,
    pub score: f64,
    pub score_parts: ScoreParts,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreParts {
    /// Share of the query's terms found in the fact's key and value (0..1); 0 without a query.
    pub relevance: f64,
    /// The fact's confidence / 100.
    pub confidence: f64,
    /// 0.5^(age in days / 30) since the fact was last extracted or confirmed.
    pub recency: f64,
}

/// Lowercase alphanumeric words; `budget_range` is `budget` and `range`.
fn terms(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

pub fn score(fact: &Fact, query: &BTreeSet<String>, now: Timestamp) -> ScoreParts {
    let relevance = if query.is_empty() {
        0.0
    } else {
        let mut words = terms(&fact.key);
        words.extend(terms(&fact.value));
        let hits = query.iter().filter(|t| words.contains(*t)).count();
        hits as f64 / query.len() as f64
    };
    let age_days = ((now.millis() - fact.extracted_at.millis()).max(0) as f64) / 86_400_000.0;
    ScoreParts {
        relevance,
        confidence: (fact.confidence / 100.0).clamp(0.0, 1.0),
        recency: 0.5_f64.powf(age_days / RECENCY_HALF_LIFE_DAYS),
    }
}

/// The facts of `subject` that are not expired and have confidence >= 40, best first: text
/// relevance to `query` weighs most, then confidence, then recency. Ranked here over the
/// document's facts, so every store (the MongoDB test server has no `$text`) ranks alike.
pub async fn recall(
    scope: &WorkspaceScope,
    subject: Subject,
    query: &str,
    limit: usize,
    now: Timestamp,
) -> Result<Vec<Recalled>> {
    let Some(memory) = find(scope, subject).await? else {
        return Ok(Vec::new());
    };
    Ok(rank(&memory, query, limit, now))
}

pub fn rank(memory: &AIClientMemory, query: &str, limit: usize, now: Timestamp) -> Vec<Recalled> {
    let q = terms(query);
    let mut out: Vec<Recalled> = memory
        .live_facts(now)
        .filter(|f| f.confidence >= MIN_RECALL_CONFIDENCE)
        .map(|f| {
            let parts = score(f, &q, now);
            Recalled {
                fact: f.clone(),
                score: parts.relevance * W_RELEVANCE
                    + parts.confidence * W_CONFIDENCE
                    + parts.recency * W_RECENCY,
                score_parts: parts,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.fact.key.cmp(&b.fact.key))
    });
    out.truncate(limit.clamp(1, MAX_RECALL_LIMIT));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(key: &str, value: &str, confidence: f64, at: Timestamp) -> Fact {
        Fact {
            key: key.into(),
            value: value.into(),
            confidence,
            source: "test".into(),
            extracted_at: at,
            confirmed_count: 1,
            expires_at: None,
            provenance: None,
        }
    }

    #[test]
    fn relevance_beats_confidence_and_expired_or_weak_facts_are_never_recalled() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let mut m = AIClientMemory::new(WorkspaceId::new(), Subject::Contact(ContactId::new()));
        m.facts = vec![
            fact("budget_range", "$50k-100k", 50.0, now),
            fact("favourite_colour", "blue", 95.0, now),
            fact("weak", "budget guess", 39.0, now),
            Fact {
                expires_at: Some(now),
                ..fact("old_budget", "budget frozen", 100.0, now)
            },
        ];
        let r = rank(&m, "what budget", 10, now);
        let keys: Vec<&str> = r.iter().map(|x| x.fact.key.as_str()).collect();
        assert_eq!(keys, ["budget_range", "favourite_colour"]);
        assert!((r[0].score_parts.relevance - 0.5).abs() < 1e-9);
        assert_eq!(r[1].score_parts.relevance, 0.0);
    }

    #[test]
    fn recency_halves_every_thirty_days() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let f = fact("k", "v", 80.0, now.plus_seconds(-30 * 86_400));
        let p = score(&f, &BTreeSet::new(), now);
        assert!((p.recency - 0.5).abs() < 1e-9);
        assert!((p.confidence - 0.8).abs() < 1e-9);
    }
}
