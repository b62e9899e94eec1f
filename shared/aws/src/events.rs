//! Events to the EventBridge bus, source `steadfast.breaker`. Every entry of the answer is
//! checked: a PutEvents call can succeed while an entry failed.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use steadfast_domain::ports::{EventBus, PortError, PortResult};
use steadfast_domain::FlowEvent;

use crate::describe;

pub const SOURCE: &str = "steadfast.breaker";

pub struct EventBridgeBus {
    pub client: aws_sdk_eventbridge::Client,
    pub bus: String,
}

impl EventBus for EventBridgeBus {
    async fn emit(&self, event: &FlowEvent) -> PortResult<()> {
        let detail = serde_json::to_string(event).map_err(|e| PortError::new("encode event", e))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(event.detail_type())
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    format!("PutEvents {} to {}", event.detail_type(), self.bus),
                    describe(&e),
                )
            })?;
        if out.failed_entry_count > 0 {
            let why = out
                .entries
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| {
                    e.error_code
                        .map(|c| format!("{c}: {}", e.error_message.unwrap_or_default()))
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(PortError::new(
                format!("PutEvents {} to {}", event.detail_type(), self.bus),
                why,
            ));
        }
        Ok(())
    }
}
