//! Events to the EventBridge bus: the breaker's flow events (source `steadfast.breaker`) and the
//! outbox's publisher. Every entry of the answer is checked: a PutEvents call can succeed while
//! an entry failed.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use steadfast_domain::ports::{EventBus, Outgoing, PortError, PortResult, Publisher};
use steadfast_domain::FlowEvent;

use crate::describe;

pub const SOURCE: &str = "steadfast.breaker";

/// One PutEvents call; one result per entry, in order. A failed call fails every entry.
async fn put_events(
    client: &aws_sdk_eventbridge::Client,
    bus: &str,
    source: &str,
    entries: &[Outgoing],
) -> Vec<Result<(), String>> {
    let request: Vec<PutEventsRequestEntry> = entries
        .iter()
        .map(|e| {
            PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(source)
                .detail_type(&e.detail_type)
                .detail(&e.detail)
                .build()
        })
        .collect();
    let out = match client.put_events().set_entries(Some(request)).send().await {
        Ok(out) => out,
        Err(e) => {
            let why = format!("PutEvents to {bus}: {}", describe(&e));
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

pub struct EventBridgeBus {
    pub client: aws_sdk_eventbridge::Client,
    pub bus: String,
}

impl EventBus for EventBridgeBus {
    async fn emit(&self, event: &FlowEvent) -> PortResult<()> {
        let detail = serde_json::to_string(event).map_err(|e| PortError::new("encode event", e))?;
        let entry = Outgoing {
            detail_type: event.detail_type().to_owned(),
            detail,
        };
        match put_events(&self.client, &self.bus, SOURCE, &[entry])
            .await
            .pop()
        {
            Some(Ok(())) => Ok(()),
            other => Err(PortError::new(
                format!("PutEvents {} to {}", event.detail_type(), self.bus),
                other.and_then(Result::err).unwrap_or_default(),
            )),
        }
    }
}

/// The outbox's publisher: one PutEvents call per batch, every entry's result checked.
pub struct EventBridgePublisher {
    pub client: aws_sdk_eventbridge::Client,
    pub bus: String,
    /// `source` of every event, e.g. `steadfast.outbox`.
    pub source: String,
}

impl Publisher for EventBridgePublisher {
    async fn publish(&self, entries: &[Outgoing]) -> Vec<Result<(), String>> {
        put_events(&self.client, &self.bus, &self.source, entries).await
    }
}
