//! Configuration: [`GitHubBuilder`] (object_store style: `new`, `from_env`,
//! `with_*`, `build` that validates).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use atlas_promote_core::{Error, Result, Role};
use reqwest::Url;
use reqwest::header::HeaderValue;
use secrecy::SecretString;

use crate::GitHub;
use crate::RetrySettings;
use crate::auth::{AppCredentials, Credentials};
use crate::client::{Client, DEFAULT_USER_AGENT, SECONDARY_RATE_LIMIT_WAIT};

/// github.com's API; GitHub Enterprise Server uses `https://HOST/api/v3`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Builds a [`GitHub`] backend.
///
/// ```no_run
/// # fn main() -> atlas_promote_core::Result<()> {
/// use atlas_promote_github::GitHubBuilder;
///
/// let github = GitHubBuilder::from_env()          // ATLAS_GITHUB_TOKEN, ATLAS_GITHUB_REPOSITORY, …
///     .with_team_role("release-owners", "product-owner")
///     .with_team_role("platform", "dev-team")
///     .with_team_role("engineers", "developer")
///     .with_workflow("deploy", "deploy.yml")
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct GitHubBuilder {
    token: Option<SecretString>,
    app: Option<(u64, SecretString, u64)>,
    reviewer_token: Option<SecretString>,
    repository: Option<String>,
    api_url: Option<String>,
    http: Option<reqwest::Client>,
    user_agent: Option<String>,
    org: Option<String>,
    team_roles: Vec<(String, Role)>,
    workflows: BTreeMap<String, String>,
    environments: BTreeMap<String, String>,
    dispatch_ref: Option<String>,
    review_stage: Option<String>,
    return_run_details: Option<bool>,
    run_lookup: Option<(u32, Duration)>,
    directory_ttl: Option<Duration>,
    check_apps: Vec<String>,
    retry: Option<RetrySettings>,
    secondary_wait: Option<Duration>,
    timeouts: Option<(Duration, Duration)>,
}

impl fmt::Debug for GitHubBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubBuilder")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("app", &self.app.as_ref().map(|(app, _, installation)| (app, "<redacted key>", installation)))
            .field("reviewer_token", &self.reviewer_token.as_ref().map(|_| "<redacted>"))
            .field("repository", &self.repository)
            .field("api_url", &self.api_url)
            .field("org", &self.org)
            .field("team_roles", &self.team_roles)
            .field("workflows", &self.workflows)
            .field("environments", &self.environments)
            .field("dispatch_ref", &self.dispatch_ref)
            .field("review_stage", &self.review_stage)
            .finish_non_exhaustive()
    }
}

impl GitHubBuilder {
    /// An empty builder: set a token (or App) and a repository, then [`build`](Self::build).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from the environment: `ATLAS_GITHUB_TOKEN`,
    /// `ATLAS_GITHUB_REPOSITORY` (`owner/repo`), `ATLAS_GITHUB_API_URL`
    /// (GitHub Enterprise Server), and for a GitHub App
    /// `ATLAS_GITHUB_APP_ID`, `ATLAS_GITHUB_APP_PRIVATE_KEY` (PEM) and
    /// `ATLAS_GITHUB_APP_INSTALLATION_ID`. Unset variables leave the
    /// setting empty; [`build`](Self::build) says what is missing.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut builder = Self::new();
        builder.token = get("ATLAS_GITHUB_TOKEN").map(SecretString::from);
        builder.repository = get("ATLAS_GITHUB_REPOSITORY");
        builder.api_url = get("ATLAS_GITHUB_API_URL");
        if let (Some(app), Some(key), Some(installation)) = (
            get("ATLAS_GITHUB_APP_ID").and_then(|v| v.trim().parse().ok()),
            get("ATLAS_GITHUB_APP_PRIVATE_KEY"),
            get("ATLAS_GITHUB_APP_INSTALLATION_ID").and_then(|v| v.trim().parse().ok()),
        ) {
            builder.app = Some((app, SecretString::from(key), installation));
        }
        builder
    }

    /// Authenticate with a token (fine-grained or classic PAT, `GITHUB_TOKEN`).
    pub fn with_token(mut self, token: impl Into<SecretString>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Authenticate as a GitHub App installation: JWTs signed with
    /// `private_key_pem` are traded for installation tokens, refreshed before
    /// they expire. Takes precedence over a token.
    pub fn with_app(mut self, app_id: u64, private_key_pem: impl Into<SecretString>, installation_id: u64) -> Self {
        self.app = Some((app_id, private_key_pem.into(), installation_id));
        self
    }

    /// A *user* token for approving or rejecting pending deployments, which
    /// GitHub Apps may not do (reference §0.3). Without it the main token is used.
    pub fn with_reviewer_token(mut self, token: impl Into<SecretString>) -> Self {
        self.reviewer_token = Some(token.into());
        self
    }

    /// The repository, as `owner/repo`.
    pub fn with_repository(mut self, repository: impl Into<String>) -> Self {
        self.repository = Some(repository.into());
        self
    }

    /// The API's base URL (default [`DEFAULT_API_URL`]); tests point it at a local server.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }

    /// Use this HTTP client (proxies, timeouts, TLS roots). Headers the API
    /// needs are added to every request regardless.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The `User-Agent` sent (default `atlas-promote/<version>`).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The organization whose teams hold roles (default: the repository's owner).
    pub fn with_org(mut self, org: impl Into<String>) -> Self {
        self.org = Some(org.into());
        self
    }

    /// Members of team `team_slug` hold `role` (several teams may give one role).
    pub fn with_team_role(mut self, team_slug: impl Into<String>, role: impl Into<Role>) -> Self {
        self.team_roles.push((team_slug.into(), role.into()));
        self
    }

    /// The policy's workflow `name` runs the workflow file `file` (default:
    /// `name` + `.yml`, or `name` itself when it has an extension).
    pub fn with_workflow(mut self, name: impl Into<String>, file: impl Into<String>) -> Self {
        self.workflows.insert(name.into(), file.into());
        self
    }

    /// Stage `stage` is the GitHub environment `environment` (default: the same name).
    pub fn with_environment(mut self, stage: impl Into<String>, environment: impl Into<String>) -> Self {
        self.environments.insert(stage.into(), environment.into());
        self
    }

    /// The branch workflows are dispatched on for trunk candidates (default
    /// `main`); the candidate's SHA goes in the `sha` input.
    pub fn with_dispatch_ref(mut self, branch: impl Into<String>) -> Self {
        self.dispatch_ref = Some(branch.into());
        self
    }

    /// The stage pull-request reviews approve entry into (default `trunk`).
    pub fn with_review_stage(mut self, stage: impl Into<String>) -> Self {
        self.review_stage = Some(stage.into());
        self
    }

    /// Whether dispatches ask for the run id (`return_run_details`, default
    /// true). Turn it off for GitHub Enterprise Server versions that reject
    /// the field; runs are then found by their `run-name`.
    pub fn with_return_run_details(mut self, on: bool) -> Self {
        self.return_run_details = Some(on);
        self
    }

    /// When a dispatch does not return the run id, look for the run up to
    /// `attempts` times, `delay` apart (default 10 × 2 s: runs take seconds to appear).
    pub fn with_run_lookup(mut self, attempts: u32, delay: Duration) -> Self {
        self.run_lookup = Some((attempts.max(1), delay));
        self
    }

    /// How long team memberships, and the pull requests of a commit under
    /// review, are remembered (default 5 minutes).
    pub fn with_directory_ttl(mut self, ttl: Duration) -> Self {
        self.directory_ttl = Some(ttl);
        self
    }

    /// Only trust check runs from these GitHub Apps (by slug, e.g.
    /// `github-actions`), so another app cannot post a result under a
    /// policy check's name. Default: all apps. Commit statuses are not filtered.
    pub fn with_check_app(mut self, slug: impl Into<String>) -> Self {
        self.check_apps.push(slug.into());
        self
    }

    /// The timeout of one request (default 30 s) and of connecting (default
    /// 10 s), for the HTTP client this builder makes (a client given with
    /// [`with_http_client`](Self::with_http_client) keeps its own). Without
    /// them a server that stops answering would hold up the engine's tick.
    pub fn with_timeouts(mut self, request: Duration, connect: Duration) -> Self {
        self.timeouts = Some((request, connect));
        self
    }

    /// How reads (and writes GitHub refused unread: rate limits) are
    /// retried, how long a rate limit is waited out, and the deadline of
    /// each call (default [`RetrySettings::default`]).
    pub fn with_retry(mut self, retry: RetrySettings) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The first wait after a secondary rate limit that gives no
    /// `retry-after` (default 60 s, GitHub's advice); it doubles on each retry.
    pub fn with_secondary_rate_limit_wait(mut self, wait: Duration) -> Self {
        self.secondary_wait = Some(wait);
        self
    }

    /// Validate and build. Says every missing or malformed setting.
    pub fn build(self) -> Result<GitHub> {
        let invalid = |message: String| Error::Invalid { what: "GitHub configuration".into(), message };
        let repository = self.repository.as_deref().map(str::trim).unwrap_or_default();
        let (owner, repo) = match repository.split_once('/') {
            Some((o, r)) if !o.is_empty() && !r.is_empty() && !r.contains('/') => (o.to_owned(), r.to_owned()),
            _ if repository.is_empty() => {
                return Err(invalid(
                    "no repository: set ATLAS_GITHUB_REPOSITORY or with_repository(\"owner/repo\")".into(),
                ));
            }
            _ => return Err(invalid(format!("repository {repository:?} is not of the form owner/repo"))),
        };
        let api_url = self.api_url.as_deref().unwrap_or(DEFAULT_API_URL).trim();
        let base = Url::parse(api_url).map_err(|e| invalid(format!("API URL {api_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid(format!("API URL {api_url:?} is not an http(s) URL")));
        }
        let credentials = match (self.app, self.token) {
            (Some((app, key, installation)), _) => Credentials::App(Box::new(
                AppCredentials::new(app, &key, installation).map_err(|e| invalid(e.to_string()))?,
            )),
            (None, Some(token)) => Credentials::Token(token),
            (None, None) => {
                return Err(invalid(
                    "no credentials: set ATLAS_GITHUB_TOKEN, with_token(…), or with_app(app_id, key, installation_id)"
                        .into(),
                ));
            }
        };
        let user_agent = self.user_agent.unwrap_or_else(|| DEFAULT_USER_AGENT.to_owned());
        let user_agent = HeaderValue::from_str(&user_agent)
            .map_err(|_| invalid(format!("user agent {user_agent:?} is not a header value")))?;
        for (team, role) in &self.team_roles {
            if team.is_empty() || role.is_empty() || team.contains('/') {
                return Err(invalid(format!("team → role mapping {team:?} → {role:?}: give a team slug and a role")));
            }
        }
        let http = match self.http {
            Some(http) => http,
            None => default_http_client(self.timeouts.unwrap_or(DEFAULT_TIMEOUTS))
                .map_err(|e| invalid(format!("HTTP client: {e}")))?,
        };
        let retry = self.retry.unwrap_or_default();
        let secondary_wait = self.secondary_wait.unwrap_or(SECONDARY_RATE_LIMIT_WAIT);
        let client = Client::new(http, base, user_agent, credentials, retry, secondary_wait);
        let (attempts, delay) = self.run_lookup.unwrap_or((10, Duration::from_secs(2)));
        let config = Config {
            org: self.org.unwrap_or_else(|| owner.clone()),
            owner,
            repo,
            team_roles: self.team_roles,
            workflows: self.workflows,
            environments: self.environments,
            dispatch_ref: self.dispatch_ref.unwrap_or_else(|| "main".into()),
            review_stage: self.review_stage.unwrap_or_else(|| "trunk".into()),
            return_run_details: self.return_run_details.unwrap_or(true),
            run_lookup_attempts: attempts,
            run_lookup_delay: delay,
            directory_ttl: self.directory_ttl.unwrap_or(Duration::from_secs(300)),
            check_apps: self.check_apps,
        };
        Ok(GitHub::from_parts(config, client, self.reviewer_token))
    }
}

/// (request, connect) timeouts of the HTTP client the builder makes.
const DEFAULT_TIMEOUTS: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(10));

fn default_http_client((request, connect): (Duration, Duration)) -> reqwest::Result<reqwest::Client> {
    #[cfg(feature = "rustls")]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // reqwest's `rustls-no-provider` uses the process default; ring keeps
        // cold builds free of cmake and aws-lc-sys. Losing a race to another
        // installer is fine: a provider is then installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder().user_agent(DEFAULT_USER_AGENT).timeout(request).connect_timeout(connect).build()
}

/// The validated settings of a [`GitHub`] backend.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) owner: String,
    pub(crate) repo: String,
    pub(crate) org: String,
    pub(crate) team_roles: Vec<(String, Role)>,
    pub(crate) workflows: BTreeMap<String, String>,
    pub(crate) environments: BTreeMap<String, String>,
    pub(crate) dispatch_ref: String,
    pub(crate) review_stage: String,
    pub(crate) return_run_details: bool,
    pub(crate) run_lookup_attempts: u32,
    pub(crate) run_lookup_delay: Duration,
    pub(crate) directory_ttl: Duration,
    pub(crate) check_apps: Vec<String>,
}

impl Config {
    /// The workflow file of the policy's workflow `name`.
    pub(crate) fn workflow_file(&self, name: &str) -> String {
        match self.workflows.get(name) {
            Some(file) => file.clone(),
            None if name.ends_with(".yml") || name.ends_with(".yaml") => name.to_owned(),
            None => format!("{name}.yml"),
        }
    }

    /// The GitHub environment of a stage.
    pub(crate) fn environment<'a>(&'a self, stage: &'a str) -> &'a str {
        self.environments.get(stage).map_or(stage, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn from_lookup_reads_the_three_variables() {
        let b = GitHubBuilder::from_lookup(vars(&[
            ("ATLAS_GITHUB_TOKEN", "ghp_secret"),
            ("ATLAS_GITHUB_REPOSITORY", "octo-org/octo-repo"),
            ("ATLAS_GITHUB_API_URL", "https://ghe.example/api/v3"),
        ]));
        let debug = format!("{b:?}");
        assert!(!debug.contains("ghp_secret"), "{debug}");
        let gh = b.build().unwrap();
        assert_eq!(gh.repository(), "octo-org/octo-repo");
        assert_eq!(gh.inner.client.base().as_str(), "https://ghe.example/api/v3");
        assert!(!format!("{gh:?}").contains("ghp_secret"));
    }

    #[test]
    fn build_says_what_is_missing() {
        let err = GitHubBuilder::new().with_token("t").build().unwrap_err().to_string();
        assert!(err.contains("ATLAS_GITHUB_REPOSITORY"), "{err}");
        let err = GitHubBuilder::new().with_repository("a/b").build().unwrap_err().to_string();
        assert!(err.contains("ATLAS_GITHUB_TOKEN"), "{err}");
        let err = GitHubBuilder::new().with_token("t").with_repository("a").build().unwrap_err().to_string();
        assert!(err.contains("owner/repo"), "{err}");
        let err =
            GitHubBuilder::new().with_token("t").with_repository("a/b").with_base_url("ftp://x").build().unwrap_err();
        assert!(err.to_string().contains("http"));
    }

    #[test]
    fn workflow_and_environment_mappings_default_to_names() {
        let gh = GitHubBuilder::new()
            .with_token("t")
            .with_repository("a/b")
            .with_workflow("flush", "deploy.yml")
            .with_environment("prod", "production")
            .build()
            .unwrap();
        let c = &gh.inner.config;
        assert_eq!(c.workflow_file("deploy"), "deploy.yml");
        assert_eq!(c.workflow_file("flush"), "deploy.yml");
        assert_eq!(c.workflow_file("nightly.yaml"), "nightly.yaml");
        assert_eq!(c.environment("prod"), "production");
        assert_eq!(c.environment("dev"), "dev");
        assert_eq!(c.org, "a");
    }
}
