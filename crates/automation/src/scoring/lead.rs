//! Lead scores (`leadscores`): points per engagement event, grades, history, decay, explain.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crm_core::define_id;
use crm_core::entities::contact::ContactId;
use crm_core::events::DomainEvent;
use crm_core::repo::{Entity, WorkspaceEntity, WorkspaceScope, to_document};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{Error, Filter, FindOptions, Result, SortKey, Timestamp, Update, WorkspaceId};

use super::{DAY_SECS, live_contact};

define_id!(LeadScoreId);

pub static LEAD_SCORE: EntityDef = EntityDef {
    name: "LeadScore",
    collection: "leadscores",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("contactId", Id).required(),
        f("currentScore", Number).required(),
        f("previousScore", Number),
        f("grade", Text).required(),
        f("previousGrade", Text),
        f("scoreHistory", Array),
        f("scoreHistory.eventType", Text),
        f("scoreHistory.points", Number),
        f("scoreHistory.reason", Text),
        f("scoreHistory.timestamp", Date),
        f("scoreHistory.metadata", Any),
        f("lastActivityAt", Date),
        f("decayedAt", Date),
        // Target addition: points of history entries trimmed away, so explain still adds up.
        f("trimmedPoints", Number),
        // Mongoose's version key, used here as the compare-and-set counter of every write.
        f("__v", Number),
    ],
    // Also serves the original's {contactId} index (the tenant is put in front).
    unique: &[UniqueKey {
        name: "contactId",
        fields: &["contactId"],
    }],
    indexes: &[
        IndexDef::on(&[("currentScore", Desc)]),
        IndexDef::on(&[("grade", Asc)]),
        IndexDef::on(&[("lastActivityAt", Desc)]),
    ],
    text: &[],
};

pub const HISTORY_LIMIT: usize = 100;
pub const THRESHOLD: i64 = 50;
pub const DECAY_DAYS: i64 = 30;
pub const DECAY_PERCENT: i64 = 10;
/// A compare-and-set lost this many times in a row means something is wrong, not busy.
const CAS_ROUNDS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum Grade {
    A,
    B,
    C,
    D,
    #[default]
    F,
}

impl Grade {
    pub fn of(score: i64) -> Self {
        match score {
            s if s >= 80 => Grade::A,
            s if s >= 60 => Grade::B,
            s if s >= 40 => Grade::C,
            s if s >= 20 => Grade::D,
            _ => Grade::F,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
            Grade::F => "F",
        }
    }
    pub const ALL: [Grade; 5] = [Grade::A, Grade::B, Grade::C, Grade::D, Grade::F];
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| Error::invalid("grade", "must be one of A, B, C, D, F"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub event_type: String,
    /// The points applied (a loss clipped at the floor of 0 records what was really taken).
    pub points: i64,
    pub reason: String,
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadScore {
    #[serde(rename = "_id")]
    pub id: LeadScoreId,
    pub workspace_id: WorkspaceId,
    pub contact_id: ContactId,
    #[serde(default, deserialize_with = "whole")]
    pub current_score: i64,
    #[serde(default, deserialize_with = "whole")]
    pub previous_score: i64,
    #[serde(default)]
    pub grade: Grade,
    #[serde(default)]
    pub previous_grade: Grade,
    #[serde(default)]
    pub score_history: Vec<HistoryEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decayed_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "whole")]
    pub trimmed_points: i64,
    #[serde(rename = "__v", default, deserialize_with = "whole")]
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

/// Node stores whole numbers as int32 or double; read either.
fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    let v = Option::<f64>::deserialize(d)?;
    Ok(v.map_or(0, |x| x.round() as i64))
}

impl Entity for LeadScore {
    const DEF: &'static EntityDef = &LEAD_SCORE;
}
impl WorkspaceEntity for LeadScore {}

impl LeadScore {
    pub fn new(ws: WorkspaceId, contact: ContactId, now: Timestamp) -> Self {
        Self {
            id: LeadScoreId::new(),
            workspace_id: ws,
            contact_id: contact,
            current_score: 0,
            previous_score: 0,
            grade: Grade::F,
            previous_grade: Grade::F,
            score_history: Vec::new(),
            last_activity_at: Some(now),
            decayed_at: None,
            trimmed_points: 0,
            version: 0,
            created_at: None,
            updated_at: None,
        }
    }

    /// Applies `points` (floored at 0), regrades and appends the entry, keeping the last 100.
    fn apply(&mut self, mut entry: HistoryEntry) {
        self.previous_score = self.current_score;
        self.previous_grade = self.grade;
        let next = self.current_score.saturating_add(entry.points).max(0);
        let applied = next - self.current_score;
        if applied != entry.points {
            entry
                .metadata
                .insert("requestedPoints".into(), json!(entry.points));
            entry.points = applied;
        }
        self.current_score = next;
        self.grade = Grade::of(next);
        self.score_history.push(entry);
        if self.score_history.len() > HISTORY_LIMIT {
            let cut = self.score_history.len() - HISTORY_LIMIT;
            let gone: i64 = self.score_history.drain(..cut).map(|e| e.points).sum();
            self.trimmed_points = self.trimmed_points.saturating_add(gone);
        }
    }

    fn applied_event(&self, event_id: &str) -> bool {
        self.score_history
            .iter()
            .any(|e| e.metadata.get("eventId").and_then(Value::as_str) == Some(event_id))
    }
}

/// The spec's point table; events not in it change nothing.
pub const POINTS: &[(&str, i64)] = &[
    ("email_opened", 5),
    ("email_clicked", 10),
    ("email_replied", 15),
    ("email_bounced", -10),
    ("email_unsubscribed", -50),
    ("page_visited", 3),
    ("blog_read", 5),
    ("pricing_page_viewed", 15),
    ("demo_video_watched", 20),
    ("form_submitted", 20),
    ("whitepaper_downloaded", 15),
    ("ebook_downloaded", 15),
    ("webinar_registered", 25),
    ("webinar_attended", 30),
    ("demo_requested", 50),
    ("call_scheduled", 40),
    ("meeting_attended", 35),
    ("phone_call_answered", 20),
    ("deal_created", 50),
    ("deal_stage_advanced", 25),
    ("deal_won", 100),
    ("deal_lost", -30),
    ("linkedin_connection", 10),
    ("social_share", 8),
    ("social_comment", 12),
    ("no_activity_30_days", -10),
    ("no_activity_60_days", -20),
    ("no_activity_90_days", -30),
    ("complaint_filed", -40),
];

pub fn points_for(event_type: &str) -> Option<i64> {
    POINTS
        .iter()
        .find(|(k, _)| *k == event_type)
        .map(|(_, p)| *p)
}

fn by_contact(contact: ContactId) -> Filter {
    Filter::eq("contactId", contact.to_string())
}

/// The contact's score, created at 0/F when it has none (the contact must be live).
pub async fn get_or_create(
    scope: &WorkspaceScope,
    contact: ContactId,
    now: Timestamp,
) -> Result<LeadScore> {
    live_contact(scope, contact).await?;
    let repo = scope.repo::<LeadScore>();
    if let Some(s) = repo
        .find(&by_contact(contact), &FindOptions::default())
        .await?
        .into_iter()
        .next()
    {
        return Ok(s);
    }
    match repo.insert(&LeadScore::new(scope.id(), contact, now)).await {
        Ok(s) => Ok(s),
        // Another writer created it first.
        Err(Error::Conflict { .. }) => repo
            .find(&by_contact(contact), &FindOptions::default())
            .await?
            .into_iter()
            .next()
            .ok_or(Error::Stale),
        Err(e) => Err(e),
    }
}

/// What one change did, for the events it implies.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub score: LeadScore,
    /// False when the event had been applied before (a redelivery): nothing changed.
    pub changed: bool,
}

/// Writes `next` over `read` if nobody wrote in between.
async fn compare_and_set(
    scope: &WorkspaceScope,
    read: &LeadScore,
    next: &LeadScore,
) -> Result<Option<LeadScore>> {
    let doc = to_document(next)?;
    let mut u = Update::new();
    for k in [
        "currentScore",
        "previousScore",
        "grade",
        "previousGrade",
        "scoreHistory",
        "lastActivityAt",
        "decayedAt",
        "trimmedPoints",
    ] {
        match doc.get(k) {
            Some(v) => u = u.set(k, v.clone()),
            None => u = u.unset(k),
        }
    }
    u = u.set("__v", read.version + 1);
    let version = if read.version == 0 {
        Filter::Or(vec![Filter::eq("__v", 0), Filter::eq("__v", Value::Null)])
    } else {
        Filter::eq("__v", read.version)
    };
    let guard = Filter::eq("_id", read.id.to_string()).and(version);
    scope
        .repo::<LeadScore>()
        .find_one_and_update(&guard, &u, false)
        .await
}

/// Read, change, compare-and-set, retrying when another writer won; `change` returns false to
/// leave the record as it is.
async fn modify(
    scope: &WorkspaceScope,
    contact: ContactId,
    now: Timestamp,
    mut change: impl FnMut(&mut LeadScore) -> bool,
) -> Result<Applied> {
    for _ in 0..CAS_ROUNDS {
        let read = get_or_create(scope, contact, now).await?;
        let mut next = read.clone();
        if !change(&mut next) {
            return Ok(Applied {
                score: read,
                changed: false,
            });
        }
        if let Some(score) = compare_and_set(scope, &read, &next).await? {
            emit_crossings(scope, &read, &score, now).await?;
            return Ok(Applied {
                score,
                changed: true,
            });
        }
    }
    Err(Error::Stale)
}

/// `score.threshold_crossed` (50, either way) and `score.grade_changed`, for workflows.
async fn emit_crossings(
    scope: &WorkspaceScope,
    before: &LeadScore,
    after: &LeadScore,
    now: Timestamp,
) -> Result<()> {
    let (b, a) = (before.current_score, after.current_score);
    let base = |ty: &str| {
        let mut e = DomainEvent::new(scope.id(), ty, now);
        e.entity_type = Some("contact".into());
        e.entity_id = Some(after.contact_id.object_id());
        e.data.insert("contactId".into(), json!(after.contact_id));
        e.data.insert("previousScore".into(), json!(b));
        e.data.insert("currentScore".into(), json!(a));
        e.data.insert("previousGrade".into(), json!(before.grade));
        e.data.insert("grade".into(), json!(after.grade));
        e
    };
    if (b < THRESHOLD) != (a < THRESHOLD) {
        let mut e = base("score.threshold_crossed");
        e.data.insert("threshold".into(), json!(THRESHOLD));
        e.data
            .insert("direction".into(), json!(if a > b { "up" } else { "down" }));
        scope.emit(e).await?;
    }
    if before.grade != after.grade {
        scope.emit(base("score.grade_changed")).await?;
    }
    Ok(())
}

/// Adds `points` for `event_type`. With an `event_id` the same event scores once however often
/// it is delivered.
pub async fn add_points(
    scope: &WorkspaceScope,
    contact: ContactId,
    event_type: &str,
    points: i64,
    reason: &str,
    event_id: Option<&str>,
    now: Timestamp,
) -> Result<Applied> {
    modify(scope, contact, now, |s| {
        if let Some(id) = event_id
            && s.applied_event(id)
        {
            return false;
        }
        let mut metadata = Map::new();
        if let Some(id) = event_id {
            metadata.insert("eventId".into(), json!(id));
        }
        s.apply(HistoryEntry {
            event_type: event_type.to_owned(),
            points,
            reason: reason.to_owned(),
            timestamp: now,
            metadata,
        });
        s.last_activity_at = Some(now);
        true
    })
    .await
}

/// Scores a named event from the point table; unknown events are refused (422) here, while the
/// event consumer simply ignores them.
pub async fn add_event(
    scope: &WorkspaceScope,
    contact: ContactId,
    event_type: &str,
    event_id: Option<&str>,
    now: Timestamp,
) -> Result<Applied> {
    let points = points_for(event_type)
        .ok_or_else(|| Error::invalid("eventType", "not an event of the point table"))?;
    let reason = event_type.replace('_', " ");
    add_points(scope, contact, event_type, points, &reason, event_id, now).await
}

/// Sets the score to `target` by adding the difference (logged as `manual`).
pub async fn set_score(
    scope: &WorkspaceScope,
    contact: ContactId,
    target: i64,
    reason: &str,
    now: Timestamp,
) -> Result<Applied> {
    if target < 0 {
        return Err(Error::invalid("points", "must be 0 or more"));
    }
    modify(scope, contact, now, |s| {
        s.apply(HistoryEntry {
            event_type: "manual".into(),
            points: target - s.current_score,
            reason: reason.to_owned(),
            timestamp: now,
            metadata: Map::new(),
        });
        s.last_activity_at = Some(now);
        true
    })
    .await
}

/// Decays every score of the workspace inactive for 30 days: minus ceil(10 %), logged as
/// `decay`. A score decays at most once per 30 inactive days, so a job that runs twice (or
/// daily) takes 10 % per period, not per run. Returns how many scores decayed.
pub async fn apply_decay(scope: &WorkspaceScope, now: Timestamp) -> Result<u64> {
    let cutoff = now.plus_seconds(-DECAY_DAYS * DAY_SECS).to_canonical();
    let due = Filter::Lte("lastActivityAt".into(), json!(cutoff))
        .and(Filter::Gt("currentScore".into(), json!(0)))
        .and(Filter::Or(vec![
            Filter::eq("decayedAt", Value::Null),
            Filter::Lte("decayedAt".into(), json!(cutoff)),
        ]));
    let repo = scope.repo::<LeadScore>();
    let mut done = 0;
    let mut after: Option<String> = None;
    loop {
        let mut f = due.clone();
        if let Some(a) = &after {
            f = f.and(Filter::Gt("_id".into(), json!(a)));
        }
        let opts = FindOptions {
            sort: vec![SortKey::asc("_id")],
            skip: 0,
            limit: Some(200),
        };
        let batch = repo.find(&f, &opts).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id.to_string());
        let n = batch.len();
        for s in batch {
            let cutoff_ts = now.plus_seconds(-DECAY_DAYS * DAY_SECS);
            let r = modify(scope, s.contact_id, now, |s| {
                let inactive = s.last_activity_at.is_none_or(|t| t <= cutoff_ts);
                let fresh = s.decayed_at.is_some_and(|t| t > cutoff_ts);
                if !inactive || fresh || s.current_score <= 0 {
                    return false;
                }
                let loss = (s.current_score * DECAY_PERCENT + 99) / 100;
                s.apply(HistoryEntry {
                    event_type: "decay".into(),
                    points: -loss,
                    reason: format!("{DECAY_DAYS} days inactive - {DECAY_PERCENT}% decay"),
                    timestamp: now,
                    metadata: Map::new(),
                });
                s.decayed_at = Some(now);
                true
            })
            .await;
            match r {
                Ok(a) if a.changed => done += 1,
                Ok(_) | Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        if n < 200 {
            break;
        }
    }
    Ok(done)
}

/// Every contributing history entry, and how they add up to the score.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub contact_id: ContactId,
    pub current_score: i64,
    pub grade: Grade,
    pub entries: Vec<HistoryEntry>,
    /// Points of entries older than the last 100 (no longer listed).
    pub earlier_points: i64,
    /// Sums of the listed entries: gained, lost to events, lost to decay.
    pub gained: i64,
    pub lost: i64,
    pub decay: i64,
    pub decayed_at: Option<Timestamp>,
    /// `earlierPoints + gained + lost + decay`; equals `currentScore` unless records written
    /// by the original (which logged requested rather than applied points) say otherwise.
    pub total: i64,
    pub unexplained: i64,
}

pub fn explain(s: &LeadScore) -> Explanation {
    let sum = |keep: &dyn Fn(&HistoryEntry) -> bool| -> i64 {
        s.score_history
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.points)
            .sum()
    };
    let decay = sum(&|e| e.event_type == "decay");
    let gained = sum(&|e| e.event_type != "decay" && e.points > 0);
    let lost = sum(&|e| e.event_type != "decay" && e.points < 0);
    let total = s.trimmed_points + gained + lost + decay;
    Explanation {
        contact_id: s.contact_id,
        current_score: s.current_score,
        grade: s.grade,
        entries: s.score_history.clone(),
        earlier_points: s.trimmed_points,
        gained,
        lost,
        decay,
        decayed_at: s.decayed_at,
        total,
        unexplained: s.current_score - total,
    }
}

/// Scores per grade, all five listed.
pub async fn distribution(scope: &WorkspaceScope) -> Result<Vec<(Grade, u64)>> {
    let repo = scope.repo::<LeadScore>();
    let mut out = Vec::with_capacity(5);
    for g in Grade::ALL {
        out.push((g, repo.count(&Filter::eq("grade", g.as_str())).await?));
    }
    Ok(out)
}

/// The highest scores, best first.
pub async fn top(scope: &WorkspaceScope, limit: u64) -> Result<Vec<LeadScore>> {
    let opts = FindOptions {
        sort: vec![SortKey::desc("currentScore"), SortKey::asc("_id")],
        skip: 0,
        limit: Some(limit),
    };
    scope.repo::<LeadScore>().find(&Filter::all(), &opts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_at_the_boundaries() {
        let cases = [
            (0, Grade::F),
            (19, Grade::F),
            (20, Grade::D),
            (39, Grade::D),
            (40, Grade::C),
            (59, Grade::C),
            (60, Grade::B),
            (79, Grade::B),
            (80, Grade::A),
            (250, Grade::A),
        ];
        for (s, g) in cases {
            assert_eq!(Grade::of(s), g, "{s}");
        }
    }

    fn entry(ty: &str, points: i64) -> HistoryEntry {
        HistoryEntry {
            event_type: ty.into(),
            points,
            reason: ty.into(),
            timestamp: Timestamp::from_millis(0),
            metadata: Map::new(),
        }
    }

    #[test]
    fn floor_history_limit_and_explain_adds_up() {
        let mut s = LeadScore::new(WorkspaceId::new(), ContactId::new(), Timestamp::now());
        s.apply(entry("deal_lost", -30));
        assert_eq!(s.current_score, 0);
        assert_eq!(s.score_history[0].points, 0);
        assert_eq!(s.score_history[0].metadata["requestedPoints"], -30);
        for _ in 0..120 {
            s.apply(entry("email_opened", 5));
        }
        assert_eq!(s.current_score, 600, "not capped at 100");
        assert_eq!(s.score_history.len(), HISTORY_LIMIT);
        // The clipped loss (0 applied) and 20 of the opens were trimmed.
        assert_eq!(s.trimmed_points, 20 * 5);
        let x = explain(&s);
        assert_eq!(x.total, 600);
        assert_eq!(x.unexplained, 0);
        assert_eq!(s.previous_score, 595);
    }

    #[test]
    fn the_point_table() {
        assert_eq!(points_for("email_opened"), Some(5));
        assert_eq!(points_for("demo_requested"), Some(50));
        assert_eq!(points_for("email_unsubscribed"), Some(-50));
        assert_eq!(points_for("deal_won"), Some(100));
        assert_eq!(points_for("no_such_event"), None);
        assert_eq!(POINTS.len(), 29);
    }
}
