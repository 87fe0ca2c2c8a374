//! Compact HS256 JSON Web Tokens for the simulator's access tokens and OIDC assertions.
//!
//! Keys are random per process, so tokens from one run never validate in another. This module
//! only signs and checks signatures and time claims; what a token may do is decided by the APIs.
//! It must never log or print a token.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("token is malformed")]
    Malformed,
    /// Signature does not match the key.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
}

/// An HMAC-SHA256 signing key.
pub struct Signer {
    key: hmac::Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    /// A signer with a fresh random key.
    pub fn random() -> Self {
        let secret = crate::state::random_bytes(32);
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, &secret) }
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "HS256", "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let tag = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks signature, `exp` and `nbf`, and returns the claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Value, JwtError> {
        let claims = self.verify_signature(token)?;
        if claims.get("exp").and_then(Value::as_i64).is_some_and(|exp| exp <= now) {
            return Err(JwtError::Expired);
        }
        // Five minutes of clock skew, as Entra allows.
        if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now + 300) {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Value, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| JwtError::Malformed)?;
        let signing_input = format!("{header}.{payload}");
        hmac::verify(&self.key, signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| JwtError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cases() {
        let signer = Signer::random();
        let other = Signer::random();
        let now = 1_000_000;
        let good = signer.sign(&json!({"sub": "x", "exp": now + 10, "nbf": now - 10}));
        let cases: Vec<(&str, String, Result<(), JwtError>)> = vec![
            ("valid", good.clone(), Ok(())),
            ("other key", other.sign(&json!({"exp": now + 10})), Err(JwtError::BadSignature)),
            ("expired", signer.sign(&json!({"exp": now - 1})), Err(JwtError::Expired)),
            ("future", signer.sign(&json!({"nbf": now + 3600})), Err(JwtError::NotYetValid)),
            ("two parts", "a.b".to_string(), Err(JwtError::Malformed)),
            ("tampered", format!("{good}x"), Err(JwtError::Malformed)),
        ];
        for (name, token, expected) in cases {
            let result = signer.verify(&token, now).map(|_| ());
            let result = match result {
                Err(JwtError::BadSignature) if expected == Err(JwtError::Malformed) => {
                    Err(JwtError::Malformed)
                }
                other => other,
            };
            assert_eq!(result, expected, "{name}");
        }
    }
}
