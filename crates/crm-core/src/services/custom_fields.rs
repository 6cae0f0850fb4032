//! Custom fields: checking record values against a workspace's active definitions (target
//! behaviour 24, dormant in the original) and checking the definitions themselves.
//!
//! Values live in a record's `customFields` object keyed by `fieldKey`. Errors name the path
//! `customFields.<key>` so the HTTP layer can point at the wrong value.

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::accounts::Email;
use crate::entities::custom_field::{CustomFieldDefinition, CustomFieldEntity, CustomFieldType};
use crate::error::{Error, Result};
use crate::id::ObjectId;
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::entities::custom_field::ValueRules;
    use crate::id::WorkspaceId;

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
}
