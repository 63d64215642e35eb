//! The gateway's REST routes the app calls itself: sign-in and renewal of its own session (the
//! token pair of `/api/users/login`, kept in memory), a run's creator and chain, and whether the
//! gateway answers at all.

use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

/// How long one REST call may take before the gateway counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// An email's length at sign-in, at most (RFC 5321's longest address).
pub const MAX_EMAIL: usize = 320;
/// A password's length at sign-in, at most: far above any the gateway accepts, so only a paste
/// gone wrong meets it.
pub const MAX_PASSWORD: usize = 1024;
/// A token is renewed when it has less than this left.
const RENEW_MARGIN: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Gateway {
    base: Url,
    http: reqwest::Client,
}

/// The app's own session: tokens in memory only.
#[derive(Clone)]
pub struct Session {
    pub access_token: String,
    refresh_token: String,
    expires_at: Instant,
    pub user_id: String,
    pub email: String,
}

impl Session {
    pub fn expiring(&self) -> bool {
        self.expires_at.saturating_duration_since(Instant::now()) < RENEW_MARGIN
    }

    /// Marks the access token as spent (the gateway said so), to renew it before its use.
    pub fn expire(&mut self) {
        self.expires_at = Instant::now();
    }
}

#[derive(Deserialize)]
struct TokenPair {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    id: String,
    email: String,
}

/// What the app reads of a run.
#[derive(Debug, Deserialize)]
pub struct Run {
    pub created_by: String,
    pub parent_run_id: Option<String>,
    #[serde(default)]
    pub chain_name: Option<String>,
}

/// Why a call failed: the gateway did not answer, or answered with an error.
#[derive(Debug)]
pub enum Failure {
    Unreachable(String),
    Refused { status: u16, detail: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) => write!(f, "the gateway is unreachable: {why}"),
            Self::Refused { status, detail } => write!(f, "{detail} ({status})"),
        }
    }
}

impl Gateway {
    pub fn new(base: Url) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("a client with rustls and a timeout builds");
        Self { base, http }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("a relative path joins any base")
    }

    /// Whether the gateway answers its liveness route.
    pub async fn reachable(&self) -> bool {
        self.http
            .get(self.url("healthz"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Session, Failure> {
        let body = serde_json::json!({ "email": email, "password": password });
        let pair: TokenPair = self.post("api/users/login", &body).await?;
        Ok(session(pair, email))
    }

    /// A new pair for `session`'s refresh token (which then stops working).
    pub async fn renew(&self, session: &Session) -> Result<Session, Failure> {
        let body = serde_json::json!({ "refresh_token": session.refresh_token });
        let pair: TokenPair = self.post("api/users/refresh", &body).await?;
        Ok(session_of(pair, session))
    }

    pub async fn run(&self, session: &Session, id: &str) -> Result<Run, Failure> {
        let response = self
            .http
            .get(self.url(&format!("api/chains/runs/{id}")))
            .bearer_auth(&session.access_token)
            .send()
            .await;
        read(response).await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, Failure> {
        read(self.http.post(self.url(path)).json(body).send().await).await
    }
}

/// Sign-in's fields before anything is sent: both present, each within its bound.
pub fn check_credentials(email: &str, password: &str) -> Result<(), String> {
    if email.trim().is_empty() || email.len() > MAX_EMAIL {
        return Err(format!("email: 1 to {MAX_EMAIL} bytes"));
    }
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(format!("password: 1 to {MAX_PASSWORD} bytes"));
    }
    Ok(())
}

fn session(pair: TokenPair, email: &str) -> Session {
    let (user_id, email) = match &pair.user {
        Some(user) => (user.id.clone(), user.email.clone()),
        None => (String::new(), email.to_owned()),
    };
    Session {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        expires_at: Instant::now() + Duration::from_secs(pair.expires_in),
        user_id,
        email,
    }
}

/// A renewed pair keeps the user of the session it renews when it does not name one.
fn session_of(pair: TokenPair, previous: &Session) -> Session {
    let mut renewed = session(pair, &previous.email);
    if renewed.user_id.is_empty() {
        renewed.user_id.clone_from(&previous.user_id);
    }
    renewed
}

async fn read<T: serde::de::DeserializeOwned>(
    response: reqwest::Result<reqwest::Response>,
) -> Result<T, Failure> {
    let response = response.map_err(|err| Failure::Unreachable(err.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return response
            .json()
            .await
            .map_err(|err| Failure::Unreachable(format!("an unreadable answer: {err}")));
    }
    let problem: serde_json::Value = response.json().await.unwrap_or_default();
    let detail = problem
        .get("detail")
        .or_else(|| problem.get("title"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("the gateway refused")
        .to_owned();
    Err(Failure::Refused {
        status: status.as_u16(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_fields_are_checked_naming_the_field() {
        assert!(check_credentials("ada@example.com", "secret").is_ok());
        assert!(
            check_credentials(" ", "secret")
                .unwrap_err()
                .starts_with("email:")
        );
        let long_email = format!("{}@example.com", "a".repeat(MAX_EMAIL));
        assert!(
            check_credentials(&long_email, "secret")
                .unwrap_err()
                .starts_with("email:")
        );
        assert!(
            check_credentials("ada@example.com", "")
                .unwrap_err()
                .starts_with("password:")
        );
        let long_password = "p".repeat(MAX_PASSWORD + 1);
        assert!(
            check_credentials("ada@example.com", &long_password)
                .unwrap_err()
                .starts_with("password:")
        );
    }
}
