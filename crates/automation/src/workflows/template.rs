//! Placeholders in action texts: `{{field}}`, `{{a.b}}` and `@contact.field` /
//! `@company.name`. Unresolved ones stay as written, so a typo shows in the output instead of
//! silently vanishing.

use serde_json::Value;

fn lookup<'a>(ctx: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = ctx;
    for seg in path.split('.') {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

fn show(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(items.iter().filter_map(show).collect::<Vec<_>>().join(", ")),
        other => Some(other.to_string()),
    }
}

/// Resolves `path` against the record first (bare fields), then the whole context.
fn resolve(ctx: &Value, record: &str, path: &str) -> Option<String> {
    lookup(ctx, &format!("{record}.{path}"))
        .or_else(|| lookup(ctx, path))
        .and_then(show)
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Renders `text` against `ctx` (`{"contact": {...}, "enrollment": {...}, ...}`), where
/// `record` names the enrolled record's key in it.
pub fn render(text: &str, ctx: &Value, record: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let brace = rest.find("{{");
        let at = rest.find('@');
        match (brace, at) {
            (Some(b), a) if a.is_none_or(|a| b < a) => {
                out.push_str(&rest[..b]);
                let after = &rest[b + 2..];
                match after.find("}}") {
                    Some(end) => {
                        let key = after[..end].trim();
                        match resolve(ctx, record, key) {
                            Some(v) if !key.is_empty() => out.push_str(&v),
                            _ => out.push_str(&rest[b..b + 2 + end + 2]),
                        }
                        rest = &after[end + 2..];
                    }
                    None => {
                        out.push_str(&rest[b..]);
                        return out;
                    }
                }
            }
            (_, Some(a)) => {
                out.push_str(&rest[..a]);
                let after = &rest[a + 1..];
                let len = after.find(|c| !is_path_char(c)).unwrap_or(after.len());
                let key = after[..len].trim_end_matches('.');
                let value = key
                    .split_once('.')
                    .and_then(|(root, _)| lookup(ctx, root).map(|_| ()))
                    .and_then(|_| lookup(ctx, key))
                    .and_then(show);
                match value {
                    Some(v) => {
                        out.push_str(&v);
                        rest = &after[key.len()..];
                    }
                    None => {
                        out.push('@');
                        rest = after;
                    }
                }
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// Renders every text inside a JSON value (webhook bodies).
pub fn render_value(v: &Value, ctx: &Value, record: &str) -> Value {
    match v {
        Value::String(s) => Value::String(render(s, ctx, record)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|x| render_value(x, ctx, record)).collect())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), render_value(x, ctx, record)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders() {
        let ctx = json!({
            "contact": {"firstName": "Ada", "address": {"city": "London"}, "tags": ["a", "b"]},
            "company": {"name": "Acme"}
        });
        let r = |t: &str| render(t, &ctx, "contact");
        assert_eq!(r("Hi {{firstName}}!"), "Hi Ada!");
        assert_eq!(r("{{ address.city }}"), "London");
        assert_eq!(
            r("{{contact.firstName}} at {{company.name}}"),
            "Ada at Acme"
        );
        assert_eq!(
            r("@contact.firstName works at @company.name."),
            "Ada works at Acme."
        );
        assert_eq!(
            r("{{unknown}} and {{a.b}} stay"),
            "{{unknown}} and {{a.b}} stay"
        );
        assert_eq!(
            r("mail me@example.com or @contact.nope"),
            "mail me@example.com or @contact.nope"
        );
        assert_eq!(r("tags: {{tags}}"), "tags: a, b");
        assert_eq!(r("open {{ never closed"), "open {{ never closed");
        assert_eq!(
            render_value(
                &json!({"n": "{{firstName}}", "k": [1, "@company.name"]}),
                &ctx,
                "contact"
            ),
            json!({"n": "Ada", "k": [1, "Acme"]})
        );
    }
}
