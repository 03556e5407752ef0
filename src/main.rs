//! The `sluice` binary: parse the command line, load the configuration, install signal
//! handlers, run the pipeline. Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use sluice::config::Config;
use sluice::telemetry::Metrics;

// Allocator experiments (BENCHMARKS.md, "Allocators"); neither is on by default.
#[cfg(all(feature = "mimalloc", feature = "jemalloc"))]
compile_error!("features `mimalloc` and `jemalloc` are alternatives; enable one");
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Ships Kubernetes container logs to Elasticsearch, every line exactly once"
)]
struct Cli {
    /// Configuration file (YAML).
    #[arg(long, short, env = "SLUICE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log output format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "SLUICE_LOG_FORMAT", global = true)]
    log_format: LogFormat,
    /// Threads of the async runtime (bulk requests, gzip, acknowledgements). The file reader has
    /// its own thread besides these.
    #[arg(long, default_value_t = 2, env = "SLUICE_WORKER_THREADS", global = true, value_parser = clap::value_parser!(u16).range(1..=64))]
    worker_threads: u16,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (the default).
    Run,
    /// Validate the configuration and print it; exit 0 if valid.
    Check,
    /// Dry run: read container log files (stdin when none, or `-`) through the parsing,
    /// multiline, JSON and encoding of the agent and print each document with its `_index` and
    /// `_id`, without Elasticsearch or Kubernetes. Exit 1 when a line would be dropped or
    /// truncated, 2 on an error (a broken configuration, say).
    Test {
        /// Container log files; `-` (or none) reads stdin.
        files: Vec<PathBuf>,
        /// A Pod object as `kubectl get pod -o json` prints it: the metadata the API server
        /// would give (labels, annotations such as `sluice.io/exclude`, `sluice.io/multiline`).
        #[arg(long, value_name = "POD.json")]
        pod: Option<PathBuf>,
        /// Read the input as the log file at this path: its path metadata and document ids
        /// come from it (e.g. /var/log/pods/NS_POD_UID/CONTAINER/0.log). Default: the file's
        /// own path (stdin: none, so no Kubernetes metadata).
        #[arg(long, value_name = "PATH")]
        path_as: Option<PathBuf>,
    },
    /// Watch the documents a running agent ships, live, as NDJSON (`_index`, `_id`,
    /// `_source`), from its telemetry endpoint (`telemetry.tap: true` on the agent). The agent
    /// never waits for the tap: when this reads too slowly, copies are dropped and counted.
    Tap {
        /// The agent's telemetry endpoint (default: `telemetry.listen` of --config).
        #[arg(long, value_name = "URL")]
        url: Option<reqwest::Url>,
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long)]
        pod: Option<String>,
        #[arg(long)]
        container: Option<String>,
        /// Only documents whose JSON contains this text.
        #[arg(long)]
        grep: Option<String>,
        /// Stop after this many documents.
        #[arg(long)]
        limit: Option<u64>,
        /// Send this fraction of the matching documents (0 < RATE <= 1; every n-th).
        #[arg(long, value_name = "RATE")]
        sample: Option<f64>,
    },
    /// Install the index templates (and lifecycle policy) in Elasticsearch, then exit.
    Setup {
        /// Also import the bundled Kibana saved objects (data views, searches, Lens
        /// visualizations, dashboard) into the Kibana at this URL, with the credentials and TLS
        /// settings of `elasticsearch:`.
        #[arg(long, value_name = "URL")]
        kibana: Option<reqwest::Url>,
        /// The Kibana space to import into (default: the default space).
        #[arg(long, value_name = "SPACE", requires = "kibana")]
        kibana_space: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    // reqwest and kube both use rustls, and the workspace build enables both the ring and the
    // aws-lc-rs providers, so rustls cannot pick one by itself: kube's client would panic.
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // `sluice test` keeps 1 for "a line would be lost": its errors exit 2.
    let failure = match cli.command {
        Some(Command::Test { .. }) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    };
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            failure
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Tap {
        url,
        namespace,
        pod,
        container,
        grep,
        limit,
        sample,
    }) = cli.command
    {
        let base = match url {
            Some(u) => u,
            None => {
                let path = cli.config.context(
                    "sluice tap: pass --url of the agent's telemetry endpoint, or --config",
                )?;
                let config = Config::load(&path)?;
                let addr = config
                    .telemetry
                    .listen
                    .context("sluice tap: telemetry.listen is off in this configuration")?;
                reqwest::Url::parse(&format!("http://{addr}"))?
            }
        };
        let request = sluice::telemetry::tap_client::Request {
            namespace,
            pod,
            container,
            grep,
            sample,
            limit,
        };
        let url = request.url(&base)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(sluice::telemetry::tap_client::follow(
            url,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr(),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let path = cli
        .config
        .context("no configuration: pass --config FILE (or set SLUICE_CONFIG)")?;
    let config = Config::load(&path)?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => {
            println!("{}: configuration is valid", path.display());
            println!("  node: {}", config.node_name);
            println!("  include: {}", config.input.include.join(", "));
            let endpoints: Vec<&str> = config
                .elasticsearch
                .endpoints
                .iter()
                .map(|u| u.as_str())
                .collect();
            println!("  elasticsearch: {}", endpoints.join(", "));
            println!("  index: {}", config.elasticsearch.index.as_str());
            println!("  auth: {}", config.elasticsearch.auth.summary());
            println!("  state: {}", config.state_dir.display());
            let kube = match &config.kubernetes.source {
                None => "off (path metadata only)".to_string(),
                Some(source) => format!("{source:?}"),
            };
            println!("  kubernetes: {kube}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Tap { .. } => unreachable!("handled before the configuration is loaded"),
        Command::Run => {
            run(config, path, usize::from(cli.worker_threads)).map(|()| ExitCode::SUCCESS)
        }
        Command::Test {
            files,
            pod,
            path_as,
        } => test(&config, &files, pod.as_deref(), path_as.as_deref()),
        Command::Setup {
            kibana,
            kibana_space,
        } => {
            let space = kibana_space
                .as_deref()
                .map(sluice::sink::kibana::Space::parse)
                .transpose()?;
            setup(config, kibana.map(|url| (url, space))).map(|()| ExitCode::SUCCESS)
        }
    }
}

/// `sluice test`: documents to stdout, one JSON object a line; problems to stderr.
fn test(
    config: &Config,
    files: &[PathBuf],
    pod: Option<&std::path::Path>,
    path_as: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use sluice::pipeline::reader::dry;
    use std::io::{Read, Write};
    let pod: Option<k8s_openapi::api::core::v1::Pod> = match pod {
        Some(p) => {
            let bytes =
                std::fs::read(p).with_context(|| format!("cannot read the pod {}", p.display()))?;
            Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a Pod object (JSON)", p.display()))?,
            )
        }
        None => None,
    };
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    let mut out = std::io::stdout().lock();
    let mut lost = false;
    for file in files {
        let (name, run) = if file.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read stdin")?;
            let path = path_as.unwrap_or(std::path::Path::new("/dev/stdin"));
            (
                "<stdin>".to_string(),
                dry::run_bytes(config, path, &bytes, pod.as_ref())?,
            )
        } else {
            let path = path_as.unwrap_or(file);
            (
                file.display().to_string(),
                dry::run_file(config, path, file, pod.as_ref())?,
            )
        };
        for d in run.documents {
            let line = serde_json::json!({"_index": d.index, "_id": d.id, "doc": d.doc});
            match writeln!(out, "{line}") {
                Ok(()) => {}
                // `sluice test … | head`: the reader has seen enough.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                Err(e) => return Err(e).context("cannot write to stdout"),
            }
        }
        for p in &run.problems {
            eprintln!("{name}:{}: {}", p.offset, p.kind);
            lost |= p.kind.loses_data();
        }
    }
    Ok(if lost {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The agent, reloading its configuration from `path` on SIGHUP and when the file changes.
fn run(config: Config, path: PathBuf, worker_threads: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .thread_name("sluice-io")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let metrics = Arc::new(Metrics::new());
        tracing::info!(version = env!("CARGO_PKG_VERSION"), node = %config.node_name, "sluice starting");
        let summary =
            sluice::pipeline::run_reloading(config, Some(path), metrics, shutdown_signal())
                .await?;
        tracing::info!(
            encoded = summary.events_encoded,
            delivered = summary.events_delivered,
            unacknowledged_batches = summary.unacknowledged_batches,
            "sluice stopped"
        );
        Ok(())
    })
}

/// `sluice setup`: the Elasticsearch templates, then (with `--kibana`) the Kibana objects.
fn setup(
    config: Config,
    kibana: Option<(reqwest::Url, Option<sluice::sink::kibana::Space>)>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let service = sluice::sink::elasticsearch::service::Service::new(&config.elasticsearch)?;
        let done = sluice::sink::elasticsearch::bootstrap::run(&service, &config).await?;
        for d in done {
            println!("{d}");
        }
        if let Some((url, space)) = kibana {
            let client = sluice::sink::elasticsearch::service::http_client(&config.elasticsearch)?;
            let done =
                sluice::sink::kibana::import(&client, &config.elasticsearch, &url, space.as_ref())
                    .await?;
            println!(
                "Kibana saved objects: {} imported (overwritten if present) at {}",
                done.objects, done.url
            );
        }
        Ok(())
    })
}

/// Resolves on SIGTERM (the kubelet's) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM handler");
            std::future::pending::<()>().await;
            unreachable!()
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        // The AWS SDK logs each credential load at info, naming the access key id: our own
        // credential cache logs loads and failures without it.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_config=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
