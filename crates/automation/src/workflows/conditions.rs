//! The spec's condition operators (behaviour 50) compiled to the storage query language, so a
//! workflow's criteria are evaluated by `crm_core::engine::matches` on a record in hand and can
//! run unchanged as a store query (e.g. to count the records a workflow would enroll).

use serde_json::{Number, Value};

use crm_core::engine::{Document, matches};
use crm_core::{EntityDef, Error, FieldPath, Filter, Result};

use super::model::{Condition, Criteria, Operator};

/// A number operand: numbers as they are, numeric text parsed ("42" compares as 42).
pub fn numeric(v: &Value) -> Option<Number> {
    match v {
        Value::Number(n) => Some(n.clone()),
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Some(Number::from(i));
            }
            t.parse::<f64>().ok().and_then(Number::from_f64)
        }
        _ => None,
    }
}

fn text_operand(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One condition as a filter; `at` names it in errors (e.g. `enrollmentCriteria.conditions[0]`).
pub fn compile(c: &Condition, at: &str) -> Result<Filter> {
    let p = FieldPath::parse(c.field.trim())
        .map_err(|_| Error::invalid(format!("{at}.field"), "must be a field path like a.b"))?;
    let empty = || {
        Filter::Or(vec![
            Filter::Eq(p.clone(), Value::Null),
            Filter::Eq(p.clone(), Value::String(String::new())),
        ])
    };
    let number = || {
        numeric(&c.value)
            .map(Value::Number)
            .ok_or_else(|| Error::invalid(format!("{at}.value"), "must be a number"))
    };
    Ok(match c.operator {
        // Strict: no coercion between text, numbers and booleans (JavaScript's ===).
        Operator::Equals => Filter::Eq(p, c.value.clone()),
        Operator::NotEquals => Filter::Ne(p, c.value.clone()),
        Operator::Contains => Filter::Contains(p, text_operand(&c.value)),
        Operator::NotContains => Filter::Contains(p, text_operand(&c.value)).negate(),
        Operator::GreaterThan => Filter::Gt(p, number()?),
        Operator::LessThan => Filter::Lt(p, number()?),
        Operator::IsEmpty => empty(),
        Operator::IsNotEmpty => empty().negate(),
        Operator::IsTrue => Filter::In(p, vec![Value::Bool(true), Value::from("true")]),
        Operator::IsFalse => Filter::In(p, vec![Value::Bool(false), Value::from("false")]),
    })
}

/// Criteria as one filter: all of the conditions, or any when `matchAll` is false. No
/// conditions match everything.
pub fn compile_criteria(c: &Criteria, at: &str) -> Result<Filter> {
    let parts = c
        .conditions
        .iter()
        .enumerate()
        .map(|(i, x)| compile(x, &format!("{at}.conditions[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(if parts.is_empty() {
        Filter::all()
    } else if c.match_all {
        Filter::And(parts)
    } else {
        Filter::Or(parts)
    })
}

/// Whether the record satisfies the criteria (a criteria that does not compile never matches).
pub fn criteria_match(def: &EntityDef, doc: &Document, c: &Criteria) -> bool {
    compile_criteria(c, "criteria").is_ok_and(|f| matches(def, doc, &f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::entities::contact::CONTACT;
    use serde_json::json;

    fn doc() -> Document {
        json!({
            "firstName": "Ada",
            "email": "ADA@Example.com",
            "age": 36,
            "score": "12",
            "empty": "",
            "nothing": null,
            "vip": true,
            "flag": "false",
            "tags": ["hot", "b2b"],
            "address": {"city": "London"}
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn check(field: &str, op: &str, value: Value) -> bool {
        let c: Condition =
            serde_json::from_value(json!({"field": field, "operator": op, "value": value}))
                .unwrap();
        matches(&CONTACT, &doc(), &compile(&c, "c").unwrap())
    }

    #[test]
    fn the_operator_table() {
        let table: &[(&str, &str, Value, bool)] = &[
            ("firstName", "equals", json!("Ada"), true),
            ("firstName", "equals", json!("ada"), false),
            ("age", "equals", json!(36), true),
            ("age", "equals", json!("36"), false), // strict: no coercion
            ("vip", "equals", json!("true"), false),
            ("firstName", "not_equals", json!("Bob"), true),
            ("age", "not_equals", json!("36"), true),
            ("email", "contains", json!("example"), true), // case-insensitive
            ("email", "contains", json!("nope"), false),
            ("tags", "contains", json!("B2"), true),
            ("email", "not_contains", json!("EXAMPLE"), false),
            ("missing", "not_contains", json!("x"), true),
            ("age", "greater_than", json!(30), true),
            ("age", "greater_than", json!("30"), true), // the operand is read as a number
            ("age", "greater_than", json!(36), false),
            ("age", "less_than", json!(40.5), true),
            ("age", "less_than", json!(36), false),
            ("empty", "is_empty", Value::Null, true),
            ("nothing", "is_empty", Value::Null, true),
            ("missing", "is_empty", Value::Null, true),
            ("firstName", "is_empty", Value::Null, false),
            ("firstName", "is_not_empty", Value::Null, true),
            ("empty", "is_not_empty", Value::Null, false),
            ("vip", "is_true", Value::Null, true),
            ("flag", "is_true", Value::Null, false),
            ("flag", "is_false", Value::Null, true),
            ("vip", "is_false", Value::Null, false),
            ("missing", "is_false", Value::Null, false),
            ("address.city", "equals", json!("London"), true), // dot paths
            ("address.city", "contains", json!("lond"), true),
            ("address.zip", "is_empty", Value::Null, true),
        ];
        for (field, op, value, want) in table {
            assert_eq!(
                check(field, op, value.clone()),
                *want,
                "{field} {op} {value}"
            );
        }
    }

    #[test]
    fn match_all_and_any() {
        let c = |all: bool| Criteria {
            conditions: vec![
                serde_json::from_value(
                    json!({"field": "firstName", "operator": "equals", "value": "Ada"}),
                )
                .unwrap(),
                serde_json::from_value(
                    json!({"field": "age", "operator": "less_than", "value": 10}),
                )
                .unwrap(),
            ],
            match_all: all,
        };
        assert!(!criteria_match(&CONTACT, &doc(), &c(true)));
        assert!(criteria_match(&CONTACT, &doc(), &c(false)));
        assert!(criteria_match(&CONTACT, &doc(), &Criteria::default()));
    }

    #[test]
    fn bad_operands_name_their_path() {
        let c: Condition = serde_json::from_value(
            json!({"field": "age", "operator": "greater_than", "value": "many"}),
        )
        .unwrap();
        assert_eq!(
            compile(&c, "steps[1].config.conditions[0]").unwrap_err(),
            Error::invalid("steps[1].config.conditions[0].value", "must be a number")
        );
        let c: Condition =
            serde_json::from_value(json!({"field": "$where", "operator": "equals", "value": 1}))
                .unwrap();
        assert!(matches!(
            compile(&c, "x").unwrap_err(),
            Error::Invalid { field, .. } if field == "x.field"
        ));
    }
}
