//! What reached the stack's bus: every event the observer queue received, and the
//! application events the approval queue (the consumer) received.

use anyhow::Result;
use serde_json::Value;

use super::Local;

/// An event as the observer queue received it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub detail_type: String,
    pub detail: Value,
    pub received_ms: u64,
}

/// An application event as the approval queue (the consumer) received it.
#[derive(Debug, Clone)]
pub struct Approval {
    pub event_id: String,
    pub application_id: String,
    /// When the outbox record was written (the event's `recordedAt`), ms.
    pub recorded_ms: u64,
    /// When the event reached the consumer queue (`SentTimestamp`), ms.
    pub arrived_ms: u64,
    pub detail: Value,
}

/// An EventBridge event as a target queue received it (`null` if the body is not JSON), and
/// its `detail` (an object, or JSON text of one, depending on the emulator).
fn parse_event(body: &str) -> (Value, Value) {
    let event: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let detail = match event.get("detail") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(d) => d.clone(),
        None => Value::Null,
    };
    (event, detail)
}

impl Local {
    /// Drains the observer queue and returns every event seen so far, oldest first.
    pub async fn events(&self) -> Result<Vec<Observed>> {
        let now = crate::now_ms();
        for body in self.emu.drain(&self.observer_url, 0).await? {
            let (v, detail) = parse_event(&body);
            self.events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Observed {
                    detail_type: v
                        .get("detail-type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    detail,
                    received_ms: now,
                });
        }
        Ok(self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    pub async fn count_events(&self, detail_type: &str) -> Result<usize> {
        Ok(self
            .events()
            .await?
            .iter()
            .filter(|e| e.detail_type == detail_type)
            .count())
    }

    /// Drains the approval queue (the consumer subscribed to the bus through the template's
    /// rule) and returns every application event received so far, in arrival order.
    pub async fn approvals(&self) -> Result<Vec<Approval>> {
        let url = self.queue_url("ApprovalQueue")?;
        let got = self.emu.drain_timed(&url, 0).await?;
        let mut all = self.approvals.lock().unwrap_or_else(|e| e.into_inner());
        for (body, sent) in got {
            let (_, detail) = parse_event(&body);
            let text = |k: &str| detail[k].as_str().unwrap_or_default().to_owned();
            all.push(Approval {
                event_id: text("eventId"),
                application_id: text("applicationId"),
                recorded_ms: steadfast_domain::outbox::parse_iso_ms(&text("recordedAt"))
                    .unwrap_or(0),
                arrived_ms: sent,
                detail,
            });
        }
        all.sort_by_key(|a| a.arrived_ms);
        Ok(all.clone())
    }
}
