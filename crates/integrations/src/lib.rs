//! Integrations: email and calendar accounts, synced mail and events, encrypted credentials,
//! outgoing webhooks with signed, retried deliveries, Apollo usage, the legacy Salesforce sync,
//! the LinkedIn log and meeting recordings (ADR 0023).

pub mod crypto;
pub mod entities;
pub mod webhooks;

use std::sync::Arc;

use serde_json::{Map, Value};

use automation::runtime::Runtime;
use crm_core::outbound::HttpCaller;

use crm_core::repo::WorkspaceScope;
use crm_core::{EntityDef, Error, Filter, Result, Timestamp, Update};

use crate::crypto::MasterKey;
use crate::entities::{
    CredentialStatus, CredentialType, CredentialView, EmailMessage, IntegrationCredential,
    IntegrationCredentialId, ProfileInfo,
};

/// This crate's declared entities, for `clianta_catalog::all_entities`.
pub fn entities() -> Vec<&'static EntityDef> {
    vec![
        &entities::EMAIL_ACCOUNT,
        &entities::EMAIL_INTEGRATION,
        &entities::EMAIL_MESSAGE,
        &entities::CALENDAR_INTEGRATION,
        &entities::CALENDAR_EVENT,
        &entities::INTEGRATION_CREDENTIAL,
        &entities::APOLLO_USAGE,
        &webhooks::WEBHOOK_SUBSCRIPTION,
        &webhooks::WEBHOOK_DELIVERY,
        &entities::SALESFORCE_INTEGRATION,
        &entities::FIELD_MAPPING,
        &entities::SYNC_LOG,
        &entities::LINKEDIN_ACTIVITY,
        &entities::RECORDING,
    ]
}

/// Registers the `webhooks` consumer and the `webhook.deliver` handler with a runtime. Called
/// where the runtime is built (the API state), since `automation` cannot depend on this crate.
pub fn register(rt: &Runtime, http: Arc<dyn HttpCaller>) {
    rt.register_consumer(Arc::new(webhooks::WebhookConsumer::new(
        rt.stores().clone(),
        rt.queue(),
    )));
    rt.register_handler(Arc::new(webhooks::DeliverHandler::new(
        rt.stores().clone(),
        http,
    )));
}

/// Stores `msg` unless a message with its Message-ID is already stored in the workspace; returns
/// the stored message and whether this call created it. The unique key on `messageId` decides,
/// so two concurrent ingests of one Message-ID store one record.
pub async fn ingest_email(
    scope: &WorkspaceScope,
    msg: EmailMessage,
) -> Result<(EmailMessage, bool)> {
    if msg.message_id.trim().is_empty() {
        return Err(Error::invalid("messageId", "must not be empty"));
    }
    let repo = scope.repo::<EmailMessage>();
    match repo.insert(&msg).await {
        Ok(m) => Ok((m, true)),
        Err(Error::Conflict { key }) if key == "messageId" => {
            let existing = repo
                .find(
                    &Filter::eq("messageId", msg.message_id.clone()),
                    &crm_core::FindOptions::default(),
                )
                .await?
                .into_iter()
                .next()
                .ok_or(Error::Conflict { key })?;
            Ok((existing, false))
        }
        Err(e) => Err(e),
    }
}

/// What a caller gives to store a credential.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub kind: CredentialType,
    pub name: String,
    /// The secret fields (tokens, keys); sealed as a whole.
    pub data: Map<String, Value>,
    pub expires_at: Option<Timestamp>,
    pub scopes: Vec<String>,
    pub profile_info: Option<ProfileInfo>,
}

fn field_names(data: &Map<String, Value>) -> Vec<String> {
    let mut names: Vec<String> = data.keys().cloned().collect();
    names.sort();
    names
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("name", "1 to 200 characters"));
    }
    Ok(name.to_owned())
}

/// The secret field names of a stored credential, for its view (opens the ciphertext).
pub fn view(key: &MasterKey, c: IntegrationCredential) -> Result<CredentialView> {
    let fields = match key.open_json(c.workspace_id, &c.encrypted_data)? {
        Value::Object(m) => field_names(&m),
        _ => Vec::new(),
    };
    Ok(CredentialView::new(c, fields))
}

/// Seals `new.data` under the workspace's key and stores it; one per (workspace, type), so a
/// second of a type is `Error::Conflict` on `type`.
pub async fn create_credential(
    scope: &WorkspaceScope,
    key: &MasterKey,
    new: NewCredential,
) -> Result<CredentialView> {
    if new.data.is_empty() {
        return Err(Error::invalid("data", "give at least one secret field"));
    }
    let c = IntegrationCredential {
        id: IntegrationCredentialId::new(),
        workspace_id: scope.id(),
        kind: new.kind,
        name: check_name(&new.name)?,
        encrypted_data: key.seal_json(scope.id(), &Value::Object(new.data.clone()))?,
        is_valid: true,
        validation_error: None,
        last_validated: None,
        status: CredentialStatus::Connected,
        expires_at: new.expires_at,
        scopes: new.scopes,
        profile_info: new.profile_info,
        last_used: None,
        created_at: None,
        updated_at: None,
    };
    let stored = scope.repo::<IntegrationCredential>().insert(&c).await?;
    Ok(CredentialView::new(stored, field_names(&new.data)))
}

/// Changes of a credential; `data` replaces the sealed secrets as a whole.
#[derive(Debug, Clone, Default)]
pub struct CredentialPatch {
    pub name: Option<String>,
    pub data: Option<Map<String, Value>>,
    pub status: Option<CredentialStatus>,
    pub expires_at: Option<Option<Timestamp>>,
    pub scopes: Option<Vec<String>>,
}

pub async fn update_credential(
    scope: &WorkspaceScope,
    key: &MasterKey,
    id: IntegrationCredentialId,
    patch: CredentialPatch,
) -> Result<CredentialView> {
    let repo = scope.repo::<IntegrationCredential>();
    repo.get(id).await?;
    let mut u = Update::new();
    if let Some(n) = patch.name {
        u = u.set("name", check_name(&n)?);
    }
    if let Some(d) = patch.data {
        if d.is_empty() {
            return Err(Error::invalid("data", "give at least one secret field"));
        }
        u = u
            .set(
                "encryptedData",
                key.seal_json(scope.id(), &Value::Object(d))?,
            )
            .set("isValid", true)
            .set("status", "Connected");
    }
    if let Some(s) = patch.status {
        u = u.set("status", serde_json::to_value(s).map_err(Error::internal)?);
    }
    match patch.expires_at {
        Some(Some(t)) => u = u.set("expiresAt", t.to_canonical()),
        Some(None) => u = u.unset("expiresAt"),
        None => {}
    }
    if let Some(s) = patch.scopes {
        u = u.set("scopes", s);
    }
    let c = if u.is_empty() {
        repo.get(id).await?
    } else {
        repo.update(id, &u).await?
    };
    view(key, c)
}

/// The decrypted secrets of a credential, for code that calls the provider; never for answers.
pub async fn reveal(
    scope: &WorkspaceScope,
    key: &MasterKey,
    id: IntegrationCredentialId,
) -> Result<Map<String, Value>> {
    let c = scope.repo::<IntegrationCredential>().get(id).await?;
    match key.open_json(scope.id(), &c.encrypted_data)? {
        Value::Object(m) => Ok(m),
        _ => Err(Error::internal("credential data is not an object")),
    }
}
