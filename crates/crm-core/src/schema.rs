//! Entity declarations: one static value per entity says everything a store needs to know.

use crate::error::Error;
use crate::path::FieldPath;

pub const ID_FIELD: &str = "_id";
pub const CREATED_AT: &str = "createdAt";
pub const UPDATED_AT: &str = "updatedAt";

/// How a field is stored where the store has richer types than JSON (MongoDB: ObjectId, Date).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// ObjectId in Mongo, 24 hex digits elsewhere.
    Id,
    /// Array of ids.
    Ids,
    /// Date in Mongo, canonical RFC 3339 text elsewhere (see [`crate::time::Timestamp`]).
    Date,
    Text,
    /// Array of text.
    Texts,
    Number,
    Bool,
    /// Embedded document; its own fields may be declared with dotted paths.
    Object,
    /// Array of embedded documents; element fields are declared as `array.field`.
    Array,
    /// Free-form (custom fields, provider payloads).
    Any,
}

#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub path: &'static str,
    pub kind: FieldKind,
    /// Always present and never null once stored (lets keyset paging skip null branches).
    pub required: bool,
}

impl FieldDef {
    pub const fn new(path: &'static str, kind: FieldKind) -> Self {
        Self {
            path,
            kind,
            required: false,
        }
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// Shorthand for declaring fields.
pub const fn f(path: &'static str, kind: FieldKind) -> FieldDef {
    FieldDef::new(path, kind)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

/// Unique among the records (of one workspace, for scoped entities) where every field is present
/// with its declared type: many records may lack the value (e.g. contacts without an email).
#[derive(Debug, Clone, Copy)]
pub struct UniqueKey {
    pub name: &'static str,
    pub fields: &'static [&'static str],
}

/// A secondary index. For scoped entities the tenant field is put in front automatically.
#[derive(Debug, Clone, Copy)]
pub struct IndexDef {
    pub keys: &'static [(&'static str, Dir)],
    /// Expire documents this many seconds after the (single, date) key. MongoDB allows TTL only on
    /// single-field indexes, so such an index is not prefixed with the tenant.
    pub ttl_seconds: Option<u64>,
}

impl IndexDef {
    pub const fn on(keys: &'static [(&'static str, Dir)]) -> Self {
        Self {
            keys,
            ttl_seconds: None,
        }
    }
    pub const fn ttl(key: &'static [(&'static str, Dir)], seconds: u64) -> Self {
        Self {
            keys: key,
            ttl_seconds: Some(seconds),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenancy {
    /// Isolated per workspace; `field` names the tenant field in the document (`workspaceId`, or
    /// `workspace` for the original's Agent models).
    Workspace { field: &'static str },
    /// Not tied to a workspace (User, Waitlist, OTP).
    Global,
}

/// Everything a store must know about an entity.
#[derive(Debug)]
pub struct EntityDef {
    pub name: &'static str,
    /// The original's Mongoose collection name.
    pub collection: &'static str,
    pub tenancy: Tenancy,
    /// Stamp `createdAt`/`updatedAt` as Mongoose `timestamps: true` does.
    pub timestamps: bool,
    pub fields: &'static [FieldDef],
    pub unique: &'static [UniqueKey],
    pub indexes: &'static [IndexDef],
    /// Fields searched by full-text search.
    pub text: &'static [&'static str],
}

impl EntityDef {
    pub fn tenant_field(&self) -> Option<&'static str> {
        match self.tenancy {
            Tenancy::Workspace { field } => Some(field),
            Tenancy::Global => None,
        }
    }

    /// The declared kind of a path; `_id`, the tenant field and timestamps are implicit.
    pub fn kind_of(&self, path: &str) -> FieldKind {
        if path == ID_FIELD || Some(path) == self.tenant_field() {
            return FieldKind::Id;
        }
        if self.timestamps && (path == CREATED_AT || path == UPDATED_AT) {
            return FieldKind::Date;
        }
        self.fields
            .iter()
            .find(|f| f.path == path)
            .map_or(FieldKind::Any, |f| f.kind)
    }

    pub fn is_required(&self, path: &str) -> bool {
        path == ID_FIELD
            || Some(path) == self.tenant_field()
            || (self.timestamps && (path == CREATED_AT || path == UPDATED_AT))
            || self.fields.iter().any(|f| f.path == path && f.required)
    }

    /// Indexes as they are created: tenant first (except TTL), then the declared keys.
    pub fn effective_indexes(&self) -> Vec<Vec<(&'static str, Dir)>> {
        self.indexes
            .iter()
            .map(|ix| {
                let mut keys = Vec::with_capacity(ix.keys.len() + 1);
                match (self.tenant_field(), ix.ttl_seconds) {
                    // The original's `{agent, workspace, createdAt}` becomes
                    // `{workspace, agent, createdAt}`: the tenant moves to the front, once.
                    (Some(t), None) => {
                        keys.push((t, Dir::Asc));
                        keys.extend(ix.keys.iter().copied().filter(|k| k.0 != t));
                    }
                    _ => keys.extend_from_slice(ix.keys),
                }
                keys
            })
            .collect()
    }

    /// Checks a declaration; run by tests over every entity.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: &str| Error::Internal(format!("entity {}: {why}", self.name));
        for fd in self.fields {
            FieldPath::parse(fd.path).map_err(|_| bad(&format!("bad field path {}", fd.path)))?;
        }
        for uk in self.unique {
            if uk.fields.is_empty() {
                return Err(bad("unique key without fields"));
            }
            for p in uk.fields {
                match self.kind_of(p) {
                    FieldKind::Id
                    | FieldKind::Text
                    | FieldKind::Number
                    | FieldKind::Date
                    | FieldKind::Bool => {}
                    _ => return Err(bad(&format!("unique field {p} needs a scalar kind"))),
                }
            }
        }
        for ix in self.indexes {
            if ix.keys.is_empty() {
                return Err(bad("empty index"));
            }
            if ix.ttl_seconds.is_some()
                && (ix.keys.len() != 1 || self.kind_of(ix.keys[0].0) != FieldKind::Date)
            {
                return Err(bad("a TTL index must have one date key"));
            }
        }
        for t in self.text {
            FieldPath::parse(t).map_err(|_| bad("bad text field"))?;
        }
        Ok(())
    }
}
