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

/// The outbox's publisher: one PutEvents call per batch, every entry's result checked.
pub struct EventBridgePublisher {
    pub client: aws_sdk_eventbridge::Client,
    pub bus: String,
    /// `source` of every event, e.g. `steadfast.outbox`.
    pub source: String,
}

impl steadfast_domain::ports::Publisher for EventBridgePublisher {
    async fn publish(
        &self,
        entries: &[steadfast_domain::ports::Outgoing],
    ) -> Vec<Result<(), String>> {
        let request: Vec<PutEventsRequestEntry> = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(&self.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .build()
            })
            .collect();
        let out = match self
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let why = format!("PutEvents to {}: {}", self.bus, describe(&e));
                return entries.iter().map(|_| Err(why.clone())).collect();
            }
        };
        let answered = out.entries.unwrap_or_default();
        entries
            .iter()
            .enumerate()
            .map(|(i, _)| match answered.get(i) {
                Some(a) if a.error_code.is_none() && a.event_id.is_some() => Ok(()),
                Some(a) => Err(format!(
                    "PutEvents entry refused: {}: {}",
                    a.error_code.as_deref().unwrap_or("no event id"),
                    a.error_message.as_deref().unwrap_or("")
                )),
                None => Err("PutEvents answered fewer entries than sent".to_owned()),
            })
            .collect()
    }
}
