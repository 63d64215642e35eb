//! The envelope keys that encrypt the tenants' model provider API keys at rest
//! (`SANKALPA_MODEL_KEYS`: `id:base64`, comma separated, each key 32 random bytes).
//!
//! A value is sealed with AES-256-GCM under the first key, with a nonce of its own (96 random
//! bits: far below the 2^32 values per key where random nonces start to risk a repeat) and
//! associated data naming what it belongs to (tenant and provider), so a ciphertext copied to
//! another row does not open. The key id is stored beside it: rotating is putting a new key
//! first and keeping the old ones listed until every value has been written again.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

/// The longest key id: it is stored with every value.
const MAX_KEY_ID_BYTES: usize = 32;
/// The nonce length AES-GCM takes.
const NONCE_BYTES: usize = 12;

/// A value sealed under one of the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the envelope key {0:?} is not configured (SANKALPA_MODEL_KEYS)")]
    UnknownKey(String),
    #[error("a sealed value does not open: it was changed or belongs elsewhere")]
    Corrupt,
}

/// The configured keys, the first sealing new values.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// Parses `id:base64,id:base64`; an empty text is no keyring. The reason never quotes a key.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let mut keys = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, encoded) = entry
                .split_once(':')
                .ok_or_else(|| "each key must be written id:base64".to_owned())?;
            let valid_id = !id.is_empty()
                && id.len() <= MAX_KEY_ID_BYTES
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_id {
                return Err(format!(
                    "a key id must be 1 to {MAX_KEY_ID_BYTES} of [A-Za-z0-9_-]"
                ));
            }
            if keys.iter().any(|(known, _)| known == id) {
                return Err(format!("the key id {id:?} is listed twice"));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| format!("the key {id:?} is not base64"))?;
            if bytes.len() != 32 {
                return Err(format!("the key {id:?} must be 32 bytes"));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| format!("the key {id:?} must be 32 bytes"))?;
            keys.push((id.to_owned(), cipher));
        }
        Ok((!keys.is_empty()).then_some(Self { keys }))
    }

    /// Seals `plain` under the first key, bound to `context`.
    pub fn seal(&self, plain: &[u8], context: &str) -> Sealed {
        let (key_id, cipher) = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plain,
            aad: context.as_bytes(),
        };
        let ciphertext = cipher
            .encrypt(&nonce, payload)
            .expect("AES-GCM seals any value shorter than 64 GiB");
        Sealed {
            key_id: key_id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Opens a value sealed under any listed key for `context`.
    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, EnvelopeError> {
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(id, _)| *id == sealed.key_id)
            .ok_or_else(|| EnvelopeError::UnknownKey(sealed.key_id.clone()))?;
        let nonce: [u8; NONCE_BYTES] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::Corrupt)?;
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad: context.as_bytes(),
        };
        cipher
            .decrypt(&Nonce::from(nonce), payload)
            .map_err(|_| EnvelopeError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "old:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const NEW: &str = "new:HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    #[test]
    fn a_value_opens_only_in_its_context_and_after_rotation() {
        let old = Keyring::parse(OLD).unwrap().unwrap();
        let sealed = old.seal(b"sk-secret", "tenant/openai");
        assert_eq!(sealed.key_id, "old");
        assert!(!sealed.ciphertext.windows(9).any(|w| w == b"sk-secret"));
        assert_eq!(old.open(&sealed, "tenant/openai").unwrap(), b"sk-secret");
        assert_eq!(
            old.open(&sealed, "other/openai"),
            Err(EnvelopeError::Corrupt)
        );
        assert_ne!(old.seal(b"sk-secret", "tenant/openai").nonce, sealed.nonce);

        let rotated = Keyring::parse(&format!("{NEW},{OLD}")).unwrap().unwrap();
        assert_eq!(
            rotated.open(&sealed, "tenant/openai").unwrap(),
            b"sk-secret"
        );
        assert_eq!(rotated.seal(b"x", "t").key_id, "new");
        let new_only = Keyring::parse(NEW).unwrap().unwrap();
        assert_eq!(
            new_only.open(&sealed, "tenant/openai"),
            Err(EnvelopeError::UnknownKey("old".into()))
        );
    }

    #[test]
    fn bad_keyrings_are_refused_without_quoting_a_key() {
        assert!(Keyring::parse("").unwrap().is_none());
        let short = Keyring::parse("k:c2hvcnQ=").unwrap_err();
        assert!(short.contains("32 bytes") && !short.contains("c2hvcnQ"));
        assert!(Keyring::parse("no-colon").is_err());
        assert!(Keyring::parse(&format!("{OLD},{OLD}")).is_err());
    }
}
