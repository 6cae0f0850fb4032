//! Revenue forecast from open deals (§5 of the original): which deals close in the period, how
//! likely (the deal's probability, default 50, cut to 70 % after 14 idle days and to half of
//! that after 30), and the deals at risk. Every rule takes "now" from the caller's clock.

use chrono::{Datelike, TimeZone, Utc};
use crm_core::define_id;
use crm_core::entities::opportunity::{
    DealTemperature, Opportunity, OpportunityId, OpportunityStatus,
};
use crm_core::repo::{Entity, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, f};
use crm_core::{Error, Filter, FindOptions, Result, SortKey, Timestamp, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ws;

define_id!(ForecastId);

pub const DEFAULT_PROBABILITY: f64 = 50.0;
pub const DEFAULT_DAYS: i64 = 30;
/// Days without activity after which a deal's probability is cut to 70 %.
pub const IDLE_DAYS: f64 = 14.0;
/// Days without activity after which it is halved again.
pub const STALE_DAYS: f64 = 30.0;
pub const COMMIT_PROBABILITY: f64 = 80.0;
/// Deals scoring at least this much are at risk.
pub const RISK_THRESHOLD: u32 = 30;
const DAY_MS: f64 = 86_400_000.0;
const DEALS_READ_MAX: u64 = 10_000;

/// There is no Forecast model in the original (its docs name a `Forecast.ts` that does not
/// exist): stored forecasts are snapshots taken on request, collection `forecasts` by
/// Mongoose's naming rule.
pub static FORECAST: EntityDef = EntityDef {
    name: "Forecast",
    collection: "forecasts",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("period", Text).required(),
        f("periodStart", Date).required(),
        f("periodEnd", Date).required(),
        f("generatedAt", Date).required(),
        f("weighted", Number),
        f("bestCase", Number),
        f("committed", Number),
        f("dealCount", Number),
        f("deals", Array),
        f("generatedBy", Id),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("generatedAt", Desc)]),
        IndexDef::on(&[("period", Asc), ("generatedAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// The calendar month of now (UTC).
    Month,
    /// The calendar quarter of now.
    Quarter,
    /// The calendar year of now.
    Year,
    /// The next 30 days.
    #[default]
    #[serde(rename = "next_30_days")]
    Next30Days,
}

/// `[start, end)` of the period around `now`.
pub fn window(period: Period, now: Timestamp) -> (Timestamp, Timestamp) {
    let d = now.datetime();
    let start_of = |y: i32, m: u32| {
        let (y, m) = if m > 12 { (y + 1, m - 12) } else { (y, m) };
        Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
            .single()
            .map_or(now, Timestamp::from)
    };
    match period {
        Period::Month => (
            start_of(d.year(), d.month()),
            start_of(d.year(), d.month() + 1),
        ),
        Period::Quarter => {
            let q = (d.month() - 1) / 3 * 3 + 1;
            (start_of(d.year(), q), start_of(d.year(), q + 3))
        }
        Period::Year => (start_of(d.year(), 1), start_of(d.year() + 1, 1)),
        Period::Next30Days => (now, now.plus_seconds(DEFAULT_DAYS * 86_400)),
    }
}

fn days_inactive(o: &Opportunity, now: Timestamp) -> f64 {
    let last = o.last_activity_at.or(o.updated_at).or(o.created_at);
    last.map_or(0.0, |t| {
        ((now.millis() - t.millis()) as f64 / DAY_MS).max(0.0)
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One deal's part in the forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealForecast {
    pub opportunity_id: OpportunityId,
    pub title: String,
    pub value: f64,
    /// As stored (default 50).
    pub probability: f64,
    /// After the inactivity cuts.
    pub adjusted_probability: f64,
    pub weighted_value: f64,
    pub days_inactive: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_close_date: Option<Timestamp>,
    pub committed: bool,
}

/// The forecast of a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastFigures {
    pub period: Period,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub deal_count: u64,
    /// Σ value × adjusted probability / 100.
    pub weighted: f64,
    /// Σ value.
    pub best_case: f64,
    /// Σ value of deals at ≥ 80 % that were active in the last 14 days.
    pub committed: f64,
    pub deals: Vec<DealForecast>,
}

/// The forecast of `period` over `deals` (open deals whose expected close falls in the period
/// are counted; others are ignored), as of `now`.
pub fn compute(deals: &[Opportunity], period: Period, now: Timestamp) -> ForecastFigures {
    let (start, end) = window(period, now);
    let mut rows: Vec<DealForecast> = deals
        .iter()
        .filter(|o| o.status == OpportunityStatus::Open && o.deleted_at.is_none())
        .filter(|o| o.expected_close_date.is_some_and(|d| d >= start && d < end))
        .map(|o| {
            let p = o.probability.unwrap_or(DEFAULT_PROBABILITY);
            let idle = days_inactive(o, now);
            let mut adj = p;
            if idle > IDLE_DAYS {
                adj *= 0.7;
            }
            if idle > STALE_DAYS {
                adj *= 0.5;
            }
            DealForecast {
                opportunity_id: o.id,
                title: o.title.clone(),
                value: o.value,
                probability: p,
                adjusted_probability: round2(adj),
                weighted_value: round2(o.value * adj / 100.0),
                days_inactive: round2(idle),
                expected_close_date: o.expected_close_date,
                committed: p >= COMMIT_PROBABILITY && idle < IDLE_DAYS,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        a.expected_close_date
            .cmp(&b.expected_close_date)
            .then_with(|| a.opportunity_id.cmp(&b.opportunity_id))
    });
    ForecastFigures {
        period,
        period_start: start,
        period_end: end,
        deal_count: rows.len() as u64,
        weighted: round2(deals_sum(&rows, |d| {
            d.value * d.adjusted_probability / 100.0
        })),
        best_case: round2(deals_sum(&rows, |d| d.value)),
        committed: round2(deals_sum(
            &rows,
            |d| if d.committed { d.value } else { 0.0 },
        )),
        deals: rows,
    }
}

fn deals_sum(rows: &[DealForecast], f: impl Fn(&DealForecast) -> f64) -> f64 {
    rows.iter().map(f).sum()
}

/// Why a deal is at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskReason {
    /// No activity for more than 14 days (+25).
    Inactive,
    /// Its expected close date has passed (+30).
    OverdueClose,
    /// No next action planned (+15).
    NoNextAction,
    /// Marked cold (+20).
    Cold,
    /// Probability under 30 (+15).
    LowProbability,
}

impl RiskReason {
    pub fn points(self) -> u32 {
        match self {
            Self::Inactive => 25,
            Self::OverdueClose => 30,
            Self::NoNextAction => 15,
            Self::Cold => 20,
            Self::LowProbability => 15,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DealRisk {
    pub opportunity_id: OpportunityId,
    pub title: String,
    pub value: f64,
    pub risk_score: u32,
    pub reasons: Vec<RiskReason>,
    pub days_inactive: f64,
}

/// Open deals scoring at least [`RISK_THRESHOLD`], riskiest first (then larger, then by id).
pub fn risks(deals: &[Opportunity], now: Timestamp) -> Vec<DealRisk> {
    let mut out: Vec<DealRisk> = deals
        .iter()
        .filter(|o| o.status == OpportunityStatus::Open && o.deleted_at.is_none())
        .filter_map(|o| {
            let idle = days_inactive(o, now);
            let mut reasons = Vec::new();
            if idle > IDLE_DAYS {
                reasons.push(RiskReason::Inactive);
            }
            if o.expected_close_date.is_some_and(|d| d < now) {
                reasons.push(RiskReason::OverdueClose);
            }
            if o.next_action.as_deref().is_none_or(|s| s.trim().is_empty()) {
                reasons.push(RiskReason::NoNextAction);
            }
            if o.deal_temperature == Some(DealTemperature::Cold) {
                reasons.push(RiskReason::Cold);
            }
            if o.probability.unwrap_or(DEFAULT_PROBABILITY) < 30.0 {
                reasons.push(RiskReason::LowProbability);
            }
            let score = reasons.iter().map(|r| r.points()).sum();
            (score >= RISK_THRESHOLD).then(|| DealRisk {
                opportunity_id: o.id,
                title: o.title.clone(),
                value: o.value,
                risk_score: score,
                reasons,
                days_inactive: round2(idle),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.risk_score
            .cmp(&a.risk_score)
            .then_with(|| b.value.total_cmp(&a.value))
            .then_with(|| a.opportunity_id.cmp(&b.opportunity_id))
    });
    out
}

fn open_deals() -> Filter {
    Filter::eq("status", json!(OpportunityStatus::Open)).and(Filter::eq("deletedAt", Value::Null))
}

async fn load(scope: &WorkspaceScope, filter: Filter) -> Result<Vec<Opportunity>> {
    scope
        .repo::<Opportunity>()
        .find(
            &filter,
            &FindOptions {
                sort: vec![SortKey::asc("_id")],
                skip: 0,
                limit: Some(DEALS_READ_MAX),
            },
        )
        .await
}

/// The workspace's forecast for `period` as of the scope's clock time `now`.
pub async fn forecast(
    scope: &WorkspaceScope,
    period: Period,
    now: Timestamp,
) -> Result<ForecastFigures> {
    let (start, end) = window(period, now);
    let deals = load(
        scope,
        open_deals()
            .and(Filter::Gte(
                "expectedCloseDate".into(),
                start.to_canonical().into(),
            ))
            .and(Filter::Lt(
                "expectedCloseDate".into(),
                end.to_canonical().into(),
            )),
    )
    .await?;
    Ok(compute(&deals, period, now))
}

/// The workspace's open deals at risk as of `now`.
pub async fn deal_risks(scope: &WorkspaceScope, now: Timestamp) -> Result<Vec<DealRisk>> {
    Ok(risks(&load(scope, open_deals()).await?, now))
}

/// A stored forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    #[serde(rename = "_id")]
    pub id: ForecastId,
    pub workspace_id: WorkspaceId,
    pub generated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_by: Option<UserId>,
    #[serde(flatten)]
    pub figures: ForecastFigures,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for Forecast {
    const DEF: &'static EntityDef = &FORECAST;
}
impl WorkspaceEntity for Forecast {}

/// Computes and stores a snapshot of the forecast.
pub async fn snapshot(
    scope: &WorkspaceScope,
    period: Period,
    now: Timestamp,
    by: Option<UserId>,
) -> Result<Forecast> {
    let figures = forecast(scope, period, now).await?;
    let f = Forecast {
        id: ForecastId::new(),
        workspace_id: scope.id(),
        generated_at: now,
        generated_by: by,
        figures,
        created_at: None,
        updated_at: None,
    };
    scope
        .repo::<Forecast>()
        .insert(&f)
        .await
        .map_err(|e| match e {
            Error::Conflict { key } => Error::internal(format!("forecast key {key}")),
            e => e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::entities::pipeline::{PipelineId, StageId};

    const NOW: &str = "2026-05-15T12:00:00Z";

    fn now() -> Timestamp {
        Timestamp::parse(NOW).unwrap_or_else(|_| Timestamp::from_millis(0))
    }

    fn days_ago(d: i64) -> Timestamp {
        now().plus_seconds(-d * 86_400)
    }

    fn deal(title: &str, value: f64, p: Option<f64>, idle: i64, close_in: i64) -> Opportunity {
        let mut o = Opportunity::new(
            WorkspaceId::new(),
            UserId::new(),
            PipelineId::new(),
            StageId::new(),
            title,
            value,
        );
        o.probability = p;
        o.last_activity_at = Some(days_ago(idle));
        o.expected_close_date = Some(now().plus_seconds(close_in * 86_400));
        o.next_action = Some("call".into());
        o
    }

    #[test]
    fn windows() {
        let (s, e) = window(Period::Month, now());
        assert_eq!(s.to_canonical(), "2026-05-01T00:00:00.000Z");
        assert_eq!(e.to_canonical(), "2026-06-01T00:00:00.000Z");
        let (s, e) = window(Period::Quarter, now());
        assert_eq!(s.to_canonical(), "2026-04-01T00:00:00.000Z");
        assert_eq!(e.to_canonical(), "2026-07-01T00:00:00.000Z");
        let (s, e) = window(Period::Year, now());
        assert_eq!(s.to_canonical(), "2026-01-01T00:00:00.000Z");
        assert_eq!(e.to_canonical(), "2027-01-01T00:00:00.000Z");
        let (s, e) = window(Period::Next30Days, now());
        assert_eq!(
            (s, e.to_canonical().as_str()),
            (now(), "2026-06-14T12:00:00.000Z")
        );
        let dec = Timestamp::parse("2026-12-31T23:00:00Z").unwrap_or_else(|_| now());
        assert_eq!(
            window(Period::Quarter, dec).1.to_canonical(),
            "2027-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn weighted_best_case_and_committed() {
        let deals = vec![
            // Active, 90 %: counts fully and is committed.
            deal("a", 1000.0, Some(90.0), 1, 5),
            // No probability: 50; 20 idle days: x0.7 -> 35.
            deal("b", 2000.0, None, 20, 10),
            // 40 idle days: 60 x 0.7 x 0.5 = 21.
            deal("c", 500.0, Some(60.0), 40, 3),
            // 80 % but idle 15 days: not committed, 56.
            deal("d", 100.0, Some(80.0), 15, 1),
            // Closes after the 30 days: left out.
            deal("e", 9999.0, Some(90.0), 0, 45),
        ];
        let mut won = deal("f", 7777.0, Some(100.0), 0, 2);
        won.status = OpportunityStatus::Won;
        let mut all = deals;
        all.push(won);
        let f = compute(&all, Period::Next30Days, now());
        assert_eq!(f.deal_count, 4);
        assert_eq!(f.best_case, 3600.0);
        // 900 + 700 + 105 + 56
        assert_eq!(f.weighted, 1761.0);
        assert_eq!(f.committed, 1000.0);
        let by: Vec<(&str, f64)> = f
            .deals
            .iter()
            .map(|d| (d.title.as_str(), d.adjusted_probability))
            .collect();
        assert_eq!(by, vec![("d", 56.0), ("c", 21.0), ("a", 90.0), ("b", 35.0)]);
    }

    #[test]
    fn risk_scores() {
        let mut cold = deal("cold", 10.0, Some(20.0), 20, -1);
        cold.deal_temperature = Some(DealTemperature::Cold);
        cold.next_action = None;
        let fine = deal("fine", 10.0, Some(50.0), 1, 5);
        let mut planless = deal("planless", 50.0, Some(50.0), 1, 5);
        planless.next_action = None;
        // 15 (no next action) + 15 (probability) = 30: at the threshold.
        let mut low = deal("low", 5.0, Some(10.0), 1, 5);
        low.next_action = Some("  ".into());
        let r = risks(&[fine, planless, cold, low], now());
        let got: Vec<(&str, u32)> = r.iter().map(|d| (d.title.as_str(), d.risk_score)).collect();
        assert_eq!(got, vec![("cold", 105), ("low", 30)]);
        assert_eq!(
            r[0].reasons,
            vec![
                RiskReason::Inactive,
                RiskReason::OverdueClose,
                RiskReason::NoNextAction,
                RiskReason::Cold,
                RiskReason::LowProbability
            ]
        );
    }
}
