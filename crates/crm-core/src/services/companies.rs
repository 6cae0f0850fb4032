//! Companies: create and patch commands, reference checks (parent company, assignee), list
//! filters, and a purge that leaves no contact or child company pointing at the purged one.
//! The field machinery and the soft-delete life cycle are those of `super::contacts`.

use serde_json::{Map, Value};

use super::contacts::{
    BulkTags, FieldSpec, Kind, Parsed, WriteCtx, build, check_assignee, check_company, enum_filter,
    field, get_live, id_filter, parse_body, parse_id, patch_update, required, trash_filter,
    update_live,
};
use crate::entities::activity::Activity;
use crate::entities::company::{Company, CompanyId};
use crate::entities::contact::Contact;
use crate::entities::opportunity::Opportunity;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::query::{Filter, Update};
use crate::repo::WorkspaceScope;
use crate::services::opportunities::{self, BulkReport, TagChange};

pub const COMPANY_STATUSES: &[&str] = &["lead", "prospect", "customer", "churned"];
pub const COMPANY_SIZES: &[&str] = &["1-10", "11-50", "51-200", "201-500", "501-1000", "1000+"];
pub const ACCOUNT_TIERS: &[&str] = &["tier1", "tier2", "tier3"];

/// The fields a client may set on a company. Enrichment, AI insights, subsidiaries (derived from
/// the children's `parentCompanyId`) and Salesforce sync are not among them.
pub const COMPANY_FIELDS: &[FieldSpec] = &[
    required("name", Kind::Text { max: 200 }),
    field("industry", Kind::Text { max: 100 }),
    field("website", Kind::Url),
    field("phone", Kind::Text { max: 50 }),
    field("companySize", Kind::OptionalEnum(COMPANY_SIZES)),
    field("annualRevenue", Kind::NonNegative),
    field("employeeCount", Kind::Count),
    field("address", Kind::Address),
    field("status", Kind::Enum(COMPANY_STATUSES)),
    field("tags", Kind::Tags),
    field("assignedTo", Kind::Ref),
    field("parentCompanyId", Kind::Ref),
    field("accountTier", Kind::OptionalEnum(ACCOUNT_TIERS)),
    field("accountScore", Kind::Score),
    field("isTargetAccount", Kind::Bool),
    field("customFields", Kind::Custom),
];

/// A parsed company create command.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCompany(pub Parsed);

impl NewCompany {
    pub fn parse(body: &Map<String, Value>) -> Result<Self> {
        parse_body(COMPANY_FIELDS, body, false).map(Self)
    }
}

/// A parsed company patch.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyPatch(pub Parsed);

impl CompanyPatch {
    pub fn parse(body: &Map<String, Value>) -> Result<Self> {
        parse_body(COMPANY_FIELDS, body, true).map(Self)
    }
}

async fn check_refs(ctx: &WriteCtx, p: &Parsed, this: Option<ObjectId>) -> Result<()> {
    if let Some(id) = p.set_value("parentCompanyId") {
        if this.is_some_and(|me| parse_id(id, "parentCompanyId").ok() == Some(me)) {
            return Err(Error::invalid(
                "parentCompanyId",
                "a company cannot be its own parent",
            ));
        }
        check_company(&ctx.scope, id, "parentCompanyId").await?;
    }
    if let Some(id) = p.set_value("assignedTo") {
        check_assignee(ctx, id, "assignedTo").await?;
    }
    Ok(())
}

pub async fn create(ctx: &WriteCtx, cmd: &NewCompany) -> Result<Company> {
    check_refs(ctx, &cmd.0, None).await?;
    let base = Company::new(ctx.scope.id(), ctx.actor, "");
    let company = build(&ctx.scope, &base, &cmd.0, "company").await?;
    ctx.scope.repo::<Company>().insert(&company).await
}

pub async fn patch(ctx: &WriteCtx, id: CompanyId, cmd: &CompanyPatch) -> Result<Company> {
    let current = get_live::<Company>(&ctx.scope, id.into()).await?;
    check_refs(ctx, &cmd.0, Some(id.into())).await?;
    let u = patch_update(&ctx.scope, &cmd.0, "company").await?;
    if u.is_empty() {
        return Ok(current);
    }
    let updated: Company = update_live(&ctx.scope, id.into(), &u).await?;
    if updated.name != current.name {
        opportunities::sync_company_name(&ctx.scope, id, Some(&updated.name)).await?;
    }
    Ok(updated)
}

/// Deletes a company for good (live or in the trash) with its timeline, and clears the
/// references to it: contacts' `companyId`, child companies' `parentCompanyId`, deals'
/// `companyId` and `companyName`.
pub async fn purge(scope: &WorkspaceScope, id: CompanyId) -> Result<()> {
    let hex = id.to_string();
    // References first, so an interruption leaves no dangling one behind a purged company.
    scope
        .repo::<Opportunity>()
        .update_many(
            &Filter::eq("companyId", hex.clone()),
            &Update::new().unset("companyId").unset("companyName"),
        )
        .await?;
    scope
        .repo::<Activity>()
        .delete_many(&Filter::eq("entityType", "company").and(Filter::eq("entityId", hex.clone())))
        .await?;
    scope
        .repo::<Contact>()
        .update_many(
            &Filter::eq("companyId", hex.clone()),
            &Update::new().unset("companyId"),
        )
        .await?;
    scope
        .repo::<Company>()
        .update_many(
            &Filter::eq("parentCompanyId", hex),
            &Update::new().unset("parentCompanyId"),
        )
        .await?;
    scope.repo::<Company>().delete(id).await
}

/// What a company listing may filter on, besides `search` and `tags`.
#[derive(Debug, Clone, Default)]
pub struct CompanyFilter {
    /// Comma-separated statuses (any of).
    pub status: Option<String>,
    pub assigned_to: Option<String>,
    /// Case-insensitive substring of the industry.
    pub industry: Option<String>,
    /// Comma-separated sizes (any of).
    pub company_size: Option<String>,
    pub parent_company_id: Option<String>,
    pub deleted: bool,
}

impl CompanyFilter {
    pub fn to_filter(&self) -> Result<Filter> {
        let mut f = trash_filter(self.deleted);
        let industry = self
            .industry
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Filter::Contains("industry".into(), s.to_owned()));
        for x in [
            enum_filter(self.status.as_deref(), "status", COMPANY_STATUSES)?,
            enum_filter(self.company_size.as_deref(), "companySize", COMPANY_SIZES)?,
            id_filter(self.assigned_to.as_deref(), "assignedTo")?,
            id_filter(self.parent_company_id.as_deref(), "parentCompanyId")?,
            industry,
        ]
        .into_iter()
        .flatten()
        {
            f = f.and(x);
        }
        Ok(f)
    }
}

/// Applies a tag change to each live company among the ids through [`patch`]: one write (and
/// one audit entry) per company whose tags change; a company already as asked is `unchanged`.
pub async fn bulk_tags(ctx: &WriteCtx, cmd: &BulkTags) -> Result<BulkReport> {
    let change = TagChange {
        add: cmd.add.clone(),
        remove: cmd.remove.clone(),
    };
    let mut report = BulkReport::default();
    for &id in &cmd.ids {
        let r = tag_one(ctx, id.into(), &change).await;
        report.push(id, r)?;
    }
    Ok(report)
}

async fn tag_one(ctx: &WriteCtx, id: CompanyId, change: &TagChange) -> Result<bool> {
    let cur = get_live::<Company>(&ctx.scope, id.into()).await?;
    let tags = change.apply(&cur.tags);
    if tags == cur.tags {
        return Ok(false);
    }
    let mut body = Map::new();
    body.insert("tags".into(), Value::from(tags));
    patch(ctx, id, &CompanyPatch::parse(&body)?)
        .await
        .map(|_| true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::entities::company::CompanyStatus;

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
    fn statuses_match_the_entity_enum() {
        for s in COMPANY_STATUSES {
            serde_json::from_value::<CompanyStatus>(json!(s)).unwrap();
        }
    }

    #[test]
    fn company_rules() {
        assert_eq!(err_field(NewCompany::parse(&obj(json!({})))), "name");
        let cases = [
            (json!({"name": "n".repeat(201)}), "name"),
            (json!({"name": "A", "companySize": "12"}), "companySize"),
            (json!({"name": "A", "annualRevenue": -1}), "annualRevenue"),
            (json!({"name": "A", "employeeCount": -3}), "employeeCount"),
            (json!({"name": "A", "employeeCount": 2.5}), "employeeCount"),
            (json!({"name": "A", "status": "gone"}), "status"),
            (json!({"name": "A", "accountScore": 101}), "accountScore"),
            (json!({"name": "A", "domain": "a.com"}), "domain"),
        ];
        for (body, f) in cases {
            assert_eq!(
                err_field(NewCompany::parse(&obj(body.clone()))),
                f,
                "{body}"
            );
        }
        let ok = NewCompany::parse(&obj(
            json!({"name": " Acme ", "companySize": "1000+", "employeeCount": 0}),
        ))
        .unwrap()
        .0;
        assert_eq!(ok.set_value("name"), Some(&json!("Acme")));
        assert_eq!(ok.set_value("employeeCount"), Some(&json!(0)));
    }

    #[test]
    fn filters() {
        let f = CompanyFilter {
            industry: Some("Soft".into()),
            company_size: Some("1-10,11-50".into()),
            ..CompanyFilter::default()
        };
        assert!(matches!(f.to_filter().unwrap(), Filter::And(v) if v.len() == 3));
        let bad = CompanyFilter {
            company_size: Some("huge".into()),
            ..CompanyFilter::default()
        };
        assert_eq!(err_field(bad.to_filter()), "companySize");
    }
}
