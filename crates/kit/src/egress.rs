//! Where calls to a URL a tenant names may go (a webhook's endpoint, a model provider). Without
//! a guard such a URL would let the tenant make the service call anything the service can
//! reach: its own ops port, the database, a cloud's metadata endpoint. Destinations in
//! loopback, private, link-local (metadata included), shared, multicast and reserved ranges
//! are refused unless the operator's allow-list has them, and plain http unless the operator
//! allows it.
//!
//! The check runs at every call on the address actually connected to: names are resolved by
//! [`GuardedResolver`], which hands the HTTP client only allowed addresses, so a name that
//! resolved to a public address when the URL was given and to 10.0.0.1 now (DNS rebinding) is
//! refused now. An address written in the URL is checked before the request, as the client
//! resolves nothing then; clients that use the guard follow no redirect, which would skip
//! that check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A network, `address/prefix` (`10.0.0.0/8`, `::1/128`); an address alone is itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, candidate: IpAddr) -> bool {
        match (self.address, canonical(candidate)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an address or address/prefix"))?;
        let most = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= most)
                .ok_or_else(|| format!("{text:?} has a prefix that is not 0 to {most}"))?,
            None => most,
        };
        Ok(Self {
            address: canonical(address),
            prefix,
        })
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is the IPv4 address, to the guard as
/// to the network.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Why an address is not a public destination, or `None` when it is one.
fn special(address: IpAddr) -> Option<&'static str> {
    match canonical(address) {
        IpAddr::V4(ip) => special_v4(ip),
        IpAddr::V6(ip) => special_v6(ip),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the metadata service of most clouds.
        Some("link-local or metadata")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("reserved")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking")
    } else {
        None
    }
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        // Unique local, where AWS's IPv6 metadata endpoint (fd00:ec2::254) lives too.
        Some("private (unique local)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 reaches the IPv4 address in its last 32 bits: judged as that address.
        let [.., c, d] = ip.segments();
        special_v4(Ipv4Addr::from((u32::from(c) << 16) | u32::from(d)))
    } else {
        None
    }
}

/// The operator's settings on destinations.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Plain http is allowed.
    pub allow_http: bool,
    /// Networks allowed although special.
    pub allowed_networks: Vec<Network>,
}

/// The networks of the comma-separated `address/prefix` list in the variable `name`; none when
/// it is unset.
pub fn networks_from_env(name: &str) -> Result<Vec<Network>, crate::config::ConfigError> {
    crate::config::list(name, &[])
        .into_iter()
        .map(|network| {
            network
                .parse()
                .map_err(|reason| crate::config::ConfigError::Invalid {
                    name: name.to_owned(),
                    value: network.clone(),
                    reason,
                })
        })
        .collect()
}

impl Guard {
    /// Why `address` may not be called, or `None` when it may.
    pub fn refusal(&self, address: IpAddr) -> Option<String> {
        let kind = special(address)?;
        if self
            .allowed_networks
            .iter()
            .any(|network| network.contains(address))
        {
            return None;
        }
        Some(format!(
            "{address} is a {kind} address, which the operator does not allow"
        ))
    }

    /// The URL, checked: absolute http(s), with a host, no user or password, http only where
    /// allowed, and no refused address written in it. Names are checked when resolved.
    pub fn check_url(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw).map_err(|err| format!("is not a URL: {err}"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err("must be https (the operator does not allow http)".to_owned()),
            _ => return Err("must be an http(s) URL".to_owned()),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user or password".to_owned());
        }
        let host = url
            .host_str()
            .ok_or_else(|| "must name a host".to_owned())?;
        // An IPv6 host is written in brackets.
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        match literal.parse::<IpAddr>() {
            Ok(address) => self.refusal(address).map_or(Ok(url.clone()), Err),
            Err(_) => Ok(url.clone()),
        }
    }

    /// The resolver of a guarded client: names resolve to their allowed addresses only.
    pub fn resolver(self: &Arc<Self>) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver {
            guard: self.clone(),
        })
    }
}

/// An error with its causes: reqwest's own message names only the step that failed, the
/// guard's refusal among the causes.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Resolves names with the system's resolver, then keeps the addresses the guard allows; a
/// name with none left fails to resolve, saying why.
pub struct GuardedResolver {
    guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // The port is the URL's: the client sets it on the addresses it connects to.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusals = Vec::new();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| match guard.refusal(address.ip()) {
                    None => true,
                    Some(why) => {
                        refusals.push(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = if refusals.is_empty() {
                    format!("{host} resolves to no address")
                } else {
                    format!("{host} is refused: {}", refusals.join("; "))
                };
                return Err(why.into());
            }
            let addresses: Addrs = Box::new(allowed.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allowed: &[&str]) -> Guard {
        Guard {
            allow_http: false,
            allowed_networks: allowed.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn special_addresses_are_refused_unless_allowed() {
        let strict = guard(&[]);
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert!(strict.refusal(ip).is_some(), "{address} was allowed");
        }
        for address in ["93.184.215.14", "2606:4700::1111", "8.8.8.8"] {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(strict.refusal(ip), None, "{address} was refused");
        }
        let loopback = guard(&["127.0.0.0/8", "::1"]);
        assert_eq!(loopback.refusal("127.0.0.1".parse().unwrap()), None);
        assert_eq!(loopback.refusal("::ffff:127.0.0.2".parse().unwrap()), None);
        assert!(loopback.refusal("10.0.0.1".parse().unwrap()).is_some());
    }

    #[test]
    fn urls_are_https_with_a_public_literal_or_a_name() {
        let strict = guard(&[]);
        assert!(strict.check_url("https://example.com/hook").is_ok());
        assert!(strict.check_url("http://example.com/hook").is_err());
        assert!(strict.check_url("ftp://example.com/").is_err());
        assert!(strict.check_url("https://user:pw@example.com/").is_err());
        assert!(strict.check_url("https://127.0.0.1/").is_err());
        assert!(strict.check_url("https://[::1]:8443/").is_err());
        assert!(strict.check_url("not a url").is_err());
    }

    #[test]
    fn networks_parse_with_or_without_a_prefix() {
        assert!("10.0.0.0/8".parse::<Network>().is_ok());
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("::1".parse::<Network>().is_ok());
        assert!("nope".parse::<Network>().is_err());
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("10.9.8.7".parse().unwrap()));
    }
}
