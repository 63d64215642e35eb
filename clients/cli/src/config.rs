//! Where `sankalpa` keeps its settings: `config.toml` (named profiles: the gateway's URL and the
//! default output) and `credentials.toml` (per profile, an API key or the tokens of a login),
//! both in `$XDG_CONFIG_HOME/sankalpa`, else `~/.config/sankalpa`.
//!
//! Credentials are kept in a file only its owner can read (0600), not the OS keyring: the
//! keyring's Linux backend needs a D-Bus session and a secret service, which servers and CI
//! machines, where the CLI is scripted most, do not run.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::exit::Failure;
use crate::output::Format;

/// The gateway `make run` starts.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";
pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Config {
    /// The profile used without `--profile`; `default` when absent.
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// The gateway's base URL.
    pub gateway: Option<String>,
    /// `table`, `json` or `yaml`.
    pub output: Option<Format>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub profiles: BTreeMap<String, Saved>,
}

/// A profile's credential: an API key, or the tokens of a login.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub api_key: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    /// When the access token expires, in seconds since the epoch.
    pub expires_at: Option<i64>,
}

/// The folder of both files.
#[derive(Clone)]
pub struct Dir(PathBuf);

impl Dir {
    /// `$XDG_CONFIG_HOME/sankalpa`, else `$HOME/.config/sankalpa`.
    pub fn locate() -> Result<Self, Failure> {
        let nonempty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        let base = match (nonempty("XDG_CONFIG_HOME"), nonempty("HOME")) {
            (Some(config), _) => PathBuf::from(config),
            (None, Some(home)) => Path::new(&home).join(".config"),
            (None, None) => {
                return Err(Failure::Failed(
                    "neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the config".into(),
                ));
            }
        };
        Ok(Self(base.join("sankalpa")))
    }

    pub fn config(&self) -> Result<Config, Failure> {
        read(&self.0.join("config.toml"))
    }

    pub fn save_config(&self, config: &Config) -> Result<(), Failure> {
        write(&self.0.join("config.toml"), config, 0o644)
    }

    pub fn credentials(&self) -> Result<Credentials, Failure> {
        read(&self.0.join("credentials.toml"))
    }

    pub fn save_credentials(&self, credentials: &Credentials) -> Result<(), Failure> {
        write(&self.0.join("credentials.toml"), credentials, 0o600)
    }
}

/// The file's settings; defaults when it does not exist.
fn read<T: DeserializeOwned + Default>(path: &Path) -> Result<T, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|err| Failure::Usage(format!("{} is not valid: {err}", path.display()))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(err) => Err(Failure::Failed(format!(
            "cannot read {}: {err}",
            path.display()
        ))),
    }
}

/// Writes the file whole, through a temporary file renamed over it, so a crash leaves the old
/// one; `mode` is set when the file is created, before anything is written to it.
fn write<T: Serialize>(path: &Path, value: &T, mode: u32) -> Result<(), Failure> {
    let failed = |err: &dyn std::fmt::Display| {
        Failure::Failed(format!("cannot write {}: {err}", path.display()))
    };
    let text = toml::to_string_pretty(value).map_err(|err| failed(&err))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| failed(&err))?;
    }
    let temporary = path.with_extension("toml.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(|err| failed(&err))?;
    file.write_all(text.as_bytes())
        .map_err(|err| failed(&err))?;
    file.sync_all().map_err(|err| failed(&err))?;
    std::fs::rename(&temporary, path).map_err(|err| failed(&err))
}
