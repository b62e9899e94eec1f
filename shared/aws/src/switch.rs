//! The flow switch: the event source mapping from the guarded queue to the processor. Found
//! by function and queue ARN on first use and remembered, so the template needs no UUID.

use steadfast_domain::ports::{FlowSwitch, PortError, PortResult};
use tokio::sync::OnceCell;

use crate::describe;

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
                        PortError::new(
                            format!("ListEventSourceMappings of {}", self.function),
                            describe(&e),
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
    async fn set_enabled(&self, enabled: bool) -> PortResult<()> {
        let uuid = self.uuid().await?;
        self.client
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(enabled)
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    format!("UpdateEventSourceMapping {uuid} enabled={enabled}"),
                    describe(&e),
                )
            })?;
        Ok(())
    }
}
