//! EmailTemplate (`emailtemplates`): `variables` is recomputed from subject, body and
//! htmlContent whenever a template is decoded, so every save stores the current list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crm_core::define_id;
use crm_core::entities::contact::Contact;
use crm_core::repo::{Entity, WorkspaceEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crm_core::{Error, Result, Timestamp, UserId, WorkspaceId};

use crate::render::{Escape, fill, placeholders_of};
use crate::text::Bounded;

define_id!(EmailTemplateId);

pub static EMAIL_TEMPLATE: EntityDef = EntityDef {
    name: "EmailTemplate",
    collection: "emailtemplates",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("createdBy", Id),
        f("name", Text).required(),
        f("subject", Text).required(),
        f("body", Text),
        f("builderJson", Any),
        f("htmlContent", Text),
        f("isPredesigned", Bool),
        f("version", Number),
        f("category", Text),
        f("isDefault", Bool),
        f("variables", Texts),
        f("usageCount", Number),
        f("lastUsedAt", Date),
        f("thumbnail", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("isPredesigned", Asc)]),
        IndexDef::on(&[("category", Asc)]),
        IndexDef::on(&[("name", Asc)]),
    ],
    text: &["name", "subject"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TemplateCategory {
    Welcome,
    FollowUp,
    Nurture,
    Promotion,
    Announcement,
    Outreach,
    #[default]
    Custom,
}

/// The stored shape, before `variables` is derived.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateDoc {
    #[serde(rename = "_id")]
    id: EmailTemplateId,
    workspace_id: WorkspaceId,
    #[serde(default)]
    created_by: Option<UserId>,
    name: Bounded<100>,
    subject: Bounded<200>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    builder_json: Option<Value>,
    #[serde(default)]
    html_content: Option<String>,
    #[serde(default)]
    is_predesigned: bool,
    #[serde(default = "one")]
    version: u32,
    #[serde(default)]
    category: TemplateCategory,
    #[serde(default)]
    is_default: bool,
    #[serde(default)]
    usage_count: u64,
    #[serde(default)]
    last_used_at: Option<Timestamp>,
    #[serde(default)]
    thumbnail: Option<String>,
    #[serde(default)]
    created_at: Option<Timestamp>,
    #[serde(default)]
    updated_at: Option<Timestamp>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "TemplateDoc")]
pub struct EmailTemplate {
    #[serde(rename = "_id")]
    pub id: EmailTemplateId,
    pub workspace_id: WorkspaceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
    pub name: Bounded<100>,
    pub subject: Bounded<200>,
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builder_json: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_content: Option<String>,
    pub is_predesigned: bool,
    pub version: u32,
    pub category: TemplateCategory,
    pub is_default: bool,
    /// Distinct `{{name}}` placeholders of subject, body and htmlContent (derived).
    pub variables: Vec<String>,
    pub usage_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl From<TemplateDoc> for EmailTemplate {
    fn from(d: TemplateDoc) -> Self {
        let variables = placeholders_of(
            [d.subject.as_str(), d.body.as_str()]
                .into_iter()
                .chain(d.html_content.as_deref()),
        );
        Self {
            id: d.id,
            workspace_id: d.workspace_id,
            created_by: d.created_by,
            name: d.name,
            subject: d.subject,
            body: d.body,
            builder_json: d.builder_json,
            html_content: d.html_content,
            is_predesigned: d.is_predesigned,
            version: d.version,
            category: d.category,
            is_default: d.is_default,
            variables,
            usage_count: d.usage_count,
            last_used_at: d.last_used_at,
            thumbnail: d.thumbnail,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

impl Entity for EmailTemplate {
    const DEF: &'static EntityDef = &EMAIL_TEMPLATE;
}
impl WorkspaceEntity for EmailTemplate {}

/// A template filled for one recipient.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    pub subject: String,
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_content: Option<String>,
}

/// Fills subject (line breaks removed), body and htmlContent (HTML-escaped values). Any
/// placeholder without a value is an `Invalid` error on `variables` naming every missing one.
pub fn render(
    subject: &str,
    body: &str,
    html: Option<&str>,
    values: &BTreeMap<String, String>,
) -> Result<Rendered> {
    let mut missing = Vec::new();
    let out = Rendered {
        subject: fill(subject, values, Escape::Header, &mut missing),
        body: fill(body, values, Escape::Html, &mut missing),
        html_content: html.map(|h| fill(h, values, Escape::Html, &mut missing)),
    };
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(Error::invalid(
            "variables",
            format!("no value for {}", missing.join(", ")),
        ))
    }
}

impl EmailTemplate {
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<Rendered> {
        render(
            self.subject.as_str(),
            &self.body,
            self.html_content.as_deref(),
            values,
        )
    }
}

/// The values a contact offers to templates: `firstName`, `lastName`, `name`, `email`,
/// `company`, `phone`, `jobTitle`, each also as `contact.<name>`. Empty values are left out,
/// so a placeholder the contact cannot fill is reported.
pub fn contact_values(c: &Contact) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let name = format!("{} {}", c.first_name.trim(), c.last_name.trim())
        .trim()
        .to_owned();
    let pairs: [(&str, Option<&str>); 7] = [
        ("firstName", Some(c.first_name.as_str())),
        ("lastName", Some(c.last_name.as_str())),
        ("name", Some(name.as_str())),
        ("email", c.email.as_deref()),
        ("company", c.company.as_deref()),
        ("phone", c.phone.as_deref()),
        ("jobTitle", c.job_title.as_deref()),
    ];
    for (k, v) in pairs {
        if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
            m.insert(k.to_owned(), v.to_owned());
            m.insert(format!("contact.{k}"), v.to_owned());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::ObjectId;
    use serde_json::json;

    fn decode(v: Value) -> EmailTemplate {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn variables_are_recomputed_whatever_was_stored() {
        let t = decode(json!({
            "_id": ObjectId::new().to_hex(), "workspaceId": ObjectId::new().to_hex(),
            "name": "Welcome", "subject": "Hi {{firstName}}",
            "body": "From {{ company }} to {{firstName}}",
            "htmlContent": "<b>{{unsubscribeUrl}}</b>",
            "variables": ["stale"],
        }));
        assert_eq!(t.variables, ["firstName", "company", "unsubscribeUrl"]);
        assert_eq!(t.category, TemplateCategory::Custom);
        assert_eq!(t.version, 1);
        let back = serde_json::to_value(&t).unwrap();
        assert_eq!(
            back["variables"],
            json!(["firstName", "company", "unsubscribeUrl"])
        );
        assert_eq!(decode(back), t, "round trip");
    }

    #[test]
    fn category_strings_are_the_originals() {
        assert_eq!(
            serde_json::to_value(TemplateCategory::FollowUp).unwrap(),
            "follow-up"
        );
        assert!(
            serde_json::from_value::<TemplateCategory>(json!("follow_up")).is_err(),
            "only the original's spelling"
        );
    }

    #[test]
    fn render_fills_escapes_and_names_what_is_missing() {
        let mut c = Contact::new(
            WorkspaceId::new(),
            UserId::new(),
            "<img src=x onerror=alert(1)>",
        );
        c.last_name = "Lovelace".into();
        let values = contact_values(&c);
        let r = render(
            "Hello {{firstName}}",
            "<p>{{name}}</p>",
            Some("{{contact.lastName}}"),
            &values,
        )
        .unwrap();
        assert_eq!(r.subject, "Hello <img src=x onerror=alert(1)>");
        assert_eq!(r.body, "<p>&lt;img src=x onerror=alert(1)&gt; Lovelace</p>");
        assert_eq!(r.html_content.as_deref(), Some("Lovelace"));
        let err = render("{{company}}", "{{phone}} {{company}}", None, &values).unwrap_err();
        assert_eq!(
            err,
            Error::invalid("variables", "no value for company, phone")
        );
    }
}
