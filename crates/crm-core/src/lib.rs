//! The shared kernel of Clianta: ids, time, entity declarations, the query language, the storage
//! ports and the typed repositories over them. No I/O and no database driver lives here.

pub mod accounts;
pub mod blob;
pub mod engine;
pub mod entities;
pub mod error;
pub mod events;
pub mod id;
pub mod migrate;
pub mod migrations;
pub mod outbound;
pub mod paging;
pub mod path;
pub mod query;
pub mod repo;
pub mod schema;
pub mod services;
pub mod store;
pub mod time;

pub use engine::Document;
pub use error::{Error, Result};
pub use id::{ObjectId, UserId, WorkspaceId};
pub use path::FieldPath;
pub use query::{Filter, FindOptions, GroupBy, GroupRow, SortKey, Update, UpdateOp};
pub use schema::{Dir, EntityDef, FieldKind, Tenancy};
pub use store::{DocumentStore, Storage, StoreAdmin, Tenant};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
