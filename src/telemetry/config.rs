//! The `telemetry:` configuration section: where `/metrics`, `/healthz` and `/readyz` are
//! served, and how long the agent may make no progress before `/healthz` fails. Imports
//! nothing of the crate but the configuration vocabulary ([`crate::settings`]).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::settings::{ConfigError, HumanDuration, invalid};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    #[serde(default = "default_listen")]
    listen: Option<String>,
    #[serde(default = "default_stall_timeout")]
    stall_timeout: HumanDuration,
    #[serde(default)]
    tap: bool,
}

impl Default for RawTelemetry {
    fn default() -> Self {
        RawTelemetry {
            listen: default_listen(),
            stall_timeout: default_stall_timeout(),
            tap: false,
        }
    }
}

fn default_stall_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

fn default_listen() -> Option<String> {
    Some("127.0.0.1:9890".to_string())
}

/// Validated `telemetry:`.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Address of the `/metrics`, `/healthz` and `/readyz` endpoint; `None` switches it off.
    pub listen: Option<SocketAddr>,
    /// `/healthz` fails when no batch was acknowledged for this long while events wait and
    /// Elasticsearch answers its health probe, or when checkpoint writes fail for this long.
    pub stall_timeout: Duration,
    /// `/tap` streams copies of the documents being shipped (`sluice tap`). Off by default:
    /// it exposes log content to whoever reaches the listener.
    pub tap: bool,
}

pub(crate) fn validate(raw: RawTelemetry) -> Result<TelemetryConfig, ConfigError> {
    let listen =
        match raw.listen {
            None => None,
            Some(s) if s.is_empty() || s == "off" => None,
            Some(s) => Some(s.parse::<SocketAddr>().map_err(|e| {
                invalid("telemetry.listen", format!("`{s}` is not host:port ({e})"))
            })?),
        };
    if raw.stall_timeout.0 < Duration::from_secs(1) {
        return Err(invalid(
            "telemetry.stall_timeout",
            "must be at least 1s (it is how long the agent may make no progress)",
        ));
    }
    if raw.tap && listen.is_none() {
        return Err(invalid(
            "telemetry.tap",
            "needs telemetry.listen: the tap is served on the telemetry endpoint",
        ));
    }
    Ok(TelemetryConfig {
        listen,
        stall_timeout: raw.stall_timeout.0,
        tap: raw.tap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_tap_without_listen() {
        crate::settings::expect_refused(
            crate::settings::section(
                "telemetry",
                "telemetry:\n  listen: off\n  tap: true\n",
                validate,
            ),
            "telemetry.tap",
        );
    }

    #[test]
    fn validate_rejects_bad_listen() {
        crate::settings::expect_refused(
            crate::settings::section("telemetry", "telemetry:\n  listen: nowhere\n", validate),
            "telemetry.listen",
        );
    }

    #[test]
    fn validate_rejects_a_stall_timeout_below_a_second() {
        crate::settings::expect_refused(
            crate::settings::section(
                "telemetry",
                "telemetry:\n  stall_timeout: 500ms\n",
                validate,
            ),
            "telemetry.stall_timeout",
        );
        let c =
            crate::settings::section("telemetry", "telemetry:\n  stall_timeout: 2m\n", validate)
                .unwrap();
        assert_eq!(c.stall_timeout, Duration::from_secs(120));
        let d = crate::settings::section("telemetry", "telemetry: {}\n", validate).unwrap();
        assert_eq!(d.stall_timeout, Duration::from_secs(300));
    }
}
