//! [`CircleCiBuilder`]: configuration, read from code or the environment, validated by `build`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use atlas_promote_core::Result;
use secrecy::{ExposeSecret, SecretString};

use crate::CircleCi;
use crate::RetrySettings;
use crate::client::{Client, ClientOptions};
use crate::error::invalid;

/// The CircleCI cloud API.
pub const DEFAULT_BASE_URL: &str = "https://circleci.com/api/v2";

/// Environment variable holding the personal API token.
pub const ENV_TOKEN: &str = "ATLAS_CIRCLECI_TOKEN";
/// Environment variable holding the project slug (`gh/org/repo` or `circleci/<org-id>/<project-id>`).
pub const ENV_PROJECT_SLUG: &str = "ATLAS_CIRCLECI_PROJECT_SLUG";
/// Environment variable holding the API base URL (optional; CircleCI Server: `https://<host>/api/v2`).
pub const ENV_BASE_URL: &str = "ATLAS_CIRCLECI_BASE_URL";

/// The checks the ATLAS preset watches; each is a workflow of the same name by default.
pub const DEFAULT_CHECKS: [&str; 3] = ["integration", "system", "data-quality"];

/// Everything but the secrets: shared by the backend's roles.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) project_slug: String,
    pub(crate) base_url: String,
    pub(crate) definition_id: Option<String>,
    pub(crate) trunk_branch: String,
    pub(crate) trigger_branch: Option<String>,
    /// (check name, workflow name)
    pub(crate) checks: Vec<(String, String)>,
    pub(crate) scheduled_checks_only: bool,
    pub(crate) scheduled_trigger_types: Vec<String>,
    pub(crate) approval_job_prefix: String,
    pub(crate) approval_job_separator: String,
    /// Approval jobs named explicitly: (job name, stage), besides the convention.
    pub(crate) approval_jobs: Vec<(String, String)>,
    pub(crate) parameter_prefix: String,
    pub(crate) max_pages: usize,
    pub(crate) page_deadline: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) retry: RetrySettings,
    pub(crate) lookback: chrono::TimeDelta,
    pub(crate) no_workflow_grace: chrono::TimeDelta,
    pub(crate) settled_ttl: Duration,
    pub(crate) user_agent: String,
}

impl Settings {
    /// The branch pipelines are triggered on.
    pub(crate) fn trigger_branch(&self) -> &str {
        self.trigger_branch.as_deref().unwrap_or(&self.trunk_branch)
    }

    /// Whether a pipeline's trigger type is one of the scheduled spellings.
    pub(crate) fn is_scheduled(&self, pipeline: &crate::model::Pipeline) -> bool {
        pipeline.trigger_types().any(|t| self.scheduled_trigger_types.iter().any(|s| s == t))
    }

    /// What the HTTP client needs of these settings.
    pub(crate) fn client_options(&self) -> ClientOptions {
        ClientOptions {
            base_url: self.base_url.clone(),
            user_agent: self.user_agent.clone(),
            request_timeout: self.request_timeout,
            retry: self.retry,
            max_pages: self.max_pages,
            page_deadline: self.page_deadline,
        }
    }

    /// The stage an approval job is for: one mapped explicitly
    /// ([`CircleCiBuilder::with_approval_job`]), else `approve-<stage>` or
    /// `approve-<stage>--<anything>` (with the default prefix and separator).
    pub(crate) fn approval_job_is_for(&self, job_name: &str, stage: &str) -> bool {
        if let Some(mapped) = self.mapped_approval_stage(job_name) {
            return mapped == stage;
        }
        job_name
            .strip_prefix(self.approval_job_prefix.as_str())
            .and_then(|rest| rest.strip_prefix(stage))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(self.approval_job_separator.as_str()))
    }

    /// The stage named by an approval job, if the name follows the convention.
    pub(crate) fn approval_job_stage<'a>(&'a self, job_name: &'a str) -> Option<&'a str> {
        if let Some(mapped) = self.mapped_approval_stage(job_name) {
            return Some(mapped);
        }
        let rest = job_name.strip_prefix(self.approval_job_prefix.as_str())?;
        let stage = rest.split(self.approval_job_separator.as_str()).next().unwrap_or(rest);
        (!stage.is_empty()).then_some(stage)
    }

    fn mapped_approval_stage(&self, job_name: &str) -> Option<&str> {
        self.approval_jobs.iter().find(|(job, _)| job == job_name).map(|(_, stage)| stage.as_str())
    }

    /// The check a workflow reports, if it is one of the configured check workflows.
    pub(crate) fn check_for_workflow(&self, workflow: &str) -> Option<&str> {
        self.checks.iter().find(|(_, w)| w == workflow).map(|(c, _)| c.as_str())
    }
}

/// Builds a [`CircleCi`] backend.
///
/// ```
/// use atlas_promote_circleci::CircleCiBuilder;
///
/// let circleci = CircleCiBuilder::new()
///     .with_token("CCIPAT_example")
///     .with_project_slug("gh/acme/atlas")
///     .with_trunk_branch("main")
///     .build()
///     .unwrap();
/// assert!(!format!("{circleci:?}").contains("CCIPAT_example"));
/// ```
///
/// Defaults: the cloud API, trunk `main`, pipelines triggered on trunk through
/// the legacy endpoint (set [`with_definition_id`](Self::with_definition_id)
/// for the run endpoint), checks `integration`, `system`, `data-quality` read
/// from workflows of those names, approval jobs named `approve-<stage>`
/// (optionally `approve-<stage>--<suffix>`), pipeline parameters prefixed
/// `atlas_`, at most 10 pages and 20 s per listing, 3 retries of GETs.
#[derive(Clone)]
pub struct CircleCiBuilder {
    token: Option<SecretString>,
    http_client: Option<reqwest::Client>,
    settings: Settings,
}

impl fmt::Debug for CircleCiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircleCiBuilder")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("http_client", &self.http_client.is_some())
            .field("settings", &self.settings)
            .finish()
    }
}

impl Default for CircleCiBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CircleCiBuilder {
    /// A builder with the defaults and no token or project.
    pub fn new() -> Self {
        Self {
            token: None,
            http_client: None,
            settings: Settings {
                project_slug: String::new(),
                base_url: DEFAULT_BASE_URL.into(),
                definition_id: None,
                trunk_branch: "main".into(),
                trigger_branch: None,
                checks: DEFAULT_CHECKS.iter().map(|c| ((*c).to_owned(), (*c).to_owned())).collect(),
                scheduled_checks_only: false,
                scheduled_trigger_types: vec!["scheduled_pipeline".into(), "schedule".into()],
                approval_job_prefix: "approve-".into(),
                approval_job_separator: "--".into(),
                approval_jobs: Vec::new(),
                parameter_prefix: "atlas_".into(),
                max_pages: 10,
                page_deadline: Duration::from_secs(20),
                request_timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(10),
                retry: RetrySettings::default(),
                lookback: chrono::TimeDelta::days(7),
                no_workflow_grace: chrono::TimeDelta::seconds(120),
                settled_ttl: Duration::from_secs(600),
                user_agent: concat!("atlas-promote-circleci/", env!("CARGO_PKG_VERSION")).into(),
            },
        }
    }

    /// A builder with the defaults, then [`ENV_TOKEN`], [`ENV_PROJECT_SLUG`]
    /// and [`ENV_BASE_URL`] applied where set and not empty.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`
    /// (a config file's secrets, a test's map).
    ///
    /// ```
    /// use atlas_promote_circleci::CircleCiBuilder;
    ///
    /// let vars = |name: &str| match name {
    ///     "ATLAS_CIRCLECI_TOKEN" => Some("CCIPAT_example".to_owned()),
    ///     "ATLAS_CIRCLECI_PROJECT_SLUG" => Some("gh/acme/atlas".to_owned()),
    ///     _ => None,
    /// };
    /// let circleci = CircleCiBuilder::from_lookup(vars).build()?;
    /// assert_eq!(circleci.project_slug(), "gh/acme/atlas");
    /// # Ok::<(), atlas_promote_core::Error>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut builder = Self::new();
        if let Some(token) = var(ENV_TOKEN) {
            builder = builder.with_token(token);
        }
        if let Some(slug) = var(ENV_PROJECT_SLUG) {
            builder = builder.with_project_slug(slug);
        }
        if let Some(url) = var(ENV_BASE_URL) {
            builder = builder.with_base_url(url);
        }
        builder
    }

    /// The personal API token (project tokens are not accepted by API v2).
    /// Sent as the `Circle-Token` header; never shown by `Debug`, `Display` or errors.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self
    }

    /// The project slug, e.g. `gh/acme/atlas` or `circleci/<org-id>/<project-id>`.
    pub fn with_project_slug(mut self, slug: impl Into<String>) -> Self {
        self.settings.project_slug = slug.into();
        self
    }

    /// The API base URL, `https://circleci.com/api/v2` by default (tests point it at a local server).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.settings.base_url = url.into();
        self
    }

    /// Use this HTTP client (its own TLS, proxy and pool settings). The
    /// builder's timeouts still apply per request; its user agent is still sent.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Trigger through `POST /project/{provider}/{org}/{project}/pipeline/run`
    /// with this pipeline definition id (Project Settings › Pipelines), instead
    /// of the legacy `POST /project/{slug}/pipeline`. Needed for GitHub App projects.
    pub fn with_definition_id(mut self, id: impl Into<String>) -> Self {
        self.settings.definition_id = Some(id.into());
        self
    }

    /// The trunk branch: where nightly checks and approval workflows run (`main` by default).
    pub fn with_trunk_branch(mut self, branch: impl Into<String>) -> Self {
        self.settings.trunk_branch = branch.into();
        self
    }

    /// The branch deploy and flush pipelines are triggered on (the trunk branch by default).
    pub fn with_trigger_branch(mut self, branch: impl Into<String>) -> Self {
        self.settings.trigger_branch = Some(branch.into());
        self
    }

    /// Replace the checks: each check name is read from the workflow of the same name.
    pub fn with_checks<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.settings.checks = names
            .into_iter()
            .map(|n| {
                let n = n.into();
                (n.clone(), n)
            })
            .collect();
        self
    }

    /// Read check `name` from workflows called `workflow` (adds or replaces that check).
    pub fn with_check_workflow(mut self, name: impl Into<String>, workflow: impl Into<String>) -> Self {
        let (name, workflow) = (name.into(), workflow.into());
        self.settings.checks.retain(|(n, _)| *n != name);
        self.settings.checks.push((name, workflow));
        self
    }

    /// Count only scheduled pipelines as check results (off by default: any
    /// trunk pipeline running a check workflow counts).
    pub fn with_scheduled_checks_only(mut self, only: bool) -> Self {
        self.settings.scheduled_checks_only = only;
        self
    }

    /// The trigger type spellings that mean "scheduled"; matched against
    /// `trigger.type` and `trigger_parameters.circleci.trigger_type`.
    /// Default: `scheduled_pipeline`, `schedule`.
    pub fn with_scheduled_trigger_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.settings.scheduled_trigger_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Approval jobs are named `<prefix><stage>` (default prefix `approve-`).
    pub fn with_approval_job_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.approval_job_prefix = prefix.into();
        self
    }

    /// More approval jobs for one stage are named `<prefix><stage><separator><anything>`
    /// (default separator `--`: `approve-prod--product-owner`).
    pub fn with_approval_job_separator(mut self, separator: impl Into<String>) -> Self {
        self.settings.approval_job_separator = separator.into();
        self
    }

    /// The approval job `job` (CircleCI's own docs name theirs `hold`) is an
    /// approval for `stage`, whatever the naming convention says. May be
    /// called once per job; a later call for the same job replaces the stage.
    pub fn with_approval_job(mut self, job: impl Into<String>, stage: impl Into<String>) -> Self {
        let (job, stage) = (job.into(), stage.into());
        self.settings.approval_jobs.retain(|(j, _)| *j != job);
        self.settings.approval_jobs.push((job, stage));
        self
    }

    /// The prefix of every pipeline parameter this backend sends (default `atlas_`).
    pub fn with_parameter_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.parameter_prefix = prefix.into();
        self
    }

    /// At most this many pages per listing (default 10).
    pub fn with_page_limit(mut self, pages: usize) -> Self {
        self.settings.max_pages = pages;
        self
    }

    /// A listing stops paging after this long (default 20 s).
    pub fn with_page_deadline(mut self, deadline: Duration) -> Self {
        self.settings.page_deadline = deadline;
        self
    }

    /// The timeout of one request (default 30 s) and of connecting (default 10 s).
    pub fn with_timeouts(mut self, request: Duration, connect: Duration) -> Self {
        self.settings.request_timeout = request;
        self.settings.connect_timeout = connect;
        self
    }

    /// How GETs are retried (on 5xx, 408, 429, timeouts and answers cut
    /// short), how long a server's `Retry-After` is waited out, and the
    /// deadline of each call (default [`RetrySettings::default`]).
    pub fn with_retry(mut self, retry: RetrySettings) -> Self {
        self.settings.retry = retry;
        self
    }

    /// How far back pipelines are paged when looking for a commit's checks
    /// (without a `since`), approval workflows, or a key after a crash (default 7 days).
    pub fn with_lookback(mut self, lookback: chrono::TimeDelta) -> Self {
        self.settings.lookback = lookback;
        self
    }

    /// A created pipeline with no workflow after this long counts as failed:
    /// its filters or `when` clauses ran nothing (default 120 s).
    pub fn with_no_workflow_grace(mut self, grace: chrono::TimeDelta) -> Self {
        self.settings.no_workflow_grace = grace;
        self
    }

    /// How long a pipeline whose workflows all finished is trusted before its
    /// workflow list is read again to catch reruns (default 10 min).
    pub fn with_settled_ttl(mut self, ttl: Duration) -> Self {
        self.settings.settled_ttl = ttl;
        self
    }

    /// The `User-Agent` header (default `atlas-promote-circleci/<version>`).
    pub fn with_user_agent(mut self, agent: impl Into<String>) -> Self {
        self.settings.user_agent = agent.into();
        self
    }

    /// Validate the configuration and build the backend.
    ///
    /// Fails with [`Error::Invalid`](atlas_promote_core::Error::Invalid) naming
    /// what is missing or wrong; never echoes the token.
    pub fn build(self) -> Result<CircleCi> {
        const WHAT: &str = "circleci configuration";
        let s = &self.settings;
        let token = self.token.ok_or_else(|| invalid(WHAT, format!("no API token: set {ENV_TOKEN}")))?;
        if token.expose_secret().trim().is_empty() {
            return Err(invalid(WHAT, "the API token is empty"));
        }
        if token.expose_secret().chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid(WHAT, "the API token contains whitespace or control characters"));
        }
        if s.project_slug.is_empty() {
            return Err(invalid(WHAT, format!("no project slug: set {ENV_PROJECT_SLUG} (e.g. gh/acme/atlas)")));
        }
        let segments: Vec<&str> = s.project_slug.split('/').collect();
        if segments.len() != 3 || segments.iter().any(|p| p.is_empty() || p.contains(char::is_whitespace)) {
            return Err(invalid(
                WHAT,
                format!("project slug {:?} is not `vcs/org/repo` or `circleci/<org-id>/<project-id>`", s.project_slug),
            ));
        }
        match reqwest::Url::parse(&s.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.query().is_none() => {}
            _ => return Err(invalid(WHAT, format!("base URL {:?} is not an http(s) URL", s.base_url))),
        }
        if let Some((job, stage)) = s.approval_jobs.iter().find(|(j, st)| j.trim().is_empty() || st.trim().is_empty()) {
            return Err(invalid(WHAT, format!("approval job {job:?} for stage {stage:?}: neither may be empty")));
        }
        if s.definition_id.as_deref().is_some_and(|d| d.trim().is_empty() || d.contains('/')) {
            return Err(invalid(WHAT, "the pipeline definition id is empty or contains `/`"));
        }
        if s.trunk_branch.is_empty() || s.trigger_branch.as_deref() == Some("") {
            return Err(invalid(WHAT, "a branch name is empty"));
        }
        if s.checks.iter().any(|(n, w)| n.is_empty() || w.is_empty()) {
            return Err(invalid(WHAT, "a check or check workflow name is empty"));
        }
        if s.approval_job_prefix.is_empty() || s.approval_job_separator.is_empty() {
            return Err(invalid(WHAT, "the approval job prefix and separator must not be empty"));
        }
        if s.parameter_prefix.len() > 64
            || !s.parameter_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(WHAT, "the parameter prefix may hold only letters, digits, `_` and `-`"));
        }
        if s.max_pages == 0 {
            return Err(invalid(WHAT, "the page limit must be at least 1"));
        }
        if s.lookback <= chrono::TimeDelta::zero() {
            return Err(invalid(WHAT, "the lookback must be positive"));
        }
        let http = match self.http_client {
            Some(client) => client,
            None => default_http_client(s)?,
        };
        let client = Client::new(http, token, self.settings.client_options());
        Ok(CircleCi::from_parts(Arc::new(client), self.settings))
    }
}

fn default_http_client(settings: &Settings) -> Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .user_agent(settings.user_agent.clone())
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout);
    #[cfg(feature = "rustls")]
    let builder = {
        // reqwest's `rustls-no-provider` uses the process default provider:
        // install ring unless the application installed one already.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        builder.tls_backend_rustls()
    };
    builder.build().map_err(|e| invalid("circleci configuration", format!("cannot build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> CircleCiBuilder {
        CircleCiBuilder::new().with_token("CCIPAT_secret").with_project_slug("gh/acme/atlas")
    }

    fn refused(builder: CircleCiBuilder) -> String {
        let err = builder.build().expect_err("build should fail");
        assert!(matches!(err, atlas_promote_core::Error::Invalid { .. }), "{err:?}");
        let text = err.to_string();
        assert!(!text.contains("CCIPAT_secret"), "{text}");
        text
    }

    #[test]
    fn from_lookup_reads_the_variables_through_the_lookup_and_skips_empty_ones() {
        let vars = |name: &str| match name {
            ENV_TOKEN => Some("CCIPAT_secret".to_owned()),
            ENV_PROJECT_SLUG => Some("gh/acme/atlas".to_owned()),
            ENV_BASE_URL => Some("  ".to_owned()),
            _ => None,
        };
        let s = CircleCiBuilder::from_lookup(vars).settings;
        assert_eq!((s.project_slug.as_str(), s.base_url.as_str()), ("gh/acme/atlas", DEFAULT_BASE_URL));
        assert!(CircleCiBuilder::from_lookup(vars).build().is_ok());
        assert!(refused(CircleCiBuilder::from_lookup(|_| None)).contains(ENV_TOKEN));
    }

    #[test]
    fn build_names_what_is_missing_or_wrong() {
        assert!(valid().build().is_ok());
        assert!(refused(CircleCiBuilder::new().with_project_slug("gh/acme/atlas")).contains(ENV_TOKEN));
        assert!(refused(valid().with_token("  ")).contains("empty"));
        assert!(refused(CircleCiBuilder::new().with_token("t")).contains(ENV_PROJECT_SLUG));
        assert!(refused(valid().with_project_slug("acme/atlas")).contains("acme/atlas"));
        assert!(refused(valid().with_base_url("ftp://example.com")).contains("base URL"));
        assert!(refused(valid().with_page_limit(0)).contains("page limit"));
        assert!(refused(valid().with_definition_id("")).contains("definition id"));
        assert!(refused(valid().with_parameter_prefix("atlas.")).contains("prefix"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let shown = format!("{:?} {:?}", valid(), valid().build().unwrap());
        assert!(!shown.contains("CCIPAT_secret"), "{shown}");
        assert!(shown.contains("gh/acme/atlas"));
    }

    #[test]
    fn approval_jobs_follow_the_naming_convention() {
        let s = valid().settings;
        assert!(s.approval_job_is_for("approve-prod", "prod"));
        assert!(s.approval_job_is_for("approve-prod--product-owner", "prod"));
        assert!(!s.approval_job_is_for("approve-prod-eu", "prod"));
        assert!(!s.approval_job_is_for("hold", "prod"));
        assert_eq!(s.approval_job_stage("approve-prod--dev-team"), Some("prod"));
        assert_eq!(s.approval_job_stage("approve-"), None);
    }

    #[test]
    fn an_approval_job_mapped_explicitly_is_for_its_stage_only() {
        let s = valid().with_approval_job("hold", "prod").with_approval_job("approve-staging", "dev").settings;
        assert!(s.approval_job_is_for("hold", "prod"));
        assert!(!s.approval_job_is_for("hold", "staging"));
        assert_eq!(s.approval_job_stage("hold"), Some("prod"));
        // The mapping wins over the convention; other jobs still follow it.
        assert!(s.approval_job_is_for("approve-staging", "dev"));
        assert!(!s.approval_job_is_for("approve-staging", "staging"));
        assert!(s.approval_job_is_for("approve-prod--dev-team", "prod"));
        assert!(refused(valid().with_approval_job("hold", "")).contains("approval job \"hold\""));
    }
}
