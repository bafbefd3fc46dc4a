//! The service's config file (TOML): which policy and store, where to
//! listen, which backend plays each role, who may operate, where
//! notifications go.
//!
//! Reading it is two steps, like a policy file: the shape (unknown fields,
//! types) stops at its first mistake; the checks after it (addresses, URLs,
//! backends named but not configured, tokens' hashes, notification sinks)
//! report every mistake, each located by file, line, column and field.
//! Secrets are never in the file: it names the environment variables that
//! hold them, and [`Config::secrets`] reads them, naming every one missing.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use atlas_promote_core::{LocatedFile, PolicyError};
use secrecy::SecretString;
use serde::Deserialize;

/// The kinds of notification a `[[notify]]` sink can ask for.
pub const NOTIFICATION_KINDS: [&str; 5] = ["alert", "approval_requested", "promoted", "blocked", "failed"];

/// A config file as read and checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The policy file, relative to the config file.
    pub policy: PathBuf,
    /// The store's URL: `sqlite://path` (relative to the config file), `postgres://…`, or `memory://`
    /// (nothing kept across restarts: for trying the service out).
    pub store: String,
    /// The address to listen on (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The service's public address, for links in notifications.
    #[serde(default)]
    pub public_url: Option<String>,
    /// GitHub, when it plays a role.
    #[serde(default)]
    pub github: Option<GitHubConfig>,
    /// CircleCI, when it plays a role.
    #[serde(default)]
    pub circleci: Option<CircleCiConfig>,
    /// Which backend plays each role.
    pub backends: Backends,
    /// Limits of the HTTP intake.
    #[serde(default)]
    pub http: HttpLimits,
    /// The operator API and status page.
    #[serde(default)]
    pub api: ApiConfig,
    /// Who may act through the operator API.
    #[serde(default, rename = "operator")]
    pub operators: Vec<Operator>,
    /// Where notifications go.
    #[serde(default, rename = "notify")]
    pub notify: Vec<NotifyConfig>,
    /// Where the file was read from (paths in it are relative to its folder).
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// The `[github]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GitHubConfig {
    /// `owner/name`.
    pub repository: String,
    /// The trunk branch (default `main`).
    #[serde(default = "default_trunk")]
    pub trunk: String,
    /// The REST API's base URL (default `https://api.github.com`).
    #[serde(default = "default_github_api")]
    pub api_url: String,
    /// The variable holding a token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// A GitHub App's id (with `private_key_file` and `installation_id`, instead of a token).
    #[serde(default)]
    pub app_id: Option<u64>,
    /// The App's private key (PEM), relative to the config file.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// The App's installation.
    #[serde(default)]
    pub installation_id: Option<u64>,
    /// The variable holding the webhook secret.
    pub webhook_secret_env: String,
    /// Role → team (`org/team-slug`) whose members hold it.
    #[serde(default)]
    pub teams: BTreeMap<String, String>,
    /// Stage → GitHub environment name, where they differ.
    #[serde(default)]
    pub environments: BTreeMap<String, String>,
}

fn default_trunk() -> String {
    "main".into()
}

fn default_github_api() -> String {
    "https://api.github.com".into()
}

fn default_circleci_api() -> String {
    "https://circleci.com/api/v2".into()
}

/// The `[circleci]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CircleCiConfig {
    /// `gh/owner/name`.
    pub project_slug: String,
    /// The API's base URL (default `https://circleci.com/api/v2`).
    #[serde(default = "default_circleci_api")]
    pub api_url: String,
    /// The variable holding the API token.
    pub token_env: String,
    /// The variable holding the webhook signing secret.
    pub webhook_secret_env: String,
    /// The trunk branch (default `main`).
    #[serde(default = "default_trunk")]
    pub trunk: String,
}

/// The `[backends]` section: which system plays each role.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Backends {
    /// `circleci` or `github`.
    pub ci: String,
    /// Any of `circleci`, `github`.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Any of `github-reviews`, `github-environments`, `circleci`, besides the engine's own records.
    #[serde(default)]
    pub approvals: Vec<String>,
    /// `github` (teams) or `policy` (the policy's people).
    pub directory: String,
    /// `github`.
    pub source_control: String,
}

/// The `[http]` section: limits that keep a slow or hostile client from
/// holding the service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpLimits {
    /// The largest webhook body accepted, in bytes (default 1 MiB; 413 beyond).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long a client may take to send its request headers, in seconds (default 10).
    #[serde(default = "default_timeout")]
    pub header_timeout_secs: u64,
    /// How long a client may take to send a body, in seconds (default 10; 408 beyond).
    #[serde(default = "default_timeout")]
    pub body_timeout_secs: u64,
}

fn default_max_body() -> usize {
    1 << 20
}

fn default_timeout() -> u64 {
    10
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body(),
            header_timeout_secs: default_timeout(),
            body_timeout_secs: default_timeout(),
        }
    }
}

/// The `[api]` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiConfig {
    /// Whether reading the API and the status page needs an operator's
    /// token: `open` (the default) or `token`. Writes always need one.
    #[serde(default)]
    pub reads: crate::auth::ReadAccess,
    /// The zone the status page shows times in, UTC beside (an IANA name
    /// such as `Europe/Berlin`; default: the policy's windows' zone, else UTC).
    #[serde(default)]
    pub time_zone: Option<atlas_promote_core::chrono_tz::Tz>,
}

/// An `[[operator]]`: a person and the SHA-256 of their bearer token.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Operator {
    /// Who acts when the token is presented.
    pub person: String,
    /// The token's SHA-256, in hex (never the token).
    pub token_sha256: String,
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator").field("person", &self.person).finish_non_exhaustive()
    }
}

/// A `[[notify]]` sink.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NotifyConfig {
    /// `log`, `webhook` or `slack`.
    pub kind: String,
    /// The variable holding the URL (webhook and slack).
    #[serde(default)]
    pub url_env: Option<String>,
    /// The variable holding the signing secret (webhook).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Which kinds of notification (default: all of [`NOTIFICATION_KINDS`]).
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// The secrets a config names, read from the environment.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Secrets {
    /// By variable name.
    pub values: BTreeMap<String, SecretString>,
}

impl Secrets {
    /// The value of `variable`, when the config named it.
    pub fn get(&self, variable: &str) -> Option<&SecretString> {
        self.values.get(variable)
    }
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file: unreadable, malformed, or failing a check; every mistake is located.
    #[error("{0}")]
    File(PolicyError),
    /// Environment variables the config names are not set.
    #[error("{}", missing_lines(.0))]
    MissingSecrets(Vec<MissingSecret>),
}

/// A secret's environment variable that is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSecret {
    /// The variable.
    pub variable: String,
    /// The config field that names it (`github.webhook_secret_env`).
    pub field: String,
}

fn missing_lines(missing: &[MissingSecret]) -> String {
    let lines: Vec<String> = missing
        .iter()
        .map(|m| format!("the environment variable {} is not set (named by {})", m.variable, m.field))
        .collect();
    lines.join("\n")
}

impl Config {
    /// Read and check a config file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let file = LocatedFile::<Config>::read(path, "config file").map_err(ConfigError::File)?;
        let mut config = checked(&file)?;
        config.path = path.to_owned();
        Ok(config)
    }

    /// Read and check config text; `file` names it in errors, and paths in
    /// it are relative to the current folder.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, ConfigError> {
        let located = LocatedFile::<Config>::from_toml_str(text, file).map_err(ConfigError::File)?;
        let mut config = checked(&located)?;
        config.path = PathBuf::from(file);
        Ok(config)
    }

    /// `relative` resolved against the config file's folder.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if relative.is_relative() => dir.join(relative),
            _ => relative.to_owned(),
        }
    }

    /// The address to listen on.
    pub fn listen_addr(&self) -> SocketAddr {
        // Checked when the file was read.
        self.listen.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// Every environment variable the config names, with the field naming it.
    pub fn secret_variables(&self) -> Vec<MissingSecret> {
        let mut named = Vec::new();
        let mut add = |variable: &str, field: String| named.push(MissingSecret { variable: variable.into(), field });
        if let Some(github) = &self.github {
            if let Some(token) = &github.token_env {
                add(token, "github.token_env".into());
            }
            add(&github.webhook_secret_env, "github.webhook_secret_env".into());
        }
        if let Some(circleci) = &self.circleci {
            add(&circleci.token_env, "circleci.token_env".into());
            add(&circleci.webhook_secret_env, "circleci.webhook_secret_env".into());
        }
        for (i, sink) in self.notify.iter().enumerate() {
            if let Some(url) = &sink.url_env {
                add(url, format!("notify[{i}].url_env"));
            }
            if let Some(secret) = &sink.secret_env {
                add(secret, format!("notify[{i}].secret_env"));
            }
        }
        named
    }

    /// Read every secret the config names through `lookup` (the process
    /// environment in production); every one that is missing is named.
    pub fn secrets(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<Secrets, ConfigError> {
        let mut secrets = Secrets::default();
        let mut missing = Vec::new();
        for named in self.secret_variables() {
            match lookup(&named.variable).filter(|v| !v.is_empty()) {
                Some(value) => {
                    secrets.values.insert(named.variable, SecretString::from(value));
                }
                None => missing.push(named),
            }
        }
        if missing.is_empty() { Ok(secrets) } else { Err(ConfigError::MissingSecrets(missing)) }
    }
}

/// The checks a shape cannot express, every mistake reported.
fn checked(file: &LocatedFile<Config>) -> Result<Config, ConfigError> {
    let config = file.value();
    let mut mistakes = Vec::new();
    let mut mistake = |field: &str, message: String| mistakes.push(file.error_at(field, message));

    if config.listen.parse::<SocketAddr>().is_err() {
        mistake("listen", format!("`{}` is not an address such as 127.0.0.1:8080", config.listen));
    }
    let scheme = config.store.split_once("://").map(|(scheme, _)| scheme);
    if !matches!(scheme, Some("sqlite" | "postgres" | "postgresql" | "memory")) {
        mistake(
            "store",
            format!("`{}` is not a store URL: expected sqlite://PATH, postgres://… or memory://", config.store),
        );
    }
    if let Some(url) = &config.public_url
        && !is_http_url(url)
    {
        mistake("public_url", format!("`{url}` is not an http:// or https:// URL"));
    }
    if let Some(github) = &config.github {
        if github.repository.split('/').filter(|p| !p.is_empty()).count() != 2 {
            mistake("github.repository", format!("`{}` is not owner/name", github.repository));
        }
        if !is_http_url(&github.api_url) {
            mistake("github.api_url", format!("`{}` is not an http:// or https:// URL", github.api_url));
        }
        let app = [github.app_id.is_some(), github.private_key_file.is_some(), github.installation_id.is_some()];
        match (github.token_env.is_some(), app) {
            (true, [false, false, false]) | (false, [true, true, true]) => {}
            (true, _) => mistake("github.token_env", "give a token_env or a GitHub App, not both".into()),
            (false, _) => {
                mistake("github", "needs token_env, or app_id, private_key_file and installation_id together".into())
            }
        }
        for (role, team) in &github.teams {
            if team.split('/').filter(|p| !p.is_empty()).count() != 2 {
                mistake(&format!("github.teams.{role}"), format!("`{team}` is not org/team-slug"));
            }
        }
    }
    if let Some(circleci) = &config.circleci {
        if circleci.project_slug.split('/').filter(|p| !p.is_empty()).count() != 3 {
            mistake(
                "circleci.project_slug",
                format!("`{}` is not a project slug such as gh/acme/atlas", circleci.project_slug),
            );
        }
        if !is_http_url(&circleci.api_url) {
            mistake("circleci.api_url", format!("`{}` is not an http:// or https:// URL", circleci.api_url));
        }
    }
    let configured = |name: &str| match name {
        "github" | "github-reviews" | "github-environments" => config.github.is_some(),
        "circleci" => config.circleci.is_some(),
        _ => true,
    };
    let mut role = |field: String, name: &str, allowed: &[&str]| {
        if !allowed.contains(&name) {
            mistake(&field, format!("unknown backend `{name}`: expected one of {}", allowed.join(", ")));
        } else if !configured(name) {
            let section = if name.starts_with("github") { "github" } else { "circleci" };
            mistake(&field, format!("`{name}` is named but the config has no [{section}] section"));
        }
    };
    role("backends.ci".into(), &config.backends.ci, &["circleci", "github"]);
    for (i, name) in config.backends.checks.iter().enumerate() {
        role(format!("backends.checks[{i}]"), name, &["circleci", "github"]);
    }
    for (i, name) in config.backends.approvals.iter().enumerate() {
        role(format!("backends.approvals[{i}]"), name, &["github-reviews", "github-environments", "circleci"]);
    }
    role("backends.directory".into(), &config.backends.directory, &["github", "policy"]);
    role("backends.source_control".into(), &config.backends.source_control, &["github"]);

    let mut people = BTreeMap::new();
    for (i, operator) in config.operators.iter().enumerate() {
        let hash = &operator.token_sha256;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            mistake(
                &format!("operator[{i}].token_sha256"),
                "expected the SHA-256 of the token as 64 hex digits (`printf %s TOKEN | sha256sum`), never the token"
                    .into(),
            );
        }
        if operator.person.trim().is_empty() {
            mistake(&format!("operator[{i}].person"), "names no one".into());
        } else if let Some(first) = people.insert(operator.person.as_str(), i) {
            mistake(&format!("operator[{i}].person"), format!("{} is already operator[{first}]", operator.person));
        }
    }
    for (i, sink) in config.notify.iter().enumerate() {
        let needs: &[&str] = match sink.kind.as_str() {
            "log" => &[],
            "slack" => &["url_env"],
            "webhook" => &["url_env", "secret_env"],
            other => {
                mistake(
                    &format!("notify[{i}].kind"),
                    format!("unknown sink `{other}`: expected log, webhook or slack"),
                );
                &[]
            }
        };
        let has = |field: &str| match field {
            "url_env" => sink.url_env.is_some(),
            _ => sink.secret_env.is_some(),
        };
        for field in needs.iter().filter(|f| !has(f)) {
            mistake(&format!("notify[{i}]"), format!("a {} sink needs {field}", sink.kind));
        }
        for (j, event) in sink.events.iter().flatten().enumerate() {
            if !NOTIFICATION_KINDS.contains(&event.as_str()) {
                mistake(
                    &format!("notify[{i}].events[{j}]"),
                    format!("unknown notification `{event}`: expected one of {}", NOTIFICATION_KINDS.join(", ")),
                );
            }
        }
    }
    if config.http.max_body_bytes == 0 {
        mistake("http.max_body_bytes", "must be at least 1".into());
    }
    match LocatedFile::<Config>::errors(mistakes) {
        Some(error) => Err(ConfigError::File(error)),
        None => Ok(config.clone()),
    }
}

fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}
