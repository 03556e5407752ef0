//! The AWS Lambda entry point: every EventBridge event (CloudTrail
//! `ChangeResourceRecordSets`, or a schedule) triggers one full resync.
//!
//! The event is logged and otherwise ignored: the run reads Route53 itself, so a missed,
//! duplicated or reordered event cannot leave the targets wrong. Failures are returned to the
//! runtime as errors (so Lambda records them and retries asynchronous invocations); nothing
//! here exits the process.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::config::Config;
use crate::sync::{self, Outcome, SyncError};

impl From<SyncError> for Diagnostic {
    fn from(e: SyncError) -> Diagnostic {
        let error_type = match &e {
            SyncError::Route53(_) => "Route53Error",
            SyncError::Kube(_) => "KubernetesError",
            SyncError::Edit { .. } => "PrometheusConfigError",
            SyncError::ConflictRetriesExhausted { .. } => "ConflictRetriesExhausted",
            SyncError::Reload { .. } => "ReloadError",
        };
        Diagnostic {
            error_type: error_type.to_string(),
            error_message: e.to_string(),
        }
    }
}

/// What the event says, for the log (CloudTrail's `detail`).
pub fn describe_event(event: &EventBridgeEvent<Value>) -> String {
    let detail = &event.detail;
    let event_name = detail
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or("-");
    let zone = detail
        .pointer("/requestParameters/hostedZoneId")
        .and_then(Value::as_str)
        .unwrap_or("-");
    let who = detail
        .pointer("/userIdentity/arn")
        .and_then(Value::as_str)
        .unwrap_or("-");
    format!(
        "source={} detail-type={} eventName={event_name} hostedZoneId={zone} by={who}",
        event.source, event.detail_type
    )
}

/// Handles one invocation.
pub async fn handle(
    cfg: &Config,
    sdk: &aws_config::SdkConfig,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<Outcome, SyncError> {
    tracing::info!(request_id = %event.context.request_id, event = %describe_event(&event.payload), "resync triggered");
    let outcome = sync::run_once(cfg, sdk, false).await?;
    tracing::info!(
        written = outcome.written,
        changed = outcome.changed,
        attempts = outcome.attempts,
        federation_targets = outcome.federation_targets,
        probe_targets = ?outcome.probe_targets,
        "resync done"
    );
    if !outcome.diff.is_empty() {
        tracing::info!(diff = %outcome.diff, "prometheus.yml changed");
    }
    Ok(outcome)
}

/// Runs the Lambda runtime loop until the runtime stops it.
pub async fn run(cfg: Config) -> Result<(), lambda_runtime::Error> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let (cfg, sdk) = (&cfg, &sdk);
    lambda_runtime::run(service_fn(move |event| handle(cfg, sdk, event))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudtrail_event_is_parsed_and_described() {
        let json = r#"{
          "version": "0", "id": "1", "detail-type": "AWS API Call via CloudTrail",
          "source": "aws.route53", "account": "123456789012", "time": "2026-11-24T16:00:00Z",
          "region": "us-east-1", "resources": [],
          "detail": {
            "eventSource": "route53.amazonaws.com", "eventName": "ChangeResourceRecordSets",
            "userIdentity": {"arn": "arn:aws:iam::123456789012:role/cluster-creator"},
            "requestParameters": {"hostedZoneId": "Z0123", "changeBatch": {"changes": []}}
          }
        }"#;
        let event: EventBridgeEvent<Value> = serde_json::from_str(json).unwrap();
        let d = describe_event(&event);
        assert!(d.contains("eventName=ChangeResourceRecordSets"), "{d}");
        assert!(d.contains("hostedZoneId=Z0123"), "{d}");
        assert!(
            d.contains("by=arn:aws:iam::123456789012:role/cluster-creator"),
            "{d}"
        );
    }

    #[test]
    fn scheduled_event_is_accepted() {
        let json = r#"{"version":"0","id":"2","detail-type":"Scheduled Event","source":"aws.events",
          "account":"1","time":"2026-11-24T16:00:00Z","region":"us-east-1","resources":[],"detail":{}}"#;
        let event: EventBridgeEvent<Value> = serde_json::from_str(json).unwrap();
        assert!(describe_event(&event).contains("eventName=-"));
    }

    #[test]
    fn errors_become_typed_diagnostics() {
        let d: Diagnostic = SyncError::ConflictRetriesExhausted {
            configmap: "m/p".into(),
            attempts: 6,
        }
        .into();
        assert_eq!(d.error_type, "ConflictRetriesExhausted");
        assert!(d.error_message.contains("6 write attempts"));
    }
}
