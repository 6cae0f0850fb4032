//! Multi-touch attribution: which channels get credit for a contact's conversion.
//!
//! A touchpoint is one visit (the first tracked event of each session) with its channel, read
//! from UTM parameters and the referrer. The models split 100 credits over the touchpoints,
//! ordered by time then id so equal inputs always give equal answers; credits are rounded to
//! hundredths by largest remainder (ties to the earlier touch), so they sum to exactly 100.

use std::collections::BTreeMap;

use crm_core::define_id;
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::entities::opportunity::{Opportunity, OpportunityId, OpportunityStatus};
use crm_core::repo::{Entity, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, UniqueKey, f};
use crm_core::{Error, Filter, FindOptions, Result, SortKey, Timestamp, Update, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::tracking::{TrackingEvent, Utm, host_of};
use crate::ws;

define_id!(AttributionId);

pub static ATTRIBUTION: EntityDef = EntityDef {
    name: "Attribution",
    collection: "attributions",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("contactId", Id).required(),
        f("opportunityId", Id),
        f("touchpoints", Array),
        f("touchpoints.channel", Text),
        f("touchpoints.timestamp", Date),
        f("firstTouchChannel", Text),
        f("lastTouchChannel", Text),
        f("touchpointCount", Number),
        f("converted", Bool),
        f("convertedAt", Date),
        f("conversionValue", Number),
    ],
    unique: &[UniqueKey {
        name: "contactId",
        fields: &["contactId"],
    }],
    indexes: &[
        IndexDef::on(&[("opportunityId", Asc)]),
        IndexDef::on(&[("converted", Asc)]),
        IndexDef::on(&[("convertedAt", Desc)]),
        IndexDef::on(&[("firstTouchChannel", Asc)]),
        IndexDef::on(&[("touchpoints.channel", Asc)]),
    ],
    text: &[],
};

/// One visit that led towards a conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Touchpoint {
    /// The tracking event that opened the visit.
    pub event_id: String,
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    pub url: String,
    pub timestamp: Timestamp,
}

/// The stored summary of a contact's journey (`attributions`, one per contact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribution {
    #[serde(rename = "_id")]
    pub id: AttributionId,
    pub workspace_id: WorkspaceId,
    pub contact_id: ContactId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<OpportunityId>,
    #[serde(default)]
    pub touchpoints: Vec<Touchpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_touch_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_touch_channel: Option<String>,
    #[serde(default)]
    pub touchpoint_count: u64,
    #[serde(default)]
    pub converted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for Attribution {
    const DEF: &'static EntityDef = &ATTRIBUTION;
}
impl WorkspaceEntity for Attribution {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    FirstTouch,
    LastTouch,
    #[default]
    Linear,
    /// Half-life of 7 days before the conversion.
    TimeDecay,
    /// 40 % first, 40 % last, 20 % shared by the rest.
    UShaped,
    /// 30 % first, 30 % lead creation, 30 % last, 10 % shared by the rest.
    WShaped,
}

pub const HALF_LIFE_DAYS: f64 = 7.0;
const DAY_MS: f64 = 86_400_000.0;

/// The channel of a visit: UTM medium first, then the referrer's host, else direct.
pub fn channel_of(referrer: Option<&str>, utm: &Utm, url: &str) -> String {
    let medium = utm
        .utm_medium
        .as_deref()
        .map(|m| m.trim().to_ascii_lowercase());
    if let Some(m) = medium.as_deref().filter(|m| !m.is_empty()) {
        let c = match m {
            "cpc" | "ppc" | "paid" | "paidsearch" | "paid_search" | "display" | "cpm" => "paid",
            "email" | "newsletter" | "e-mail" => "email",
            "social" | "social-media" | "social_media" | "paid_social" | "paidsocial" => "social",
            "affiliate" => "affiliate",
            "referral" => "referral",
            "organic" => "organic_search",
            _ => "campaign",
        };
        return c.to_owned();
    }
    if utm
        .utm_source
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty())
    {
        return "campaign".to_owned();
    }
    let Some(rhost) = referrer.and_then(host_of) else {
        return "direct".to_owned();
    };
    if host_of(url).as_deref() == Some(rhost.as_str()) {
        return "direct".to_owned();
    }
    let is = |names: &[&str]| {
        names.iter().any(|n| {
            rhost == *n
                || rhost.starts_with(&format!("{n}."))
                || rhost.contains(&format!(".{n}."))
                || rhost.ends_with(&format!(".{n}"))
        })
    };
    if is(&[
        "google",
        "bing",
        "duckduckgo",
        "yahoo",
        "baidu",
        "yandex",
        "ecosia",
    ]) {
        "organic_search".to_owned()
    } else if is(&[
        "facebook",
        "twitter",
        "t.co",
        "x.com",
        "linkedin",
        "lnkd.in",
        "instagram",
        "reddit",
        "youtube",
        "tiktok",
    ]) {
        "social".to_owned()
    } else {
        "referral".to_owned()
    }
}

/// Touchpoints of a contact's events: the first event of each session, in time order (ties by
/// id). Events must be sorted by `createdAt` then `_id`.
pub fn touchpoints(events: &[TrackingEvent]) -> Vec<Touchpoint> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<Touchpoint> = events
        .iter()
        .filter(|e| seen.insert(e.session_id.clone()))
        .map(|e| Touchpoint {
            event_id: e.id.to_string(),
            channel: channel_of(e.referrer.as_deref(), &e.utm, &e.url),
            source: e.utm.utm_source.clone(),
            medium: e.utm.utm_medium.clone(),
            campaign: e.utm.utm_campaign.clone(),
            url: e.url.clone(),
            timestamp: e.created_at.unwrap_or_else(|| Timestamp::from_millis(0)),
        })
        .collect();
    out.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    out
}

/// Credits (percent, hundredths, summing to 100) of each touchpoint, in the order given, which
/// must be time order. `lead_index` is the lead-creation touch of the W-shaped model (the middle
/// one when unknown); `conversion` anchors time decay (the last touch when unknown).
pub fn credits(
    model: Model,
    touches: &[Touchpoint],
    lead_index: Option<usize>,
    conversion: Option<Timestamp>,
) -> Vec<f64> {
    let n = touches.len();
    if n == 0 {
        return Vec::new();
    }
    let last = n - 1;
    let mut w = vec![0.0_f64; n];
    match model {
        Model::FirstTouch => w[0] = 1.0,
        Model::LastTouch => w[last] = 1.0,
        Model::Linear => w.iter_mut().for_each(|x| *x = 1.0),
        Model::TimeDecay => {
            let anchor = conversion.unwrap_or(touches[last].timestamp).millis() as f64;
            for (x, t) in w.iter_mut().zip(touches) {
                let age_days = ((anchor - t.timestamp.millis() as f64) / DAY_MS).max(0.0);
                *x = 0.5_f64.powf(age_days / HALF_LIFE_DAYS);
            }
        }
        Model::UShaped => positional(&mut w, &[0, last], 40.0, 20.0),
        Model::WShaped => {
            let lead = lead_index.filter(|i| *i < n).unwrap_or(n / 2);
            positional(&mut w, &[0, lead, last], 30.0, 10.0);
        }
    }
    to_hundredths(&w)
}

/// Each key position gets `key` per role it holds (first and last may be one touch); the other
/// touches share `rest`. With no other touches the key shares are scaled up to the whole.
fn positional(w: &mut [f64], keys: &[usize], key: f64, rest: f64) {
    if w.len() == 1 {
        w[0] = 1.0;
        return;
    }
    for k in keys {
        w[*k] += key;
    }
    let others: Vec<usize> = (0..w.len()).filter(|i| !keys.contains(i)).collect();
    for i in &others {
        w[*i] = rest / others.len() as f64;
    }
}

fn to_hundredths(w: &[f64]) -> Vec<f64> {
    let total: f64 = w.iter().sum();
    if total <= 0.0 {
        return vec![0.0; w.len()];
    }
    let exact: Vec<f64> = w.iter().map(|x| x / total * 10_000.0).collect();
    let mut c: Vec<i64> = exact.iter().map(|x| x.floor() as i64).collect();
    let short = 10_000 - c.iter().sum::<i64>();
    // Largest remainders get the missing hundredths; ties go to the earlier touch.
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|a, b| {
        let fa = exact[*a] - c[*a] as f64;
        let fb = exact[*b] - c[*b] as f64;
        fb.total_cmp(&fa).then_with(|| a.cmp(b))
    });
    for i in order.into_iter().take(usize::try_from(short).unwrap_or(0)) {
        c[i] += 1;
    }
    c.into_iter().map(|v| v as f64 / 100.0).collect()
}

/// One touchpoint with its credit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditedTouch {
    #[serde(flatten)]
    pub touch: Touchpoint,
    pub credit: f64,
}

/// A contact's journey under one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactAttribution {
    pub contact_id: ContactId,
    pub model: Model,
    pub touchpoints: Vec<CreditedTouch>,
    /// Credit per channel, channels in name order.
    pub channels: BTreeMap<String, f64>,
}

const EVENTS_READ_MAX: u64 = 5_000;

async fn contact_events(
    scope: &WorkspaceScope,
    contact: ContactId,
    before: Option<Timestamp>,
) -> Result<Vec<TrackingEvent>> {
    let mut filter = Filter::eq("contactId", contact.to_string());
    if let Some(b) = before {
        filter = filter.and(Filter::Lte("createdAt".into(), b.to_canonical().into()));
    }
    scope
        .repo::<TrackingEvent>()
        .find(
            &filter,
            &FindOptions {
                sort: vec![SortKey::asc("createdAt"), SortKey::asc("_id")],
                skip: 0,
                limit: Some(EVENTS_READ_MAX),
            },
        )
        .await
}

/// The touch during which the contact was created: the last one at or before its creation.
fn lead_index(touches: &[Touchpoint], created: Option<Timestamp>) -> Option<usize> {
    let created = created?;
    touches.iter().rposition(|t| t.timestamp <= created)
}

fn credited(
    model: Model,
    touches: Vec<Touchpoint>,
    lead: Option<usize>,
    conversion: Option<Timestamp>,
) -> (Vec<CreditedTouch>, BTreeMap<String, f64>) {
    let cs = credits(model, &touches, lead, conversion);
    let mut channels = BTreeMap::new();
    let list = touches
        .into_iter()
        .zip(cs)
        .map(|(touch, credit)| {
            *channels.entry(touch.channel.clone()).or_insert(0.0) += credit;
            CreditedTouch { touch, credit }
        })
        .collect();
    for v in channels.values_mut() {
        *v = (*v * 100.0).round() / 100.0;
    }
    (list, channels)
}

/// A contact's touchpoints and credits under `model`; 404 for a contact of another workspace.
pub async fn for_contact(
    scope: &WorkspaceScope,
    contact: ContactId,
    model: Model,
) -> Result<ContactAttribution> {
    let c: Contact = crm_core::services::contacts::get_live(scope, contact.into()).await?;
    let events = contact_events(scope, contact, None).await?;
    let touches = touchpoints(&events);
    let lead = lead_index(&touches, c.created_at);
    let (touchpoints, channels) = credited(model, touches, lead, None);
    Ok(ContactAttribution {
        contact_id: contact,
        model,
        touchpoints,
        channels,
    })
}

/// Rewrites the contact's stored attribution from its events (after identify stitched them);
/// `conversion` marks it converted.
pub async fn refresh(
    scope: &WorkspaceScope,
    contact: ContactId,
    conversion: Option<(Timestamp, f64, OpportunityId)>,
) -> Result<()> {
    let events = contact_events(scope, contact, None).await?;
    let touches = touchpoints(&events);
    let mut u = Update::new()
        .set(
            "touchpoints",
            serde_json::to_value(&touches).map_err(Error::internal)?,
        )
        .set("touchpointCount", touches.len() as u64);
    if let Some(t) = touches.first() {
        u = u.set("firstTouchChannel", t.channel.clone());
    }
    if let Some(t) = touches.last() {
        u = u.set("lastTouchChannel", t.channel.clone());
    }
    // One update may name a path once: `converted` is either set or defaulted on insert.
    if let Some((at, value, opp)) = conversion {
        u = u
            .set("converted", true)
            .set("convertedAt", at.to_canonical())
            .set("conversionValue", value)
            .set("opportunityId", opp.to_string());
    } else {
        u = u.set_on_insert("converted", false);
    }
    let repo = scope.repo::<Attribution>();
    let filter = Filter::eq("contactId", contact.to_string());
    match repo.find_one_and_update(&filter, &u, true).await {
        Err(Error::Conflict { .. }) => {
            repo.find_one_and_update(&filter, &u, false).await?;
        }
        other => {
            other?;
        }
    }
    Ok(())
}

/// One channel's share of the period's won deals.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelCredit {
    pub channel: String,
    /// Won deals credited to the channel (fractions of deals).
    pub conversions: f64,
    /// Won value credited to the channel.
    pub revenue: f64,
    pub touchpoints: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributionReport {
    pub model: Model,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Won deals in the period whose contact has touchpoints.
    pub attributed_deals: u64,
    /// Won deals in the period without a contact or without touchpoints.
    pub unattributed_deals: u64,
    pub total_revenue: f64,
    pub channels: Vec<ChannelCredit>,
}

const REPORT_DEALS_MAX: u64 = 10_000;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Credits the deals won in `[from, to)` (by `actualCloseDate`) to channels: each deal's contact's
/// touchpoints up to the close share the deal under `model`.
pub async fn report(
    scope: &WorkspaceScope,
    model: Model,
    from: Timestamp,
    to: Timestamp,
) -> Result<AttributionReport> {
    if to <= from {
        return Err(Error::invalid("to", "must be after from"));
    }
    let won = scope
        .repo::<Opportunity>()
        .find(
            &Filter::eq("status", json!(OpportunityStatus::Won))
                .and(Filter::Gte(
                    "actualCloseDate".into(),
                    from.to_canonical().into(),
                ))
                .and(Filter::Lt(
                    "actualCloseDate".into(),
                    to.to_canonical().into(),
                ))
                .and(Filter::eq("deletedAt", serde_json::Value::Null)),
            &FindOptions {
                sort: vec![SortKey::asc("actualCloseDate"), SortKey::asc("_id")],
                skip: 0,
                limit: Some(REPORT_DEALS_MAX),
            },
        )
        .await?;
    let mut by_channel: BTreeMap<String, ChannelCredit> = BTreeMap::new();
    let (mut attributed, mut unattributed, mut total) = (0, 0, 0.0);
    for deal in won {
        total += deal.value;
        let Some(contact) = deal.contact_id else {
            unattributed += 1;
            continue;
        };
        let events = contact_events(scope, contact, deal.actual_close_date).await?;
        let touches = touchpoints(&events);
        if touches.is_empty() {
            unattributed += 1;
            continue;
        }
        attributed += 1;
        let created = scope
            .repo::<Contact>()
            .get(contact)
            .await
            .ok()
            .and_then(|c| c.created_at);
        let lead = lead_index(&touches, created);
        let (list, _) = credited(model, touches, lead, deal.actual_close_date);
        for t in list {
            let e = by_channel
                .entry(t.touch.channel.clone())
                .or_insert_with(|| ChannelCredit {
                    channel: t.touch.channel.clone(),
                    conversions: 0.0,
                    revenue: 0.0,
                    touchpoints: 0,
                });
            e.conversions += t.credit / 100.0;
            e.revenue += deal.value * t.credit / 100.0;
            e.touchpoints += 1;
        }
    }
    let mut channels: Vec<ChannelCredit> = by_channel
        .into_values()
        .map(|mut c| {
            c.conversions = (c.conversions * 10_000.0).round() / 10_000.0;
            c.revenue = round2(c.revenue);
            c
        })
        .collect();
    channels.sort_by(|a, b| {
        b.revenue
            .total_cmp(&a.revenue)
            .then_with(|| a.channel.cmp(&b.channel))
    });
    Ok(AttributionReport {
        model,
        from,
        to,
        attributed_deals: attributed,
        unattributed_deals: unattributed,
        total_revenue: round2(total),
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, day: i64, channel: &str) -> Touchpoint {
        Touchpoint {
            event_id: id.into(),
            channel: channel.into(),
            source: None,
            medium: None,
            campaign: None,
            url: "https://a.io/".into(),
            timestamp: Timestamp::from_millis(1_700_000_000_000 + day * 86_400_000),
        }
    }

    fn five() -> Vec<Touchpoint> {
        vec![
            t("a", 0, "paid"),
            t("b", 7, "email"),
            t("c", 14, "social"),
            t("d", 21, "direct"),
            t("e", 28, "referral"),
        ]
    }

    fn sum(v: &[f64]) -> f64 {
        (v.iter().sum::<f64>() * 100.0).round() / 100.0
    }

    #[test]
    fn single_touch_models() {
        let ts = five();
        assert_eq!(
            credits(Model::FirstTouch, &ts, None, None),
            vec![100.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            credits(Model::LastTouch, &ts, None, None),
            vec![0.0, 0.0, 0.0, 0.0, 100.0]
        );
        assert!(credits(Model::Linear, &[], None, None).is_empty());
    }

    #[test]
    fn linear_splits_evenly_and_sums_to_100() {
        assert_eq!(credits(Model::Linear, &five(), None, None), vec![20.0; 5]);
        let three = &five()[..3];
        let c = credits(Model::Linear, three, None, None);
        assert_eq!(c, vec![33.34, 33.33, 33.33]);
        assert_eq!(sum(&c), 100.0);
    }

    #[test]
    fn time_decay_halves_every_seven_days() {
        // Weights 1/16, 1/8, 1/4, 1/2, 1 (sum 31/16): 100 * w / sum.
        let c = credits(Model::TimeDecay, &five(), None, None);
        assert_eq!(c, vec![3.23, 6.45, 12.9, 25.81, 51.61]);
        assert_eq!(sum(&c), 100.0);
        // Anchored a week after the last touch, the shares stay in the same ratio.
        let anchor = Timestamp::from_millis(1_700_000_000_000 + 35 * 86_400_000);
        assert_eq!(credits(Model::TimeDecay, &five(), None, Some(anchor)), c);
    }

    #[test]
    fn u_shaped_is_40_40_20() {
        assert_eq!(
            credits(Model::UShaped, &five(), None, None),
            vec![40.0, 6.67, 6.67, 6.66, 40.0]
        );
        assert_eq!(
            credits(Model::UShaped, &five()[..2], None, None),
            vec![50.0, 50.0]
        );
        assert_eq!(
            credits(Model::UShaped, &five()[..1], None, None),
            vec![100.0]
        );
    }

    #[test]
    fn w_shaped_is_30_30_30_10() {
        assert_eq!(
            credits(Model::WShaped, &five(), Some(1), None),
            vec![30.0, 30.0, 5.0, 5.0, 30.0]
        );
        // Lead touch unknown: the middle one.
        assert_eq!(
            credits(Model::WShaped, &five(), None, None),
            vec![30.0, 5.0, 30.0, 5.0, 30.0]
        );
        // Three touches hold the three roles: the 10 % has nobody to go to.
        assert_eq!(
            credits(Model::WShaped, &five()[..3], Some(1), None),
            vec![33.34, 33.33, 33.33]
        );
        // The lead touch is the first: it holds two roles.
        assert_eq!(
            credits(Model::WShaped, &five()[..4], Some(0), None),
            vec![60.0, 5.0, 5.0, 30.0]
        );
    }

    #[test]
    fn every_model_sums_to_100_for_any_length() {
        let all = [
            Model::FirstTouch,
            Model::LastTouch,
            Model::Linear,
            Model::TimeDecay,
            Model::UShaped,
            Model::WShaped,
        ];
        let many: Vec<Touchpoint> = (0..23).map(|i| t(&format!("{i:02}"), i, "x")).collect();
        for m in all {
            for n in 1..many.len() {
                assert_eq!(sum(&credits(m, &many[..n], None, None)), 100.0, "{m:?} {n}");
            }
        }
    }

    #[test]
    fn channels_from_utm_and_referrer() {
        let utm = |m: Option<&str>, s: Option<&str>| Utm {
            utm_source: s.map(Into::into),
            utm_medium: m.map(Into::into),
            ..Utm::default()
        };
        let none = Utm::default();
        let url = "https://shop.io/p";
        assert_eq!(channel_of(None, &utm(Some("CPC"), None), url), "paid");
        assert_eq!(channel_of(None, &utm(Some("email"), None), url), "email");
        assert_eq!(
            channel_of(None, &utm(None, Some("partner")), url),
            "campaign"
        );
        assert_eq!(
            channel_of(Some("https://www.google.com/"), &none, url),
            "organic_search"
        );
        assert_eq!(channel_of(Some("https://t.co/x"), &none, url), "social");
        assert_eq!(
            channel_of(Some("https://blog.example.org/"), &none, url),
            "referral"
        );
        assert_eq!(
            channel_of(Some("https://shop.io/home"), &none, url),
            "direct"
        );
        assert_eq!(channel_of(None, &none, url), "direct");
    }
}
