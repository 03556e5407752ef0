//! prometheus-dns-registration: Route53 records → Prometheus federation targets.
//! Thin: parse the command line, load the configuration, run the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use prometheus_dns_registration::{Config, lambda, sync};

#[derive(Parser)]
#[command(
    version,
    about = "Keeps the central Prometheus's federation targets in sync with Route53"
)]
struct Cli {
    /// YAML configuration file (PDR_* environment variables override it; default: $PDR_CONFIG_FILE).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Resync the targets: once (`--once`, for manual runs and cron jobs) or every `--interval`.
    Sync {
        /// Run one resync and exit.
        #[arg(long)]
        once: bool,
        /// Print the change (a unified diff) instead of writing it.
        #[arg(long)]
        dry_run: bool,
        /// Time between resyncs when not `--once`.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        interval: Duration,
    },
    /// Run as an AWS Lambda function (the default when AWS_LAMBDA_RUNTIME_API is set).
    Lambda,
}

fn main() -> ExitCode {
    // kube, reqwest and the AWS SDK all use rustls with aws-lc-rs; installing it explicitly means
    // a second provider creeping into the build can never make kube panic at run time.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let command = match cli.command {
        Some(c) => c,
        None if in_lambda => Command::Lambda,
        None => {
            eprintln!("no command given; see --help (sync --once [--dry-run], lambda)");
            return ExitCode::from(2);
        }
    };
    init_tracing(matches!(command, Command::Lambda));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.config, command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<PathBuf>, command: Command) -> anyhow::Result<()> {
    let cfg = Config::from_process_env(config.as_deref()).context("invalid configuration")?;
    match command {
        Command::Lambda => lambda::run(cfg).await.map_err(|e| anyhow::anyhow!(e)),
        Command::Sync {
            once,
            dry_run,
            interval,
        } => {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await;
            if once {
                return sync_once(&cfg, &sdk, dry_run).await;
            }
            loop {
                if let Err(e) = sync_once(&cfg, &sdk, dry_run).await {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "resync failed; trying again next interval"
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown_signal() => return Ok(()),
                }
            }
        }
    }
}

async fn sync_once(cfg: &Config, sdk: &aws_config::SdkConfig, dry_run: bool) -> anyhow::Result<()> {
    let outcome = sync::run_once(cfg, sdk, dry_run).await?;
    let probes = outcome
        .probe_targets
        .map(|n| format!(", {n} probe targets"))
        .unwrap_or_default();
    let summary = format!("{} federation targets{probes}", outcome.federation_targets);
    if dry_run {
        if outcome.changed {
            println!(
                "dry run: ConfigMap {} would change ({summary}):",
                outcome.configmap
            );
            print!("{}", outcome.diff);
        } else {
            println!(
                "dry run: ConfigMap {} is up to date ({summary}); nothing to write",
                outcome.configmap
            );
        }
    } else if outcome.written {
        println!(
            "updated ConfigMap {} ({summary}, {} attempt(s)){}",
            outcome.configmap,
            outcome.attempts,
            if outcome.reloaded {
                "; Prometheus reloaded"
            } else {
                ""
            }
        );
    } else {
        println!(
            "ConfigMap {} is up to date ({summary}); nothing written",
            outcome.configmap
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        // CloudWatch: one JSON object per line, no colours, no timestamps (Lambda adds them).
        builder.json().with_ansi(false).without_time().init();
    } else {
        builder
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
}
