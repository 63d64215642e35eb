//! The gateway profiles the desktop app shares with the CLI: `config.toml` in
//! `$XDG_CONFIG_HOME/sankalpa`, else `~/.config/sankalpa` (the format of
//! `clients/cli/src/config.rs`: `default_profile`, and `[profiles.<name>]` with `gateway`).
//!
//! The file is read and written as a TOML table, so the CLI's other settings (a profile's
//! `output`, keys added later) survive the app saving a profile. Credentials are not shared: the
//! CLI's `credentials.toml` holds a refresh token that works once, and two programs trading the
//! same one would revoke each other's login; the app keeps its session in memory.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use url::Url;

/// A profile name's length, at most.
pub const MAX_PROFILE_NAME: usize = 64;
/// A gateway URL's length, at most.
pub const MAX_GATEWAY_URL: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub name: String,
    pub gateway: String,
}

/// The profiles, and the one to offer first.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Profiles {
    pub profiles: Vec<Profile>,
    pub default_profile: Option<String>,
}

/// The folder of the CLI's files.
#[derive(Debug, Clone)]
pub struct Dir(PathBuf);

impl Dir {
    #[cfg(test)]
    pub fn new(path: PathBuf) -> Self {
        Self(path)
    }

    /// `$XDG_CONFIG_HOME/sankalpa`, else `$HOME/.config/sankalpa`, as the CLI locates it.
    pub fn locate() -> Result<Self, String> {
        let nonempty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        match (nonempty("XDG_CONFIG_HOME"), nonempty("HOME")) {
            (Some(config), _) => Ok(Self(PathBuf::from(config).join("sankalpa"))),
            (None, Some(home)) => Ok(Self(Path::new(&home).join(".config/sankalpa"))),
            (None, None) => Err("neither XDG_CONFIG_HOME nor HOME is set".into()),
        }
    }

    fn config_path(&self) -> PathBuf {
        self.0.join("config.toml")
    }

    fn table(&self) -> Result<toml::Table, String> {
        let path = self.config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .parse::<toml::Table>()
                .map_err(|err| format!("{} is not valid: {err}", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
            Err(err) => Err(format!("cannot read {}: {err}", path.display())),
        }
    }

    /// Every profile with a gateway, by name; none when the file does not exist.
    pub fn profiles(&self) -> Result<Profiles, String> {
        let table = self.table()?;
        let profiles = table
            .get("profiles")
            .and_then(toml::Value::as_table)
            .map(|profiles| {
                profiles
                    .iter()
                    .filter_map(|(name, profile)| {
                        let gateway = profile.get("gateway")?.as_str()?;
                        Some(Profile {
                            name: name.clone(),
                            gateway: gateway.to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let default_profile = table
            .get("default_profile")
            .and_then(toml::Value::as_str)
            .map(str::to_owned);
        Ok(Profiles {
            profiles,
            default_profile,
        })
    }

    /// Sets profile `name`'s gateway, keeping everything else in the file.
    pub fn save_profile(&self, profile: &Profile) -> Result<(), String> {
        let mut table = self.table()?;
        let profiles = table
            .entry("profiles")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or("config.toml: `profiles` is not a table")?;
        let entry = profiles
            .entry(profile.name.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("config.toml: profile `{}` is not a table", profile.name))?;
        entry.insert(
            "gateway".into(),
            toml::Value::String(profile.gateway.clone()),
        );
        let text = toml::to_string_pretty(&table).map_err(|err| err.to_string())?;
        write(&self.config_path(), &text)
    }
}

/// Writes the file whole through a temporary file renamed over it, as the CLI does, so a crash
/// leaves the old one.
fn write(path: &Path, text: &str) -> Result<(), String> {
    let failed = |err: &dyn std::fmt::Display| format!("cannot write {}: {err}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| failed(&err))?;
    }
    let temporary = path.with_extension("toml.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&temporary)
        .map_err(|err| failed(&err))?;
    file.write_all(text.as_bytes())
        .map_err(|err| failed(&err))?;
    file.sync_all().map_err(|err| failed(&err))?;
    std::fs::rename(&temporary, path).map_err(|err| failed(&err))
}

/// A profile name: 1 to [`MAX_PROFILE_NAME`] letters, digits, `-` or `_`.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_PROFILE_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "profile: 1 to {MAX_PROFILE_NAME} letters, digits, '-' or '_'"
        ))
    }
}

/// A gateway's base URL: http or https, with a host, no query or fragment; at most
/// [`MAX_GATEWAY_URL`] bytes. Returned with its path ending in `/`, so that the gateway's routes
/// join under it.
pub fn check_gateway(gateway: &str) -> Result<Url, String> {
    let invalid = |why: &str| format!("gateway: {why}");
    if gateway.len() > MAX_GATEWAY_URL {
        return Err(invalid(&format!("at most {MAX_GATEWAY_URL} bytes")));
    }
    let mut url = Url::parse(gateway.trim()).map_err(|err| invalid(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("must name a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or a fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_no_profile() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = Dir::new(dir.path().join("sankalpa")).profiles().unwrap();
        assert_eq!(profiles, Profiles::default());
    }

    #[test]
    fn reads_the_clis_profiles_and_keeps_its_other_settings_when_saving() {
        let dir = tempfile::tempdir().unwrap();
        let config = Dir::new(dir.path().to_path_buf());
        std::fs::write(
            dir.path().join("config.toml"),
            "default_profile = \"work\"\n\n[profiles.work]\ngateway = \"https://sankalpa.example\"\noutput = \"json\"\n\n[profiles.bare]\noutput = \"yaml\"\n",
        )
        .unwrap();
        let profiles = config.profiles().unwrap();
        assert_eq!(profiles.default_profile.as_deref(), Some("work"));
        assert_eq!(
            profiles.profiles,
            [Profile {
                name: "work".into(),
                gateway: "https://sankalpa.example".into()
            }]
        );

        config
            .save_profile(&Profile {
                name: "local".into(),
                gateway: "http://127.0.0.1:8080".into(),
            })
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["default_profile"].as_str(), Some("work"));
        assert_eq!(table["profiles"]["work"]["output"].as_str(), Some("json"));
        assert_eq!(table["profiles"]["bare"]["output"].as_str(), Some("yaml"));
        assert_eq!(
            table["profiles"]["local"]["gateway"].as_str(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(config.profiles().unwrap().profiles.len(), 2);
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "profiles = [").unwrap();
        let err = Dir::new(dir.path().to_path_buf()).profiles().unwrap_err();
        assert!(err.contains("config.toml is not valid"), "{err}");
    }

    #[test]
    fn names_and_gateways_are_checked() {
        assert!(check_name("work-2_a").is_ok());
        for bad in ["", "has space", "a/b", &"x".repeat(MAX_PROFILE_NAME + 1)] {
            assert!(
                check_name(bad).unwrap_err().starts_with("profile:"),
                "{bad}"
            );
        }
        assert_eq!(
            check_gateway("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        for bad in [
            "ftp://example.com",
            "not a url",
            "http://example.com/?a=1",
            "file:///etc/passwd",
        ] {
            assert!(
                check_gateway(bad).unwrap_err().starts_with("gateway:"),
                "{bad}"
            );
        }
        assert_eq!(
            check_gateway("https://gw.example/base").unwrap().as_str(),
            "https://gw.example/base/"
        );
        let long = format!("http://example.com/{}", "a".repeat(MAX_GATEWAY_URL));
        assert!(check_gateway(&long).is_err());
    }
}
