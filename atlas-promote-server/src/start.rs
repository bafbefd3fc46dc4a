//! A [`Server`] from a [`Config`]: the policy, the store, each backend in the
//! role the config gives it, the webhook sources and the notification sinks.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use atlas_promote_circleci::CircleCi;
use atlas_promote_core::audit::ChainKey;
use atlas_promote_core::{
    ApprovalRecord, ApprovalSource, CheckQuery, CheckResult, CheckSource, CiProvider, Directory, Error, MemoryStore,
    Policy, PolicyError, Promoter, Result, SourceControl, StateStore, StaticDirectory,
};
use atlas_promote_github::GitHub;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Config, ConfigError, Secrets};
use crate::intake::{CircleCiSource, GitHubSource};
use crate::notify::{LogSink, Sink, SlackSink, WebhookSink};
use crate::{Server, ServerBuilder};

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The config file, or the secrets it names.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy file the config names.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The store cannot be opened.
    #[error("store {url}: {message}")]
    Store {
        /// The store URL as configured.
        url: String,
        /// Why.
        message: String,
    },
    /// A backend cannot be set up from its section.
    #[error("[{section}]: {source}")]
    Backend {
        /// The config section (`github`, `circleci`).
        section: String,
        /// Why.
        source: Box<Error>,
    },
}

fn backend(section: &str, source: Error) -> StartError {
    StartError::Backend { section: section.into(), source: Box::new(source) }
}

impl Server {
    /// Build the service a config file describes, reading its secrets through `lookup`.
    pub async fn from_config(config: &Config, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StartError> {
        Ok(ServerBuilder::from_config(config, lookup).await?.build())
    }
}

impl ServerBuilder {
    /// The builder of the service a config file describes, so that an
    /// embedder can add webhook sources and sinks of their own.
    pub async fn from_config(config: &Config, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StartError> {
        builder_from_config(config, lookup).await
    }
}

/// The [`ServerBuilder`] a config describes.
pub(crate) async fn builder_from_config(
    config: &Config,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ServerBuilder, StartError> {
    let secrets = config.secrets(&lookup)?;
    let policy = Policy::from_path(config.resolve(&config.policy))?;
    let (store, chain_key) = open_store(&store_url(config), &lookup).await?;
    let secret = |variable: &str| secrets.get(variable).cloned().unwrap_or_else(|| SecretString::from(String::new()));
    let github = match &config.github {
        Some(section) => Some(github(config, section, &secrets, &policy).map_err(|source| backend("github", source))?),
        None => None,
    };
    let circleci = match &config.circleci {
        Some(section) => {
            let mut builder = CircleCi::builder()
                .with_project_slug(&section.project_slug)
                .with_base_url(&section.api_url)
                .with_trunk_branch(&section.trunk);
            if let Some(token) = secrets.get(&section.token_env) {
                builder = builder.with_token(token.expose_secret());
            }
            Some(builder.build().map_err(|source| backend("circleci", source))?)
        }
        None => None,
    };
    let backends = &config.backends;
    // The config was checked: every backend named has its section.
    let missing = |section: &str| {
        backend(section, Error::Invalid { what: "config".into(), message: format!("no [{section}] section") })
    };
    let gh = || github.clone().ok_or_else(|| missing("github"));
    let cci = || circleci.clone().ok_or_else(|| missing("circleci"));
    let ci: Arc<dyn CiProvider> = match backends.ci.as_str() {
        "github" => Arc::new(gh()?),
        _ => Arc::new(cci()?),
    };
    let mut checks: Vec<Arc<dyn CheckSource>> = Vec::new();
    for name in &backends.checks {
        checks.push(if name == "github" { Arc::new(gh()?) } else { Arc::new(cci()?) });
    }
    let mut approvals: Vec<Arc<dyn ApprovalSource>> = Vec::new();
    for name in &backends.approvals {
        approvals.push(if name == "circleci" { Arc::new(cci()?) } else { Arc::new(gh()?) });
    }
    let directory: Arc<dyn Directory> = match backends.directory.as_str() {
        "github" => Arc::new(gh()?),
        _ => Arc::new(StaticDirectory::from_policy(&policy)),
    };
    let source_control: Arc<dyn SourceControl> = Arc::new(gh()?);
    let promoter = Promoter::builder(policy.clone())
        .with_store(Arc::clone(&store))
        .with_ci(ci)
        .with_checks(Arc::new(AllChecks(checks)))
        .with_approvals(Arc::new(AllApprovals(approvals)))
        .with_directory(Arc::clone(&directory))
        .with_source_control(source_control)
        .build()
        .map_err(|source| backend("backends", source))?;
    // Checked when the config was read: every hash is 64 hex digits.
    let operators = crate::auth::Operators::from_config(&config.operators)
        .map_err(|e| backend("operator", Error::Invalid { what: "operator".into(), message: e.to_string() }))?
        .with_reads(config.api.reads);
    let mut builder =
        Server::builder(promoter).with_limits(config.http.clone()).with_operators(operators).with_directory(directory);
    if let Some(url) = &config.public_url {
        builder = builder.with_public_url(url);
    }
    if let Some(key) = chain_key {
        builder = builder.with_chain_key(key);
    }
    if let (Some(gh), Some(section)) = (&github, &config.github) {
        let mut receiver = gh.webhooks(secret(&section.webhook_secret_env));
        for (stage, environment) in &section.environments {
            receiver = receiver.with_environment(stage, environment);
        }
        builder = builder
            .with_source(Arc::new(GitHubSource::new(receiver, &section.trunk)))
            .with_forge(Arc::new(crate::forge::GitHubForge::new(gh.clone())));
    }
    if let (Some(cci), Some(section)) = (&circleci, &config.circleci) {
        let receiver = cci.webhook_receiver(secret(&section.webhook_secret_env).expose_secret());
        builder = builder.with_source(Arc::new(CircleCiSource::new(receiver)));
    }
    let http = reqwest_client().map_err(|source| backend("notify", source))?;
    for sink in &config.notify {
        let url = || secret(sink.url_env.as_deref().unwrap_or_default());
        let notifier: Box<dyn atlas_promote_core::Notifier> = match sink.kind.as_str() {
            "slack" => Box::new(SlackSink::new(http.clone(), url())),
            "webhook" => {
                Box::new(WebhookSink::new(http.clone(), url(), secret(sink.secret_env.as_deref().unwrap_or_default())))
            }
            _ => Box::new(LogSink),
        };
        builder = builder.with_sink(Sink::new(notifier, sink.events.clone()));
    }
    Ok(builder)
}

fn github(
    config: &Config,
    section: &crate::config::GitHubConfig,
    secrets: &Secrets,
    policy: &Policy,
) -> Result<GitHub> {
    let mut builder = GitHub::builder().with_repository(&section.repository).with_base_url(&section.api_url);
    if let Some(token) = section.token_env.as_deref().and_then(|v| secrets.get(v)) {
        builder = builder.with_token(token.clone());
    }
    if let (Some(app), Some(key), Some(installation)) =
        (section.app_id, &section.private_key_file, section.installation_id)
    {
        let path = config.resolve(key);
        let pem = std::fs::read_to_string(&path).map_err(|e| Error::Invalid {
            what: "github.private_key_file".into(),
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        builder = builder.with_app(app, SecretString::from(pem), installation);
    }
    for (role, team) in &section.teams {
        if let Some((org, slug)) = team.split_once('/') {
            builder = builder.with_org(org).with_team_role(slug, role.as_str());
        }
    }
    for (stage, environment) in &section.environments {
        builder = builder.with_environment(stage, environment);
    }
    if let Some(review) = policy.stages.iter().find(|s| matches!(s.kind, atlas_promote_core::StageKind::Trunk)) {
        builder = builder.with_review_stage(&review.name);
    }
    builder.build()
}

/// The store the config names, and the chain key it was opened with.
async fn open_store(
    url: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(Arc<dyn StateStore>, Option<ChainKey>), StartError> {
    if url.starts_with("memory://") {
        tracing::warn!("store memory://: nothing is kept when the service stops");
        return Ok((Arc::new(MemoryStore::new()), None));
    }
    // The audit chain is keyed (HMAC-SHA256) when ATLAS_AUDIT_CHAIN_KEY is
    // set: a store created keyed cannot be opened without its key, so a
    // service started without it is refused rather than serving an
    // unverifiable log.
    let variable = atlas_promote_sql::CHAIN_KEY_ENV;
    let options = atlas_promote_sql::OpenOptions::new()
        .with_chain_key_from(variable, lookup(variable).map(Into::into))
        .map_err(|e| StartError::Store { url: shown(url), message: e.to_string() })?;
    let key = options.chain_key.clone();
    // Opening checks the audit chain and the documents against it: a
    // damaged or tampered store is refused here, before anything is served.
    match atlas_promote_sql::SqlStore::open_with(url, options).await {
        Ok(store) => Ok((Arc::new(store), key)),
        Err(e) => Err(StartError::Store { url: shown(url), message: e.to_string() }),
    }
}

/// The config's store URL, an SQLite file's relative path taken from the config file's folder.
fn store_url(config: &Config) -> String {
    match config.store.strip_prefix("sqlite://") {
        Some(path) if !path.is_empty() && std::path::Path::new(path).is_relative() && !path.starts_with(':') => {
            format!("sqlite://{}", config.resolve(std::path::Path::new(path)).display())
        }
        _ => config.store.clone(),
    }
}

/// A store URL without its credentials.
fn shown(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
        _ => url.to_owned(),
    }
}

fn reqwest_client() -> Result<reqwest::Client> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // reqwest's `rustls-no-provider` uses the process default, as the backends do.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .timeout(crate::notify::ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| Error::Invalid { what: "HTTP client".into(), message: e.to_string() })
}

/// Every configured check source, read together.
#[derive(Debug)]
struct AllChecks(Vec<Arc<dyn CheckSource>>);

#[async_trait]
impl CheckSource for AllChecks {
    async fn checks(&self, query: &CheckQuery) -> Result<Vec<CheckResult>> {
        let mut all = Vec::new();
        for source in &self.0 {
            all.extend(source.checks(query).await?);
        }
        Ok(all)
    }
}

/// Every configured approval source, read together; a submission goes to
/// the first that takes one.
struct AllApprovals(Vec<Arc<dyn ApprovalSource>>);

impl fmt::Debug for AllApprovals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

#[async_trait]
impl ApprovalSource for AllApprovals {
    async fn approvals(&self, stage: &str, sha: &str) -> Result<Vec<ApprovalRecord>> {
        let mut all = Vec::new();
        for source in &self.0 {
            all.extend(source.approvals(stage, sha).await?);
        }
        Ok(all)
    }

    async fn submit(&self, record: &ApprovalRecord) -> Result<()> {
        for source in &self.0 {
            match source.submit(record).await {
                Err(Error::Unsupported { .. }) => continue,
                other => return other,
            }
        }
        Err(Error::Unsupported {
            backend: "the configured approval sources".into(),
            operation: "submitting an approval".into(),
        })
    }
}
