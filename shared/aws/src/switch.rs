//! The flow switch: the event source mapping from the guarded queue to the processor. Found
//! by function and queue ARN on first use and remembered, so the template needs no UUID.
//!
//! A mapping that is still changing (AWS answers ResourceInUseException while it is Enabling,
//! Disabling or Updating) is asked again with a doubling pause, 0.5 s up to 8 s, about 15 s
//! in all; the watchdog covers anything longer.

use std::time::Duration;

use aws_sdk_lambda::types::ScalingConfig;
use steadfast_domain::ports::{FlowSwitch, PortError, PortResult, SwitchReading, SwitchState};
use tokio::sync::OnceCell;

pub struct EsmSwitch {
    pub client: aws_sdk_lambda::Client,
    /// The processor function (name or ARN).
    pub function: String,
    /// The guarded queue's ARN.
    pub queue_arn: String,
    uuid: OnceCell<String>,
}

impl EsmSwitch {
    pub fn new(client: aws_sdk_lambda::Client, function: String, queue_arn: String) -> Self {
        EsmSwitch {
            client,
            function,
            queue_arn,
            uuid: OnceCell::new(),
        }
    }

    async fn uuid(&self) -> PortResult<&String> {
        self.uuid
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .list_event_source_mappings()
                    .function_name(&self.function)
                    .event_source_arn(&self.queue_arn)
                    .send()
                    .await
                    .map_err(|e| {
                        crate::error::port_error(
                            format!("ListEventSourceMappings of {}", self.function),
                            e,
                        )
                    })?;
                out.event_source_mappings
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|m| m.uuid)
                    .ok_or_else(|| {
                        PortError::new(
                            "find the flow's event source mapping",
                            format!("none from {} to {}", self.queue_arn, self.function),
                        )
                    })
            })
            .await
    }
}

impl FlowSwitch for EsmSwitch {
    async fn read(&self) -> PortResult<SwitchReading> {
        let uuid = self.uuid().await?;
        let out = self
            .client
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .map_err(|e| crate::error::port_error(format!("GetEventSourceMapping {uuid}"), e))?;
        let state = match out.state.as_deref() {
            Some("Enabled") => SwitchState::Enabled,
            Some("Disabled") => SwitchState::Disabled,
            other => SwitchState::Changing(other.unwrap_or("unknown").to_owned()),
        };
        Ok(SwitchReading {
            state,
            max_concurrency: out
                .scaling_config
                .and_then(|c| c.maximum_concurrency)
                .and_then(|n| u32::try_from(n).ok()),
        })
    }

    async fn set(&self, enabled: Option<bool>, max_concurrency: Option<u32>) -> PortResult<()> {
        let uuid = self.uuid().await?;
        let mut pause = Duration::from_millis(500);
        loop {
            let mut request = self
                .client
                .update_event_source_mapping()
                .uuid(uuid)
                .set_enabled(enabled);
            if let Some(n) = max_concurrency {
                request = request.scaling_config(
                    ScalingConfig::builder()
                        .maximum_concurrency(i32::try_from(n).unwrap_or(i32::MAX))
                        .build(),
                );
            }
            match request.send().await {
                Ok(_) => return Ok(()),
                Err(e)
                    if pause <= Duration::from_secs(8)
                        && e.as_service_error()
                            .is_some_and(|s| s.is_resource_in_use_exception()) =>
                {
                    tracing::info!(
                        uuid,
                        ?enabled,
                        pause_ms = pause.as_millis() as u64,
                        "mapping still changing; asking again"
                    );
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => {
                    return Err(crate::error::port_error(format!("UpdateEventSourceMapping {uuid} enabled={enabled:?} max_concurrency={max_concurrency:?}"), e))
                }
            }
        }
    }
}
