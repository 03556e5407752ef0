//! The `telemetry:` configuration section: where `/metrics` and `/healthz` are served. Imports
//! nothing of the crate but the configuration vocabulary ([`crate::settings`]).

use std::net::SocketAddr;

use serde::Deserialize;

use crate::settings::{ConfigError, invalid};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    #[serde(default = "default_listen")]
    listen: Option<String>,
}

impl Default for RawTelemetry {
    fn default() -> Self {
        RawTelemetry {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> Option<String> {
    Some("127.0.0.1:9890".to_string())
}

/// Validated `telemetry:`.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Address of the `/metrics` and `/healthz` endpoint; `None` switches it off.
    pub listen: Option<SocketAddr>,
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
    Ok(TelemetryConfig { listen })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_bad_listen() {
        crate::settings::expect_refused(
            crate::settings::section("telemetry", "telemetry:\n  listen: nowhere\n", validate),
            "telemetry.listen",
        );
    }
}
