//! One invocation's settings, resolved once: the profile (`--profile`, `SANKALPA_PROFILE`, the
//! config's `default_profile`, else `default`), its gateway (`--gateway`, `SANKALPA_GATEWAY`,
//! the profile's), its credential (`SANKALPA_API_KEY`, else what `login` saved) and how to print.
//!
//! An access token close to its end is traded for a new pair before the call, with the saved
//! refresh token, and the new pair saved: a login lasts as long as its refresh token does. One
//! the API refuses all the same (revoked, or a clock that disagrees) is renewed by the client
//! once for that call, which goes again; the new pair is saved here too ([`Context::client`]).

use sankalpa_api::client::{Client, Credential};
use sankalpa_api::sessions::{RefreshToken, TokenPair};

use crate::config::{self, Dir, Saved};
use crate::exit::Failure;
use crate::output::{Format, Output};

/// Refresh this many seconds before the access token expires, so it does not expire mid-call.
const REFRESH_MARGIN_SECONDS: i64 = 30;

/// What the global flags say, before the config is read.
pub struct Flags {
    pub profile: Option<String>,
    pub gateway: Option<String>,
    pub output: Option<Format>,
    pub quiet: bool,
}

pub struct Context {
    pub dir: Dir,
    pub profile: String,
    pub gateway: String,
    pub out: Output,
}

impl Context {
    pub fn resolve(flags: Flags) -> Result<Self, Failure> {
        let dir = Dir::locate()?;
        let config = dir.config()?;
        let profile = flags
            .profile
            .or_else(|| config.default_profile.clone())
            .unwrap_or_else(|| config::DEFAULT_PROFILE.to_owned());
        let settings = config.profiles.get(&profile).cloned().unwrap_or_default();
        let gateway = flags
            .gateway
            .or(settings.gateway)
            .unwrap_or_else(|| config::DEFAULT_GATEWAY.to_owned());
        let format = flags.output.or(settings.output).unwrap_or(Format::Table);
        Ok(Self {
            dir,
            profile,
            gateway,
            out: Output::new(format, flags.quiet),
        })
    }

    /// A client calling as no one: for logging in.
    pub fn anonymous(&self) -> Result<Client, Failure> {
        Ok(Client::new(&self.gateway)?)
    }

    /// The credential `SANKALPA_API_KEY` names, over anything saved.
    fn api_key_from_env() -> Option<String> {
        std::env::var("SANKALPA_API_KEY")
            .ok()
            .filter(|key| !key.is_empty())
    }

    /// What `login` saved for this profile.
    pub fn saved(&self) -> Result<Option<Saved>, Failure> {
        Ok(self.dir.credentials()?.profiles.remove(&self.profile))
    }

    /// Saves (or, with `None`, forgets) this profile's credential.
    pub fn save(&self, saved: Option<Saved>) -> Result<(), Failure> {
        save(&self.dir, &self.profile, saved)
    }

    /// A client calling as this profile's credential, its token refreshed when due, and
    /// renewed (and saved) when the API refuses it.
    pub async fn client(&self) -> Result<Client, Failure> {
        let anonymous = self.anonymous()?;
        if let Some(key) = Self::api_key_from_env() {
            return Ok(anonymous.with_credential(Credential::ApiKey(key)));
        }
        let saved = self
            .saved()?
            .ok_or_else(|| Failure::NotSignedIn(self.profile.clone()))?;
        if let Some(key) = saved.api_key {
            return Ok(anonymous.with_credential(Credential::ApiKey(key)));
        }
        let due = saved
            .expires_at
            .is_some_and(|at| at - REFRESH_MARGIN_SECONDS <= chrono::Utc::now().timestamp());
        let (access_token, refresh_token) = match (due, saved.access_token, saved.refresh_token) {
            (true, _, Some(refresh_token)) => {
                let pair = anonymous.refresh(&RefreshToken { refresh_token }).await?;
                self.save(Some(from_pair(&pair)))?;
                (pair.access_token, pair.refresh_token)
            }
            (_, Some(access_token), Some(refresh_token)) => (access_token, refresh_token),
            (_, Some(access_token), None) => {
                return Ok(anonymous.with_credential(Credential::Bearer(access_token)));
            }
            (_, None, _) => return Err(Failure::NotSignedIn(self.profile.clone())),
        };
        let (dir, profile) = (self.dir.clone(), self.profile.clone());
        let renewed = move |pair: &TokenPair| {
            // The old refresh token is spent: a login not saved now is lost at the next
            // command, whose refresh would reuse it.
            if let Err(failure) = save(&dir, &profile, Some(from_pair(pair))) {
                eprintln!("sankalpa: the renewed login was not saved ({failure}): sign in again");
            }
        };
        Ok(anonymous.with_login(access_token, refresh_token, renewed))
    }
}

/// Saves (or, with `None`, forgets) `profile`'s credential.
fn save(dir: &Dir, profile: &str, saved: Option<Saved>) -> Result<(), Failure> {
    let mut credentials = dir.credentials()?;
    match saved {
        Some(saved) => credentials.profiles.insert(profile.to_owned(), saved),
        None => credentials.profiles.remove(profile),
    };
    dir.save_credentials(&credentials)
}

/// What is kept of a login's token pair.
pub fn from_pair(pair: &TokenPair) -> Saved {
    let expires_in = i64::try_from(pair.expires_in).unwrap_or(i64::MAX);
    Saved {
        api_key: None,
        access_token: Some(pair.access_token.clone()),
        refresh_token: Some(pair.refresh_token.clone()),
        expires_at: Some(chrono::Utc::now().timestamp().saturating_add(expires_in)),
    }
}
