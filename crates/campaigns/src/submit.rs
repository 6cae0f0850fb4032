//! Public form submission (behaviour 53): a published form only, schedule and limits enforced,
//! a honeypot that files bots as spam, the contact upserted by email (else phone) through the
//! core contact service, and a `form.submitted` event for automation.

use serde_json::{Map, Value, json};

use crm_core::entities::contact::Contact;
use crm_core::entities::project::Project;
use crm_core::events::DomainEvent;
use crm_core::repo::{Stores, WorkspaceScope};
use crm_core::services::contacts::{self, NewContact, WriteCtx};
use crm_core::{Error, Filter, FindOptions, Result, Timestamp, Update, WorkspaceId};

use crate::forms::{
    Form, FormId, FormSubmission, FormSubmissionId, PublicForm, PublishStatus, SubmissionSource,
    SubmissionStatus,
};

/// A field no person fills in (the form embed hides it); a value there marks the submission
/// as spam.
pub const HONEYPOT_FIELD: &str = "_hp";

/// The contact fields a form answer may fill.
const CONTACT_KEYS: &[&str] = &[
    "firstName",
    "lastName",
    "email",
    "phone",
    "company",
    "jobTitle",
    "website",
];

/// The workspace scope and the form, if `form` is published; `NotFound` otherwise (unknown,
/// unpublished, archived and deleted forms look alike).
pub async fn published_form(stores: &Stores, form: FormId) -> Result<(WorkspaceScope, Form)> {
    let entry = stores.global::<PublicForm>().get(form).await?;
    let scope = stores.workspace(entry.workspace_id);
    let f = scope.repo::<Form>().get(form).await?;
    if f.status != PublishStatus::Published {
        return Err(Error::NotFound);
    }
    Ok((scope, f))
}

/// Publishes, unpublishes or archives a form, keeping the public directory in step.
pub async fn set_form_status(
    stores: &Stores,
    scope: &WorkspaceScope,
    form: FormId,
    status: PublishStatus,
) -> Result<Form> {
    let f = scope
        .repo::<Form>()
        .update(
            form,
            &Update::new().set(
                "status",
                serde_json::to_value(status).map_err(Error::internal)?,
            ),
        )
        .await?;
    let dir = stores.global::<PublicForm>();
    if status == PublishStatus::Published {
        let entry = PublicForm {
            id: form,
            workspace_id: scope.id(),
            created_at: None,
            updated_at: None,
        };
        match dir.insert(&entry).await {
            Ok(_) | Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    } else {
        forget_form(stores, form).await?;
    }
    Ok(f)
}

/// Removes a form from the public directory (unpublished, archived or deleted).
pub async fn forget_form(stores: &Stores, form: FormId) -> Result<()> {
    match stores.global::<PublicForm>().delete(form).await {
        Ok(()) | Err(Error::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Re-creates the directory entries of a workspace's published forms (a database written by
/// the original server has none).
pub async fn index_published_forms(stores: &Stores, ws: WorkspaceId) -> Result<u64> {
    let scope = stores.workspace(ws);
    let forms = scope
        .repo::<Form>()
        .find(&Filter::eq("status", "published"), &FindOptions::default())
        .await?;
    let mut n = 0;
    for f in forms {
        set_form_status(stores, &scope, f.id, PublishStatus::Published).await?;
        n += 1;
    }
    Ok(n)
}

fn start_of_utc_day(now: Timestamp) -> Timestamp {
    let ms = now.millis();
    Timestamp::from_millis(ms - ms.rem_euclid(86_400_000))
}

/// Whether the form takes a submission now: its schedule and its limits (spam not counted).
pub async fn check_open(scope: &WorkspaceScope, form: &Form, now: Timestamp) -> Result<()> {
    let s = &form.settings;
    let closed = |why: &str| {
        Error::Forbidden(
            s.schedule
                .message_when_closed
                .clone()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| why.to_owned()),
        )
    };
    if s.schedule.enabled {
        if s.schedule.start_date.is_some_and(|t| now < t) {
            return Err(closed("This form is not open yet"));
        }
        if s.schedule.end_date.is_some_and(|t| now > t) {
            return Err(closed("This form is closed"));
        }
    }
    let counted =
        Filter::eq("formId", form.id.to_string()).and(Filter::Ne("status".into(), json!("spam")));
    let repo = scope.repo::<FormSubmission>();
    if let Some(max) = s.max_submissions
        && repo.count(&counted).await? >= max
    {
        return Err(Error::Forbidden(
            "This form has reached its submission limit".into(),
        ));
    }
    if let Some(max) = s.max_submissions_per_day {
        let today = counted.and(Filter::Gte(
            "createdAt".into(),
            json!(start_of_utc_day(now).to_canonical()),
        ));
        if repo.count(&today).await? >= max {
            return Err(Error::Forbidden(
                "This form has reached today's submission limit".into(),
            ));
        }
    }
    Ok(())
}

/// A value as text, if it is one with content.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Required answers present; returns the contact fields the answers fill, each with the
/// answer's key (for error paths).
fn contact_fields(form: &Form, data: &Map<String, Value>) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for f in &form.fields {
        let v = data.get(f.id.as_str());
        let filled = v.is_some_and(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        });
        if f.required && !filled {
            return Err(Error::invalid(format!("data.{}", f.id), "is required"));
        }
        if let (Some(target), Some(v)) = (f.map_to_field.as_deref(), v.and_then(text_of))
            && CONTACT_KEYS.contains(&target)
        {
            out.insert(target.to_owned(), Value::String(v));
        }
    }
    // Forms without mappings often name their inputs after the contact fields.
    for k in CONTACT_KEYS {
        if !out.contains_key(*k)
            && let Some(v) = data.get(*k).and_then(text_of)
        {
            out.insert((*k).to_owned(), Value::String(v));
        }
    }
    if let Some(Value::String(e)) = out.get_mut("email") {
        *e = e.to_lowercase();
    }
    Ok(out)
}

/// The answer key a contact field came from, for a 422 the submitter can act on.
fn answer_key(form: &Form, contact_field: &str) -> String {
    form.fields
        .iter()
        .find(|f| f.map_to_field.as_deref() == Some(contact_field))
        .map_or_else(
            || format!("data.{contact_field}"),
            |f| format!("data.{}", f.id),
        )
}

async fn find_contact(
    scope: &WorkspaceScope,
    field: &'static str,
    v: &Value,
) -> Result<Option<Contact>> {
    let opts = FindOptions {
        limit: Some(1),
        ..FindOptions::default()
    };
    Ok(scope
        .repo::<Contact>()
        .find(&Filter::eq(field, v.clone()).and(contacts::live()), &opts)
        .await?
        .into_iter()
        .next())
}

/// The existing contact with this email (else phone) gets its empty fields filled; otherwise
/// a contact is created (owned by the workspace owner, source `form`). Returns it and whether
/// it is new.
async fn upsert_contact(
    stores: &Stores,
    scope: &WorkspaceScope,
    form: &Form,
    mut fields: Map<String, Value>,
    now: Timestamp,
) -> Result<Option<(Contact, bool)>> {
    let key = ["email", "phone"]
        .into_iter()
        .find_map(|k| fields.get(k).cloned().map(|v| (k, v)));
    let Some((key_field, key_value)) = key else {
        return Ok(None);
    };
    for attempt in 0..2 {
        let existing = match find_contact(scope, key_field, &key_value).await? {
            Some(c) => Some(c),
            None if key_field == "email" => match fields.get("phone") {
                Some(p) => find_contact(scope, "phone", p).await?,
                None => None,
            },
            None => None,
        };
        if let Some(c) = existing {
            let doc = crm_core::repo::to_document(&c)?;
            let mut u = Update::new();
            for (k, v) in &fields {
                let empty = doc.get(k).is_none_or(|cur| cur.is_null() || cur == "");
                if empty {
                    u = u.set(crm_core::FieldPath::parse(k)?, v.clone());
                }
            }
            let c = if u.is_empty() {
                c
            } else {
                scope.repo::<Contact>().update(c.id, &u).await?
            };
            return Ok(Some((c, false)));
        }
        if attempt == 1 {
            break;
        }
        if !fields.contains_key("firstName") {
            let fallback = key_value
                .as_str()
                .and_then(|s| s.split('@').next())
                .unwrap_or("Unknown")
                .to_owned();
            fields.insert("firstName".into(), Value::String(fallback));
        }
        fields.insert("source".into(), Value::String("form".into()));
        let cmd = NewContact::parse(&fields).map_err(|e| match e {
            Error::Invalid { field, reason } => Error::invalid(answer_key(form, &field), reason),
            other => other,
        })?;
        let owner = stores.global::<Project>().get(scope.id()).await?.user_id;
        let ctx = WriteCtx {
            scope: scope.clone(),
            actor: owner,
            owner,
            now,
        };
        match contacts::create(&ctx, &cmd).await {
            Ok(c) => return Ok(Some((c, true))),
            // Another submission created it meanwhile: fill that one.
            Err(Error::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Stale)
}

/// What a public submission did.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub submission: FormSubmission,
    pub spam: bool,
    pub success_message: String,
    pub redirect_url: Option<String>,
}

/// Stores one public submission of a published form.
pub async fn submit(
    stores: &Stores,
    form_id: FormId,
    data: Map<String, Value>,
    source: SubmissionSource,
) -> Result<Submitted> {
    let (scope, form) = published_form(stores, form_id).await?;
    let now = stores.clock().now();
    let honeypot = data.get(HONEYPOT_FIELD).is_some_and(|v| match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        _ => true,
    });
    let mut submission = FormSubmission {
        id: FormSubmissionId::new(),
        workspace_id: scope.id(),
        form_id,
        contact_id: None,
        data,
        source,
        status: SubmissionStatus::New,
        contact_created: false,
        processed_at: None,
        processing_error: None,
        created_at: None,
        updated_at: None,
    };
    let done = |submission: FormSubmission, spam: bool| Submitted {
        submission,
        spam,
        success_message: form.settings.success_message.clone(),
        redirect_url: form.settings.redirect_url.clone(),
    };
    if honeypot {
        submission.status = SubmissionStatus::Spam;
        let s = scope.repo::<FormSubmission>().insert(&submission).await?;
        return Ok(done(s, true));
    }
    check_open(&scope, &form, now).await?;
    let fields = contact_fields(&form, &submission.data)?;
    if form.settings.auto_create_contact
        && let Some((c, created)) = upsert_contact(stores, &scope, &form, fields, now).await?
    {
        submission.contact_id = Some(c.id);
        submission.contact_created = created;
    }
    submission.processed_at = Some(now);
    let s = scope.repo::<FormSubmission>().insert(&submission).await?;
    scope
        .repo::<Form>()
        .update(
            form_id,
            &Update::new()
                .inc("stats.submissions", 1)
                .set("stats.lastSubmittedAt", now.to_canonical()),
        )
        .await?;
    let mut ev = DomainEvent::new(scope.id(), "form.submitted", now);
    ev.entity_type = Some("form".into());
    ev.entity_id = Some(form_id.into());
    ev.data.insert("formId".into(), json!(form_id.to_string()));
    ev.data
        .insert("submissionId".into(), json!(s.id.to_string()));
    ev.data.insert(
        "contactId".into(),
        s.contact_id.map_or(Value::Null, |c| json!(c.to_string())),
    );
    ev.data
        .insert("contactCreated".into(), json!(s.contact_created));
    scope.emit(ev).await?;
    Ok(done(s, false))
}
