//! The query language, in domain terms. Adapters translate it; `crate::engine` is its reference
//! semantics (those of MongoDB), which every adapter must match.

use serde_json::Value;

use crate::path::FieldPath;
use crate::schema::Dir;

/// A condition on documents. Values are JSON scalars (ids as hex, dates as RFC 3339 text).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Equal, or (for array fields) some element equal. `Eq(p, null)` also matches a missing field.
    Eq(FieldPath, Value),
    Ne(FieldPath, Value),
    In(FieldPath, Vec<Value>),
    Nin(FieldPath, Vec<Value>),
    /// Ordered comparisons only match values of the same type as the operand (numbers with
    /// numbers, text with text), as in MongoDB.
    Gt(FieldPath, Value),
    Gte(FieldPath, Value),
    Lt(FieldPath, Value),
    Lte(FieldPath, Value),
    Exists(FieldPath, bool),
    /// Case-insensitive substring match on text (or on any text element of an array). The needle
    /// is literal text, never a pattern.
    Contains(FieldPath, String),
    /// Every one of the values is an element of the array field.
    All(FieldPath, Vec<Value>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// Full-text search over the entity's declared text fields: every word must occur.
    Text(String),
}

impl Filter {
    pub fn all() -> Self {
        Self::And(Vec::new())
    }
    pub fn eq(p: impl Into<FieldPath>, v: impl Into<Value>) -> Self {
        Self::Eq(p.into(), v.into())
    }
    /// An array field with at least one of the values (tags any-of).
    pub fn any_of(p: impl Into<FieldPath>, vs: Vec<Value>) -> Self {
        Self::In(p.into(), vs)
    }
    pub fn and(self, other: Filter) -> Self {
        match self {
            Self::And(mut v) => {
                v.push(other);
                Self::And(v)
            }
            f => Self::And(vec![f, other]),
        }
    }
    pub fn is_all(&self) -> bool {
        matches!(self, Self::And(v) if v.is_empty())
    }
    pub fn negate(self) -> Self {
        Self::Not(Box::new(self))
    }

    /// Visits every path and operand, e.g. to validate values against the declared kinds.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a FieldPath, &'a Value)) {
        match self {
            Self::Eq(p, v)
            | Self::Ne(p, v)
            | Self::Gt(p, v)
            | Self::Gte(p, v)
            | Self::Lt(p, v)
            | Self::Lte(p, v) => f(p, v),
            Self::In(p, vs) | Self::Nin(p, vs) | Self::All(p, vs) => {
                vs.iter().for_each(|v| f(p, v))
            }
            Self::Exists(..) | Self::Contains(..) | Self::Text(_) => {}
            Self::And(fs) | Self::Or(fs) => fs.iter().for_each(|x| x.walk(f)),
            Self::Not(x) => x.walk(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub path: FieldPath,
    pub dir: Dir,
}

impl SortKey {
    pub fn asc(p: impl Into<FieldPath>) -> Self {
        Self {
            path: p.into(),
            dir: Dir::Asc,
        }
    }
    pub fn desc(p: impl Into<FieldPath>) -> Self {
        Self {
            path: p.into(),
            dir: Dir::Desc,
        }
    }
}

/// A sort, always ending with `_id` ascending so every order is total and stable.
pub fn effective_sort(sort: &[SortKey]) -> Vec<SortKey> {
    let mut out: Vec<SortKey> = Vec::with_capacity(sort.len() + 1);
    for k in sort {
        if out.iter().any(|o| o.path == k.path) {
            continue;
        }
        out.push(k.clone());
        if k.path.is_id() {
            return out;
        }
    }
    out.push(SortKey::asc(crate::schema::ID_FIELD));
    out
}

/// One read: which documents, in which order, which slice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindOptions {
    pub sort: Vec<SortKey>,
    pub skip: u64,
    pub limit: Option<u64>,
}

/// One change to a document. Paths may not touch `_id` or the tenant field.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOp {
    Set(FieldPath, Value),
    Unset(FieldPath),
    /// Add a number (missing counts as 0).
    Inc(FieldPath, serde_json::Number),
    Push(FieldPath, Value),
    AddToSet(FieldPath, Value),
    /// Remove every element equal to the value.
    Pull(FieldPath, Value),
    /// Set only when an upsert inserts.
    SetOnInsert(FieldPath, Value),
}

impl UpdateOp {
    pub fn path(&self) -> &FieldPath {
        match self {
            Self::Set(p, _)
            | Self::Unset(p)
            | Self::Inc(p, _)
            | Self::Push(p, _)
            | Self::AddToSet(p, _)
            | Self::Pull(p, _)
            | Self::SetOnInsert(p, _) => p,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    pub ops: Vec<UpdateOp>,
}

impl Update {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(mut self, p: impl Into<FieldPath>, v: impl Into<Value>) -> Self {
        self.ops.push(UpdateOp::Set(p.into(), v.into()));
        self
    }
    pub fn unset(mut self, p: impl Into<FieldPath>) -> Self {
        self.ops.push(UpdateOp::Unset(p.into()));
        self
    }
    pub fn inc(mut self, p: impl Into<FieldPath>, n: impl Into<serde_json::Number>) -> Self {
        self.ops.push(UpdateOp::Inc(p.into(), n.into()));
        self
    }
    pub fn push(mut self, p: impl Into<FieldPath>, v: impl Into<Value>) -> Self {
        self.ops.push(UpdateOp::Push(p.into(), v.into()));
        self
    }
    pub fn add_to_set(mut self, p: impl Into<FieldPath>, v: impl Into<Value>) -> Self {
        self.ops.push(UpdateOp::AddToSet(p.into(), v.into()));
        self
    }
    pub fn pull(mut self, p: impl Into<FieldPath>, v: impl Into<Value>) -> Self {
        self.ops.push(UpdateOp::Pull(p.into(), v.into()));
        self
    }
    pub fn set_on_insert(mut self, p: impl Into<FieldPath>, v: impl Into<Value>) -> Self {
        self.ops.push(UpdateOp::SetOnInsert(p.into(), v.into()));
        self
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Group matching documents by one field; count them and sum some numeric fields.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBy {
    pub filter: Filter,
    pub key: FieldPath,
    pub sums: Vec<FieldPath>,
}

/// One group. `key` is null for documents without the field. Non-numbers add nothing to a sum.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub key: Value,
    pub count: u64,
    pub sums: Vec<f64>,
}
