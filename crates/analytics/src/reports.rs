//! The custom report builder's records (ReportDashboard, ReportTemplate, ReportSubscription,
//! ReportComment) and the UserAction report (counts per action, resource type and user).

use crm_core::define_id;
use crm_core::entities::user_action::UserAction;
use crm_core::repo::{Entity, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, UniqueKey, f};
use crm_core::{Filter, GroupBy, Result, Timestamp, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::intel::NonEmpty;
use crate::ws;

define_id!(ReportDashboardId);
define_id!(ReportTemplateId);
define_id!(ReportSubscriptionId);
define_id!(ReportCommentId);

pub static REPORT_DASHBOARD: EntityDef = EntityDef {
    name: "ReportDashboard",
    collection: "reportdashboards",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("description", Text),
        f("widgets", Array),
        f("layout", Any),
        f("isFavorite", Bool),
        f("shareToken", Text),
        f("userId", Id),
    ],
    // The original's key is global and sparse; here it is per workspace and partial.
    unique: &[UniqueKey {
        name: "shareToken",
        fields: &["shareToken"],
    }],
    indexes: &[
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("isFavorite", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Widget {
    pub id: String,
    /// e.g. `metric`, `bar`, `line`, `pie`, `table`, `funnel`.
    #[serde(rename = "type")]
    pub widget_type: String,
    #[serde(default)]
    pub title: String,
    /// Data source and query of the widget, kept as the builder sends it.
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub position: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportDashboard {
    #[serde(rename = "_id")]
    pub id: ReportDashboardId,
    pub workspace_id: WorkspaceId,
    pub name: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub widgets: Vec<Widget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Value>,
    #[serde(default)]
    pub is_favorite: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for ReportDashboard {
    const DEF: &'static EntityDef = &REPORT_DASHBOARD;
}
impl WorkspaceEntity for ReportDashboard {}

pub static REPORT_TEMPLATE: EntityDef = EntityDef {
    name: "ReportTemplate",
    collection: "reporttemplates",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("description", Text),
        f("category", Text),
        f("widgets", Array),
        f("userId", Id),
    ],
    unique: &[],
    indexes: &[IndexDef::on(&[("createdAt", Desc)])],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportTemplate {
    #[serde(rename = "_id")]
    pub id: ReportTemplateId,
    pub workspace_id: WorkspaceId,
    pub name: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default)]
    pub widgets: Vec<Widget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for ReportTemplate {
    const DEF: &'static EntityDef = &REPORT_TEMPLATE;
}
impl WorkspaceEntity for ReportTemplate {}

pub static REPORT_SUBSCRIPTION: EntityDef = EntityDef {
    name: "ReportSubscription",
    collection: "reportsubscriptions",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("dashboardId", Id).required(),
        f("frequency", Text),
        f("recipients", Texts),
        f("format", Text),
        f("isActive", Bool),
        f("nextRunAt", Date),
        f("lastRunAt", Date),
        f("userId", Id),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("dashboardId", Asc)]),
        IndexDef::on(&[("nextRunAt", Asc)]),
        // The original's {isActive, nextRunAt} is global (the sender scans every workspace);
        // here every index starts with the workspace.
        IndexDef::on(&[("isActive", Asc), ("nextRunAt", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Daily,
    #[default]
    Weekly,
    Monthly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    #[default]
    Pdf,
    Csv,
    Html,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportSubscription {
    #[serde(rename = "_id")]
    pub id: ReportSubscriptionId,
    pub workspace_id: WorkspaceId,
    /// A dashboard of the same workspace.
    pub dashboard_id: ReportDashboardId,
    #[serde(default)]
    pub frequency: Frequency,
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(default)]
    pub format: ReportFormat,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn yes() -> bool {
    true
}

impl Entity for ReportSubscription {
    const DEF: &'static EntityDef = &REPORT_SUBSCRIPTION;
}
impl WorkspaceEntity for ReportSubscription {}

pub static REPORT_COMMENT: EntityDef = EntityDef {
    name: "ReportComment",
    collection: "reportcomments",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("dashboardId", Id).required(),
        f("widgetId", Text),
        f("content", Text).required(),
        f("userId", Id),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("dashboardId", Asc)]),
        IndexDef::on(&[("widgetId", Asc)]),
        IndexDef::on(&[("dashboardId", Asc), ("widgetId", Asc), ("createdAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportComment {
    #[serde(rename = "_id")]
    pub id: ReportCommentId,
    pub workspace_id: WorkspaceId,
    pub dashboard_id: ReportDashboardId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget_id: Option<String>,
    pub content: CommentText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for ReportComment {
    const DEF: &'static EntityDef = &REPORT_COMMENT;
}
impl WorkspaceEntity for ReportComment {}

/// 1 to 5000 characters, stored as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CommentText(String);

impl CommentText {
    pub const MAX: usize = 5000;
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CommentText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(serde::de::Error::custom("must not be empty"));
        }
        if s.chars().count() > Self::MAX {
            return Err(serde::de::Error::custom(format!(
                "must be at most {} characters",
                Self::MAX
            )));
        }
        Ok(Self(s))
    }
}

// ---- UserAction report ----

/// One group of the report: a key (action type, resource type or user id) and its count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Count {
    pub key: Value,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserActionReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub total: u64,
    pub by_action_type: Vec<Count>,
    pub by_resource_type: Vec<Count>,
    pub by_user: Vec<Count>,
}

/// Counts the workspace's user actions with `timestamp` in `[from, to)`, grouped three ways by
/// the store's aggregation. Groups are ordered by count, then key, so the answer is stable.
pub async fn user_action_report(
    scope: &WorkspaceScope,
    from: Timestamp,
    to: Timestamp,
) -> Result<UserActionReport> {
    if to <= from {
        return Err(crm_core::Error::invalid("to", "must be after from"));
    }
    let filter = Filter::Gte("timestamp".into(), from.to_canonical().into())
        .and(Filter::Lt("timestamp".into(), to.to_canonical().into()));
    let repo = scope.repo::<UserAction>();
    let group = |key: &'static str| GroupBy {
        filter: filter.clone(),
        key: key.into(),
        sums: Vec::new(),
    };
    let mut out = Vec::with_capacity(3);
    for key in ["actionType", "resourceType", "userId"] {
        let mut rows: Vec<Count> = repo
            .group(&group(key))
            .await?
            .into_iter()
            .map(|r| Count {
                key: r.key,
                count: r.count,
            })
            .collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.key.to_string().cmp(&b.key.to_string()))
        });
        out.push(rows);
    }
    let total = out[0].iter().map(|c| c.count).sum();
    let by_user = out.pop().unwrap_or_default();
    let by_resource_type = out.pop().unwrap_or_default();
    let by_action_type = out.pop().unwrap_or_default();
    Ok(UserActionReport {
        from,
        to,
        total,
        by_action_type,
        by_resource_type,
        by_user,
    })
}
