//! HS256 JWT verification and (dev-only) minting. Claims: `sub` (user id), `email`, `exp`.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// The secret used when none is configured. Never use it in production: the server warns.
pub const DEV_SECRET: &str = "wskit-dev-secret-do-not-use-in-production";

/// The authenticated chat user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The `sub` claim.
    pub id: String,
    /// The `email` claim.
    pub email: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    email: String,
    exp: u64,
}

/// Why a token was refused (logged at debug level; the client only sees 401).
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jwt(HS256, secret redacted)")
    }
}

impl Jwt {
    /// Keys for `secret`.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        Jwt {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Verifies signature and expiry; returns the user.
    pub fn verify(&self, token: &str) -> Result<User, TokenError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)?;
        Ok(User {
            id: data.claims.sub,
            email: data.claims.email,
        })
    }

    /// A token for `user_id` valid for `ttl_secs` (the demo page's `/token`).
    pub fn mint(&self, user_id: &str, email: &str, ttl_secs: u64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: user_id.to_owned(),
            email: email.to_owned(),
            exp: now + ttl_secs,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_others_do_not() {
        let jwt = Jwt::new("s3cret");
        let token = jwt.mint("alice", "alice@example.com", 60);
        assert_eq!(
            jwt.verify(&token).unwrap(),
            User {
                id: "alice".into(),
                email: "alice@example.com".into()
            }
        );
        assert!(Jwt::new("other").verify(&token).is_err(), "wrong secret");
        assert!(jwt.verify("not.a.jwt").is_err());
        let mut tampered = token.clone();
        tampered.pop();
        assert!(jwt.verify(&tampered).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let jwt = Jwt::new("s3cret");
        let claims = Claims {
            sub: "a".into(),
            email: "a@x".into(),
            exp: 1,
        };
        let old = encode(&Header::new(Algorithm::HS256), &claims, &jwt.encoding).unwrap();
        assert!(jwt.verify(&old).is_err());
    }
}
