//! Signing keys and the tokens auth hands out.
//!
//! Access tokens are JWTs signed with Ed25519. The signing key lives in `auth.signing_keys`, so
//! every replica signs with the same key and restarts keep tokens valid; the first replica to
//! start creates it, under an advisory lock so that replicas starting together agree on one.
//! Refresh tokens and API keys are opaque random strings; only their SHA-256 is stored.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use sankalpa_kit::auth::{Claims, Jwk, JwkSet};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::Result;

pub struct Signer {
    kid: String,
    key: EncodingKey,
    jwks_json: String,
    issuer: String,
    audience: String,
}

/// What an access token is about.
pub struct Subject<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub kind: &'a str,
    /// The login session a user's token belongs to (its refresh-token family); empty for a
    /// token minted from an API key.
    pub session: &'a str,
}

impl Signer {
    /// Loads the current signing key, creating it if this is the first start.
    pub async fn load(pool: &PgPool, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('auth.signing_keys'))")
            .execute(&mut *tx)
            .await?;
        let current: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT kid, private_key FROM auth.signing_keys
             WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let (kid, private_der) = match current {
            Some(found) => found,
            None => {
                let mut seed = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut seed);
                let signing = SigningKey::from_bytes(&seed);
                let der = signing
                    .to_pkcs8_der()
                    .context("could not encode the signing key")?
                    .as_bytes()
                    .to_vec();
                let public = signing.verifying_key().to_bytes().to_vec();
                let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&public)[..12]);
                sqlx::query(
                    "INSERT INTO auth.signing_keys (kid, private_key, public_key) VALUES ($1, $2, $3)",
                )
                .bind(&kid)
                .bind(&der)
                .bind(&public)
                .execute(&mut *tx)
                .await?;
                (kid, der)
            }
        };
        let published: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT kid, public_key FROM auth.signing_keys WHERE retired_at IS NULL ORDER BY created_at",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let jwks = JwkSet {
            keys: published
                .into_iter()
                .map(|(kid, public)| Jwk {
                    kty: "OKP".to_owned(),
                    crv: "Ed25519".to_owned(),
                    x: URL_SAFE_NO_PAD.encode(public),
                    kid,
                    use_: Some("sig".to_owned()),
                    alg: Some("EdDSA".to_owned()),
                })
                .collect(),
        };
        Ok(Self {
            kid,
            key: EncodingKey::from_ed_der(&private_der),
            jwks_json: serde_json::to_string(&jwks)?,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// Signs an access token valid for `ttl_seconds`.
    pub fn access_token(&self, subject: Subject<'_>, ttl_seconds: i64) -> Result<String> {
        let issued = Utc::now();
        let now = issued.timestamp();
        let claims = Claims {
            sub: subject.id.to_owned(),
            tid: subject.tenant_id.to_owned(),
            roles: subject.roles,
            perms: subject.permissions,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + ttl_seconds,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kind: subject.kind.to_owned(),
            sid: subject.session.to_owned(),
            iat_ms: issued.timestamp_millis(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .context("could not sign an access token")?;
        Ok(token)
    }
}

/// A new opaque secret: `prefix` followed by 32 random bytes, base64url.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a secret.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
