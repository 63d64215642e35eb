//! Who is calling: access-token claims, their verification, and permission checks.
//!
//! auth signs access tokens with Ed25519 and publishes the public keys as a JWK Set. Every other
//! service (and the gateway) holds a [`TokenVerifier`] loaded from that set, so no service but
//! auth ever holds a signing key. Only `EdDSA` is accepted: a token signed with HS256 using the
//! public key as the secret (the classic algorithm-confusion forgery) is refused.
//!
//! Revocation: a token stays valid until its `exp`, unless auth revokes it first — a logout
//! ends its session (`sid`), deleting a user or changing their roles ends every token of that
//! subject issued before, revoking an API key ends the tokens minted from it. Auth pushes each
//! [`Revocation`] on core NATS as it commits it, and every verifier ([`follow_revocations`])
//! applies it at once; the list auth keeps ([`load_revocations`]) covers a verifier that starts
//! or missed a push, fetched with the keys on every refresh ([`keep_current`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use prost::Message;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::{GetJwksRequest, ListRevocationsRequest, Revocation};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
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
    /// The login session (refresh-token family) a user's token was issued for; a logout
    /// revokes it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// `iat` in milliseconds, so a revocation at a moment is told from a token issued just after
    /// it in the same second.
    #[serde(default)]
    pub iat_ms: i64,
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

/// A verified token that names no tenant: every service answers UNAUTHENTICATED.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the token names no tenant")]
pub struct NoTenant;

impl From<NoTenant> for Status {
    fn from(err: NoTenant) -> Self {
        Status::unauthenticated(err.to_string())
    }
}

impl Principal {
    /// The tenant every query of the caller is scoped by.
    pub fn tenant(&self) -> Result<uuid::Uuid, NoTenant> {
        uuid::Uuid::parse_str(&self.tenant_id).map_err(|_| NoTenant)
    }

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
/// every tenant's admin holds `*:*`, but only the operators' admins hold `tenants:admin` and
/// `fleet:read` (the fleet's own metrics, every tenant's traffic in them).
pub const PLATFORM_PERMISSIONS: &[&str] = &["tenants:admin", "fleet:read"];

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
    #[error("the token was revoked")]
    Revoked,
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

/// Verifies access tokens against the keys of a JWK Set, refusing revoked ones.
pub struct TokenVerifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    validation: Validation,
    /// Tokens already verified. A client sends one token for its whole lifetime, and each
    /// service on a request's path checks it, while an Ed25519 check costs far more than a
    /// lookup. Emptied when the keys change; emptied whole when full, which bounds its memory
    /// without bookkeeping. Revocations are checked on every hit.
    verified: Mutex<HashMap<String, Verified>>,
    revoked: RwLock<Revoked>,
    /// Whether `revoked` holds anything, so the common case skips its lock.
    any_revoked: AtomicBool,
    /// Bumped on every revocation, for long-lived streams to check their caller again.
    revocations: watch::Sender<u64>,
}

/// What a verified token says, as far as checks after its signature need.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    expires: i64,
    issued_ms: i64,
    session: String,
}

/// The revocations in force, each with the time after which it concerns no unexpired token.
#[derive(Default)]
struct Revoked {
    /// Subject -> (tokens issued before this many Unix ms are refused, expiry in Unix ms).
    subjects: HashMap<String, (i64, i64)>,
    /// Session -> expiry in Unix ms.
    sessions: HashMap<String, i64>,
}

impl Revoked {
    /// Adds `revocation`; whether that refuses a token that was not refused before.
    fn add(&mut self, revocation: &Revocation) -> bool {
        let mut changed = false;
        if !revocation.subject.is_empty() {
            let entry = self
                .subjects
                .entry(revocation.subject.clone())
                .or_insert((i64::MIN, i64::MIN));
            changed |= revocation.not_before_ms > entry.0;
            entry.0 = entry.0.max(revocation.not_before_ms);
            entry.1 = entry.1.max(revocation.expires_at_ms);
        }
        if !revocation.session.is_empty() {
            let expiry = self
                .sessions
                .entry(revocation.session.clone())
                .or_insert(i64::MIN);
            changed |= *expiry == i64::MIN;
            *expiry = (*expiry).max(revocation.expires_at_ms);
        }
        changed
    }

    fn concerns(&self, token: &Verified) -> bool {
        self.subjects
            .get(&token.principal.subject)
            .is_some_and(|(not_before, _)| token.issued_ms < *not_before)
            || (!token.session.is_empty() && self.sessions.contains_key(&token.session))
    }

    fn forget_expired(&mut self, now_ms: i64) {
        self.subjects.retain(|_, (_, expires)| *expires > now_ms);
        self.sessions.retain(|_, expires| *expires > now_ms);
    }

    fn is_empty(&self) -> bool {
        self.subjects.is_empty() && self.sessions.is_empty()
    }
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
            revoked: RwLock::new(Revoked::default()),
            any_revoked: AtomicBool::new(false),
            revocations: watch::Sender::new(0),
        }
    }

    /// Refuses the tokens `revocation` names from now on.
    pub fn revoke(&self, revocation: &Revocation) {
        self.revoke_all(std::slice::from_ref(revocation));
    }

    /// Refuses the tokens each of `list` names from now on. A revocation is never lifted, only
    /// forgotten once no token it concerns can still be unexpired, so a list fetched before a
    /// push arrived cannot undo it.
    pub fn revoke_all(&self, list: &[Revocation]) {
        let mut revoked = self.revoked.write().expect("revocation lock poisoned");
        revoked.forget_expired(chrono::Utc::now().timestamp_millis());
        let mut changed = false;
        for revocation in list {
            changed |= revoked.add(revocation);
        }
        self.any_revoked
            .store(!revoked.is_empty(), Ordering::Release);
        drop(revoked);
        if changed {
            self.revocations.send_modify(|generation| *generation += 1);
        }
    }

    /// Changes whenever a revocation arrives: a long-lived stream waits on it to check its
    /// caller again at once.
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    fn is_revoked(&self, token: &Verified) -> bool {
        self.any_revoked.load(Ordering::Acquire)
            && self
                .revoked
                .read()
                .expect("revocation lock poisoned")
                .concerns(token)
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
        let remembered = self
            .verified
            .lock()
            .expect("token cache lock poisoned")
            .get(token)
            .filter(|verified| verified.expires > now)
            .cloned();
        let verified = match remembered {
            Some(verified) => verified,
            None => self.check_signature(token)?,
        };
        if self.is_revoked(&verified) {
            return Err(TokenError::Revoked);
        }
        Ok(verified.principal)
    }

    fn check_signature(&self, token: &str) -> Result<Verified, TokenError> {
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
        drop(keys);
        let claims = data.claims;
        let verified = Verified {
            expires: claims.exp,
            issued_ms: if claims.iat_ms > 0 {
                claims.iat_ms
            } else {
                claims.iat.saturating_mul(1000)
            },
            session: claims.sid.clone(),
            principal: Principal::from(claims),
        };
        let mut cache = self.verified.lock().expect("token cache lock poisoned");
        if cache.len() >= VERIFIED_TOKENS {
            cache.clear();
        }
        cache.insert(token.to_owned(), verified.clone());
        Ok(verified)
    }

    /// Verifies an `authorization` header value of the form `Bearer <token>`.
    pub fn verify_bearer(&self, header_value: &str) -> Result<Principal, TokenError> {
        self.verify(bearer_value(header_value).ok_or(TokenError::Malformed)?)
    }
}

/// Fetches auth's JWK Set into `verifier`.
pub async fn load_jwks(
    verifier: &TokenVerifier,
    auth: &mut AuthServiceClient<crate::grpc::Peers>,
) -> anyhow::Result<usize> {
    let jwks = auth.get_jwks(GetJwksRequest {}).await?.into_inner();
    Ok(verifier.set_jwks(&jwks.jwks_json)?)
}

/// Fetches auth's list of revocations in force into `verifier`.
pub async fn load_revocations(
    verifier: &TokenVerifier,
    auth: &mut AuthServiceClient<crate::grpc::Peers>,
) -> anyhow::Result<()> {
    let list = auth
        .list_revocations(ListRevocationsRequest {})
        .await?
        .into_inner();
    verifier.revoke_all(&list.revocations);
    Ok(())
}

/// A verifier loaded with the keys and revocations of the auth service at `auth_url`, and a
/// client of it for [`keep_current`]. Auth may be starting at the same moment, so this asks for
/// about five seconds before giving up: long enough to ride that out, short enough that a wrong
/// URL fails the start visibly.
pub async fn verifier_from_auth(
    infra: &crate::config::Infra,
    auth_url: &str,
) -> anyhow::Result<(Arc<TokenVerifier>, AuthServiceClient<crate::grpc::Peers>)> {
    const ATTEMPTS: u32 = 20;
    const RETRY: Duration = Duration::from_millis(250);
    let verifier = Arc::new(TokenVerifier::new(
        &infra.token_issuer,
        &infra.token_audience,
    ));
    let mut auth = AuthServiceClient::new(crate::grpc::channel(auth_url)?);
    let mut attempt = 1;
    loop {
        let loaded = match load_jwks(&verifier, &mut auth).await {
            Ok(_) => load_revocations(&verifier, &mut auth).await,
            Err(err) => Err(err),
        };
        match loaded {
            Ok(()) => return Ok((verifier, auth)),
            Err(err) if attempt == ATTEMPTS => {
                return Err(err.context(format!(
                    "could not load the token keys from auth at {auth_url}"
                )));
            }
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// The core NATS subject auth pushes revocations on (not part of the event stream: they are
/// for verifiers, not tenants).
pub fn revocations_subject(subject_prefix: &str) -> String {
    format!("{subject_prefix}auth.revocations")
}

/// Keeps `verifier` current until `stop` is cancelled: revocations as auth pushes them on NATS,
/// and every `every` auth's keys (rotation) and whole revocation list (whatever a push missed).
pub async fn keep_current(
    verifier: Arc<TokenVerifier>,
    mut auth: AuthServiceClient<crate::grpc::Peers>,
    nats: async_nats::Client,
    subject_prefix: String,
    every: Duration,
    stop: CancellationToken,
) {
    let refresh = async {
        loop {
            let loaded = match load_jwks(&verifier, &mut auth).await {
                Ok(_) => load_revocations(&verifier, &mut auth).await,
                Err(err) => Err(err),
            };
            if let Err(err) = loaded {
                tracing::warn!(error = %err, "could not refresh the token keys from auth");
            }
            let wait = if verifier.has_keys() {
                every
            } else {
                Duration::from_millis(500)
            };
            tokio::time::sleep(wait).await;
        }
    };
    tokio::select! {
        () = stop.cancelled() => {}
        () = refresh => {}
        () = follow_revocations(verifier.clone(), nats, subject_prefix, stop.clone()) => {}
    }
}

/// Applies the revocations auth pushes on NATS to `verifier` until `stop` is cancelled,
/// subscribing again whenever the subscription ends.
pub async fn follow_revocations(
    verifier: Arc<TokenVerifier>,
    nats: async_nats::Client,
    subject_prefix: String,
    stop: CancellationToken,
) {
    let subject = revocations_subject(&subject_prefix);
    while !stop.is_cancelled() {
        let mut pushed = match nats.subscribe(subject.clone()).await {
            Ok(subscription) => subscription,
            Err(err) => {
                tracing::warn!(error = %err, "could not subscribe to revocations");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return,
                message = pushed.next() => message,
            };
            let Some(message) = message else { break };
            match Revocation::decode(message.payload) {
                Ok(revocation) => verifier.revoke(&revocation),
                Err(err) => tracing::warn!(error = %err, "a revocation that does not decode"),
            }
        }
    }
}

/// Publishes `revocation` to every verifier; auth calls this after committing it.
pub async fn push_revocation(
    nats: &async_nats::Client,
    subject_prefix: &str,
    revocation: &Revocation,
) -> anyhow::Result<()> {
    nats.publish(
        revocations_subject(subject_prefix),
        revocation.encode_to_vec().into(),
    )
    .await?;
    nats.flush().await?;
    Ok(())
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

/// The token of an `Authorization: Bearer <token>` value.
pub fn bearer_value(header_value: &str) -> Option<&str> {
    header_value
        .strip_prefix("Bearer ")
        .or_else(|| header_value.strip_prefix("bearer "))
        .map(str::trim)
}

/// The access token a request carries in its `authorization: Bearer` metadata, to act for the
/// caller towards another service.
pub fn bearer_token<T>(request: &Request<T>) -> Option<&str> {
    bearer_value(request.metadata().get("authorization")?.to_str().ok()?)
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
            sid: "session-1".into(),
            iat_ms: now * 1000,
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
        let (key, jwks) = key("k");
        let verifier = TokenVerifier::new("sankalpa", "sankalpa");
        verifier.set_jwks(&jwks).unwrap();
        let signed = token(&key, "k", 600);
        assert!(verifier.verify(&signed).is_ok());
        let now = chrono::Utc::now().timestamp();
        for verified in verifier.verified.lock().unwrap().values_mut() {
            verified.expires = now - 1;
        }
        // No longer remembered, so checked in full: still valid by its own claims.
        assert!(verifier.verify(&signed).is_ok());
        assert!(verifier.verified.lock().unwrap()[&signed].expires > now);
    }

    #[test]
    fn a_revoked_subject_or_session_is_refused_even_when_remembered() {
        let (key, jwks) = key("k");
        let verifier = TokenVerifier::new("sankalpa", "sankalpa");
        verifier.set_jwks(&jwks).unwrap();
        let signed = token(&key, "k", 600);
        let changes = verifier.revocations();
        assert!(verifier.verify(&signed).is_ok());
        let now_ms = chrono::Utc::now().timestamp_millis();
        let later = now_ms + 600_000;

        // Issued after the revocation: not concerned.
        verifier.revoke(&Revocation {
            subject: "user-1".into(),
            not_before_ms: now_ms - 60_000,
            expires_at_ms: later,
            ..Revocation::default()
        });
        assert!(verifier.verify(&signed).is_ok());
        assert!(changes.has_changed().unwrap());

        verifier.revoke(&Revocation {
            subject: "user-1".into(),
            not_before_ms: now_ms + 1,
            expires_at_ms: later,
            ..Revocation::default()
        });
        assert!(matches!(verifier.verify(&signed), Err(TokenError::Revoked)));

        // A list fetched before the push arrived does not lift it.
        verifier.revoke_all(&[]);
        assert!(matches!(verifier.verify(&signed), Err(TokenError::Revoked)));

        let other = TokenVerifier::new("sankalpa", "sankalpa");
        other.set_jwks(&jwks).unwrap();
        other.revoke_all(&[Revocation {
            session: "session-1".into(),
            expires_at_ms: later,
            ..Revocation::default()
        }]);
        assert!(matches!(other.verify(&signed), Err(TokenError::Revoked)));
    }

    #[test]
    fn wildcards_grant_what_they_name_and_nothing_more() {
        assert!(permission_grants("*:*", "users:admin"));
        assert!(!permission_grants("*:*", "tenants:admin"));
        assert!(!permission_grants("*:*", "fleet:read"));
        assert!(permission_grants("tenants:admin", "tenants:admin"));
        assert!(permission_grants("chains:*", "chains:execute"));
        assert!(!permission_grants("chains:*", "memory:read"));
        assert!(permission_grants("memory:read", "memory:read"));
        assert!(!permission_grants("memory:read", "memory:write"));
        assert!(!permission_grants("memory", "memory:read"));
    }
}
