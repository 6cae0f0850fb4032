//! Secrets at rest (ADR 0023): AES-256-GCM under a key derived per workspace with HKDF-SHA256
//! from the configured master key (`CLIANTA_ENCRYPTION_KEY`), so one workspace's ciphertext
//! never opens under another's key.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crm_core::WorkspaceId;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Binds derived keys to this use, so the master key can serve other purposes later.
const HKDF_INFO_PREFIX: &[u8] = b"clianta/integration-credentials/v1/";

/// Why a key or a ciphertext was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the encryption key must be 32 bytes, as 64 hex digits or base64 (got {0} bytes)")]
    KeyLength(usize),
    #[error("the encryption key is neither hex nor base64")]
    KeyEncoding,
    #[error(
        "CLIANTA_ENCRYPTION_KEY is required with MongoDB (32 bytes as 64 hex digits or base64)"
    )]
    Missing,
    #[error("the ciphertext is malformed")]
    Malformed,
    /// Wrong key, wrong workspace or tampered data: GCM's tag did not verify.
    #[error("the ciphertext does not open under this workspace's key")]
    Open,
}

impl From<CryptoError> for crm_core::Error {
    fn from(e: CryptoError) -> Self {
        crm_core::Error::internal(e)
    }
}

/// The master key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    bytes: [u8; KEY_LEN],
    dev_default: bool,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("dev_default", &self.dev_default)
            .finish_non_exhaustive()
    }
}

impl Default for MasterKey {
    fn default() -> Self {
        Self::dev_default()
    }
}

impl MasterKey {
    /// 32 bytes as 64 hex digits or as base64 (standard alphabet, padded or not).
    pub fn parse(raw: &str) -> Result<Self, CryptoError> {
        let raw = raw.trim();
        let bytes = if raw.len() == 2 * KEY_LEN && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(raw).map_err(|_| CryptoError::KeyEncoding)?
        } else {
            STANDARD
                .decode(raw)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw))
                .map_err(|_| CryptoError::KeyEncoding)?
        };
        let bytes: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::KeyLength(bytes.len()))?;
        Ok(Self {
            bytes,
            dev_default: false,
        })
    }

    /// The key from the `encryption_key` setting (`CLIANTA_ENCRYPTION_KEY`): parsed when set;
    /// when empty, the dev default, except on a store that outlives the process and may be
    /// shared (MongoDB), where an unset key is refused so credentials are never sealed under a
    /// public key.
    pub fn from_setting(raw: &str, persistent_shared_store: bool) -> Result<Self, CryptoError> {
        match raw.trim() {
            "" if persistent_shared_store => Err(CryptoError::Missing),
            "" => Ok(Self::dev_default()),
            s => Self::parse(s),
        }
    }

    /// A fixed, public key for the memory store and tests only; the server refuses to use it
    /// with MongoDB (docs/CONFIGURATION.md).
    pub fn dev_default() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        for (i, b) in b"clianta-dev-only-encryption-key!"
            .iter()
            .enumerate()
            .take(KEY_LEN)
        {
            bytes[i] = *b;
        }
        Self {
            bytes,
            dev_default: true,
        }
    }

    pub fn is_dev_default(&self) -> bool {
        self.dev_default
    }

    fn workspace_key(&self, ws: WorkspaceId) -> Result<Aes256Gcm, CryptoError> {
        let hk = Hkdf::<Sha256>::new(None, &self.bytes);
        let mut info = HKDF_INFO_PREFIX.to_vec();
        info.extend_from_slice(ws.to_string().as_bytes());
        let mut okm = [0u8; KEY_LEN];
        hk.expand(&info, &mut okm)
            .map_err(|_| CryptoError::KeyLength(KEY_LEN))?;
        Ok(Aes256Gcm::new(&Key::<Aes256Gcm>::from(okm)))
    }

    /// Encrypts `plaintext` for `ws` with a fresh random nonce.
    pub fn seal(&self, ws: WorkspaceId, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let cipher = self.workspace_key(ws)?;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = cipher
            .encrypt(&Nonce::from(nonce), plaintext)
            .map_err(|_| CryptoError::Malformed)?;
        let tag = out.split_off(out.len().saturating_sub(TAG_LEN));
        Ok(Sealed {
            encrypted: hex::encode(out),
            iv: hex::encode(nonce),
            auth_tag: hex::encode(tag),
        })
    }

    pub fn open(&self, ws: WorkspaceId, sealed: &Sealed) -> Result<Vec<u8>, CryptoError> {
        let cipher = self.workspace_key(ws)?;
        let iv = hex::decode(&sealed.iv).map_err(|_| CryptoError::Malformed)?;
        let nonce: [u8; NONCE_LEN] = iv
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed)?;
        let mut data = hex::decode(&sealed.encrypted).map_err(|_| CryptoError::Malformed)?;
        let tag = hex::decode(&sealed.auth_tag).map_err(|_| CryptoError::Malformed)?;
        if tag.len() != TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        data.extend_from_slice(&tag);
        cipher
            .decrypt(&Nonce::from(nonce), data.as_slice())
            .map_err(|_| CryptoError::Open)
    }

    /// Seals a JSON value as the original's `encryptedData` string (`{encrypted, iv, authTag}`).
    pub fn seal_json(
        &self,
        ws: WorkspaceId,
        value: &serde_json::Value,
    ) -> Result<String, CryptoError> {
        let plain = serde_json::to_vec(value).map_err(|_| CryptoError::Malformed)?;
        serde_json::to_string(&self.seal(ws, &plain)?).map_err(|_| CryptoError::Malformed)
    }

    pub fn open_json(
        &self,
        ws: WorkspaceId,
        stored: &str,
    ) -> Result<serde_json::Value, CryptoError> {
        let sealed: Sealed = serde_json::from_str(stored).map_err(|_| CryptoError::Malformed)?;
        let plain = self.open(ws, &sealed)?;
        serde_json::from_slice(&plain).map_err(|_| CryptoError::Malformed)
    }
}

/// One ciphertext as the original stores it, hex-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sealed {
    pub encrypted: String,
    pub iv: String,
    pub auth_tag: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_workspace_binding() {
        let k = MasterKey::parse(&"ab".repeat(32)).unwrap();
        let (a, b) = (WorkspaceId::new(), WorkspaceId::new());
        let s = k.seal_json(a, &json!({"token": "xoxb-secret"})).unwrap();
        assert!(!s.contains("xoxb-secret"));
        assert_eq!(k.open_json(a, &s).unwrap(), json!({"token": "xoxb-secret"}));
        assert_eq!(k.open_json(b, &s), Err(CryptoError::Open));
        let other = MasterKey::parse(&"cd".repeat(32)).unwrap();
        assert_eq!(other.open_json(a, &s), Err(CryptoError::Open));
        // Two seals of one value differ (fresh nonce).
        assert_ne!(s, k.seal_json(a, &json!({"token": "xoxb-secret"})).unwrap());
    }

    #[test]
    fn tampering_is_detected() {
        let k = MasterKey::dev_default();
        let ws = WorkspaceId::new();
        let mut sealed = k.seal(ws, b"hello").unwrap();
        let mut bytes = hex::decode(&sealed.encrypted).unwrap();
        bytes[0] ^= 1;
        sealed.encrypted = hex::encode(bytes);
        assert_eq!(k.open(ws, &sealed), Err(CryptoError::Open));
    }

    #[test]
    fn key_formats() {
        let hex_key = "00".repeat(32);
        assert!(MasterKey::parse(&hex_key).is_ok());
        let b64 = STANDARD.encode([7u8; 32]);
        assert!(!MasterKey::parse(&b64).unwrap().is_dev_default());
        assert_eq!(
            MasterKey::parse(&STANDARD.encode([7u8; 16])),
            Err(CryptoError::KeyLength(16))
        );
        assert_eq!(
            MasterKey::parse("not a key!"),
            Err(CryptoError::KeyEncoding)
        );
        assert_eq!(
            format!("{:?}", MasterKey::dev_default()),
            "MasterKey { dev_default: true, .. }"
        );
    }
}
