//! Events to the EventBridge bus: the breaker's flow events (source `steadfast.breaker`) and the
//! outbox's publisher. Every entry of the answer is checked: a PutEvents call can succeed while
//! an entry failed.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use steadfast_domain::ports::{ErrorKind, EventBus, Outgoing, PortError, PortResult, Publisher};
use steadfast_domain::FlowEvent;

pub const SOURCE: &str = "steadfast.breaker";

/// One PutEvents call; one result per entry, in order. A failed call fails every entry.
async fn put_events(
    client: &aws_sdk_eventbridge::Client,
    bus: &str,
    source: &str,
    entries: &[Outgoing],
) -> Vec<PortResult<()>> {
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
            let e = crate::error::port_error(format!("PutEvents to {bus}"), e);
            return entries.iter().map(|_| Err(e.clone())).collect();
        }
    };
    let answered = out.entries.unwrap_or_default();
    entries
        .iter()
        .enumerate()
        .map(|(i, _)| match answered.get(i) {
            Some(a) if a.error_code.is_none() && a.event_id.is_some() => Ok(()),
            Some(a) => {
                let code = a.error_code.as_deref().unwrap_or("no event id");
                let why = format!("{code}: {}", a.error_message.as_deref().unwrap_or(""));
                Err(PortError::of(
                    entry_kind(code),
                    "PutEvents entry refused",
                    why,
                ))
            }
            None => Err(PortError::new(
                "PutEvents",
                "answered fewer entries than sent",
            )),
        })
        .collect()
}

/// The kind of a refused PutEvents entry: one the bus refuses as malformed can never be
/// published; anything else (an internal failure, a throttle) may be later.
fn entry_kind(code: &str) -> ErrorKind {
    match code {
        "MalformedDetail" | "InvalidArgument" | "ValidationException" => ErrorKind::Validation,
        other => crate::error::kind_of(other),
    }
}

pub struct EventBridgeBus {
    pub client: aws_sdk_eventbridge::Client,
    pub bus: String,
}

impl EventBus for EventBridgeBus {
    async fn emit(&self, event: &FlowEvent) -> PortResult<()> {
        let detail = serde_json::to_string(event)
            .map_err(|e| PortError::new("encode event", &e).caused_by(e))?;
        let entry = Outgoing {
            detail_type: event.detail_type().to_owned(),
            detail,
        };
        match put_events(&self.client, &self.bus, SOURCE, &[entry])
            .await
            .pop()
        {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(e),
            None => Err(PortError::new(
                format!("PutEvents {} to {}", event.detail_type(), self.bus),
                "no answer",
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
    async fn publish(&self, entries: &[Outgoing]) -> Vec<PortResult<()>> {
        put_events(&self.client, &self.bus, &self.source, entries).await
    }
}
