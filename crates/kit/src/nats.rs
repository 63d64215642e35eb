//! The connection to NATS, with the credentials of its URL.
//!
//! async-nats reads no credentials from a server URL (nats-io/nats.rs#1623): a URL such as
//! `nats://svc:secret@nats:4222`, which the chart and operators write, would connect without
//! them and be refused by a server that requires them. Its userinfo is read here instead, as the
//! other NATS clients read it: `user:password`, or a lone value as a token; each part
//! percent-decoded, so a password may hold any character.

use async_nats::{ConnectOptions, ServerAddr};
use percent_encoding::percent_decode_str;

use crate::config::redact_url;

/// A client of the NATS server at `url`, authenticated with the URL's credentials.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::connect_with_options(url, options(url))
        .await
        .map_err(|err| anyhow::anyhow!("could not connect to NATS at {}: {err}", redact_url(url)))
}

/// The connection's options: the credentials `url` carries, if any.
fn options(url: &str) -> ConnectOptions {
    let Ok(server) = url.parse::<ServerAddr>() else {
        // async-nats says what is wrong with the URL when it connects.
        return ConnectOptions::new();
    };
    let decoded = |part: &str| percent_decode_str(part).decode_utf8_lossy().into_owned();
    match (server.username(), server.password()) {
        (Some(user), Some(password)) => {
            ConnectOptions::with_user_and_password(decoded(user), decoded(password))
        }
        (Some(token), None) => ConnectOptions::with_token(decoded(token)),
        (None, Some(password)) => ConnectOptions::with_token(decoded(password)),
        (None, None) => ConnectOptions::new(),
    }
}
