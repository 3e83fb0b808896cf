//! HS256 tokens minted locally, so no `/token` round trip is needed (and the Bun peer, which has
//! no `/token`, can be measured the same way). Claims match wskit-chat's: `sub`, `email`, `exp`.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// The secret wskit-chat and the Bun peer use when none is configured.
pub const DEV_SECRET: &str = "wskit-dev-secret-do-not-use-in-production";

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    email: &'a str,
    exp: u64,
}

/// Signs tokens for bench users `u{n}` with one secret.
#[derive(Clone)]
pub struct Minter {
    key: EncodingKey,
    ttl_secs: u64,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Minter(HS256, secret redacted)")
    }
}

impl Minter {
    /// Tokens valid for an hour: longer than any run.
    pub fn new(secret: &str) -> Self {
        Minter {
            key: EncodingKey::from_secret(secret.as_bytes()),
            ttl_secs: 3600,
        }
    }

    /// A token for user `u{n}` (`sub = "u{n}"`, `email = "u{n}@bench.invalid"`).
    pub fn token(&self, n: usize) -> String {
        let sub = format!("u{n}");
        let email = format!("u{n}@bench.invalid");
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + self.ttl_secs;
        let claims = Claims {
            sub: &sub,
            email: &email,
            exp,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .expect("HS256 signing with a byte secret cannot fail")
    }

    /// The path and query of an authenticated chat connection for user `u{n}`.
    pub fn chat_path(&self, n: usize) -> String {
        format!("/ws/chat?token={}", self.token(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};

    #[derive(serde::Deserialize)]
    struct Decoded {
        sub: String,
        email: String,
    }

    #[test]
    fn tokens_verify_with_the_same_secret_only() {
        let t = Minter::new("s").token(7);
        let mut v = Validation::new(Algorithm::HS256);
        v.set_required_spec_claims(&["exp", "sub"]);
        let d = decode::<Decoded>(&t, &DecodingKey::from_secret(b"s"), &v).unwrap();
        assert_eq!(d.claims.sub, "u7");
        assert_eq!(d.claims.email, "u7@bench.invalid");
        assert!(decode::<Decoded>(&t, &DecodingKey::from_secret(b"other"), &v).is_err());
    }
}
