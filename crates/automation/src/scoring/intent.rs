//! Intent signals (`intentsignals`) and the intent score written to `contacts.intentScore`:
//! Σ value·0.5^(age/30 d) over 90 days, plus pattern bonuses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crm_core::define_id;
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::repo::{Entity, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crm_core::{
    Error, Filter, FindOptions, GroupBy, Result, SortKey, Timestamp, Update, WorkspaceId,
};

use super::{DAY_SECS, live_contact};

define_id!(IntentSignalId);

pub static INTENT_SIGNAL: EntityDef = EntityDef {
    name: "IntentSignal",
    collection: "intentsignals",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("contactId", Id),
        f("visitorId", Text),
        f("signalType", Text).required(),
        f("signalName", Text).required(),
        f("signalValue", Number).required(),
        f("url", Text),
        f("pageTitle", Text),
        f("sessionId", Text),
        f("source", Text),
        f("metadata", Any),
        f("timestamp", Date).required(),
    ],
    unique: &[],
    // The original's {workspaceId,signalType} and {workspaceId,timestamp:-1} are the tenant-
    // prefixed {signalType} and {timestamp:-1} below.
    indexes: &[
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("visitorId", Asc)]),
        IndexDef::on(&[("signalType", Asc)]),
        IndexDef::on(&[("signalName", Asc)]),
        IndexDef::on(&[("sessionId", Asc)]),
        IndexDef::on(&[("timestamp", Asc)]),
        IndexDef::on(&[("timestamp", Desc)]),
        IndexDef::on(&[("contactId", Asc), ("timestamp", Desc)]),
        IndexDef::on(&[("visitorId", Asc), ("timestamp", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignalType {
    #[default]
    PageView,
    Download,
    VideoWatch,
    FormView,
    EmailClick,
    Search,
    Custom,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentSignal {
    #[serde(rename = "_id")]
    pub id: IntentSignalId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<String>,
    #[serde(default)]
    pub signal_type: SignalType,
    pub signal_name: String,
    pub signal_value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for IntentSignal {
    const DEF: &'static EntityDef = &INTENT_SIGNAL;
}
impl WorkspaceEntity for IntentSignal {}

/// The 34 named signals and their values; others are not scored.
pub const SIGNALS: &[(&str, f64, &str)] = &[
    ("pricing_page", 25.0, "Viewed pricing page"),
    ("pricing_page_repeated", 50.0, "Viewed pricing repeatedly"),
    ("demo_request_page", 40.0, "Visited demo request page"),
    ("contact_page", 20.0, "Visited contact page"),
    ("booking_page", 45.0, "Visited booking/calendar page"),
    ("case_study_view", 15.0, "Read case study"),
    ("case_study_download", 30.0, "Downloaded case study"),
    ("whitepaper_download", 35.0, "Downloaded whitepaper"),
    ("ebook_download", 30.0, "Downloaded ebook"),
    ("product_comparison", 25.0, "Viewed product comparison"),
    ("demo_video_started", 15.0, "Started watching demo video"),
    ("demo_video_50", 25.0, "Watched 50% of demo video"),
    ("demo_video_completed", 40.0, "Watched full demo video"),
    ("webinar_registered", 35.0, "Registered for webinar"),
    ("webinar_attended", 50.0, "Attended webinar"),
    ("email_link_clicked", 10.0, "Clicked link in email"),
    (
        "pricing_email_clicked",
        30.0,
        "Clicked pricing link in email",
    ),
    ("demo_email_clicked", 35.0, "Clicked demo link in email"),
    ("search_pricing", 20.0, "Searched for pricing"),
    ("search_features", 15.0, "Searched for features"),
    ("search_integration", 18.0, "Searched for integrations"),
    ("form_viewed", 5.0, "Viewed form"),
    ("form_started", 15.0, "Started filling form"),
    ("form_abandoned", 10.0, "Abandoned form"),
    ("form_submitted", 40.0, "Submitted form"),
    ("features_page_deep", 12.0, "Explored features in depth"),
    ("documentation_view", 10.0, "Viewed documentation"),
    ("api_docs_view", 15.0, "Viewed API documentation"),
    ("integrations_page", 12.0, "Viewed integrations page"),
    ("competitors_page", 20.0, "Viewed competitor comparison"),
    ("roi_calculator", 30.0, "Used ROI calculator"),
    ("extended_session", 15.0, "Spent 10+ minutes on site"),
    ("multiple_visits_day", 20.0, "Visited 3+ times in one day"),
    ("multiple_visits_week", 10.0, "Visited 5+ times this week"),
];

pub fn signal_value(name: &str) -> Option<f64> {
    SIGNALS.iter().find(|s| s.0 == name).map(|s| s.1)
}

pub fn signal_description(name: &str) -> &str {
    SIGNALS.iter().find(|s| s.0 == name).map_or(name, |s| s.2)
}

/// Signals that together, inside `window_hours`, earn `bonus`.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    pub name: &'static str,
    pub signals: &'static [&'static str],
    pub window_hours: i64,
    pub bonus: f64,
}

pub const PATTERNS: &[Pattern] = &[
    Pattern {
        name: "demo_seeker",
        signals: &["pricing_page", "demo_video_completed", "case_study_view"],
        window_hours: 24,
        bonus: 30.0,
    },
    Pattern {
        name: "comparison_shopper",
        signals: &["competitors_page", "pricing_page", "features_page_deep"],
        window_hours: 48,
        bonus: 25.0,
    },
    Pattern {
        name: "ready_to_buy",
        signals: &[
            "pricing_page_repeated",
            "demo_video_completed",
            "form_submitted",
        ],
        window_hours: 72,
        bonus: 50.0,
    },
    Pattern {
        name: "technical_evaluator",
        signals: &["api_docs_view", "documentation_view", "integrations_page"],
        window_hours: 168,
        bonus: 20.0,
    },
    Pattern {
        name: "content_consumer",
        signals: &[
            "case_study_download",
            "whitepaper_download",
            "webinar_attended",
        ],
        window_hours: 168,
        bonus: 25.0,
    },
];

pub const HALF_LIFE_DAYS: f64 = 30.0;
pub const MAX_AGE_DAYS: i64 = 90;
pub const HOT: f64 = 100.0;
/// Earlier pricing views in 24 h that make the next one `pricing_page_repeated`.
pub const PRICING_REPEAT_AFTER: u64 = 2;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `value` halved every 30 days of age, 0 beyond 90 days; rounded to cents as the original.
pub fn decayed(value: f64, at: Timestamp, now: Timestamp) -> f64 {
    let age_days = (now.millis() - at.millis()).max(0) as f64 / (DAY_SECS as f64 * 1000.0);
    if age_days > MAX_AGE_DAYS as f64 {
        return 0.0;
    }
    round2(value * 0.5_f64.powf(age_days / HALF_LIFE_DAYS))
}

/// Maps a tracked page URL to a signal (the original's automatic mapping).
pub fn signal_for_url(url: &str) -> Option<&'static str> {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]))
        .to_ascii_lowercase();
    let rules: &[(&[&str], &str)] = &[
        (&["/pricing", "/plans"], "pricing_page"),
        (&["/demo"], "demo_request_page"),
        (
            &["/book", "/schedule", "/calendar", "/meeting"],
            "booking_page",
        ),
        (&["/contact"], "contact_page"),
        (
            &["/case-stud", "/case_stud", "/customers/"],
            "case_study_view",
        ),
        (
            &["/vs-", "-vs-", "/vs/", "/competitors", "/alternatives"],
            "competitors_page",
        ),
        (&["/compare", "/comparison"], "product_comparison"),
        (
            &["/api-docs", "/docs/api", "/api-reference", "/developers"],
            "api_docs_view",
        ),
        (&["/docs", "/documentation", "/help"], "documentation_view"),
        (&["/integrations"], "integrations_page"),
        (&["/features"], "features_page_deep"),
        (&["/roi"], "roi_calculator"),
    ];
    rules
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| path.contains(n)))
        .map(|(_, s)| *s)
}

/// Maps a downloaded file or asset name to a signal.
pub fn signal_for_download(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    if n.contains("whitepaper") || n.contains("white-paper") || n.contains("white_paper") {
        Some("whitepaper_download")
    } else if n.contains("ebook") || n.contains("e-book") {
        Some("ebook_download")
    } else if n.contains("case-stud") || n.contains("case_stud") || n.contains("casestud") {
        Some("case_study_download")
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalContribution {
    pub name: String,
    pub description: String,
    pub original_score: f64,
    pub decayed_score: f64,
    pub timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentScore {
    /// Σ of the decayed signal values.
    pub intent_score: f64,
    pub pattern_bonus: f64,
    /// What is stored in `contacts.intentScore`.
    pub total_score: f64,
    pub patterns: Vec<&'static str>,
    pub hot: bool,
    pub signals: Vec<SignalContribution>,
}

/// The score of these signals at `now` (signals older than 90 days are ignored).
pub fn score(signals: &[IntentSignal], now: Timestamp) -> IntentScore {
    let oldest = now.plus_seconds(-MAX_AGE_DAYS * DAY_SECS);
    let live: Vec<&IntentSignal> = signals
        .iter()
        .filter(|s| s.timestamp >= oldest && s.timestamp <= now)
        .collect();
    let mut base = 0.0;
    let mut out = Vec::with_capacity(live.len());
    for s in &live {
        let d = decayed(s.signal_value, s.timestamp, now);
        base += d;
        out.push(SignalContribution {
            name: s.signal_name.clone(),
            description: signal_description(&s.signal_name).to_owned(),
            original_score: s.signal_value,
            decayed_score: d,
            timestamp: s.timestamp,
            url: s.url.clone(),
        });
    }
    let patterns: Vec<&Pattern> = PATTERNS
        .iter()
        .filter(|p| {
            let since = now.plus_seconds(-p.window_hours * 3600);
            p.signals.iter().all(|want| {
                live.iter()
                    .any(|s| s.signal_name == *want && s.timestamp >= since)
            })
        })
        .collect();
    let bonus: f64 = patterns.iter().map(|p| p.bonus).sum();
    let total = round2(base + bonus);
    IntentScore {
        intent_score: round2(base),
        pattern_bonus: bonus,
        total_score: total,
        patterns: patterns.iter().map(|p| p.name).collect(),
        hot: total >= HOT,
        signals: out,
    }
}

fn of_contact(contact: ContactId) -> Filter {
    Filter::eq("contactId", contact.to_string())
}

async fn recent_signals(
    scope: &WorkspaceScope,
    contact: ContactId,
    since: Timestamp,
) -> Result<Vec<IntentSignal>> {
    let f = of_contact(contact).and(Filter::Gte("timestamp".into(), json!(since.to_canonical())));
    let opts = FindOptions {
        sort: vec![SortKey::desc("timestamp"), SortKey::desc("_id")],
        skip: 0,
        limit: Some(5000),
    };
    scope.repo::<IntentSignal>().find(&f, &opts).await
}

/// Recomputes the contact's score and stores it on the contact when it changed.
pub async fn recompute(
    scope: &WorkspaceScope,
    contact: ContactId,
    now: Timestamp,
) -> Result<IntentScore> {
    let c = live_contact(scope, contact).await?;
    let signals =
        recent_signals(scope, contact, now.plus_seconds(-MAX_AGE_DAYS * DAY_SECS)).await?;
    let s = score(&signals, now);
    if (c.intent_score - s.total_score).abs() > f64::EPSILON || c.intent_updated_at.is_none() {
        let u = Update::new()
            .set("intentScore", s.total_score)
            .set("intentUpdatedAt", now.to_canonical());
        scope.repo::<Contact>().update(contact, &u).await?;
    }
    Ok(s)
}

/// What a client reports: a named signal, or a page URL / download name to map.
#[derive(Debug, Clone, Default)]
pub struct Track {
    pub contact_id: Option<ContactId>,
    pub visitor_id: Option<String>,
    pub signal_name: Option<String>,
    pub signal_type: Option<SignalType>,
    pub url: Option<String>,
    pub download: Option<String>,
    pub page_title: Option<String>,
    pub session_id: Option<String>,
    pub source: Option<String>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracked {
    /// False when the URL or download maps to no signal: nothing was stored.
    pub tracked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<IntentSignal>,
    /// The contact's recomputed score (absent for anonymous visitors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<IntentScore>,
}

/// Stores one signal and recomputes the contact's score.
pub async fn track(scope: &WorkspaceScope, t: Track, now: Timestamp) -> Result<Tracked> {
    if t.contact_id.is_none() && t.visitor_id.as_deref().is_none_or(str::is_empty) {
        return Err(Error::invalid(
            "contactId",
            "contactId or visitorId is required",
        ));
    }
    if let Some(c) = t.contact_id {
        live_contact(scope, c).await?;
    }
    let (name, ty) = match (&t.signal_name, &t.download, &t.url) {
        (Some(n), _, _) => {
            if signal_value(n).is_none() {
                return Err(Error::invalid("signalName", "not a known intent signal"));
            }
            (n.clone(), t.signal_type.unwrap_or_default())
        }
        (None, Some(d), _) => match signal_for_download(d) {
            Some(n) => (n.to_owned(), SignalType::Download),
            None => return Ok(untracked()),
        },
        (None, None, Some(u)) => match signal_for_url(u) {
            Some(n) => (n.to_owned(), SignalType::PageView),
            None => return Ok(untracked()),
        },
        (None, None, None) => {
            return Err(Error::invalid(
                "signalName",
                "signalName, url or download is required",
            ));
        }
    };
    let name = if name == "pricing_page" {
        pricing_name(scope, &t, now).await?
    } else {
        name
    };
    let value = signal_value(&name).unwrap_or_default();
    let mut metadata = t.metadata;
    if let Some(d) = t.download {
        metadata.insert("download".into(), json!(d));
    }
    let signal = IntentSignal {
        id: IntentSignalId::new(),
        workspace_id: scope.id(),
        contact_id: t.contact_id,
        visitor_id: t.visitor_id,
        signal_type: ty,
        signal_name: name,
        signal_value: value,
        url: t.url,
        page_title: t.page_title,
        session_id: t.session_id,
        source: t.source,
        metadata,
        timestamp: now,
        created_at: None,
        updated_at: None,
    };
    let signal = scope.repo::<IntentSignal>().insert(&signal).await?;
    let score = match t.contact_id {
        Some(c) => Some(recompute(scope, c, now).await?),
        None => None,
    };
    Ok(Tracked {
        tracked: true,
        signal: Some(signal),
        score,
    })
}

fn untracked() -> Tracked {
    Tracked {
        tracked: false,
        signal: None,
        score: None,
    }
}

/// A pricing view after two others within 24 h is `pricing_page_repeated`.
async fn pricing_name(scope: &WorkspaceScope, t: &Track, now: Timestamp) -> Result<String> {
    let who = match (&t.contact_id, &t.visitor_id) {
        (Some(c), _) => of_contact(*c),
        (None, Some(v)) => Filter::eq("visitorId", v.clone()),
        (None, None) => return Ok("pricing_page".into()),
    };
    let f = who
        .and(Filter::In(
            "signalName".into(),
            vec![json!("pricing_page"), json!("pricing_page_repeated")],
        ))
        .and(Filter::Gte(
            "timestamp".into(),
            json!(now.plus_seconds(-DAY_SECS).to_canonical()),
        ));
    let n = scope.repo::<IntentSignal>().count(&f).await?;
    Ok(if n >= PRICING_REPEAT_AFTER {
        "pricing_page_repeated".into()
    } else {
        "pricing_page".into()
    })
}

/// One contact's signals of the last `days`, with the current score.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub contact_id: ContactId,
    pub days: i64,
    pub score: IntentScore,
    /// Decayed points per signal type within `days`.
    pub signals_by_type: BTreeMap<String, f64>,
    /// Decayed points per day (UTC) within `days`.
    pub timeline: Vec<Value>,
}

pub async fn breakdown(
    scope: &WorkspaceScope,
    contact: ContactId,
    days: i64,
    now: Timestamp,
) -> Result<Breakdown> {
    if !(1..=365).contains(&days) {
        return Err(Error::invalid("days", "must be between 1 and 365"));
    }
    live_contact(scope, contact).await?;
    let window = days.max(MAX_AGE_DAYS);
    let signals = recent_signals(scope, contact, now.plus_seconds(-window * DAY_SECS)).await?;
    let score = score(&signals, now);
    let since = now.plus_seconds(-days * DAY_SECS);
    let mut by_type: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_day: BTreeMap<String, f64> = BTreeMap::new();
    for s in signals.iter().filter(|s| s.timestamp >= since) {
        let d = decayed(s.signal_value, s.timestamp, now);
        let ty = serde_json::to_value(s.signal_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *by_type.entry(ty).or_default() += d;
        let day = s.timestamp.to_canonical()[..10].to_owned();
        *by_day.entry(day).or_default() += d;
    }
    Ok(Breakdown {
        contact_id: contact,
        days,
        score,
        signals_by_type: by_type.into_iter().map(|(k, v)| (k, round2(v))).collect(),
        timeline: by_day
            .into_iter()
            .map(|(date, score)| json!({"date": date, "score": round2(score)}))
            .collect(),
    })
}

/// Contacts at or above `min_score`, highest first.
pub async fn hot_leads(scope: &WorkspaceScope, min_score: f64, limit: u64) -> Result<Vec<Contact>> {
    let f = Filter::Gte("intentScore".into(), json!(min_score))
        .and(Filter::eq("deletedAt", Value::Null));
    let opts = FindOptions {
        sort: vec![SortKey::desc("intentScore"), SortKey::asc("_id")],
        skip: 0,
        limit: Some(limit),
    };
    scope.repo::<Contact>().find(&f, &opts).await
}

/// Signal counts of the last 30 days by name, and how many contacts are hot.
pub async fn analytics(scope: &WorkspaceScope, now: Timestamp) -> Result<Value> {
    let since = json!(now.plus_seconds(-30 * DAY_SECS).to_canonical());
    let rows = scope
        .repo::<IntentSignal>()
        .group(&GroupBy {
            filter: Filter::Gte("timestamp".into(), since),
            key: "signalName".into(),
            sums: vec!["signalValue".into()],
        })
        .await?;
    let mut signals: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "signalName": r.key,
                "count": r.count,
                "totalValue": r.sums.first().copied().unwrap_or_default(),
            })
        })
        .collect();
    signals.sort_by(|a, b| b["count"].as_u64().cmp(&a["count"].as_u64()));
    let total: u64 = signals.iter().filter_map(|s| s["count"].as_u64()).sum();
    let contacts = scope.repo::<Contact>();
    let live = Filter::eq("deletedAt", Value::Null);
    let hot = contacts
        .count(
            &live
                .clone()
                .and(Filter::Gte("intentScore".into(), json!(HOT))),
        )
        .await?;
    let scored = contacts
        .count(&live.and(Filter::Gt("intentScore".into(), json!(0))))
        .await?;
    Ok(json!({
        "days": 30,
        "totalSignals": total,
        "signals": signals,
        "hotLeads": hot,
        "contactsWithIntent": scored,
        "hotThreshold": HOT,
    }))
}

/// Recomputes every contact of the workspace that has signals in the last 90 days or a stored
/// score (so scores whose signals aged out fall to 0). Returns how many were recomputed.
pub async fn recompute_workspace(scope: &WorkspaceScope, now: Timestamp) -> Result<u64> {
    let since = json!(now.plus_seconds(-MAX_AGE_DAYS * DAY_SECS).to_canonical());
    let rows = scope
        .repo::<IntentSignal>()
        .group(&GroupBy {
            filter: Filter::Gte("timestamp".into(), since)
                .and(Filter::Ne("contactId".into(), Value::Null)),
            key: "contactId".into(),
            sums: Vec::new(),
        })
        .await?;
    let mut ids: Vec<ContactId> = rows
        .into_iter()
        .filter_map(|r| r.key.as_str().and_then(|s| s.parse().ok()))
        .collect();
    let stale = scope
        .repo::<Contact>()
        .find(
            &Filter::Gt("intentScore".into(), json!(0)),
            &FindOptions::default(),
        )
        .await?;
    ids.extend(stale.into_iter().map(|c| c.id));
    ids.sort();
    ids.dedup();
    let mut n = 0;
    for id in ids {
        match recompute(scope, id, now).await {
            Ok(_) => n += 1,
            Err(Error::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(name: &str, at: Timestamp) -> IntentSignal {
        IntentSignal {
            id: IntentSignalId::new(),
            workspace_id: WorkspaceId::new(),
            contact_id: None,
            visitor_id: Some("v".into()),
            signal_type: SignalType::PageView,
            signal_name: name.into(),
            signal_value: signal_value(name).unwrap(),
            url: None,
            page_title: None,
            session_id: None,
            source: None,
            metadata: Map::new(),
            timestamp: at,
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn thirty_four_signals() {
        assert_eq!(SIGNALS.len(), 34);
        assert_eq!(signal_value("pricing_page"), Some(25.0));
        assert_eq!(signal_value("booking_page"), Some(45.0));
        assert_eq!(signal_value("nope"), None);
    }

    #[test]
    fn decay_halves_every_thirty_days_and_stops_at_ninety() {
        let now = Timestamp::parse("2026-06-01T00:00:00Z").unwrap();
        let ago = |d: i64| now.plus_seconds(-d * DAY_SECS);
        assert_eq!(decayed(40.0, now, now), 40.0);
        assert_eq!(decayed(40.0, ago(30), now), 20.0);
        assert_eq!(decayed(40.0, ago(60), now), 10.0);
        assert_eq!(decayed(40.0, ago(15), now), 28.28);
        assert_eq!(decayed(40.0, ago(91), now), 0.0);
    }

    #[test]
    fn known_signals_at_known_ages_with_a_bonus() {
        let now = Timestamp::parse("2026-06-01T12:00:00Z").unwrap();
        let h = |n: i64| now.plus_seconds(-n * 3600);
        // demo_seeker: all three inside 24 h → +30.
        let s = score(
            &[
                sig("pricing_page", h(2)),
                sig("demo_video_completed", h(10)),
                sig("case_study_view", h(20)),
                sig("whitepaper_download", now.plus_seconds(-30 * DAY_SECS)),
            ],
            now,
        );
        let expect =
            decayed(25.0, h(2), now) + decayed(40.0, h(10), now) + decayed(15.0, h(20), now) + 17.5;
        assert!((s.intent_score - round2(expect)).abs() < 1e-9, "{s:?}");
        assert_eq!(s.patterns, ["demo_seeker"]);
        assert_eq!(s.pattern_bonus, 30.0);
        assert!((s.total_score - round2(expect + 30.0)).abs() < 1e-9);
        // One of them outside the 24 h window: no bonus.
        let s = score(
            &[
                sig("pricing_page", h(2)),
                sig("demo_video_completed", h(10)),
                sig("case_study_view", h(25)),
            ],
            now,
        );
        assert!(s.patterns.is_empty());
    }

    #[test]
    fn urls_and_downloads_map_to_signals() {
        assert_eq!(
            signal_for_url("https://acme.io/pricing?x=1"),
            Some("pricing_page")
        );
        assert_eq!(signal_for_url("/docs/api/auth"), Some("api_docs_view"));
        assert_eq!(signal_for_url("/docs/start"), Some("documentation_view"));
        assert_eq!(signal_for_url("/acme-vs-rival"), Some("competitors_page"));
        assert_eq!(signal_for_url("/case-studies/x"), Some("case_study_view"));
        assert_eq!(signal_for_url("/blog/hello"), None);
        assert_eq!(
            signal_for_download("2026-Whitepaper.pdf"),
            Some("whitepaper_download")
        );
        assert_eq!(signal_for_download("logo.png"), None);
    }
}
