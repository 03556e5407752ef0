//! Wires the stages with bounded queues and owns the shutdown order:
//!
//! ```text
//! reader thread ──(bounded channel of sealed batches)──► sink (≤ max_in_flight requests)
//!       │                                                    │
//!       └── delivery.sealed ──► Delivery ◄── delivery.acked ─┘ ──► checkpointer
//! ```
//! On shutdown: stop reading, seal what is complete, let the sink settle in-flight batches up to
//! the deadline, write the final checkpoint (acknowledged offsets only), return.
//! `/healthz` and `/readyz` tell what the stages report (`telemetry::health`, `watchdog`).

pub mod reader;
mod reload;
mod watchdog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::{Config, SetupMode};
use crate::delivery::Delivery;
use crate::kubernetes::{self, store::Store};
use crate::sink::elasticsearch::sink::{Output, Sink};
use crate::sink::elasticsearch::{BatchPool, bootstrap};
use crate::tail::{Checkpoint, CheckpointError};
use crate::telemetry::health::Health;
use crate::telemetry::{self, Metrics};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot listen on {addr} for metrics: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] crate::sink::elasticsearch::service::ServiceError),
    #[error("invalid multiline rules: {0}")]
    Multiline(String),
    #[error("the reader thread failed: {0}")]
    Reader(String),
}

/// Counts at the end of a run, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub events_encoded: u64,
    pub events_delivered: u64,
    pub unacknowledged_batches: usize,
}

/// Runs the agent until `shutdown` resolves, then shuts down in order.
pub async fn run(
    cfg: Config,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Summary, PipelineError> {
    run_reloading(cfg, None, metrics, shutdown).await
}

/// [`run`], and with `reload_from` (the file `cfg` was loaded from) the configuration is
/// reloaded from it on SIGHUP and when it changes (`reload`).
pub async fn run_reloading(
    cfg: Config,
    reload_from: Option<std::path::PathBuf>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Summary, PipelineError> {
    // First: a SIGHUP from now on reloads instead of ending the process.
    let hup = reload_from.as_ref().and_then(|_| reload::hangups());
    let loaded = reload_from.as_deref().and_then(reload::read_hash);
    let cfg = Arc::new(cfg);
    std::fs::create_dir_all(&cfg.state_dir).map_err(|source| PipelineError::StateDir {
        path: cfg.state_dir.clone(),
        source,
    })?;
    let checkpoint_path = Checkpoint::path_in(&cfg.state_dir);
    let checkpoint = Checkpoint::load(&checkpoint_path)?;
    if let Some(cp) = &checkpoint {
        tracing::info!(files = cp.files.len(), path = %checkpoint_path.display(), "resuming from checkpoint");
    }

    let health = Arc::new(Health::new(cfg.telemetry.stall_timeout));
    let tap = cfg.telemetry.tap.then(|| {
        Arc::new(telemetry::tap::Tap::new(
            metrics.tap("sent"),
            metrics.tap("dropped"),
        ))
    });
    let (stop_telemetry, telemetry_stopped) = watch::channel(false);
    let telemetry = match cfg.telemetry.listen {
        Some(addr) => {
            let listener = telemetry::server::bind(addr)
                .await
                .map_err(|source| PipelineError::Listen { addr, source })?;
            tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
            let m = metrics.clone();
            let h = health.clone();
            let t = tap.clone();
            let mut rx = telemetry_stopped.clone();
            Some(tokio::spawn(async move {
                let stopped = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = telemetry::server::serve(listener, m, h, t, stopped).await {
                    tracing::error!(error = %e, "metrics endpoint failed");
                }
            }))
        }
        None => None,
    };

    let delivery = Arc::new(Mutex::new(Delivery::default()));
    let es = &cfg.elasticsearch;
    let output = Arc::new(Output::new(es, &metrics)?);
    let service = output.service.clone();
    // The sink and the watchdog follow the output in force; batches carry their own stamp.
    let (output_tx, output_rx) = watch::channel(output.clone());
    // Index templates before the first document creates an index with guessed mappings; the
    // wait is bounded by the first attempt, so an unreachable cluster does not hold shipping.
    let setup_task = match es.setup {
        SetupMode::Auto => {
            let (first_tx, first_rx) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(bootstrap::keep_trying(
                service.clone(),
                cfg.clone(),
                first_tx,
            ));
            let _ = tokio::time::timeout(es.request_timeout * 2, first_rx).await;
            Some(task)
        }
        SetupMode::Off => None,
    };
    health.setup_done();
    // Bodies alive at once: one being filled, one queued, `max_in_flight` being sent.
    let pool = Arc::new(BatchPool::new(es.batch_max_bytes, es.max_in_flight + 1));
    let watchdog = tokio::spawn(watchdog::run(
        health.clone(),
        metrics.clone(),
        output_rx.clone(),
    ));
    let sink = Arc::new(Sink {
        output: output_rx,
        delivery: delivery.clone(),
        metrics: metrics.clone(),
        max_in_flight: es.max_in_flight,
        pool: pool.clone(),
    });
    // One sealed batch may wait while `max_in_flight` are being sent: memory stays bounded by
    // (max_in_flight + 2) × batch size, whatever Elasticsearch does.
    let (tx, rx) = mpsc::channel(1);
    let mut sink_task = tokio::spawn(sink.run(rx));

    let (stop_kube, kube_stopped) = watch::channel(false);
    let (kube_store, kube_tasks) = start_kubernetes(&cfg, &metrics, kube_stopped).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut reader = reader::Reader::new(
        cfg.clone(),
        checkpoint.map(|c| c.files),
        delivery.clone(),
        metrics.clone(),
        tx,
        pool,
        stop.clone(),
    )
    .map_err(|e| PipelineError::Multiline(e.to_string()))?;
    if let Some(t) = tap {
        reader = reader.with_tap(t);
    }
    if let Some(store) = kube_store {
        reader = reader.with_kubernetes(store, cfg.kubernetes.metadata_wait);
    }
    reader = reader.with_health(health.clone());
    let slot = Arc::new(reader::LiveSlot::default());
    reader = reader.with_live(slot.clone(), output);
    let (config_tx, config_rx) = watch::channel(cfg.clone());
    let (stop_reload, reload_stopped) = watch::channel(false);
    let (reload_task, setup_task) = match reload_from {
        Some(path) => {
            let reloader = reload::Reloader {
                path,
                current: cfg.clone(),
                metrics: metrics.clone(),
                slot,
                output: output_tx,
                config: config_tx,
                setup: setup_task,
                applied: loaded,
                seen: None,
            };
            (Some(tokio::spawn(reloader.run(hup, reload_stopped))), None)
        }
        None => (None, setup_task),
    };
    let reader_thread = {
        let (health, stop) = (health.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sluice-reader".into())
            .spawn(move || {
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.run()));
                if !stop.load(Ordering::Relaxed) {
                    // Nothing is read any more: only a restart helps, and /healthz says so.
                    let why = match &result {
                        Ok(()) => "it ended (the sink is gone)".to_string(),
                        Err(p) => format!("it panicked: {}", panic_message(p.as_ref())),
                    };
                    tracing::error!(reason = %why, "the reader thread is gone; /healthz fails");
                    health.reader_exited(why);
                }
                if let Err(p) = result {
                    std::panic::resume_unwind(p);
                }
            })
            .map_err(|e| PipelineError::Reader(e.to_string()))?
    };

    let checkpointer = {
        let delivery = delivery.clone();
        let metrics = metrics.clone();
        let health = health.clone();
        let path = checkpoint_path.clone();
        let every = cfg.checkpoint_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                write_checkpoint(&delivery, &path, &metrics, &health, false).await;
            }
        })
    };

    shutdown.await;
    // No reload from now on; the last one applied decides the deadline.
    let _ = stop_reload.send(true);
    if let Some(t) = reload_task {
        let _ = t.await;
    }
    let shutdown_timeout = config_rx.borrow().shutdown_timeout;
    tracing::info!(deadline = ?shutdown_timeout, "shutting down: sealing, flushing, waiting for acknowledgements");
    health.stopping();
    stop.store(true, Ordering::Relaxed);

    let reader_done = tokio::task::spawn_blocking(move || reader_thread.join());
    let drained = tokio::time::timeout(shutdown_timeout, async {
        let joined = reader_done.await;
        let _ = (&mut sink_task).await;
        joined
    })
    .await;
    match drained {
        Ok(Ok(Ok(()))) => tracing::info!("all sealed batches settled"),
        Ok(_) => tracing::error!("the reader thread panicked"),
        Err(_) => {
            // Unacknowledged batches are not lost: the checkpoint stays before them and they are
            // read again (same ids, no duplicates) at the next start.
            tracing::warn!(
                "shutdown deadline reached with batches unacknowledged; they will be re-sent at the next start"
            );
            sink_task.abort();
            let _ = sink_task.await;
        }
    }
    // The watches outlive the reader so its last lines were still enriched.
    let _ = stop_kube.send(true);
    for t in kube_tasks {
        if tokio::time::timeout(Duration::from_secs(2), t)
            .await
            .is_err()
        {
            tracing::warn!("a Kubernetes watch did not stop in time");
        }
    }
    checkpointer.abort();
    watchdog.abort();
    if let Some(t) = setup_task {
        t.abort();
    }
    write_checkpoint(&delivery, &checkpoint_path, &metrics, &health, true).await;
    let _ = stop_telemetry.send(true);
    if let Some(t) = telemetry {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    let unacknowledged_batches = delivery
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .unacknowledged();
    Ok(Summary {
        events_encoded: metrics.events_encoded.get(),
        events_delivered: metrics.events_delivered.get(),
        unacknowledged_batches,
    })
}

/// Starts the pod and namespace watches when Kubernetes metadata is configured. A client that
/// cannot be built (bad kubeconfig) is logged and the agent ships with path metadata: metadata
/// never holds shipping.
async fn start_kubernetes(
    cfg: &Config,
    metrics: &Arc<Metrics>,
    stopped: watch::Receiver<bool>,
) -> (Option<Arc<Store>>, Vec<tokio::task::JoinHandle<()>>) {
    let Some(source) = &cfg.kubernetes.source else {
        return (None, Vec::new());
    };
    let client = match kubernetes::watch::client(source).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Kubernetes client; shipping with path metadata only");
            return (None, Vec::new());
        }
    };
    let store = Store::new();
    tracing::info!(node = %cfg.node_name, "watching this node's pods and all namespaces");
    let pods = tokio::spawn(kubernetes::watch::watch_pods(
        client.clone(),
        cfg.node_name.clone(),
        cfg.kubernetes.clone(),
        store.clone(),
        metrics.clone(),
        stopped.clone(),
    ));
    let namespaces = tokio::spawn(kubernetes::watch::watch_namespaces(
        client,
        store.clone(),
        metrics.clone(),
        stopped,
    ));
    (Some(store), vec![pods, namespaces])
}

/// What a panic carried, for the health endpoint and the log.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

async fn write_checkpoint(
    delivery: &Mutex<Delivery>,
    path: &std::path::Path,
    metrics: &Metrics,
    health: &Health,
    force: bool,
) {
    let cp = {
        let mut d = delivery.lock().unwrap_or_else(|p| p.into_inner());
        // Before the reader's first scan the state is incomplete: keep the previous file.
        if force && d.is_ready() {
            Some(d.checkpoint())
        } else {
            d.take_checkpoint()
        }
    };
    let Some(cp) = cp else { return };
    let path = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || cp.store(&path)).await;
    match result {
        Ok(Ok(())) => {
            metrics.checkpoint_writes.inc();
            health.checkpoint_written();
        }
        Ok(Err(e)) => {
            metrics.checkpoint_errors.inc();
            health.checkpoint_failed(std::time::Instant::now(), e.to_string());
            tracing::error!(error = %e, "checkpoint write failed; will retry");
            // Make the next tick try again.
            delivery
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .mark_changed();
        }
        Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
    }
}
