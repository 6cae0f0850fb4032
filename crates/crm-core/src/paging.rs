//! Offset pages (the original's `pagination{page,limit,total,pages}`) and keyset cursors, built
//! once on top of the port so every adapter pages the same way.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{Document, resolve};
use crate::error::{Error, Result};
use crate::query::{Filter, FindOptions, SortKey, effective_sort};
use crate::schema::{Dir, EntityDef, FieldKind};
use crate::store::{DocumentStore, Tenant};

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// 1-based page.
    Offset { page: u64, limit: u64 },
    /// After the position a previous page's `next_cursor` names (or from the start).
    Cursor { after: Option<String>, limit: u64 },
}

impl PageRequest {
    pub fn limit(&self) -> u64 {
        match self {
            Self::Offset { limit, .. } | Self::Cursor { limit, .. } => *limit,
        }
    }
    fn check(&self) -> Result<()> {
        if !(1..=MAX_LIMIT).contains(&self.limit()) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        if let Self::Offset { page: 0, .. } = self {
            return Err(Error::invalid("page", "must be 1 or more"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum Pagination {
    Offset {
        page: u64,
        limit: u64,
        total: u64,
        pages: u64,
    },
    Cursor {
        limit: u64,
        // `rename_all` above names variants only; the documented field is `nextCursor`.
        #[serde(rename = "nextCursor")]
        next_cursor: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub pagination: Pagination,
    /// Stored documents of this page that did not decode, left out of `items` (ADR 0025).
    pub skipped: Vec<crate::migrations::Unfit>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            pagination: self.pagination,
            skipped: self.skipped,
        }
    }
    pub fn try_map<U>(self, f: impl FnMut(T) -> Result<U>) -> Result<Page<U>> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_>>()?,
            pagination: self.pagination,
            skipped: self.skipped,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct CursorToken {
    /// The sort it was made for, so a cursor cannot be replayed under another order.
    s: String,
    /// The last item's sort values, `_id` last.
    v: Vec<Value>,
}

fn sort_signature(sort: &[SortKey]) -> String {
    sort.iter()
        .map(|k| format!("{}{}", if k.dir == Dir::Desc { "-" } else { "" }, k.path))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn encode_cursor(sort: &[SortKey], last: &Document) -> String {
    let sort = effective_sort(sort);
    let token = CursorToken {
        s: sort_signature(&sort),
        v: sort
            .iter()
            .map(|k| resolve(last, &k.path).cloned().unwrap_or(Value::Null))
            .collect(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_cursor(sort: &[SortKey], cursor: &str) -> Result<Vec<Value>> {
    let bad = || Error::invalid("cursor", "not a cursor from this listing");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let token: CursorToken = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if token.s != sort_signature(sort) || token.v.len() != sort.len() {
        return Err(bad());
    }
    Ok(token.v)
}

/// The documents strictly after `last` in the (effective) sort, or `None` when there are none.
/// Null sorts first ascending and last descending, as in MongoDB. A redundant range on the first
/// key is added where it is sound, so stores can seek an index instead of scanning.
pub fn keyset_after(def: &EntityDef, sort: &[SortKey], last: &[Value]) -> Option<Filter> {
    let mut branches = Vec::new();
    for i in 0..sort.len() {
        let mut conj: Vec<Filter> = sort[..i]
            .iter()
            .zip(last)
            .map(|(k, v)| Filter::Eq(k.path.clone(), v.clone()))
            .collect();
        let (k, v) = (&sort[i], &last[i]);
        let after = match (k.dir, v.is_null()) {
            (Dir::Asc, true) => Some(Filter::Ne(k.path.clone(), Value::Null)),
            (Dir::Asc, false) => Some(Filter::Gt(k.path.clone(), v.clone())),
            (Dir::Desc, true) => None,
            (Dir::Desc, false) if def.is_required(k.path.as_str()) => {
                Some(Filter::Lt(k.path.clone(), v.clone()))
            }
            (Dir::Desc, false) => Some(Filter::Or(vec![
                Filter::Lt(k.path.clone(), v.clone()),
                Filter::Eq(k.path.clone(), Value::Null),
            ])),
        };
        if let Some(a) = after {
            conj.push(a);
            branches.push(if conj.len() == 1 {
                conj.remove(0)
            } else {
                Filter::And(conj)
            });
        }
    }
    if branches.is_empty() {
        return None;
    }
    let (k, v) = (&sort[0], &last[0]);
    let bound = match (k.dir, v.is_null()) {
        (Dir::Asc, false) => Some(Filter::Gte(k.path.clone(), v.clone())),
        (Dir::Desc, false) if def.is_required(k.path.as_str()) => {
            Some(Filter::Lte(k.path.clone(), v.clone()))
        }
        (Dir::Desc, true) => Some(Filter::Eq(k.path.clone(), Value::Null)),
        _ => None,
    };
    let ors = if branches.len() == 1 {
        branches.remove(0)
    } else {
        Filter::Or(branches)
    };
    Some(match bound {
        Some(b) => Filter::And(vec![b, ors]),
        None => ors,
    })
}

/// Keyset conditions compare within one type (as MongoDB does), so a cursor can only walk fields
/// whose declared kind keeps every value of one type; free-form fields page by offset.
fn check_cursor_sort(def: &EntityDef, sort: &[SortKey]) -> Result<()> {
    for k in sort {
        match def.kind_of(k.path.as_str()) {
            FieldKind::Id
            | FieldKind::Date
            | FieldKind::Text
            | FieldKind::Number
            | FieldKind::Bool => {}
            _ => {
                return Err(Error::invalid(
                    "sort",
                    format!(
                        "cursor paging cannot sort by `{}`; use page and limit",
                        k.path
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// One page of a listing, by offset or by cursor.
pub async fn find_page(
    store: &dyn DocumentStore,
    t: Tenant,
    def: &'static EntityDef,
    filter: &Filter,
    sort: &[SortKey],
    req: &PageRequest,
) -> Result<Page<Document>> {
    req.check()?;
    let full_sort = effective_sort(sort);
    match req {
        PageRequest::Offset { page, limit } => {
            let opts = FindOptions {
                sort: full_sort,
                skip: (page - 1).saturating_mul(*limit),
                limit: Some(*limit),
            };
            let items = store.find(t, def, filter, &opts).await?;
            let total = store.count(t, def, filter).await?;
            Ok(Page {
                items,
                pagination: Pagination::Offset {
                    page: *page,
                    limit: *limit,
                    total,
                    pages: total.div_ceil(*limit),
                },
                skipped: Vec::new(),
            })
        }
        PageRequest::Cursor { after, limit } => {
            check_cursor_sort(def, &full_sort)?;
            let filter = match after {
                None => filter.clone(),
                Some(c) => {
                    let last = decode_cursor(&full_sort, c)?;
                    match keyset_after(def, &full_sort, &last) {
                        Some(k) => filter.clone().and(k),
                        None => {
                            return Ok(Page {
                                items: Vec::new(),
                                pagination: Pagination::Cursor {
                                    limit: *limit,
                                    next_cursor: None,
                                },
                                skipped: Vec::new(),
                            });
                        }
                    }
                }
            };
            let opts = FindOptions {
                sort: full_sort.clone(),
                skip: 0,
                limit: Some(limit + 1),
            };
            let mut items = store.find(t, def, &filter, &opts).await?;
            let more = items.len() as u64 > *limit;
            items.truncate(usize::try_from(*limit).unwrap_or(usize::MAX));
            let next_cursor = match (more, items.last()) {
                (true, Some(last)) => Some(encode_cursor(&full_sort, last)),
                _ => None,
            };
            Ok(Page {
                items,
                pagination: Pagination::Cursor {
                    limit: *limit,
                    next_cursor,
                },
                skipped: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{cmp_docs, matches};
    use serde_json::json;

    static DEF: EntityDef = EntityDef {
        name: "T",
        collection: "ts",
        tenancy: crate::schema::Tenancy::Global,
        timestamps: true,
        fields: &[],
        unique: &[],
        indexes: &[],
        text: &[],
    };

    /// Walking a sorted list with keyset filters visits every document once, nulls included.
    #[test]
    fn keyset_walk_visits_everything_once() {
        let vals = [
            json!(null),
            json!(1),
            json!(1),
            json!(2),
            json!(null),
            json!(3),
        ];
        let docs: Vec<Document> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut d = Document::new();
                d.insert("_id".into(), json!(format!("{i:024x}")));
                if !v.is_null() {
                    d.insert("score".into(), v.clone());
                }
                d
            })
            .collect();
        for dir in [Dir::Asc, Dir::Desc] {
            let sort = effective_sort(&[SortKey {
                path: "score".into(),
                dir,
            }]);
            let mut sorted = docs.clone();
            sorted.sort_by(|a, b| cmp_docs(a, b, &sort));
            let mut seen = Vec::new();
            let mut last: Option<Document> = None;
            loop {
                let next = sorted.iter().find(|d| match &last {
                    None => true,
                    Some(l) => {
                        let lv: Vec<Value> =
                            decode_cursor(&sort, &encode_cursor(&sort, l)).unwrap();
                        keyset_after(&DEF, &sort, &lv).is_some_and(|f| matches(&DEF, d, &f))
                    }
                });
                match next {
                    Some(d) => {
                        seen.push(d["_id"].clone());
                        last = Some(d.clone());
                    }
                    None => break,
                }
            }
            let want: Vec<Value> = sorted.iter().map(|d| d["_id"].clone()).collect();
            assert_eq!(seen, want, "{dir:?}");
        }
    }

    #[test]
    fn cursor_sort_needs_single_typed_fields() {
        assert!(check_cursor_sort(&DEF, &effective_sort(&[SortKey::asc("createdAt")])).is_ok());
        let e = check_cursor_sort(&DEF, &effective_sort(&[SortKey::asc("customFields.x")]));
        assert!(matches!(e, Err(Error::Invalid { field, .. }) if field == "sort"));
    }

    #[test]
    fn cursor_pagination_serialises_camel_case() {
        let p = Pagination::Cursor {
            limit: 2,
            next_cursor: Some("c".into()),
        };
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            json!({"limit": 2, "nextCursor": "c"})
        );
    }

    #[test]
    fn cursor_from_another_sort_is_refused() {
        let mut d = Document::new();
        d.insert("_id".into(), json!("000000000000000000000001"));
        let c = encode_cursor(&[SortKey::asc("a")], &d);
        assert!(decode_cursor(&effective_sort(&[SortKey::desc("a")]), &c).is_err());
        assert!(decode_cursor(&effective_sort(&[SortKey::asc("a")]), &c).is_ok());
        assert!(decode_cursor(&effective_sort(&[]), "!!").is_err());
    }
}
