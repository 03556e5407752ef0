//! The stall watchdog behind `/healthz`: events wait, none has been acknowledged for
//! `telemetry.stall_timeout`, and Elasticsearch answers its health probe (green or yellow), so
//! the agent itself is wedged and a restart is what helps. An Elasticsearch that is down,
//! unreachable or red is an outage, not a wedge: the verdict stays healthy (a DaemonSet
//! restarting everywhere during an outage would only add load). Must not block the runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sink::elasticsearch::service::Service;
use crate::sink::elasticsearch::sink::Output;
use crate::telemetry::Metrics;
use crate::telemetry::health::Health;

/// How long the watchdog's own health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs until aborted.
/// `output`: the output of the configuration in force (a reload replaces it).
pub async fn run(
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    output: tokio::sync::watch::Receiver<Arc<Output>>,
) {
    let timeout = health.stall_timeout();
    let tick = (timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(5));
    let mut delivered = metrics.events_delivered.get();
    let mut progress_at = Instant::now();
    let mut stalled = false;
    loop {
        tokio::time::sleep(tick).await;
        let now = Instant::now();
        let d = metrics.events_delivered.get();
        let waiting = metrics.events_encoded.get().saturating_sub(d);
        if d != delivered || waiting == 0 {
            delivered = d;
            progress_at = now;
        }
        let quiet = now.duration_since(progress_at);
        let verdict = if quiet < timeout {
            None
        } else {
            let current = output.borrow().clone();
            match probe(&current.service).await {
                Ok(status) => Some(format!(
                    "no batch acknowledged for {}s (telemetry.stall_timeout {}s) although {waiting} \
                     events wait and Elasticsearch answers its health probe (status {status})",
                    quiet.as_secs(),
                    timeout.as_secs()
                )),
                Err(why) => {
                    tracing::debug!(%why, "no progress, but Elasticsearch is not healthy: an outage, not a wedge");
                    None
                }
            }
        };
        match (&verdict, stalled) {
            (Some(v), false) => {
                tracing::error!(reason = %v, "the agent is stalled: /healthz fails")
            }
            (None, true) => tracing::info!("batches are acknowledged again: /healthz is ok"),
            _ => {}
        }
        stalled = verdict.is_some();
        health.set_stalled(verdict);
    }
}

/// `Ok(status)` when the cluster answers `_cluster/health` with green or yellow.
async fn probe(service: &Service) -> Result<String, String> {
    let call = service.request(reqwest::Method::GET, "_cluster/health?local=true", None);
    let (code, body) = tokio::time::timeout(PROBE_TIMEOUT, call)
        .await
        .map_err(|_| "the health probe timed out".to_string())??;
    if !(200..300).contains(&code) {
        return Err(format!("the health probe answered HTTP {code}"));
    }
    let status = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_string))
        .unwrap_or_default();
    match status.as_str() {
        "green" | "yellow" => Ok(status),
        other => Err(format!("the cluster is `{other}`")),
    }
}
