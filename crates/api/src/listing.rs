//! What every list route shares: the query parameters (paging, sort, search, tags, fields,
//! expand), their parsing into domain terms, field selection, and the response shape
//! `{"<plural>": [...], "pagination": {...}}` (the original's, without its `success` wrapper).

use crm_core::paging::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest, Pagination};
use crm_core::repo::{Entity, Repo, to_document};
use crm_core::{Document, Error, FieldPath, Filter, SortKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Query parameters of list routes. Offset paging (`page`, `limit`) unless `cursor` is given
/// (empty for the first page): then keyset paging, and `pagination.nextCursor` leads on.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1-based page (offset paging).
    pub page: Option<u64>,
    /// Items per page, 1 to 500.
    pub limit: Option<u64>,
    /// Keyset cursor from a previous page's `nextCursor`; empty for the first page.
    pub cursor: Option<String>,
    /// Comma-separated fields, `-` for descending: `-createdAt,lastName`.
    pub sort: Option<String>,
    /// Full-text search over the entity's text fields (every word must occur).
    pub search: Option<String>,
    /// Comma-separated tags; records with any of them.
    pub tags: Option<String>,
    /// Comma-separated fields to return (`_id` always comes).
    pub fields: Option<String>,
    /// Comma-separated references to resolve inline.
    pub expand: Option<String>,
}

fn csv(s: &Option<String>) -> Vec<&str> {
    s.as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect()
}

impl ListParams {
    pub fn page_request(&self, default_limit: u64) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(default_limit.clamp(1, MAX_LIMIT));
        Ok(match &self.cursor {
            Some(c) => {
                if self.page.is_some() {
                    return Err(Error::invalid("page", "use either page or cursor").into());
                }
                PageRequest::Cursor {
                    after: (!c.is_empty()).then(|| c.clone()),
                    limit,
                }
            }
            None => PageRequest::Offset {
                page: self.page.unwrap_or(1),
                limit,
            },
        })
    }

    /// The requested sort, each field checked against `allowed`; `default` when none is given.
    pub fn sort(&self, allowed: &[&str], default: &[SortKey]) -> Result<Vec<SortKey>, ApiError> {
        let keys = csv(&self.sort);
        if keys.is_empty() {
            return Ok(default.to_vec());
        }
        keys.into_iter()
            .map(|k| {
                let (name, desc) = match k.strip_prefix('-') {
                    Some(n) => (n, true),
                    None => (k.strip_prefix('+').unwrap_or(k), false),
                };
                if !allowed.contains(&name) && !name.starts_with("customFields.") {
                    return Err(Error::invalid("sort", format!("cannot sort by `{name}`")).into());
                }
                let path =
                    FieldPath::parse(name).map_err(|_| Error::invalid("sort", "bad field"))?;
                Ok(SortKey {
                    path,
                    dir: if desc {
                        crm_core::Dir::Desc
                    } else {
                        crm_core::Dir::Asc
                    },
                })
            })
            .collect()
    }

    /// `search` and `tags` as a filter (all records when neither is given).
    pub fn base_filter(&self) -> Filter {
        let mut f = Filter::all();
        if let Some(q) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
        {
            f = f.and(Filter::Text(q.to_owned()));
        }
        let tags = csv(&self.tags);
        if !tags.is_empty() {
            f = f.and(Filter::any_of(
                "tags",
                tags.into_iter()
                    .map(|t| Value::String(t.to_owned()))
                    .collect(),
            ));
        }
        f
    }

    pub fn fields(&self) -> Result<Option<Vec<FieldPath>>, ApiError> {
        let names = csv(&self.fields);
        if names.is_empty() {
            return Ok(None);
        }
        names
            .into_iter()
            .map(|n| {
                FieldPath::parse(n)
                    .map_err(|_| Error::invalid("fields", format!("bad field `{n}`")).into())
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .map(Some)
    }

    /// The requested expansions, each one of `allowed`.
    pub fn expand(&self, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
        csv(&self.expand)
            .into_iter()
            .map(|e| {
                if allowed.contains(&e) {
                    Ok(e.to_owned())
                } else {
                    Err(Error::invalid("expand", format!("cannot expand `{e}`")).into())
                }
            })
            .collect()
    }
}

/// Keeps `_id` and the selected fields (dotted paths select inside embedded objects).
pub fn project(doc: Document, fields: Option<&[FieldPath]>) -> Document {
    let Some(fields) = fields else {
        return doc;
    };
    let mut out = Document::new();
    if let Some(id) = doc.get("_id") {
        out.insert("_id".into(), id.clone());
    }
    for f in fields {
        if let Some(v) = crm_core::engine::resolve(&doc, f) {
            let segs: Vec<&str> = f.segments().collect();
            put(&mut out, &segs, v.clone());
        }
    }
    out
}

fn put(out: &mut Map<String, Value>, segs: &[&str], v: Value) {
    match segs {
        [] => {}
        [last] => {
            out.insert((*last).to_owned(), v);
        }
        [first, rest @ ..] => {
            let e = out
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            if let Value::Object(m) = e {
                put(m, rest, v);
            }
        }
    }
}

/// The body of a list response.
#[derive(Debug, Serialize)]
pub struct ListBody {
    #[serde(flatten)]
    pub items: Map<String, Value>,
    pub pagination: Pagination,
    /// Stored records of this page left out because they do not fit (ADR 0025).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crm_core::migrations::Unfit>,
}

/// `{"<plural>": [...], "pagination": {...}}` with field selection applied.
pub fn list_body(plural: &str, page: Page<Document>, fields: Option<&[FieldPath]>) -> ListBody {
    let items = page
        .items
        .into_iter()
        .map(|d| Value::Object(project(d, fields)))
        .collect();
    let mut m = Map::new();
    m.insert(plural.to_owned(), Value::Array(items));
    ListBody {
        items: m,
        pagination: page.pagination,
        warnings: page.skipped,
    }
}

pub const DEFAULT_PAGE_LIMIT: u64 = DEFAULT_LIMIT;

/// One page of a list route that expands nothing: checks paging, field selection and that no
/// expansion is asked for (in that order), reads the page and shapes the body.
pub async fn list_without_expand<E: Entity>(
    repo: Repo<E>,
    p: &ListParams,
    filter: &Filter,
    sort: &[SortKey],
    default_limit: u64,
    plural: &str,
) -> Result<ListBody, ApiError> {
    let req = p.page_request(default_limit)?;
    let fields = p.fields()?;
    p.expand(&[])?;
    let page = repo
        .page(filter, sort, &req)
        .await?
        .try_map(|e| to_document(&e))?;
    Ok(list_body(plural, page, fields.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_sort_paging_and_fields() {
        let p = ListParams {
            sort: Some("-createdAt, lastName".into()),
            fields: Some("email,address.city".into()),
            ..Default::default()
        };
        let s = p.sort(&["createdAt", "lastName"], &[]).unwrap();
        assert_eq!(
            s,
            vec![SortKey::desc("createdAt"), SortKey::asc("lastName")]
        );
        assert!(p.sort(&["createdAt"], &[]).is_err());
        assert_eq!(
            p.page_request(20).unwrap(),
            PageRequest::Offset { page: 1, limit: 20 }
        );
        let c = ListParams {
            cursor: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(
            c.page_request(20).unwrap(),
            PageRequest::Cursor {
                after: None,
                limit: 20
            }
        );
        let doc =
            json!({"_id": "x", "email": "a@b.c", "address": {"city": "Oslo", "zip": "1"}, "n": 1});
        let f = p.fields().unwrap();
        let out = project(doc.as_object().cloned().unwrap(), f.as_deref());
        assert_eq!(
            Value::Object(out),
            json!({"_id": "x", "email": "a@b.c", "address": {"city": "Oslo"}})
        );
    }

    #[test]
    fn search_and_tags_become_filters() {
        let p = ListParams {
            search: Some(" ada ".into()),
            tags: Some("a,b".into()),
            ..Default::default()
        };
        assert_eq!(
            p.base_filter(),
            Filter::And(vec![
                Filter::Text("ada".into()),
                Filter::In("tags".into(), vec![json!("a"), json!("b")])
            ])
        );
    }
}
