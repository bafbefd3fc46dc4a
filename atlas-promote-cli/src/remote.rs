//! Talking to a running `atlas-promote serve`: its operator API over HTTP,
//! with the operator's token from `ATLAS_TOKEN`.
//!
//! The token is read from the environment only (never an argument, which
//! any user of the machine sees in the process list) and never printed.

use std::fmt;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::exit::Failure;

/// The environment variable holding the operator's bearer token.
pub(crate) const TOKEN_ENV: &str = "ATLAS_TOKEN";

/// A client of one server.
pub(crate) struct Remote {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote").field("base", &self.base).field("token", &self.token.as_ref().map(|_| "…")).finish()
    }
}

/// Why the server said no, or could not be asked.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The server answered with an error: its status, kind and message.
    Api { status: u16, kind: String, message: String },
    /// The server could not be reached, or answered something that is not the API.
    Unreachable(String),
}

impl Refusal {
    /// The command's failure: a refusal (401, 403, 409) is a 4, a bad
    /// request (400, 404, 422) a 2, anything else a 1.
    pub(crate) fn failure(self) -> Failure {
        match self {
            Self::Api { status, kind, message } => {
                let text = format!("the server refused ({status} {kind}): {message}");
                match status {
                    401 | 403 | 409 => Failure::Refused(text),
                    400 | 404 | 422 => Failure::BadInput(text),
                    _ => Failure::Other(text),
                }
            }
            Self::Unreachable(message) => Failure::Other(message),
        }
    }
}

impl Remote {
    /// A client of the server at `base` (`http://host:port`), with the token from the environment.
    pub(crate) fn new(base: &str, token: Option<String>) -> Result<Self, Failure> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure::BadInput(format!("--server {base}: expected an http:// or https:// URL")));
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Failure::Other(format!("cannot set up an HTTP client: {e}")))?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), token: token.filter(|t| !t.is_empty()), http })
    }

    /// `GET path` as JSON.
    pub(crate) async fn get(&self, path: &str) -> Result<Value, Refusal> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with `body`.
    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value, Refusal> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `DELETE path`.
    pub(crate) async fn delete(&self, path: &str) -> Result<Value, Refusal> {
        self.call(Method::DELETE, path, None).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Refusal> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Refusal::Unreachable(format!("{method} {url}: {}", without_url(&e.to_string()))))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Refusal::Unreachable(format!("{method} {url}: the answer was cut short: {e}")))?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return json.ok_or_else(|| Refusal::Unreachable(format!("{method} {url}: the answer is not JSON")));
        }
        let error = json.as_ref().map(|j| &j["error"]);
        match error.and_then(|e| Some((e["kind"].as_str()?, e["message"].as_str()?))) {
            Some((kind, message)) => {
                let mut message = message.to_owned();
                if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
                    message.push_str(&format!(" (set {TOKEN_ENV} to your operator token)"));
                }
                Err(Refusal::Api { status: status.as_u16(), kind: kind.to_owned(), message })
            }
            None => Err(Refusal::Unreachable(format!(
                "{method} {url}: {status}, and not an atlas-promote error: is this the service's address?"
            ))),
        }
    }
}

/// reqwest's message says the URL again; keep it once.
fn without_url(message: &str) -> String {
    message.split(" for url (").next().unwrap_or(message).to_owned()
}

/// `text` made safe for a path segment.
pub(crate) fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
