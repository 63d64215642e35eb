//! Standard Webhooks signing: a secret is `whsec_` and the base64 of 32 random bytes; a
//! request's `webhook-signature` is `v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`
//! for each secret that signs, separated by spaces, so that during a rotation's overlap a
//! receiver holding either secret verifies the request.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// 256 bits, as many as the HMAC's output: the spec asks for 24 to 64 bytes.
const KEY_BYTES: usize = 32;

/// A new secret, as shown to its tenant once.
pub fn new_secret() -> String {
    let mut key = [0u8; KEY_BYTES];
    rand::thread_rng().fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header's value: one `v1,` signature per secret, in the order given.
/// A stored secret that does not decode (none does; they are made here) signs nothing.
pub fn signature(secrets: &[String], message_id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|secret| STANDARD.decode(secret.strip_prefix(PREFIX)?).ok())
        .map(|key| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
            mac.update(message_id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body.as_bytes());
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_signs_as_published() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn each_secret_adds_a_signature() {
        let signed = signature(&[new_secret(), new_secret()], "msg_1", 1, "{}");
        assert_eq!(
            signed.split(' ').filter(|s| s.starts_with("v1,")).count(),
            2
        );
    }
}
