//! Who is asking: operators identified by bearer tokens.
//!
//! The config holds each operator's token as its SHA-256, never the token.
//! A request's token is hashed and the digest compared with every
//! operator's in constant time (`subtle`), all of them, whichever matches:
//! neither how long the comparison takes nor how many were compared tells a
//! caller how close a guess came or whose token it nearly was.
//!
//! Only the `Authorization: Bearer …` header identifies a caller. A cookie
//! never does: a browser sends cookies with any request a page makes it
//! send, so a write accepted on a cookie could be forged by another site.

use std::fmt;

use axum::http::{HeaderMap, header};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Operator;

/// Whether reading the API and the status page needs a token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadAccess {
    /// Anyone who reaches the service may read (the default).
    #[default]
    Open,
    /// Reads need an operator's token, as writes do.
    Token,
}

/// The people who may act through the operator API, by the SHA-256 of
/// their bearer tokens.
#[derive(Clone, Default)]
pub struct Operators {
    known: Vec<(String, [u8; 32])>,
    reads: ReadAccess,
}

impl fmt::Debug for Operators {
    /// The people only: a token's hash is as good as a guess checker, so it stays out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operators")
            .field("people", &self.known.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>())
            .field("reads", &self.reads)
            .finish()
    }
}

/// A token hash that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token hash of operator {person} is not 64 hex digits (the SHA-256 of the token)")]
pub struct BadTokenHash {
    /// Whose hash it is.
    pub person: String,
}

impl Operators {
    /// No operators: every write is refused with 401.
    pub fn new() -> Self {
        Self::default()
    }

    /// `person` acts when the token whose SHA-256 is `token_sha256` (hex) is presented.
    pub fn with_operator(mut self, person: impl Into<String>, token_sha256: &str) -> Result<Self, BadTokenHash> {
        let person = person.into();
        let digest = parse_hex(token_sha256).ok_or_else(|| BadTokenHash { person: person.clone() })?;
        self.known.push((person, digest));
        Ok(self)
    }

    /// The `[[operator]]` entries of a config file (checked when it was read).
    pub fn from_config(operators: &[Operator]) -> Result<Self, BadTokenHash> {
        operators.iter().try_fold(Self::new(), |all, o| all.with_operator(o.person.clone(), &o.token_sha256))
    }

    /// Whether reads need a token (default: open).
    pub fn with_reads(mut self, reads: ReadAccess) -> Self {
        self.reads = reads;
        self
    }

    /// Whether reads need a token.
    pub fn reads(&self) -> ReadAccess {
        self.reads
    }

    /// The operator whose token this is, if any.
    pub fn identify(&self, token: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        // Every entry is compared, matched or not.
        for (person, known) in &self.known {
            if bool::from(known.ct_eq(&digest)) {
                found = Some(person.as_str());
            }
        }
        found
    }

    /// The operator named by the request's `Authorization: Bearer` header.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<String, Unauthenticated> {
        let value = headers.get(header::AUTHORIZATION).ok_or(Unauthenticated::Missing)?;
        let value = value.to_str().map_err(|_| Unauthenticated::Malformed)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(Unauthenticated::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(Unauthenticated::Malformed);
        }
        self.identify(token.trim()).map(str::to_owned).ok_or(Unauthenticated::Unknown)
    }
}

/// Why a request names no operator. The messages never repeat the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unauthenticated {
    #[error("this needs an operator's token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header is not `Bearer <token>`")]
    Malformed,
    #[error("the token belongs to no operator")]
    Unknown,
}

/// The SHA-256 of `token` as 64 hex digits: what an `[[operator]]`'s
/// `token_sha256` holds (`printf %s TOKEN | sha256sum`).
pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operators() -> Operators {
        Operators::new()
            .with_operator("dan", &token_sha256("dan-token"))
            .unwrap()
            .with_operator("pat", &token_sha256("pat-token"))
            .unwrap()
    }

    #[test]
    fn a_token_names_the_operator_it_belongs_to() {
        assert_eq!(operators().identify("dan-token"), Some("dan"));
        assert_eq!(operators().identify("pat-token"), Some("pat"));
        assert_eq!(operators().identify("eve-token"), None);
    }

    #[test]
    fn the_hash_itself_is_not_a_token() {
        assert_eq!(operators().identify(&token_sha256("dan-token")), None);
    }

    #[test]
    fn a_hash_must_be_64_hex_digits() {
        assert!(Operators::new().with_operator("dan", "abc").is_err());
        assert!(Operators::new().with_operator("dan", &"g".repeat(64)).is_err());
        assert!(Operators::new().with_operator("dan", &token_sha256("x").to_uppercase()).is_ok());
    }

    #[test]
    fn debug_shows_people_not_hashes() {
        let shown = format!("{:?}", operators());
        assert!(shown.contains("dan"));
        assert!(!shown.contains(&token_sha256("dan-token")[..16]), "{shown}");
    }

    #[test]
    fn only_a_bearer_authorization_header_identifies() {
        let ops = operators();
        let mut headers = HeaderMap::new();
        assert_eq!(ops.authenticate(&headers), Err(Unauthenticated::Missing));
        headers.insert(header::COOKIE, "token=dan-token".parse().unwrap());
        assert_eq!(ops.authenticate(&headers), Err(Unauthenticated::Missing));
        headers.insert(header::AUTHORIZATION, "Basic dan-token".parse().unwrap());
        assert_eq!(ops.authenticate(&headers), Err(Unauthenticated::Malformed));
        headers.insert(header::AUTHORIZATION, "bearer dan-token".parse().unwrap());
        assert_eq!(ops.authenticate(&headers), Ok("dan".to_owned()));
    }
}
