//! Custom fields: checking record values against a workspace's active definitions (target
//! behaviour 24, dormant in the original) and checking the definitions themselves.
//!
//! Values live in a record's `customFields` object keyed by `fieldKey`. Errors name the path
//! `customFields.<key>` so the HTTP layer can point at the wrong value.

use std::collections::BTreeSet;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::accounts::Email;
use crate::entities::company::Company;
use crate::entities::contact::Contact;
use crate::entities::custom_field::{
    CurrencyConfig, CustomFieldDefinition, CustomFieldEntity, CustomFieldId, CustomFieldType,
    RelationConfig, ValueRules,
};
use crate::entities::opportunity::Opportunity;
use crate::error::{Error, Result};
use crate::id::{ObjectId, WorkspaceId};
use crate::path::FieldPath;
use crate::query::{Filter, FindOptions, SortKey, Update};
use crate::repo::{WorkspaceScope, to_document};
use crate::time::Timestamp;

/// Compiled-program budget for a definition's `validation.pattern`, so a hostile pattern cannot
/// make every write of the workspace slow or memory-hungry.
pub const PATTERN_SIZE_LIMIT: usize = 64 * 1024;
/// Longest accepted pattern text.
pub const PATTERN_MAX_LEN: usize = 500;
/// The original's cap on text values (`validations/customField.ts`).
pub const TEXT_MAX_CHARS: usize = 500;
pub const URL_MAX_CHARS: usize = 2048;
pub const FIELD_KEY_MAX: usize = 50;
/// Longest key derived from a label (the original's `custom_` + slug, ≤40).
pub const DERIVED_KEY_MAX: usize = 40;
pub const LABEL_MAX_CHARS: usize = 100;
pub const OPTIONS_MAX: usize = 50;
pub const OPTION_MAX_CHARS: usize = 100;

/// The name an entity type has in `entityType` (`contact`, `company`, `deal`).
pub fn entity_name(e: CustomFieldEntity) -> &'static str {
    match e {
        CustomFieldEntity::Contact => "contact",
        CustomFieldEntity::Company => "company",
        CustomFieldEntity::Deal => "deal",
    }
}

/// Parses an entity type; `opportunity` is accepted for `deal`, which is what deals are now.
pub fn parse_entity(s: &str) -> Option<CustomFieldEntity> {
    match s {
        "contact" => Some(CustomFieldEntity::Contact),
        "company" => Some(CustomFieldEntity::Company),
        "deal" | "opportunity" => Some(CustomFieldEntity::Deal),
        _ => None,
    }
}

/// Compiles a definition's pattern under [`PATTERN_SIZE_LIMIT`]; `field` names it in the error.
pub fn compile_pattern(pattern: &str, field: &str) -> Result<Regex> {
    if pattern.chars().count() > PATTERN_MAX_LEN {
        return Err(Error::invalid(
            field,
            format!("must be at most {PATTERN_MAX_LEN} characters"),
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => Error::invalid(field, "pattern is too complex"),
            other => Error::invalid(field, format!("is not a valid pattern: {other}")),
        })
}

/// Checks `values` (a record's `customFields`, or the part of it a PATCH sends) against the
/// active definitions of `entity_type` and returns them in canonical form (dates as canonical
/// RFC 3339, emails lower-cased, ids lower-case hex).
///
/// * Keys without an active definition are refused.
/// * Not `partial` (create or full replace): required fields must be present and non-empty unless
///   the definition has a default; defaults fill missing keys; `null` counts as missing.
/// * `partial` (PATCH): no required or default handling for absent keys; `null` is kept in the
///   result and means "remove this key" (refused for required fields). The caller merges.
///
/// Relation and person ids are only checked for shape; their existence is the caller's job.
pub fn validate_values(
    defs: &[CustomFieldDefinition],
    entity_type: &str,
    values: &Map<String, Value>,
    partial: bool,
) -> Result<Map<String, Value>> {
    let entity = parse_entity(entity_type)
        .ok_or_else(|| Error::invalid("entityType", "must be one of contact, company, deal"))?;
    let active: Vec<&CustomFieldDefinition> = defs
        .iter()
        .filter(|d| d.is_active && d.entity_type == entity)
        .collect();
    let mut out = Map::new();
    for (key, value) in values {
        let field = format!("customFields.{key}");
        let Some(def) = active.iter().find(|d| d.field_key == *key) else {
            return Err(Error::invalid(
                field,
                "no active custom field with this key",
            ));
        };
        if value.is_null() {
            if partial {
                if def.is_required {
                    return Err(Error::invalid(field, "is required"));
                }
                out.insert(key.clone(), Value::Null);
            }
            continue;
        }
        out.insert(key.clone(), check_value(def, value, &field)?);
    }
    if !partial {
        for def in &active {
            if out.contains_key(&def.field_key) {
                if def.is_required && is_empty(&out[&def.field_key]) {
                    return Err(Error::invalid(
                        format!("customFields.{}", def.field_key),
                        "is required",
                    ));
                }
                continue;
            }
            let field = format!("customFields.{}", def.field_key);
            match def.default_value.as_ref().filter(|v| !v.is_null()) {
                Some(default) => {
                    out.insert(def.field_key.clone(), check_value(def, default, &field)?);
                }
                None if def.is_required => return Err(Error::invalid(field, "is required")),
                None => {}
            }
        }
    }
    Ok(out)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Checks one non-null value against its definition and returns its canonical form.
pub fn check_value(def: &CustomFieldDefinition, value: &Value, field: &str) -> Result<Value> {
    let rules = def.validation.clone().unwrap_or_default();
    let out = match def.field_type {
        CustomFieldType::Text => {
            let s = as_str(value, field, "must be text")?;
            let n = s.chars().count();
            if n > TEXT_MAX_CHARS {
                return Err(Error::invalid(
                    field,
                    format!("must be at most {TEXT_MAX_CHARS} characters"),
                ));
            }
            if let Some(min) = rules.min
                && (n as f64) < min
            {
                return Err(Error::invalid(
                    field,
                    format!("must be at least {min} characters"),
                ));
            }
            if let Some(max) = rules.max
                && (n as f64) > max
            {
                return Err(Error::invalid(
                    field,
                    format!("must be at most {max} characters"),
                ));
            }
            Value::String(s.to_owned())
        }
        CustomFieldType::Number | CustomFieldType::Currency => {
            let n = value
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or_else(|| Error::invalid(field, "must be a number"))?;
            if let Some(min) = rules.min
                && n < min
            {
                return Err(Error::invalid(field, format!("must be at least {min}")));
            }
            if let Some(max) = rules.max
                && n > max
            {
                return Err(Error::invalid(field, format!("must be at most {max}")));
            }
            value.clone()
        }
        CustomFieldType::Date => {
            let s = as_str(value, field, "must be an RFC 3339 timestamp")?;
            let ts = Timestamp::parse(s).map_err(|e| match e {
                Error::Invalid { reason, .. } => Error::invalid(field, reason),
                other => other,
            })?;
            Value::String(ts.to_canonical())
        }
        CustomFieldType::Select => {
            let s = as_str(value, field, "must be one of the options")?;
            if !def.select_options.iter().any(|o| o == s) {
                return Err(Error::invalid(field, "must be one of the options"));
            }
            Value::String(s.to_owned())
        }
        CustomFieldType::Multiselect => {
            let items = value
                .as_array()
                .ok_or_else(|| Error::invalid(field, "must be a list of options"))?;
            let mut seen: Vec<&str> = Vec::with_capacity(items.len());
            for item in items {
                let s = item
                    .as_str()
                    .filter(|s| def.select_options.iter().any(|o| o == s))
                    .ok_or_else(|| {
                        Error::invalid(field, "every item must be one of the options")
                    })?;
                if seen.contains(&s) {
                    return Err(Error::invalid(field, format!("lists `{s}` twice")));
                }
                seen.push(s);
            }
            Value::Array(
                seen.into_iter()
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            )
        }
        CustomFieldType::Boolean => Value::Bool(
            value
                .as_bool()
                .ok_or_else(|| Error::invalid(field, "must be true or false"))?,
        ),
        CustomFieldType::Email => {
            let s = as_str(value, field, "must be a valid email address")?;
            Value::String(String::from(Email::parse_field(s, field)?))
        }
        CustomFieldType::Url => {
            let s = as_str(value, field, "must be an http or https URL")?.trim();
            if !valid_url(s) {
                return Err(Error::invalid(field, "must be an http or https URL"));
            }
            Value::String(s.to_owned())
        }
        CustomFieldType::Relation if def.relation_config.allow_multiple => {
            let items = value
                .as_array()
                .ok_or_else(|| Error::invalid(field, "must be a list of ids"))?;
            let mut ids: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let id = parse_id(item, field)?;
                if ids.contains(&id) {
                    return Err(Error::invalid(field, format!("lists `{id}` twice")));
                }
                ids.push(id);
            }
            Value::Array(ids.into_iter().map(Value::String).collect())
        }
        CustomFieldType::Relation | CustomFieldType::Person => {
            Value::String(parse_id(value, field)?)
        }
    };
    if let (Some(pattern), Value::String(s)) = (rules.pattern.as_deref(), &out) {
        // Definitions are checked on write, so this only fails for data stored before that.
        let re = compile_pattern(pattern, field)?;
        if !re.is_match(s) {
            return Err(Error::invalid(field, "does not match the field's pattern"));
        }
    }
    Ok(out)
}

fn as_str<'a>(value: &'a Value, field: &str, reason: &str) -> Result<&'a str> {
    value.as_str().ok_or_else(|| Error::invalid(field, reason))
}

fn parse_id(value: &Value, field: &str) -> Result<String> {
    value
        .as_str()
        .and_then(|s| ObjectId::parse_str(s).ok())
        .map(|id| id.to_hex())
        .ok_or_else(|| Error::invalid(field, "must be an id of 24 hexadecimal characters"))
}

/// `http://` or `https://`, a non-empty host, a numeric port if any, no whitespace or control
/// characters.
fn valid_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    s.chars().count() <= URL_MAX_CHARS
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && url_host(authority).is_some()
}

fn url_host(authority: &str) -> Option<&str> {
    let host_port = authority.rsplit('@').next()?;
    let (host, port) = match host_port.strip_prefix('[') {
        // An IPv6 literal: `[addr]` or `[addr]:port`.
        Some(v6) => {
            let (addr, after) = v6.split_once(']')?;
            let port = if after.is_empty() {
                None
            } else {
                Some(after.strip_prefix(':')?)
            };
            (addr, port)
        }
        None => match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let bad_port = port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()));
    (!host.is_empty() && !bad_port).then_some(host)
}

/// What a create or PATCH of a definition sets; `None` leaves a field as it is (or default on
/// create). `default_value` and `validation` take `Some(None)` to clear them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DefinitionChanges {
    pub entity_type: Option<CustomFieldEntity>,
    pub field_key: Option<String>,
    pub field_label: Option<String>,
    pub field_type: Option<CustomFieldType>,
    pub select_options: Option<Vec<String>>,
    pub is_required: Option<bool>,
    pub default_value: Option<Option<Value>>,
    pub order: Option<u32>,
    pub is_active: Option<bool>,
    pub relation_config: Option<RelationConfig>,
    pub currency_config: Option<CurrencyConfig>,
    pub validation: Option<Option<ValueRules>>,
}

/// A new definition from `changes`; `entityType`, `fieldLabel` and `fieldType` are required, the
/// key is derived from the label when not given, and `next_order` is used when no order is.
pub fn new_definition(
    workspace: WorkspaceId,
    changes: DefinitionChanges,
    next_order: u32,
) -> Result<CustomFieldDefinition> {
    let entity = changes
        .entity_type
        .ok_or_else(|| Error::invalid("entityType", "is required"))?;
    let label = changes
        .field_label
        .clone()
        .ok_or_else(|| Error::invalid("fieldLabel", "is required"))?;
    let field_type = changes
        .field_type
        .ok_or_else(|| Error::invalid("fieldType", "is required"))?;
    let label = parse_label(&label)?;
    let key = match changes.field_key.as_deref() {
        Some(k) => parse_field_key(k)?,
        None => derive_key(&label)?,
    };
    let mut def = CustomFieldDefinition::new(workspace, entity, key, label, field_type);
    def.order = next_order;
    let rest = DefinitionChanges {
        entity_type: None,
        field_key: None,
        field_label: None,
        field_type: None,
        ..changes
    };
    apply(&mut def, rest);
    check_definition(&def)?;
    Ok(def)
}

/// `old` with `changes` applied. The entity type, key and field type cannot change (422 naming
/// the field); repeating their current values is accepted.
pub fn patch_definition(
    old: &CustomFieldDefinition,
    changes: DefinitionChanges,
) -> Result<CustomFieldDefinition> {
    if changes.entity_type.is_some_and(|e| e != old.entity_type) {
        return Err(Error::invalid("entityType", "cannot be changed"));
    }
    if changes.field_type.is_some_and(|t| t != old.field_type) {
        return Err(Error::invalid("fieldType", "cannot be changed"));
    }
    if changes
        .field_key
        .as_deref()
        .is_some_and(|k| k.trim() != old.field_key)
    {
        return Err(Error::invalid("fieldKey", "cannot be changed"));
    }
    let mut def = old.clone();
    if let Some(label) = changes.field_label.as_deref() {
        def.field_label = parse_label(label)?;
    }
    apply(
        &mut def,
        DefinitionChanges {
            entity_type: None,
            field_key: None,
            field_label: None,
            field_type: None,
            ..changes
        },
    );
    check_definition(&def)?;
    Ok(def)
}

fn apply(def: &mut CustomFieldDefinition, c: DefinitionChanges) {
    if let Some(options) = c.select_options {
        def.select_options = options.iter().map(|o| o.trim().to_owned()).collect();
    }
    if let Some(r) = c.is_required {
        def.is_required = r;
    }
    if let Some(d) = c.default_value {
        def.default_value = d.filter(|v| !v.is_null());
    }
    if let Some(o) = c.order {
        def.order = o;
    }
    if let Some(a) = c.is_active {
        def.is_active = a;
    }
    if let Some(r) = c.relation_config {
        def.relation_config = r;
    }
    if let Some(mut cc) = c.currency_config {
        cc.default_currency = cc.default_currency.trim().to_ascii_uppercase();
        def.currency_config = cc;
    }
    if let Some(v) = c.validation {
        def.validation = v.filter(|r| *r != ValueRules::default());
    }
}

/// Every rule a stored definition must satisfy.
pub fn check_definition(def: &CustomFieldDefinition) -> Result<()> {
    parse_field_key(&def.field_key)?;
    parse_label(&def.field_label)?;
    let choice = matches!(
        def.field_type,
        CustomFieldType::Select | CustomFieldType::Multiselect
    );
    if choice {
        if !(1..=OPTIONS_MAX).contains(&def.select_options.len()) {
            return Err(Error::invalid(
                "selectOptions",
                format!("select and multiselect fields need 1 to {OPTIONS_MAX} options"),
            ));
        }
        for (i, o) in def.select_options.iter().enumerate() {
            let field = format!("selectOptions.{i}");
            if o.trim().is_empty() || o.chars().count() > OPTION_MAX_CHARS {
                return Err(Error::invalid(
                    field,
                    format!("must be 1 to {OPTION_MAX_CHARS} characters"),
                ));
            }
            if def.select_options[..i].contains(o) {
                return Err(Error::invalid(field, "is listed twice"));
            }
        }
    } else if !def.select_options.is_empty() {
        return Err(Error::invalid(
            "selectOptions",
            "only select and multiselect fields have options",
        ));
    }
    if def.field_type == CustomFieldType::Relation && def.relation_config.target_entity.is_none() {
        return Err(Error::invalid(
            "relationConfig.targetEntity",
            "is required for relation fields",
        ));
    }
    let code = &def.currency_config.default_currency;
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(Error::invalid(
            "currencyConfig.defaultCurrency",
            "must be a three-letter currency code",
        ));
    }
    if let Some(rules) = &def.validation {
        check_rules(def.field_type, rules)?;
    }
    if let Some(default) = &def.default_value {
        check_value(def, default, "defaultValue")?;
    }
    Ok(())
}

fn check_rules(t: CustomFieldType, rules: &ValueRules) -> Result<()> {
    use CustomFieldType as T;
    let bounded = matches!(t, T::Number | T::Currency | T::Text);
    for (name, v) in [("min", rules.min), ("max", rules.max)] {
        let field = format!("validation.{name}");
        match v {
            Some(_) if !bounded => {
                return Err(Error::invalid(
                    field,
                    "only number, currency and text fields have bounds",
                ));
            }
            Some(n) if !n.is_finite() => return Err(Error::invalid(field, "must be a number")),
            Some(n) if t == T::Text && (n < 0.0 || n.fract() != 0.0) => {
                return Err(Error::invalid(
                    field,
                    "must be a whole number of characters",
                ));
            }
            _ => {}
        }
    }
    if let (Some(min), Some(max)) = (rules.min, rules.max)
        && min > max
    {
        return Err(Error::invalid("validation.max", "must not be below min"));
    }
    if let Some(p) = &rules.pattern {
        if !matches!(t, T::Text | T::Email | T::Url) {
            return Err(Error::invalid(
                "validation.pattern",
                "only text, email and url fields have a pattern",
            ));
        }
        compile_pattern(p, "validation.pattern")?;
    }
    Ok(())
}

fn parse_label(s: &str) -> Result<String> {
    let l = s.trim();
    if !(1..=LABEL_MAX_CHARS).contains(&l.chars().count()) {
        return Err(Error::invalid(
            "fieldLabel",
            format!("must be 1 to {LABEL_MAX_CHARS} characters"),
        ));
    }
    Ok(l.to_owned())
}

/// Letters, digits and underscores, starting with a letter, at most [`FIELD_KEY_MAX`]: safe as
/// a path segment under `customFields`.
pub fn parse_field_key(s: &str) -> Result<String> {
    let k = s.trim();
    let ok = k.len() <= FIELD_KEY_MAX
        && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(k.to_owned())
    } else {
        Err(Error::invalid(
            "fieldKey",
            format!(
                "must be letters, digits and underscores, start with a letter and be at most \
                 {FIELD_KEY_MAX} characters"
            ),
        ))
    }
}

/// The original's key: `custom_` + the label lower-cased with runs of other characters turned
/// into `_`, trimmed of `_`, at most [`DERIVED_KEY_MAX`] characters in all.
pub fn derive_key(label: &str) -> Result<String> {
    let mut slug = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let mut key = format!("custom_{}", slug.trim_matches('_'));
    key.truncate(DERIVED_KEY_MAX);
    let key = key.trim_end_matches('_');
    if key.len() <= "custom".len() {
        return Err(Error::invalid(
            "fieldLabel",
            "needs a letter or digit to derive a fieldKey from",
        ));
    }
    Ok(key.to_owned())
}

/// The filter of a definition listing: one entity type, active ones unless `include_inactive`.
pub fn list_filter(entity: CustomFieldEntity, include_inactive: bool) -> Filter {
    let f = Filter::eq("entityType", entity_name(entity));
    if include_inactive {
        f
    } else {
        f.and(Filter::eq("isActive", true))
    }
}

/// The active definitions of `entity` in the workspace, in display order.
pub async fn active_definitions(
    scope: &WorkspaceScope,
    entity: CustomFieldEntity,
) -> Result<Vec<CustomFieldDefinition>> {
    let opts = FindOptions {
        sort: vec![SortKey::asc("order"), SortKey::asc("createdAt")],
        ..FindOptions::default()
    };
    scope
        .repo::<CustomFieldDefinition>()
        .find(&list_filter(entity, false), &opts)
        .await
}

/// [`validate_values`] against the workspace's stored definitions: what record writes call.
pub async fn check_record_values(
    scope: &WorkspaceScope,
    entity_type: &str,
    values: &Map<String, Value>,
    partial: bool,
) -> Result<Map<String, Value>> {
    let entity = parse_entity(entity_type)
        .ok_or_else(|| Error::invalid("entityType", "must be one of contact, company, deal"))?;
    let defs = active_definitions(scope, entity).await?;
    let checked = validate_values(&defs, entity_type, values, partial)?;
    check_relations(scope, &defs, &checked).await?;
    Ok(checked)
}

/// Checks that the relation ids in `values` (as [`validate_values`] returns them) name records
/// of the definitions' target entities in this workspace; 422 on the field otherwise, so another
/// workspace's id is as unknown as a missing one.
pub async fn check_relations(
    scope: &WorkspaceScope,
    defs: &[CustomFieldDefinition],
    values: &Map<String, Value>,
) -> Result<()> {
    for (key, value) in values {
        let Some(def) = defs
            .iter()
            .find(|d| d.field_key == *key && d.field_type == CustomFieldType::Relation)
        else {
            continue;
        };
        let Some(target) = def.relation_config.target_entity else {
            continue;
        };
        let ids: BTreeSet<&str> = match value {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            v => v.as_str().into_iter().collect(),
        };
        if ids.is_empty() {
            continue;
        }
        let filter = Filter::In(
            "_id".into(),
            ids.iter()
                .map(|id| Value::String((*id).to_owned()))
                .collect(),
        );
        let found = match target {
            CustomFieldEntity::Contact => scope.repo::<Contact>().count(&filter).await?,
            CustomFieldEntity::Company => scope.repo::<Company>().count(&filter).await?,
            CustomFieldEntity::Deal => scope.repo::<Opportunity>().count(&filter).await?,
        };
        if found < ids.len() as u64 {
            return Err(Error::invalid(
                format!("customFields.{key}"),
                format!("no such {} in this workspace", entity_name(target)),
            ));
        }
    }
    Ok(())
}

/// The store's unique key `(entityType, fieldKey)` surfaces as a conflict on `fieldKey`.
fn key_conflict(e: Error) -> Error {
    match e {
        Error::Conflict { .. } => Error::conflict("fieldKey"),
        other => other,
    }
}

/// Creates a definition; without an order it goes after the entity type's active ones.
pub async fn create(
    scope: &WorkspaceScope,
    changes: DefinitionChanges,
) -> Result<CustomFieldDefinition> {
    let entity = changes
        .entity_type
        .ok_or_else(|| Error::invalid("entityType", "is required"))?;
    let next_order = match changes.order {
        Some(o) => o,
        None => {
            let last = FindOptions {
                sort: vec![SortKey::desc("order")],
                limit: Some(1),
                ..FindOptions::default()
            };
            let top = scope
                .repo::<CustomFieldDefinition>()
                .find(&list_filter(entity, false), &last)
                .await?;
            top.first().map_or(0, |d| d.order.saturating_add(1))
        }
    };
    let def = new_definition(scope.id(), changes, next_order)?;
    scope
        .repo::<CustomFieldDefinition>()
        .insert(&def)
        .await
        .map_err(key_conflict)
}

/// Applies a PATCH; only the fields that changed are written.
pub async fn update(
    scope: &WorkspaceScope,
    id: CustomFieldId,
    changes: DefinitionChanges,
) -> Result<CustomFieldDefinition> {
    let repo = scope.repo::<CustomFieldDefinition>();
    let old = repo.get(id).await?;
    let new = patch_definition(&old, changes)?;
    let (before, after) = (to_document(&old)?, to_document(&new)?);
    let mut update = Update::new();
    for (k, v) in &after {
        if !FIXED.contains(&k.as_str()) && before.get(k) != Some(v) {
            update = update.set(FieldPath::parse(k)?, v.clone());
        }
    }
    for k in before.keys() {
        if !FIXED.contains(&k.as_str()) && !after.contains_key(k) {
            update = update.unset(FieldPath::parse(k)?);
        }
    }
    if update.is_empty() {
        return Ok(old);
    }
    repo.update(id, &update).await.map_err(key_conflict)
}

/// Fields a PATCH never writes.
const FIXED: &[&str] = &["_id", "workspaceId", "createdAt", "updatedAt"];

/// Without `delete_data` a definition is only deactivated: its values stay on the records and
/// come back if it is reactivated. With it, the key is stripped from every record of the entity
/// type and the definition is deleted. The definition is deactivated first so no write can add a
/// value while the records are stripped, and deleted last so an interrupted run can be repeated.
pub async fn remove(scope: &WorkspaceScope, id: CustomFieldId, delete_data: bool) -> Result<()> {
    let repo = scope.repo::<CustomFieldDefinition>();
    let def = repo.get(id).await?;
    if def.is_active {
        repo.update(id, &Update::new().set("isActive", false))
            .await?;
    }
    if !delete_data {
        return Ok(());
    }
    strip_values(scope, def.entity_type, &def.field_key).await?;
    repo.delete(id).await
}

/// Removes `customFields.<key>` from every record of `entity` in the workspace; returns how many
/// records held it.
pub async fn strip_values(
    scope: &WorkspaceScope,
    entity: CustomFieldEntity,
    key: &str,
) -> Result<u64> {
    let path = FieldPath::parse(&format!("customFields.{key}"))?;
    let filter = Filter::Exists(path.clone(), true);
    let update = Update::new().unset(path);
    match entity {
        CustomFieldEntity::Contact => scope.repo::<Contact>().update_many(&filter, &update).await,
        CustomFieldEntity::Company => scope.repo::<Company>().update_many(&filter, &update).await,
        CustomFieldEntity::Deal => {
            scope
                .repo::<Opportunity>()
                .update_many(&filter, &update)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(key: &str, t: CustomFieldType) -> CustomFieldDefinition {
        CustomFieldDefinition::new(WorkspaceId::new(), CustomFieldEntity::Contact, key, key, t)
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn check(d: CustomFieldDefinition, v: Value) -> Result<Value> {
        let key = d.field_key.clone();
        let out = validate_values(&[d], "contact", &obj(json!({ key.clone(): v })), false)?;
        Ok(out[&key].clone())
    }

    fn err_field(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn unknown_key_is_refused_with_its_path() {
        let d = def("custom_a", CustomFieldType::Text);
        let r = validate_values(&[d], "contact", &obj(json!({"custom_b": "x"})), false);
        assert_eq!(err_field(r), "customFields.custom_b");
    }

    #[test]
    fn inactive_and_other_entity_definitions_do_not_count() {
        let mut inactive = def("custom_a", CustomFieldType::Text);
        inactive.is_active = false;
        let mut company = def("custom_b", CustomFieldType::Text);
        company.entity_type = CustomFieldEntity::Company;
        let defs = [inactive, company];
        let r = validate_values(&defs, "contact", &obj(json!({"custom_a": "x"})), false);
        assert_eq!(err_field(r), "customFields.custom_a");
        let r = validate_values(&defs, "contact", &obj(json!({"custom_b": "x"})), false);
        assert_eq!(err_field(r), "customFields.custom_b");
        let ok = validate_values(&defs, "company", &obj(json!({"custom_b": "x"})), false);
        assert_eq!(ok, Ok(obj(json!({"custom_b": "x"}))));
    }

    #[test]
    fn opportunity_means_deal_and_unknown_entity_is_refused() {
        let mut d = def("custom_a", CustomFieldType::Boolean);
        d.entity_type = CustomFieldEntity::Deal;
        let defs = [d];
        let v = obj(json!({"custom_a": true}));
        assert!(validate_values(&defs, "opportunity", &v, false).is_ok());
        assert!(validate_values(&defs, "deal", &v, false).is_ok());
        assert_eq!(
            err_field(validate_values(&defs, "lead", &v, false)),
            "entityType"
        );
    }

    #[test]
    fn text_checks_type_length_and_bounds() {
        let d = def("custom_t", CustomFieldType::Text);
        assert_eq!(check(d.clone(), json!("hello")), Ok(json!("hello")));
        assert_eq!(
            err_field(check(d.clone(), json!(5))),
            "customFields.custom_t"
        );
        assert!(check(d.clone(), json!("x".repeat(TEXT_MAX_CHARS))).is_ok());
        assert!(check(d.clone(), json!("x".repeat(TEXT_MAX_CHARS + 1))).is_err());
        let mut bounded = d;
        bounded.validation = Some(ValueRules {
            min: Some(2.0),
            max: Some(3.0),
            pattern: None,
        });
        assert!(check(bounded.clone(), json!("a")).is_err());
        assert!(check(bounded.clone(), json!("ab")).is_ok());
        // Length counts characters, not bytes.
        assert!(check(bounded.clone(), json!("äöü")).is_ok());
        assert!(check(bounded, json!("abcd")).is_err());
    }

    #[test]
    fn number_checks_type_and_min_max() {
        let mut d = def("custom_n", CustomFieldType::Number);
        assert_eq!(check(d.clone(), json!(3.5)), Ok(json!(3.5)));
        assert!(check(d.clone(), json!("3")).is_err());
        assert!(check(d.clone(), json!(true)).is_err());
        d.validation = Some(ValueRules {
            min: Some(0.0),
            max: Some(10.0),
            pattern: None,
        });
        assert!(check(d.clone(), json!(0)).is_ok());
        assert!(check(d.clone(), json!(10)).is_ok());
        assert!(check(d.clone(), json!(-1)).is_err());
        assert!(check(d, json!(10.5)).is_err());
    }

    #[test]
    fn currency_is_numeric() {
        let d = def("custom_c", CustomFieldType::Currency);
        assert!(check(d.clone(), json!(12)).is_ok());
        assert!(check(d, json!("12 USD")).is_err());
    }

    #[test]
    fn date_is_canonicalised() {
        let d = def("custom_d", CustomFieldType::Date);
        assert_eq!(
            check(d.clone(), json!("2026-01-02T04:04:05+01:00")),
            Ok(json!("2026-01-02T03:04:05.000Z"))
        );
        assert!(check(d.clone(), json!("2026-01-02")).is_err());
        assert!(check(d.clone(), json!("yesterday")).is_err());
        assert!(check(d, json!(1_700_000_000)).is_err());
    }

    #[test]
    fn select_must_be_an_option() {
        let mut d = def("custom_s", CustomFieldType::Select);
        d.select_options = vec!["a".into(), "b".into()];
        assert_eq!(check(d.clone(), json!("a")), Ok(json!("a")));
        assert!(check(d.clone(), json!("c")).is_err());
        assert!(check(d.clone(), json!("A")).is_err());
        assert!(check(d, json!(["a"])).is_err());
    }

    #[test]
    fn multiselect_is_a_list_of_distinct_options() {
        let mut d = def("custom_m", CustomFieldType::Multiselect);
        d.select_options = vec!["a".into(), "b".into()];
        assert_eq!(check(d.clone(), json!(["b", "a"])), Ok(json!(["b", "a"])));
        assert_eq!(check(d.clone(), json!([])), Ok(json!([])));
        assert!(check(d.clone(), json!(["a", "a"])).is_err());
        assert!(check(d.clone(), json!(["a", "c"])).is_err());
        assert!(check(d.clone(), json!(["a", 1])).is_err());
        assert!(check(d, json!("a")).is_err());
    }

    #[test]
    fn boolean_must_be_a_bool() {
        let d = def("custom_b", CustomFieldType::Boolean);
        assert_eq!(check(d.clone(), json!(false)), Ok(json!(false)));
        assert!(check(d.clone(), json!("true")).is_err());
        assert!(check(d, json!(1)).is_err());
    }

    #[test]
    fn email_is_checked_and_normalised() {
        let d = def("custom_e", CustomFieldType::Email);
        assert_eq!(
            check(d.clone(), json!("  Ann@Example.COM ")),
            Ok(json!("ann@example.com"))
        );
        let r = check(d.clone(), json!("ann@"));
        assert_eq!(err_field(r), "customFields.custom_e");
        assert!(check(d, json!("no at sign")).is_err());
    }

    #[test]
    fn url_must_be_http_or_https_with_a_host() {
        let d = def("custom_u", CustomFieldType::Url);
        for ok in [
            "https://example.com",
            "http://example.com:8080/a?b=c#d",
            "HTTPS://Example.com/path",
            "http://[::1]:3000/",
            "https://user@example.com/",
        ] {
            assert!(check(d.clone(), json!(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://example.com",
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://example.com:port/",
            "https://[::1/",
            "https://example.com:/",
            "example.com",
        ] {
            assert!(check(d.clone(), json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn relation_is_an_id_or_a_list_when_multiple() {
        let id = ObjectId::new().to_hex();
        let mut d = def("custom_r", CustomFieldType::Relation);
        assert_eq!(
            check(d.clone(), json!(id.to_uppercase())),
            Ok(json!(id.clone()))
        );
        assert!(check(d.clone(), json!("abc")).is_err());
        assert!(check(d.clone(), json!([id.clone()])).is_err());
        d.relation_config.allow_multiple = true;
        assert_eq!(
            check(d.clone(), json!([id.clone()])),
            Ok(json!([id.clone()]))
        );
        assert!(check(d.clone(), json!([id.clone(), id.clone()])).is_err());
        assert!(check(d, json!(id)).is_err());
        let p = def("custom_p", CustomFieldType::Person);
        assert!(check(p.clone(), json!(ObjectId::new().to_hex())).is_ok());
        assert!(check(p, json!("someone")).is_err());
    }

    #[test]
    fn pattern_applies_to_text_values() {
        let mut d = def("custom_t", CustomFieldType::Text);
        d.validation = Some(ValueRules {
            min: None,
            max: None,
            pattern: Some("^[A-Z]{2}-[0-9]+$".into()),
        });
        assert!(check(d.clone(), json!("AB-12")).is_ok());
        assert!(check(d, json!("ab-12")).is_err());
    }

    #[test]
    fn patterns_that_do_not_compile_or_are_too_big_are_refused() {
        assert!(compile_pattern("^a+$", "validation.pattern").is_ok());
        let r = compile_pattern("(", "validation.pattern");
        assert_eq!(err_field(r), "validation.pattern");
        // Repetition multiplies the compiled size far beyond the limit.
        let r = compile_pattern(r"(\w{100}){100}", "validation.pattern");
        assert_eq!(err_field(r), "validation.pattern");
        assert!(compile_pattern(&"a".repeat(PATTERN_MAX_LEN + 1), "p").is_err());
    }

    #[test]
    fn required_fields_are_enforced_unless_partial() {
        let mut d = def("custom_req", CustomFieldType::Text);
        d.is_required = true;
        let defs = [d];
        let empty = Map::new();
        let r = validate_values(&defs, "contact", &empty, false);
        assert_eq!(err_field(r), "customFields.custom_req");
        for blank in [json!(null), json!(""), json!("  ")] {
            let v = obj(json!({"custom_req": blank}));
            assert!(validate_values(&defs, "contact", &v, false).is_err());
        }
        assert_eq!(
            validate_values(&defs, "contact", &empty, true),
            Ok(Map::new())
        );
        let v = obj(json!({"custom_req": "x"}));
        assert!(validate_values(&defs, "contact", &v, false).is_ok());
        // A PATCH may not remove a required value either.
        let v = obj(json!({"custom_req": null}));
        assert!(validate_values(&defs, "contact", &v, true).is_err());
    }

    #[test]
    fn required_empty_multiselect_is_missing() {
        let mut d = def("custom_m", CustomFieldType::Multiselect);
        d.select_options = vec!["a".into()];
        d.is_required = true;
        let v = obj(json!({"custom_m": []}));
        assert!(validate_values(&[d], "contact", &v, false).is_err());
    }

    #[test]
    fn defaults_fill_missing_keys_only_when_not_partial() {
        let mut d = def("custom_d", CustomFieldType::Select);
        d.select_options = vec!["a".into(), "b".into()];
        d.default_value = Some(json!("b"));
        d.is_required = true;
        let defs = [d];
        let full = validate_values(&defs, "contact", &Map::new(), false);
        assert_eq!(full, Ok(obj(json!({"custom_d": "b"}))));
        let given = validate_values(&defs, "contact", &obj(json!({"custom_d": "a"})), false);
        assert_eq!(given, Ok(obj(json!({"custom_d": "a"}))));
        assert_eq!(
            validate_values(&defs, "contact", &Map::new(), true),
            Ok(Map::new())
        );
        // An explicit null on create is treated as missing, so the default applies.
        let null = validate_values(&defs, "contact", &obj(json!({"custom_d": null})), false);
        assert_eq!(null, Ok(obj(json!({"custom_d": "b"}))));
    }

    #[test]
    fn defaults_are_canonicalised_too() {
        let mut d = def("custom_when", CustomFieldType::Date);
        d.default_value = Some(json!("2026-01-01T00:00:00Z"));
        let out = validate_values(&[d], "contact", &Map::new(), false);
        assert_eq!(
            out,
            Ok(obj(json!({"custom_when": "2026-01-01T00:00:00.000Z"})))
        );
    }

    #[test]
    fn null_in_a_patch_means_remove() {
        let d = def("custom_t", CustomFieldType::Text);
        let v = obj(json!({"custom_t": null}));
        let out = validate_values(std::slice::from_ref(&d), "contact", &v, true);
        assert_eq!(out, Ok(obj(json!({"custom_t": null}))));
        // Outside a patch a null is simply dropped.
        let out = validate_values(&[d], "contact", &v, false);
        assert_eq!(out, Ok(Map::new()));
    }

    #[test]
    fn partial_still_checks_types_of_given_keys() {
        let d = def("custom_n", CustomFieldType::Number);
        let v = obj(json!({"custom_n": "ten"}));
        assert_eq!(
            err_field(validate_values(&[d], "contact", &v, true)),
            "customFields.custom_n"
        );
    }

    fn changes(label: &str, t: CustomFieldType) -> DefinitionChanges {
        DefinitionChanges {
            entity_type: Some(CustomFieldEntity::Contact),
            field_label: Some(label.into()),
            field_type: Some(t),
            ..DefinitionChanges::default()
        }
    }

    #[test]
    fn new_definition_derives_the_key_and_takes_the_order() {
        let ws = WorkspaceId::new();
        let d = new_definition(ws, changes("  Renewal date! ", CustomFieldType::Date), 3).unwrap();
        assert_eq!(d.field_key, "custom_renewal_date");
        assert_eq!(d.field_label, "Renewal date!");
        assert_eq!(d.order, 3);
        assert!(d.is_active);
        let mut c = changes("x", CustomFieldType::Text);
        c.field_key = Some("tier".into());
        c.order = Some(7);
        let d = new_definition(ws, c, 3).unwrap();
        assert_eq!((d.field_key.as_str(), d.order), ("tier", 7));
    }

    #[test]
    fn new_definition_requires_entity_label_and_type() {
        let ws = WorkspaceId::new();
        for (c, field) in [
            (
                DefinitionChanges {
                    entity_type: None,
                    ..changes("a", CustomFieldType::Text)
                },
                "entityType",
            ),
            (
                DefinitionChanges {
                    field_label: None,
                    ..changes("a", CustomFieldType::Text)
                },
                "fieldLabel",
            ),
            (
                DefinitionChanges {
                    field_type: None,
                    ..changes("a", CustomFieldType::Text)
                },
                "fieldType",
            ),
            (changes("   ", CustomFieldType::Text), "fieldLabel"),
            (
                changes(&"x".repeat(101), CustomFieldType::Text),
                "fieldLabel",
            ),
            (changes("!!!", CustomFieldType::Text), "fieldLabel"),
        ] {
            assert_eq!(err_field(new_definition(ws, c, 0)), field);
        }
    }

    #[test]
    fn derived_keys_follow_the_original() {
        assert_eq!(derive_key("Lead Source").unwrap(), "custom_lead_source");
        assert_eq!(derive_key("__A--b__").unwrap(), "custom_a_b");
        let long = derive_key(&"word ".repeat(20)).unwrap();
        assert!(
            long.len() <= DERIVED_KEY_MAX && !long.ends_with('_'),
            "{long}"
        );
        assert!(derive_key("ÄÖÜ").is_err());
    }

    #[test]
    fn field_key_format() {
        for ok in [
            "a",
            "tier",
            "Tier_2",
            "custom_x",
            &"k".repeat(FIELD_KEY_MAX),
        ] {
            assert!(parse_field_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2tier",
            "_x",
            "a-b",
            "a.b",
            "a b",
            "ä",
            &"k".repeat(FIELD_KEY_MAX + 1),
        ] {
            assert_eq!(err_field(parse_field_key(bad)), "fieldKey", "{bad}");
        }
    }

    #[test]
    fn select_needs_distinct_options_and_others_none() {
        let ws = WorkspaceId::new();
        let c = changes("S", CustomFieldType::Select);
        assert_eq!(err_field(new_definition(ws, c.clone(), 0)), "selectOptions");
        let many = (0..=OPTIONS_MAX).map(|i| i.to_string()).collect();
        let r = new_definition(
            ws,
            DefinitionChanges {
                select_options: Some(many),
                ..c.clone()
            },
            0,
        );
        assert_eq!(err_field(r), "selectOptions");
        let dup = DefinitionChanges {
            select_options: Some(vec!["a".into(), " a ".into()]),
            ..changes("M", CustomFieldType::Multiselect)
        };
        assert_eq!(err_field(new_definition(ws, dup, 0)), "selectOptions.1");
        let blank = DefinitionChanges {
            select_options: Some(vec!["  ".into()]),
            ..c.clone()
        };
        assert_eq!(err_field(new_definition(ws, blank, 0)), "selectOptions.0");
        let ok = DefinitionChanges {
            select_options: Some(vec![" a ".into(), "b".into()]),
            ..c
        };
        assert_eq!(
            new_definition(ws, ok, 0).unwrap().select_options,
            vec!["a", "b"]
        );
        let text = DefinitionChanges {
            select_options: Some(vec!["a".into()]),
            ..changes("T", CustomFieldType::Text)
        };
        assert_eq!(err_field(new_definition(ws, text, 0)), "selectOptions");
    }

    #[test]
    fn relation_needs_a_target() {
        let ws = WorkspaceId::new();
        let c = changes("R", CustomFieldType::Relation);
        assert_eq!(
            err_field(new_definition(ws, c.clone(), 0)),
            "relationConfig.targetEntity"
        );
        let ok = DefinitionChanges {
            relation_config: Some(RelationConfig {
                target_entity: Some(CustomFieldEntity::Company),
                ..RelationConfig::default()
            }),
            ..c
        };
        assert!(new_definition(ws, ok, 0).is_ok());
    }

    #[test]
    fn currency_code_is_three_letters() {
        let ws = WorkspaceId::new();
        let c = |code: &str| DefinitionChanges {
            currency_config: Some(CurrencyConfig {
                default_currency: code.into(),
                show_symbol: true,
            }),
            ..changes("C", CustomFieldType::Currency)
        };
        let d = new_definition(ws, c(" eur "), 0).unwrap();
        assert_eq!(d.currency_config.default_currency, "EUR");
        assert_eq!(
            err_field(new_definition(ws, c("EURO"), 0)),
            "currencyConfig.defaultCurrency"
        );
    }

    #[test]
    fn validation_rules_are_checked_at_definition_time() {
        let ws = WorkspaceId::new();
        let with = |t: CustomFieldType, min: Option<f64>, max: Option<f64>, p: Option<&str>| {
            new_definition(
                ws,
                DefinitionChanges {
                    validation: Some(Some(ValueRules {
                        min,
                        max,
                        pattern: p.map(str::to_owned),
                    })),
                    ..changes("V", t)
                },
                0,
            )
        };
        use CustomFieldType as T;
        assert!(with(T::Number, Some(-5.0), Some(5.0), None).is_ok());
        assert!(with(T::Text, Some(1.0), Some(20.0), Some("^a")).is_ok());
        assert_eq!(
            err_field(with(T::Number, Some(5.0), Some(1.0), None)),
            "validation.max"
        );
        assert_eq!(
            err_field(with(T::Boolean, Some(0.0), None, None)),
            "validation.min"
        );
        assert_eq!(
            err_field(with(T::Text, Some(1.5), None, None)),
            "validation.min"
        );
        assert_eq!(
            err_field(with(T::Text, None, None, Some("(unclosed"))),
            "validation.pattern"
        );
        assert_eq!(
            err_field(with(T::Text, None, None, Some(r"(\w{100}){100}"))),
            "validation.pattern"
        );
        assert_eq!(
            err_field(with(T::Number, None, None, Some("1"))),
            "validation.pattern"
        );
        // Empty rules are not stored.
        assert_eq!(with(T::Text, None, None, None).unwrap().validation, None);
    }

    #[test]
    fn default_value_must_be_a_valid_value() {
        let ws = WorkspaceId::new();
        let c = |v: Value| DefinitionChanges {
            select_options: Some(vec!["a".into()]),
            default_value: Some(Some(v)),
            ..changes("S", CustomFieldType::Select)
        };
        assert!(new_definition(ws, c(json!("a")), 0).is_ok());
        assert_eq!(
            err_field(new_definition(ws, c(json!("b")), 0)),
            "defaultValue"
        );
        assert_eq!(
            new_definition(ws, c(Value::Null), 0).unwrap().default_value,
            None
        );
    }

    #[test]
    fn patch_keeps_type_entity_and_key() {
        let ws = WorkspaceId::new();
        let old = new_definition(ws, changes("Size", CustomFieldType::Number), 0).unwrap();
        let same = DefinitionChanges {
            field_type: Some(CustomFieldType::Number),
            entity_type: Some(CustomFieldEntity::Contact),
            field_key: Some(old.field_key.clone()),
            field_label: Some("Head count".into()),
            ..DefinitionChanges::default()
        };
        let new = patch_definition(&old, same).unwrap();
        assert_eq!(new.field_label, "Head count");
        assert_eq!(new.field_key, old.field_key);
        for (c, field) in [
            (
                DefinitionChanges {
                    field_type: Some(CustomFieldType::Text),
                    ..DefinitionChanges::default()
                },
                "fieldType",
            ),
            (
                DefinitionChanges {
                    entity_type: Some(CustomFieldEntity::Deal),
                    ..DefinitionChanges::default()
                },
                "entityType",
            ),
            (
                DefinitionChanges {
                    field_key: Some("other".into()),
                    ..DefinitionChanges::default()
                },
                "fieldKey",
            ),
        ] {
            assert_eq!(err_field(patch_definition(&old, c)), field);
        }
    }

    #[test]
    fn patch_sets_and_clears() {
        let ws = WorkspaceId::new();
        let mut c = changes("Tier", CustomFieldType::Select);
        c.select_options = Some(vec!["a".into(), "b".into()]);
        c.default_value = Some(Some(json!("a")));
        let old = new_definition(ws, c, 0).unwrap();
        let new = patch_definition(
            &old,
            DefinitionChanges {
                default_value: Some(None),
                is_active: Some(false),
                is_required: Some(true),
                order: Some(9),
                ..DefinitionChanges::default()
            },
        )
        .unwrap();
        assert_eq!(new.default_value, None);
        assert!(!new.is_active && new.is_required);
        assert_eq!(new.order, 9);
        // Options may not shrink below what the default needs.
        let r = patch_definition(
            &old,
            DefinitionChanges {
                select_options: Some(vec!["b".into()]),
                ..DefinitionChanges::default()
            },
        );
        assert_eq!(err_field(r), "defaultValue");
    }
}
