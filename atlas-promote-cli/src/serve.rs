//! `atlas-promote serve` and `atlas-promote config check`: the service from
//! its config file.

use std::io::Write;

use atlas_promote_core::Policy;
use atlas_promote_server::config::{Config, ConfigError};
use atlas_promote_server::{Server, StartError};

use crate::args::{ConfigCheckArgs, LogFormat, ServeArgs};
use crate::exit::{Failure, Status};

pub(crate) fn config_failure(e: ConfigError) -> Failure {
    match e {
        ConfigError::File(e) => Failure::File(e),
        other => Failure::BadInput(other.to_string()),
    }
}

/// Check a config file and the policy it names; say which secrets it needs
/// and whether they are set here.
pub(crate) fn check(args: &ConfigCheckArgs, out: &mut dyn Write) -> Result<Status, Failure> {
    let config = Config::from_path(&args.file).map_err(config_failure)?;
    let policy = Policy::from_path(config.resolve(&config.policy))?;
    let w = |out: &mut dyn Write, line: String| writeln!(out, "{line}").map_err(Failure::output);
    w(out, format!("{}: ok", args.file.display()))?;
    w(out, format!("  policy {} ({} stages) from {}", policy.name, policy.stages.len(), config.policy.display()))?;
    w(out, format!("  store {}, listening on {}", config.store, config.listen))?;
    let b = &config.backends;
    w(
        out,
        format!(
            "  ci {}, checks [{}], approvals [{}], directory {}, source control {}",
            b.ci,
            b.checks.join(", "),
            b.approvals.join(", "),
            b.directory,
            b.source_control
        ),
    )?;
    w(out, format!("  {} operator(s), {} notification sink(s)", config.operators.len(), config.notify.len()))?;
    for named in config.secret_variables() {
        let set = std::env::var(&named.variable).is_ok_and(|v| !v.is_empty());
        let state = if set { "set" } else { "NOT SET: `serve` will refuse to start" };
        w(out, format!("  secret {} ({}): {state}", named.variable, named.field))?;
    }
    Ok(Status::Success)
}

/// Run the service until SIGTERM or Ctrl-C.
pub(crate) fn serve(args: &ServeArgs) -> Result<Status, Failure> {
    init_logs(args.log_format);
    let mut config = Config::from_path(&args.config).map_err(config_failure)?;
    if let Some(listen) = &args.listen {
        config.listen = listen.to_string();
    }
    if let Some(store) = &args.store {
        config.store = store.clone();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let server = Server::from_config(&config, |name| std::env::var(name).ok()).await.map_err(start_failure)?;
        // Before anything can be reached: a SIGTERM from now on stops cleanly.
        let shutdown = atlas_promote_server::shutdown_signal();
        let addr = config.listen_addr();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::Other(format!("cannot listen on {addr}: {e}")))?;
        let bound = listener.local_addr().map_err(|e| Failure::Other(e.to_string()))?;
        tracing::info!(%bound, "atlas-promote is serving");
        server.run(listener, shutdown).await.map_err(|e| Failure::Other(e.to_string()))?;
        tracing::info!("stopped");
        Ok(Status::Success)
    })
}

/// Why the service could not be built from its config.
pub(crate) fn start_failure(e: StartError) -> Failure {
    match e {
        StartError::Config(e) => config_failure(e),
        StartError::Policy(e) => Failure::File(e),
        other => Failure::BadInput(other.to_string()),
    }
}

fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(tracing::Level::INFO);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
