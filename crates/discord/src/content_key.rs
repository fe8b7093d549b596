//! Keyed hashes of message content, for operators who want duplicate and
//! spam detection without keeping what people wrote.
//!
//! A plain hash of a short message is reversible by trying likely messages;
//! an HMAC under a secret key is not, for anyone without the key. The
//! content is hashed where it is decoded and dropped at once: only the
//! 32-byte tag leaves this crate.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use guildscope_model::Secret;

/// An HMAC-SHA256 key for message content.
#[derive(Clone)]
pub struct ContentKey {
    /// The keyed state, cloned for each message.
    mac: Hmac<Sha256>,
}

impl ContentKey {
    /// A key from a secret (any length; HMAC accepts every key size).
    pub fn new(secret: &Secret) -> Self {
        // HMAC takes keys of any length, so this cannot fail.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self { mac }
    }

    /// The HMAC-SHA256 tag of `content`.
    pub fn hash(&self, content: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(content.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        let key = ContentKey::new(&Secret::new("Jefe"));
        let tag = key.hash("what do ya want for nothing?");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_key_never_shows() {
        assert_eq!(
            format!("{:?}", ContentKey::new(&Secret::new("k"))),
            "ContentKey([redacted])"
        );
    }
}
