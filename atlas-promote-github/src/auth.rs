//! Credentials: a token, or a GitHub App that trades a signed JWT for an
//! installation token (cached, and refreshed before it expires).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use secrecy::{ExposeSecret, SecretString};

use crate::error::GhError;

/// A new installation token is fetched when the cached one has less than this left.
const REFRESH_MARGIN: TimeDelta = TimeDelta::minutes(5);

/// How requests authenticate.
pub(crate) enum Credentials {
    /// A personal access token, `GITHUB_TOKEN`, or an OAuth token.
    Token(SecretString),
    /// A GitHub App installation.
    App(Box<AppCredentials>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::App(app) => f
                .debug_struct("App")
                .field("app_id", &app.app_id)
                .field("installation_id", &app.installation_id)
                .finish_non_exhaustive(),
        }
    }
}

/// A GitHub App's id, private key and installation, and the installation token in use.
pub(crate) struct AppCredentials {
    pub(crate) app_id: u64,
    pub(crate) installation_id: u64,
    key: RsaKeyPair,
    token: tokio::sync::Mutex<Option<(SecretString, DateTime<Utc>)>>,
}

impl AppCredentials {
    /// Parse the App's private key (PEM, PKCS#1 `RSA PRIVATE KEY` as GitHub
    /// hands it out, or PKCS#8 `PRIVATE KEY`).
    pub(crate) fn new(app_id: u64, private_key_pem: &SecretString, installation_id: u64) -> Result<Self, GhError> {
        let key = parse_rsa_pem(private_key_pem.expose_secret())?;
        Ok(Self { app_id, installation_id, key, token: tokio::sync::Mutex::new(None) })
    }

    /// A JWT for the App, valid from a minute ago (clock drift, as GitHub
    /// recommends) for nine minutes (GitHub's maximum is ten).
    pub(crate) fn jwt(&self, now: DateTime<Utc>) -> Result<SecretString, GhError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": (now - TimeDelta::seconds(60)).timestamp(),
            "exp": (now + TimeDelta::minutes(9)).timestamp(),
            "iss": self.app_id.to_string(),
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let message = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message.as_bytes(), &mut signature)
            .map_err(|_| GhError::AppAuth("signing the JWT failed".into()))?;
        Ok(SecretString::from(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))))
    }

    /// Hold the lock while refreshing, so concurrent callers fetch one token, not many.
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, Option<(SecretString, DateTime<Utc>)>> {
        self.token.lock().await
    }

    /// The public key, for tests that verify the JWT.
    #[cfg(test)]
    pub(crate) fn public_key(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.key.public_key().as_ref().to_vec()
    }
}

/// Whether a cached token is still good at `now`.
pub(crate) fn still_valid(expires: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires - REFRESH_MARGIN > now
}

fn parse_rsa_pem(pem: &str) -> Result<RsaKeyPair, GhError> {
    let bad = |why: &str| GhError::AppAuth(format!("the private key is not usable: {why}"));
    let (label, body) = pem_body(pem).ok_or_else(|| bad("no PEM block found"))?;
    let der = STANDARD.decode(body).map_err(|_| bad("the PEM body is not base64"))?;
    let key = match label.as_str() {
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        _ => return Err(bad("expected an RSA PRIVATE KEY or PRIVATE KEY block")),
    };
    key.map_err(|e| bad(&e.to_string()))
}

/// The label and the base64 body (whitespace removed) of the first PEM block.
fn pem_body(pem: &str) -> Option<(String, String)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let rest = &rest[label_end + 5..];
    let end = rest.find(&format!("-----END {label}-----"))?;
    Some((label, rest[..end].chars().filter(|c| !c.is_whitespace()).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    const KEY: &str = include_str!("../tests/data/test_app_key.pem");

    #[test]
    fn jwt_is_rs256_signed_with_the_app_key_and_names_the_app() {
        let app = AppCredentials::new(42, &SecretString::from(KEY), 7).unwrap();
        let now: DateTime<Utc> = "2026-05-05T10:00:00Z".parse().unwrap();
        let jwt = app.jwt(now).unwrap();
        let parts: Vec<&str> = jwt.expose_secret().split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "42");
        assert_eq!(claims["iat"], now.timestamp() - 60);
        assert_eq!(claims["exp"], now.timestamp() + 540);
        let signed = format!("{}.{}", parts[0], parts[1]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, app.public_key())
            .verify(signed.as_bytes(), &signature)
            .expect("signature verifies");
    }

    #[test]
    fn a_bad_key_is_an_error_that_does_not_echo_the_key() {
        let err = AppCredentials::new(
            1,
            &SecretString::from("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----"),
            2,
        )
        .err()
        .unwrap();
        assert!(!err.to_string().contains("c2VjcmV0"));
        assert!(matches!(err, GhError::AppAuth(_)));
    }

    #[test]
    fn refresh_margin_applies() {
        let now: DateTime<Utc> = "2026-05-05T10:00:00Z".parse().unwrap();
        assert!(still_valid(now + TimeDelta::minutes(30), now));
        assert!(!still_valid(now + TimeDelta::minutes(4), now));
    }
}
