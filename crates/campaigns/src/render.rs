//! `{{name}}` placeholders: found, listed and filled. Values are HTML-escaped where the text is
//! HTML, and a placeholder without a value is reported, never silently blanked.

use std::collections::BTreeMap;

/// The placeholders of `text` in order of first appearance: `{{ name }}` with a name of
/// letters, digits, `_` and `.` (surrounding spaces allowed).
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (_, name) in tokens(text) {
        if !out.iter().any(|n: &String| n == name) {
            out.push(name.to_owned());
        }
    }
    out
}

/// Distinct placeholders of several texts, in order of first appearance.
pub fn placeholders_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in texts {
        for n in placeholders(t) {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// Each placeholder's byte range and name.
fn tokens(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| i + from) {
        let Some(close) = text[open + 2..].find("}}").map(|i| i + open + 2) else {
            break;
        };
        let name = text[open + 2..close].trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if valid {
            out.push((open..close + 2, name));
            from = close + 2;
        } else {
            from = open + 2;
        }
    }
    out
}

/// How a value is put into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// HTML bodies: `& < > " '` become entities.
    Html,
    /// Subject lines: line breaks become spaces (no header injection).
    Header,
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills the placeholders of `text`; the names without a value are added to `missing` and their
/// placeholders left as they were.
pub fn fill(
    text: &str,
    values: &BTreeMap<String, String>,
    escape: Escape,
    missing: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (range, name) in tokens(text) {
        out.push_str(&text[last..range.start]);
        match values.get(name) {
            Some(v) => match escape {
                Escape::Html => out.push_str(&escape_html(v)),
                Escape::Header => out.push_str(&v.replace(['\r', '\n'], " ")),
            },
            None => {
                if !missing.iter().any(|m| m == name) {
                    missing.push(name.to_owned());
                }
                out.push_str(&text[range.clone()]);
            }
        }
        last = range.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn placeholders_are_distinct_and_ordered() {
        assert_eq!(
            placeholders("Hi {{firstName}}, {{ company }} and {{firstName}} {{contact.name}}"),
            ["firstName", "company", "contact.name"]
        );
        assert!(placeholders("{{}} {{a b}} {{<x>}} {{ unclosed").is_empty());
        assert_eq!(placeholders("{{{{a}}}}"), ["a"]);
        assert_eq!(
            placeholders_of(["{{a}} {{b}}", "{{b}} {{c}}"]),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn fill_escapes_html_and_reports_missing() {
        let mut missing = Vec::new();
        let out = fill(
            "<p>Hi {{name}} from {{company}}, {{name}}</p>",
            &vals(&[("name", "<script>alert(1)</script> & co")]),
            Escape::Html,
            &mut missing,
        );
        assert_eq!(
            out,
            "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; co from {{company}}, \
             &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p>"
        );
        assert_eq!(missing, ["company"]);
    }

    #[test]
    fn header_values_lose_line_breaks() {
        let mut missing = Vec::new();
        let out = fill(
            "Re: {{x}}",
            &vals(&[("x", "a\r\nBcc: evil@example.com")]),
            Escape::Header,
            &mut missing,
        );
        assert_eq!(out, "Re: a  Bcc: evil@example.com");
        assert!(missing.is_empty());
    }
}
