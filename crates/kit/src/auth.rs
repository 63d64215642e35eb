//! Who is calling: access-token claims, their verification, and permission checks.
//!
//! auth signs access tokens with Ed25519 and publishes the public keys as a JWK Set. Every other
//! service (and the gateway) holds a [`TokenVerifier`] loaded from that set, so no service but
//! auth ever holds a signing key. Only `EdDSA` is accepted: a token signed with HS256 using the
//! public key as the secret (the classic algorithm-confusion forgery) is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sankalpa_proto::v1::GetJwksRequest;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, or the API key id for tokens minted from a key.
    pub sub: String,
    /// The tenant id.
    pub tid: String,
    pub roles: Vec<String>,
    pub perms: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// "user" or "api_key".
    #[serde(default = "default_kind")]
    pub kind: String,
}

fn default_kind() -> String {
    "user".to_owned()
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub tenant_id: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub kind: String,
}

impl Principal {
    pub fn can(&self, wanted: &str) -> bool {
        self.permissions
            .iter()
            .any(|granted| permission_grants(granted, wanted))
    }

    /// PERMISSION_DENIED naming the missing permission unless the caller holds it.
    pub fn require(&self, wanted: &str) -> Result<(), Status> {
        if self.can(wanted) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "missing permission {wanted}"
            )))
        }
    }
}

impl From<Claims> for Principal {
    fn from(claims: Claims) -> Self {
        Self {
            subject: claims.sub,
            tenant_id: claims.tid,
            roles: claims.roles,
            permissions: claims.perms,
            kind: claims.kind,
        }
    }
}

/// Permissions over the whole platform rather than one tenant. A wildcard never grants them:
/// every tenant's admin holds `*:*`, but only the operators' admins hold `tenants:admin`.
pub const PLATFORM_PERMISSIONS: &[&str] = &["tenants:admin"];

/// `*:*` grants every tenant permission, `chains:*` every chains action, otherwise the names must
/// match.
pub fn permission_grants(granted: &str, wanted: &str) -> bool {
    if granted == wanted {
        return true;
    }
    if PLATFORM_PERMISSIONS.contains(&wanted) {
        return false;
    }
    if granted == "*:*" {
        return true;
    }
    match (granted.split_once(':'), wanted.split_once(':')) {
        (Some((granted_resource, "*")), Some((wanted_resource, _))) => {
            granted_resource == wanted_resource
        }
        _ => false,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token is expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

impl From<TokenError> for Status {
    fn from(err: TokenError) -> Self {
        Status::unauthenticated(err.to_string())
    }
}

/// One key of a JWK Set, as auth publishes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(rename = "use", default)]
    pub use_: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// Verifies access tokens against the keys of a JWK Set.
pub struct TokenVerifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    validation: Validation,
    /// Tokens already verified, with their expiry. A client sends one token for its whole
    /// lifetime, and each service on a request's path checks it, while an Ed25519 check costs
    /// far more than a lookup. Emptied when the keys change; emptied whole when full, which
    /// bounds its memory without bookkeeping.
    verified: Mutex<HashMap<String, (Principal, i64)>>,
}

/// How many verified tokens a verifier remembers.
const VERIFIED_TOKENS: usize = 10_000;

impl TokenVerifier {
    pub fn new(issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            keys: RwLock::new(HashMap::new()),
            validation,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the known keys with those of `jwks_json`.
    pub fn set_jwks(&self, jwks_json: &str) -> Result<usize, TokenError> {
        let set: JwkSet = serde_json::from_str(jwks_json)
            .map_err(|err| TokenError::Invalid(format!("bad JWK Set: {err}")))?;
        let mut keys = HashMap::new();
        for jwk in set.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                continue;
            }
            let key = DecodingKey::from_ed_components(&jwk.x)
                .map_err(|err| TokenError::Invalid(format!("bad key {}: {err}", jwk.kid)))?;
            keys.insert(jwk.kid, key);
        }
        let count = keys.len();
        let mut current = self.keys.write().expect("key lock poisoned");
        let changed =
            current.len() != keys.len() || keys.keys().any(|kid| !current.contains_key(kid));
        *current = keys;
        if changed {
            // A withdrawn key must stop vouching for the tokens it signed.
            self.verified
                .lock()
                .expect("token cache lock poisoned")
                .clear();
        }
        Ok(count)
    }

    pub fn has_keys(&self) -> bool {
        !self.keys.read().expect("key lock poisoned").is_empty()
    }

    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let now = chrono::Utc::now().timestamp();
        if let Some((principal, expires)) = self
            .verified
            .lock()
            .expect("token cache lock poisoned")
            .get(token)
            && *expires > now
        {
            return Ok(principal.clone());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let keys = self.keys.read().expect("key lock poisoned");
        let key = keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(
                |err| match err.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    kind => TokenError::Invalid(format!("{kind:?}")),
                },
            )?;
        let expires = data.claims.exp;
        let principal = Principal::from(data.claims);
        let mut verified = self.verified.lock().expect("token cache lock poisoned");
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_owned(), (principal.clone(), expires));
        Ok(principal)
    }

    /// Verifies an `authorization` header value of the form `Bearer <token>`.
    pub fn verify_bearer(&self, header_value: &str) -> Result<Principal, TokenError> {
        let token = header_value
            .strip_prefix("Bearer ")
            .or_else(|| header_value.strip_prefix("bearer "))
            .ok_or(TokenError::Malformed)?;
        self.verify(token.trim())
    }
}

/// Fetches auth's JWK Set into `verifier`.
pub async fn load_jwks(
    verifier: &TokenVerifier,
    auth: &mut AuthServiceClient<tonic::transport::Channel>,
) -> anyhow::Result<usize> {
    let jwks = auth.get_jwks(GetJwksRequest {}).await?.into_inner();
    Ok(verifier.set_jwks(&jwks.jwks_json)?)
}

/// A verifier loaded with the keys of the auth service at `auth_url`, and a client of it for
/// [`refresh_jwks`]. Auth may be starting at the same moment, so this asks for about five
/// seconds before giving up: long enough to ride that out, short enough that a wrong URL fails
/// the start visibly.
pub async fn verifier_from_auth(
    infra: &crate::config::Infra,
    auth_url: &str,
) -> anyhow::Result<(
    Arc<TokenVerifier>,
    AuthServiceClient<tonic::transport::Channel>,
)> {
    const ATTEMPTS: u32 = 20;
    const RETRY: Duration = Duration::from_millis(250);
    let verifier = Arc::new(TokenVerifier::new(
        &infra.token_issuer,
        &infra.token_audience,
    ));
    let mut auth = AuthServiceClient::new(crate::grpc::channel(auth_url)?);
    let mut attempt = 1;
    while let Err(err) = load_jwks(&verifier, &mut auth).await {
        if attempt == ATTEMPTS {
            return Err(err.context(format!(
                "could not load the token keys from auth at {auth_url}"
            )));
        }
        attempt += 1;
        tokio::time::sleep(RETRY).await;
    }
    Ok((verifier, auth))
}

/// Keeps `verifier` in step with auth's keys (rotation), until `stop` is cancelled.
pub async fn refresh_jwks(
    verifier: Arc<TokenVerifier>,
    mut auth: AuthServiceClient<tonic::transport::Channel>,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        if let Err(err) = load_jwks(&verifier, &mut auth).await {
            tracing::warn!(error = %err, "could not refresh the token keys from auth");
        }
        let wait = if verifier.has_keys() {
            every
        } else {
            Duration::from_millis(500)
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// A tonic interceptor that verifies the bearer token, when one is sent, and puts the
/// [`Principal`] into the request's extensions. A request without a token passes on: the RPCs
/// that need a caller ask for one with [`principal`], and the public ones (login) do not.
#[derive(Clone)]
pub struct AuthInterceptor {
    verifier: Arc<TokenVerifier>,
}

impl AuthInterceptor {
    pub fn new(verifier: Arc<TokenVerifier>) -> Self {
        Self { verifier }
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            return Ok(request);
        };
        let value = value
            .to_str()
            .map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
        let principal = self.verifier.verify_bearer(value)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The verified caller of a request, or UNAUTHENTICATED.
pub fn principal<T>(request: &Request<T>) -> Result<&Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("an access token is required"))
}

/// The caller, who must hold `permission`.
pub fn authorize<'a, T>(
    request: &'a Request<T>,
    permission: &str,
) -> Result<&'a Principal, Status> {
    let caller = principal(request)?;
    caller.require(permission)?;
    Ok(caller)
}

/// Puts `authorization: Bearer <token>` on an outgoing request.
pub fn with_bearer<T>(message: T, token: &str) -> Result<Request<T>, Status> {
    let mut request = Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| Status::unauthenticated("the token is not valid metadata"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{EncodingKey, Header};

    /// A signing key and the JWK Set that publishes it.
    fn key(kid: &str) -> (EncodingKey, String) {
        let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let der = signing.to_pkcs8_der().unwrap();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(signing.verifying_key().to_bytes());
        let jwks =
            serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid}]});
        (EncodingKey::from_ed_der(der.as_bytes()), jwks.to_string())
    }

    fn token(key: &EncodingKey, kid: &str, expires_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: "user-1".into(),
            tid: "tenant-1".into(),
            roles: vec!["viewer".into()],
            perms: vec!["memory:read".into()],
            iss: "sankalpa".into(),
            aud: "sankalpa".into(),
            exp: now + expires_in,
            iat: now,
            jti: "jti".into(),
            kind: "user".into(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    #[test]
    fn a_remembered_token_stops_verifying_when_its_key_is_withdrawn() {
        let (old, old_jwks) = key("old");
        let (_, new_jwks) = key("new");
        let verifier = TokenVerifier::new("sankalpa", "sankalpa");
        verifier.set_jwks(&old_jwks).unwrap();
        let signed = token(&old, "old", 600);
        assert_eq!(verifier.verify(&signed).unwrap().subject, "user-1");
        assert_eq!(verifier.verify(&signed).unwrap().subject, "user-1");
        verifier.set_jwks(&new_jwks).unwrap();
        assert!(matches!(
            verifier.verify(&signed),
            Err(TokenError::UnknownKey)
        ));
    }

    #[test]
    fn a_remembered_token_is_not_served_past_its_expiry() {
        let verifier = TokenVerifier::new("sankalpa", "sankalpa");
        let principal = Principal {
            subject: "user-1".into(),
            tenant_id: "tenant-1".into(),
            roles: Vec::new(),
            permissions: Vec::new(),
            kind: "user".into(),
        };
        let now = chrono::Utc::now().timestamp();
        verifier
            .verified
            .lock()
            .unwrap()
            .insert("fresh".into(), (principal.clone(), now + 60));
        verifier
            .verified
            .lock()
            .unwrap()
            .insert("stale".into(), (principal, now - 1));
        assert!(verifier.verify("fresh").is_ok());
        // No longer remembered, so checked in full: it is no token at all.
        assert!(matches!(
            verifier.verify("stale"),
            Err(TokenError::Malformed)
        ));
    }

    #[test]
    fn wildcards_grant_what_they_name_and_nothing_more() {
        assert!(permission_grants("*:*", "users:admin"));
        assert!(!permission_grants("*:*", "tenants:admin"));
        assert!(permission_grants("tenants:admin", "tenants:admin"));
        assert!(permission_grants("chains:*", "chains:execute"));
        assert!(!permission_grants("chains:*", "memory:read"));
        assert!(permission_grants("memory:read", "memory:read"));
        assert!(!permission_grants("memory:read", "memory:write"));
        assert!(!permission_grants("memory", "memory:read"));
    }
}
