//! Installation-wide settings (`settings`): values every server process over the same store must
//! agree on, such as the generated JWT signing secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::query::{Filter, FindOptions};
use crate::repo::{Entity, GlobalEntity, Stores};
use crate::schema::{EntityDef, FieldKind::*, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

pub static SETTING: EntityDef = EntityDef {
    name: "Setting",
    collection: "settings",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[f("key", Text).required(), f("value", Any)],
    unique: &[UniqueKey {
        name: "key",
        fields: &["key"],
    }],
    indexes: &[],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub key: String,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for Setting {
    const DEF: &'static EntityDef = &SETTING;
}
impl GlobalEntity for Setting {}

pub const JWT_SECRET_KEY: &str = "jwtSecret";

/// The stored value of `key`, creating it with `make()` when absent. Concurrent first calls from
/// several processes agree: the unique key lets one insert win and the others read it back.
pub async fn get_or_init(
    stores: &Stores,
    key: &str,
    make: impl FnOnce() -> Value,
) -> Result<Value> {
    let repo = stores.global::<Setting>();
    let find = || async {
        repo.find(
            &Filter::eq("key", key.to_owned()),
            &FindOptions {
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .await
        .map(|v| v.into_iter().next())
    };
    if let Some(s) = find().await? {
        return Ok(s.value);
    }
    let fresh = Setting {
        id: ObjectId::new(),
        key: key.to_owned(),
        value: make(),
        created_at: None,
        updated_at: None,
    };
    match repo.insert(&fresh).await {
        Ok(s) => Ok(s.value),
        Err(Error::Conflict { .. }) => find()
            .await?
            .map(|s| s.value)
            .ok_or_else(|| Error::internal("setting vanished after a conflicting insert")),
        Err(e) => Err(e),
    }
}

/// The JWT signing secret shared by every process over this store, generated (64 random bytes)
/// on first use.
pub async fn jwt_secret(stores: &Stores) -> Result<Vec<u8>> {
    let v = get_or_init(stores, JWT_SECRET_KEY, || {
        let bytes: [u8; 64] = rand::random();
        Value::String(URL_SAFE_NO_PAD.encode(bytes))
    })
    .await?;
    let text = v
        .as_str()
        .ok_or_else(|| Error::internal("stored jwtSecret is not text"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Error::internal("stored jwtSecret is not base64url"))?;
    if bytes.len() < 32 {
        return Err(Error::internal("stored jwtSecret is shorter than 32 bytes"));
    }
    Ok(bytes)
}
