//! Contact lists: static lists hold contact ids, dynamic lists hold conditions on contact fields
//! (custom fields included) that are checked when written and compiled into a [`Filter`] when
//! read. Membership never reaches past the workspace (the scope adds it) nor into the trash.

use serde_json::Value;

use crate::entities::contact::{CONTACT, Contact, ContactId};
use crate::entities::contact_list::{
    ContactList, ContactListId, ListCondition, ListFilters, ListOperator, ListType, Logic,
};
use crate::entities::custom_field::{CustomFieldEntity, CustomFieldType};
use crate::error::{Error, Result};
use crate::id::{ObjectId, UserId};
use crate::path::FieldPath;
use crate::query::{Filter, FindOptions, Update};
use crate::repo::{WorkspaceScope, to_document};
use crate::schema::FieldKind;
use crate::services::contacts::{CONTACT_STATUSES, LIFECYCLE_STAGES, live, parse_ids};
use crate::services::custom_fields;
use crate::services::tasks::{opt_text, text};
use crate::time::Timestamp;

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;
pub const CONDITIONS_MAX: usize = 50;
/// Values of one `in`/`not_in` condition.
pub const IN_VALUES_MAX: usize = 500;
pub const VALUE_MAX_CHARS: usize = 500;
/// Members of one static list: the member query is an `$in` over them, and SQLite binds each
/// value as a parameter (at most 32766).
pub const STATIC_MAX: usize = 10_000;

/// Paths a condition may not use although the contact declares them.
const HIDDEN: &[&str] = &["deletedAt"];
const ADDRESS_PARTS: &[&str] = &["street", "city", "state", "country", "zipCode"];

/// What a condition's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Text,
    Number,
    Bool,
    Id,
    Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldType {
    scalar: Scalar,
    /// An array field: conditions test its elements.
    many: bool,
    /// The values a text field may take (an enumeration).
    allowed: Option<&'static [&'static str]>,
}

const fn ty(scalar: Scalar, many: bool) -> FieldType {
    FieldType {
        scalar,
        many,
        allowed: None,
    }
}

fn builtin_field(path: &str) -> Option<FieldType> {
    match path {
        "_id" => return Some(ty(Scalar::Id, false)),
        "createdAt" | "updatedAt" => return Some(ty(Scalar::Date, false)),
        "status" => {
            return Some(FieldType {
                allowed: Some(CONTACT_STATUSES),
                ..ty(Scalar::Text, false)
            });
        }
        "lifecycleStage" => {
            return Some(FieldType {
                allowed: Some(LIFECYCLE_STAGES),
                ..ty(Scalar::Text, false)
            });
        }
        _ => {}
    }
    if let Some(part) = path.strip_prefix("address.") {
        return ADDRESS_PARTS
            .contains(&part)
            .then_some(ty(Scalar::Text, false));
    }
    if HIDDEN.contains(&path) {
        return None;
    }
    // Fields inside arrays of documents cannot be filtered on (see `engine::check_path`).
    if let Some((parent, _)) = path.rsplit_once('.')
        && CONTACT.kind_of(parent) == FieldKind::Array
    {
        return None;
    }
    let def = CONTACT.fields.iter().find(|f| f.path == path)?;
    match def.kind {
        FieldKind::Text => Some(ty(Scalar::Text, false)),
        FieldKind::Texts => Some(ty(Scalar::Text, true)),
        FieldKind::Number => Some(ty(Scalar::Number, false)),
        FieldKind::Bool => Some(ty(Scalar::Bool, false)),
        FieldKind::Id => Some(ty(Scalar::Id, false)),
        FieldKind::Ids => Some(ty(Scalar::Id, true)),
        FieldKind::Date => Some(ty(Scalar::Date, false)),
        FieldKind::Object | FieldKind::Array | FieldKind::Any => None,
    }
}

fn custom_field_type(t: CustomFieldType, allow_multiple: bool) -> FieldType {
    match t {
        CustomFieldType::Text
        | CustomFieldType::Select
        | CustomFieldType::Email
        | CustomFieldType::Url => ty(Scalar::Text, false),
        CustomFieldType::Multiselect => ty(Scalar::Text, true),
        CustomFieldType::Number | CustomFieldType::Currency => ty(Scalar::Number, false),
        CustomFieldType::Date => ty(Scalar::Date, false),
        CustomFieldType::Boolean => ty(Scalar::Bool, false),
        CustomFieldType::Person | CustomFieldType::Relation => ty(Scalar::Id, allow_multiple),
    }
}

/// The contact fields conditions may name: the declared scalar fields and the workspace's
/// active contact custom fields (`customFields.<key>`).
#[derive(Debug, Clone, Default)]
pub struct ConditionFields {
    custom: Vec<(String, FieldType)>,
}

impl ConditionFields {
    pub async fn load(scope: &WorkspaceScope) -> Result<Self> {
        let defs = custom_fields::active_definitions(scope, CustomFieldEntity::Contact).await?;
        Ok(Self {
            custom: defs
                .into_iter()
                .map(|d| {
                    let t = custom_field_type(d.field_type, d.relation_config.allow_multiple);
                    (d.field_key, t)
                })
                .collect(),
        })
    }

    fn lookup(&self, path: &str) -> Option<FieldType> {
        match path.strip_prefix("customFields.") {
            Some(key) => self.custom.iter().find(|(k, _)| k == key).map(|(_, t)| *t),
            None => builtin_field(path),
        }
    }
}

fn scalar(t: FieldType, v: &Value, at: &str) -> Result<Value> {
    let bad = |what: &str| Error::invalid(at, format!("must be {what}"));
    Ok(match t.scalar {
        Scalar::Text => {
            let s = v.as_str().ok_or_else(|| bad("text"))?;
            if s.chars().count() > VALUE_MAX_CHARS {
                return Err(bad(&format!("at most {VALUE_MAX_CHARS} characters")));
            }
            if let Some(allowed) = t.allowed
                && !allowed.contains(&s)
            {
                return Err(bad(&format!("one of {}", allowed.join(", "))));
            }
            Value::String(s.to_owned())
        }
        Scalar::Number => {
            v.as_f64()
                .filter(|n| n.is_finite())
                .ok_or_else(|| bad("a number"))?;
            v.clone()
        }
        Scalar::Bool => Value::Bool(v.as_bool().ok_or_else(|| bad("true or false"))?),
        Scalar::Id => Value::String(
            v.as_str()
                .and_then(|s| ObjectId::parse_str(s).ok())
                .ok_or_else(|| bad("an id of 24 hexadecimal characters"))?
                .to_hex(),
        ),
        Scalar::Date => Value::String(
            v.as_str()
                .and_then(|s| Timestamp::parse(s).ok())
                .ok_or_else(|| bad("an RFC 3339 timestamp"))?
                .to_canonical(),
        ),
    })
}

/// One condition checked against the fields; returns it with its value in canonical form.
/// Errors name `filters.conditions[i].field|operator|value`.
fn check_condition(fields: &ConditionFields, i: usize, c: &ListCondition) -> Result<ListCondition> {
    let at = |part: &str| format!("filters.conditions[{i}].{part}");
    let name = c.field.trim();
    if FieldPath::parse(name).is_err() {
        return Err(Error::invalid(at("field"), "is not a field path"));
    }
    let t = fields
        .lookup(name)
        .ok_or_else(|| Error::invalid(at("field"), format!("`{name}` is not a contact field")))?;
    let value_at = at("value");
    use ListOperator as Op;
    let value = match c.operator {
        Op::Exists | Op::NotExists => Value::Null,
        Op::Equals | Op::NotEquals => scalar(t, &c.value, &value_at)?,
        Op::Contains | Op::NotContains => {
            if t.scalar != Scalar::Text {
                return Err(Error::invalid(
                    at("operator"),
                    format!("`{name}` is not a text field"),
                ));
            }
            let s = scalar(ty(Scalar::Text, false), &c.value, &value_at)?;
            if s.as_str().is_some_and(|s| s.is_empty()) {
                return Err(Error::invalid(value_at, "must not be empty"));
            }
            s
        }
        Op::GreaterThan | Op::LessThan => {
            if t.many || !matches!(t.scalar, Scalar::Number | Scalar::Date) {
                return Err(Error::invalid(
                    at("operator"),
                    format!("`{name}` is neither a number nor a date"),
                ));
            }
            scalar(t, &c.value, &value_at)?
        }
        Op::In | Op::NotIn => {
            let items = c
                .value
                .as_array()
                .filter(|a| !a.is_empty() && a.len() <= IN_VALUES_MAX)
                .ok_or_else(|| {
                    Error::invalid(
                        &value_at,
                        format!("must be a list of 1 to {IN_VALUES_MAX} values"),
                    )
                })?;
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(j, v)| scalar(t, v, &format!("{value_at}[{j}]")))
                    .collect::<Result<_>>()?,
            )
        }
    };
    Ok(ListCondition {
        field: name.to_owned(),
        operator: c.operator,
        value,
    })
}

/// The conditions of a dynamic list, checked: 1 to [`CONDITIONS_MAX`] of them, each on a contact
/// field with an operator and value that suit it.
pub fn check_filters(fields: &ConditionFields, f: &ListFilters) -> Result<ListFilters> {
    if f.conditions.is_empty() || f.conditions.len() > CONDITIONS_MAX {
        return Err(Error::invalid(
            "filters.conditions",
            format!("must hold 1 to {CONDITIONS_MAX} conditions"),
        ));
    }
    Ok(ListFilters {
        conditions: f
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| check_condition(fields, i, c))
            .collect::<Result<_>>()?,
        logic: f.logic,
    })
}

/// The stored conditions as a filter. Stored lists are compiled as they are (they may predate
/// the checks); a path the store refuses answers 422 when the query runs.
pub fn compile(f: &ListFilters) -> Result<Filter> {
    let parts = f
        .conditions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = FieldPath::parse(c.field.trim()).map_err(|_| {
                Error::invalid(
                    format!("filters.conditions[{i}].field"),
                    "is not a field path",
                )
            })?;
            let v = c.value.clone();
            let list = |v: Value| match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            use ListOperator as Op;
            Ok(match c.operator {
                Op::Equals => Filter::Eq(p, v),
                Op::NotEquals => Filter::Ne(p, v),
                Op::Contains => Filter::Contains(p, v.as_str().unwrap_or_default().to_owned()),
                Op::NotContains => {
                    Filter::Contains(p, v.as_str().unwrap_or_default().to_owned()).negate()
                }
                Op::GreaterThan => Filter::Gt(p, v),
                Op::LessThan => Filter::Lt(p, v),
                Op::In => Filter::In(p, list(v)),
                Op::NotIn => Filter::Nin(p, list(v)),
                // Present means present with a value: null counts as missing, as `equals null`.
                Op::Exists => Filter::Ne(p, Value::Null),
                Op::NotExists => Filter::Eq(p, Value::Null),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(match f.logic {
        Logic::And => Filter::And(parts),
        Logic::Or if parts.is_empty() => Filter::all(),
        Logic::Or => Filter::Or(parts),
    })
}

fn ids_filter(ids: &[ContactId]) -> Filter {
    Filter::In(
        "_id".into(),
        ids.iter().map(|id| Value::String(id.to_string())).collect(),
    )
}

/// The live contacts that are members of `list` (the scope adds the workspace).
pub fn member_filter(list: &ContactList) -> Result<Filter> {
    let f = match list.kind {
        ListType::Static => ids_filter(&list.contacts),
        ListType::Dynamic => compile(&list.filters)?,
    };
    Ok(f.and(live()))
}

/// A create command, as the route parses it.
#[derive(Debug, Clone, Default)]
pub struct NewList {
    pub name: String,
    pub description: Option<String>,
    pub kind: Option<ListType>,
    pub contacts: Option<Vec<String>>,
    pub filters: Option<ListFilters>,
    pub color: Option<String>,
    pub icon: Option<String>,
}

/// A patch: absent fields stay, `Some(None)` clears an optional one. The type cannot change.
#[derive(Debug, Clone, Default)]
pub struct ListPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub filters: Option<ListFilters>,
    pub color: Option<Option<String>>,
    pub icon: Option<Option<String>>,
}

/// The live contacts of the workspace among `ids`; 422 on `field` naming the others.
async fn check_contacts(
    scope: &WorkspaceScope,
    raw: &[String],
    field: &str,
) -> Result<Vec<ContactId>> {
    let ids: Vec<ContactId> = parse_ids(raw, field)?
        .into_iter()
        .map(ContactId::from)
        .collect();
    let found = scope
        .repo::<Contact>()
        .find(
            &ids_filter(&ids).and(live()),
            &FindOptions {
                limit: Some(ids.len() as u64),
                ..FindOptions::default()
            },
        )
        .await?;
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !found.iter().any(|c| c.id == **id))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(
            field,
            format!("not contacts of this workspace: {}", missing.join(", ")),
        ));
    }
    Ok(ids)
}

async fn count_members(scope: &WorkspaceScope, list: &ContactList) -> Result<u64> {
    scope.repo::<Contact>().count(&member_filter(list)?).await
}

fn count_update(n: u64, now: Timestamp) -> Update {
    Update::new()
        .set("cachedCount", n)
        .set("lastCountUpdate", now.to_canonical())
}

pub async fn create(
    scope: &WorkspaceScope,
    user: UserId,
    now: Timestamp,
    cmd: NewList,
) -> Result<ContactList> {
    let kind = cmd.kind.unwrap_or_default();
    let mut l = ContactList::new(
        scope.id(),
        user,
        text("name", &cmd.name, NAME_MAX, true)?,
        kind,
    );
    l.description = opt_text("description", cmd.description, DESCRIPTION_MAX)?;
    l.color = opt_text("color", cmd.color, 20)?;
    l.icon = opt_text("icon", cmd.icon, 50)?;
    match kind {
        ListType::Static => {
            if cmd.filters.is_some() {
                return Err(Error::invalid("filters", "only dynamic lists have filters"));
            }
            if let Some(ids) = cmd.contacts.filter(|c| !c.is_empty()) {
                l.contacts = check_contacts(scope, &ids, "contacts").await?;
            }
        }
        ListType::Dynamic => {
            if cmd.contacts.is_some_and(|c| !c.is_empty()) {
                return Err(Error::invalid(
                    "contacts",
                    "dynamic lists are defined by their filters",
                ));
            }
            let f = cmd
                .filters
                .ok_or_else(|| Error::invalid("filters", "a dynamic list needs filters"))?;
            l.filters = check_filters(&ConditionFields::load(scope).await?, &f)?;
        }
    }
    l.cached_count = Some(count_members(scope, &l).await?);
    l.last_count_update = Some(now);
    scope.repo::<ContactList>().insert(&l).await
}

fn set_or_unset(u: Update, field: &'static str, v: Option<String>) -> Update {
    match v {
        Some(v) => u.set(field, v),
        None => u.unset(field),
    }
}

pub async fn update(
    scope: &WorkspaceScope,
    now: Timestamp,
    id: ContactListId,
    p: ListPatch,
) -> Result<ContactList> {
    let repo = scope.repo::<ContactList>();
    let old = repo.get(id).await?;
    let mut u = Update::new();
    if let Some(n) = p.name {
        u = u.set("name", text("name", &n, NAME_MAX, true)?);
    }
    if let Some(d) = p.description {
        u = set_or_unset(
            u,
            "description",
            opt_text("description", d, DESCRIPTION_MAX)?,
        );
    }
    if let Some(c) = p.color {
        u = set_or_unset(u, "color", opt_text("color", c, 20)?);
    }
    if let Some(i) = p.icon {
        u = set_or_unset(u, "icon", opt_text("icon", i, 50)?);
    }
    if let Some(f) = p.filters {
        if old.kind != ListType::Dynamic {
            return Err(Error::invalid("filters", "only dynamic lists have filters"));
        }
        let checked = check_filters(&ConditionFields::load(scope).await?, &f)?;
        let n = count_members(
            scope,
            &ContactList {
                filters: checked.clone(),
                ..old.clone()
            },
        )
        .await?;
        let doc = to_document(&checked)?;
        u = u
            .set("filters", Value::Object(doc))
            .set("cachedCount", n)
            .set("lastCountUpdate", now.to_canonical());
    }
    if u.is_empty() {
        return Ok(old);
    }
    repo.update(id, &u).await
}

async fn static_list(scope: &WorkspaceScope, id: ContactListId) -> Result<ContactList> {
    let l = scope.repo::<ContactList>().get(id).await?;
    if l.kind != ListType::Static {
        return Err(Error::invalid(
            "type",
            "members are added to and removed from static lists only",
        ));
    }
    Ok(l)
}

/// Adds live contacts of the workspace to a static list; ids already there are left alone.
pub async fn add_members(
    scope: &WorkspaceScope,
    now: Timestamp,
    id: ContactListId,
    raw: &[String],
) -> Result<ContactList> {
    let l = static_list(scope, id).await?;
    let ids = check_contacts(scope, raw, "contactIds").await?;
    let new: Vec<&ContactId> = ids.iter().filter(|c| !l.contacts.contains(c)).collect();
    if l.contacts.len() + new.len() > STATIC_MAX {
        return Err(Error::invalid(
            "contactIds",
            format!("a static list holds at most {STATIC_MAX} contacts"),
        ));
    }
    let repo = scope.repo::<ContactList>();
    // One $addToSet per id (the port has no $each): concurrent adds cannot lose one another.
    for c in new {
        repo.update(id, &Update::new().add_to_set("contacts", c.to_string()))
            .await?;
    }
    refresh(scope, now, id).await
}

/// Removes ids from a static list. Ids that are not members (or not contacts at all, such as
/// purged ones) are simply not there afterwards.
pub async fn remove_members(
    scope: &WorkspaceScope,
    now: Timestamp,
    id: ContactListId,
    raw: &[String],
) -> Result<ContactList> {
    let l = static_list(scope, id).await?;
    let ids = parse_ids(raw, "contactIds")?;
    let repo = scope.repo::<ContactList>();
    for c in ids {
        let c = ContactId::from(c);
        if l.contacts.contains(&c) {
            repo.update(id, &Update::new().pull("contacts", c.to_string()))
                .await?;
        }
    }
    refresh(scope, now, id).await
}

/// Recounts the members and stores the count.
pub async fn refresh(
    scope: &WorkspaceScope,
    now: Timestamp,
    id: ContactListId,
) -> Result<ContactList> {
    let repo = scope.repo::<ContactList>();
    let l = repo.get(id).await?;
    let n = count_members(scope, &l).await?;
    repo.update(id, &count_update(n, now)).await
}

/// Filters of the list listing: `type` and a case-insensitive `search` on name and
/// description.
pub fn list_filter(kind: Option<&str>, search: Option<&str>) -> Result<Filter> {
    let mut f = Filter::all();
    if let Some(x) = crate::services::tasks::enum_filter::<ListType>("type", kind)? {
        f = f.and(x);
    }
    if let Some(x) = crate::services::tasks::contains_any(&["name", "description"], search) {
        f = f.and(x);
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cond(field: &str, op: ListOperator, value: Value) -> ListCondition {
        ListCondition {
            field: field.into(),
            operator: op,
            value,
        }
    }

    fn fields() -> ConditionFields {
        ConditionFields {
            custom: vec![
                ("custom_plan".into(), ty(Scalar::Text, false)),
                ("custom_seats".into(), ty(Scalar::Number, false)),
            ],
        }
    }

    fn err_field<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn filters(c: Vec<ListCondition>) -> ListFilters {
        ListFilters {
            conditions: c,
            logic: Logic::And,
        }
    }

    #[test]
    fn conditions_are_checked_with_their_path() {
        use ListOperator as Op;
        let f = fields();
        let ok = cond("status", Op::Equals, json!("lead"));
        let cases = [
            (cond("workspaceId", Op::Equals, json!("x")), "field"),
            (cond("deletedAt", Op::Exists, Value::Null), "field"),
            (
                cond("customFields.custom_nope", Op::Exists, Value::Null),
                "field",
            ),
            (
                cond("mergeHistory.mergedBy", Op::Exists, Value::Null),
                "field",
            ),
            (cond("status", Op::Equals, json!("vip")), "value"),
            (cond("intentScore", Op::GreaterThan, json!("high")), "value"),
            (cond("email", Op::GreaterThan, json!(3)), "operator"),
            (cond("intentScore", Op::Contains, json!("3")), "operator"),
            (cond("tags", Op::In, json!([])), "value"),
            (cond("createdAt", Op::LessThan, json!("yesterday")), "value"),
            (
                cond("customFields.custom_seats", Op::Equals, json!("ten")),
                "value",
            ),
        ];
        for (c, part) in cases {
            let r = check_filters(&f, &filters(vec![ok.clone(), ok.clone(), c.clone()]));
            assert_eq!(
                err_field(r),
                format!("filters.conditions[2].{part}"),
                "{c:?}"
            );
        }
        assert_eq!(
            err_field(check_filters(&f, &filters(vec![]))),
            "filters.conditions"
        );
        let checked = check_filters(
            &f,
            &filters(vec![
                cond("createdAt", Op::GreaterThan, json!("2030-01-01T00:00:00Z")),
                cond("customFields.custom_plan", Op::In, json!(["pro", "team"])),
                cond("address.city", Op::Contains, json!("osl")),
                cond("phone", Op::NotExists, json!("ignored")),
            ]),
        )
        .unwrap();
        assert_eq!(
            checked.conditions[0].value,
            json!("2030-01-01T00:00:00.000Z")
        );
        assert_eq!(checked.conditions[3].value, Value::Null);
    }

    #[test]
    fn compiles_and_or() {
        use ListOperator as Op;
        let mut f = filters(vec![
            cond("status", Op::Equals, json!("lead")),
            cond("email", Op::NotContains, json!("spam")),
            cond("phone", Op::Exists, Value::Null),
        ]);
        assert_eq!(
            compile(&f).unwrap(),
            Filter::And(vec![
                Filter::eq("status", "lead"),
                Filter::Contains("email".into(), "spam".into()).negate(),
                Filter::Ne("phone".into(), Value::Null),
            ])
        );
        f.logic = Logic::Or;
        assert!(matches!(compile(&f).unwrap(), Filter::Or(v) if v.len() == 3));
        f.conditions = vec![cond("a..b", Op::Exists, Value::Null)];
        assert_eq!(err_field(compile(&f)), "filters.conditions[0].field");
    }
}
