//! The SQS batch runner: each message gets a [`Fate`], the runner parks what must be parked
//! (one [`Parker::park`] for every function) and answers with the partial batch response, so
//! one bad message never holds back another and nothing is deleted that was not delivered or
//! parked: a message whose parking failed is handed back.
//!
//! Every function triggered by SQS reads a message's correlation id here ([`correlation_id`]),
//! and every log line about the message carries it as the field `correlation_id`.

use std::collections::BTreeMap;
use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use futures::future::join_all;
use steadfast_domain::ports::{EventBus, ParkedMessage, Parking, PortResult};
use steadfast_domain::{FlowEvent, CORRELATION_ATTRIBUTE};
use tracing::warn;

/// How one message of a batch ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Done with, as the label says (`delivered`, `stored`, `duplicate`, ...): deleted from
    /// the queue.
    Done(&'static str),
    /// Never deliverable: parked with its reason, then deleted.
    Park {
        reason: String,
        identity: Option<String>,
    },
    /// Back to the queue, to be received again.
    HandBack,
}

/// What a batch came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Messages done with, by label.
    pub done: BTreeMap<&'static str, u32>,
    pub parked: u32,
    pub handed_back: u32,
}

impl Counts {
    /// Messages done with under `label`.
    pub fn done(&self, label: &str) -> u32 {
        self.done.get(label).copied().unwrap_or(0)
    }
}

/// Where messages are parked, and who hears of it.
pub struct Parker<'a, P, E> {
    pub parking: &'a P,
    pub events: &'a E,
    /// Recorded on parked messages (queue or pipeline name).
    pub source: &'a str,
    /// Named in the `MessageParked` event.
    pub target: &'a str,
}

impl<'a, P, E> Parker<'a, P, E> {
    /// Parks for `source`, named as the target of its events too (a pipeline's own input).
    pub fn of_source(parking: &'a P, events: &'a E, source: &'a str) -> Self {
        Parker {
            parking,
            events,
            source,
            target: source,
        }
    }
}

impl<P: Parking, E: EventBus> Parker<'_, P, E> {
    /// Runs `one` on every message concurrently and carries out the fates.
    pub async fn run<'m, F, Fut>(
        &self,
        messages: &'m [SqsMessage],
        one: F,
    ) -> (SqsBatchResponse, Counts)
    where
        F: Fn(&'m SqsMessage) -> Fut,
        Fut: Future<Output = Fate>,
    {
        let fates = join_all(messages.iter().map(one)).await;
        self.finish(messages, fates).await
    }

    /// Carries out `fates` (one per message, in order): parks, and answers with the messages
    /// handed back (those whose parking failed included).
    pub async fn finish(
        &self,
        messages: &[SqsMessage],
        fates: Vec<Fate>,
    ) -> (SqsBatchResponse, Counts) {
        let ends = join_all(messages.iter().zip(fates).map(|(m, fate)| async move {
            match fate {
                Fate::Park { reason, identity } => {
                    match self.park(Parcel::of(m), identity.as_deref(), &reason).await {
                        Ok(()) => Fate::Park { reason, identity },
                        Err(_) => Fate::HandBack,
                    }
                }
                other => other,
            }
        }))
        .await;
        let mut counts = Counts::default();
        let mut failures = Vec::new();
        for (m, end) in messages.iter().zip(ends) {
            match end {
                Fate::Done(label) => *counts.done.entry(label).or_insert(0) += 1,
                Fate::Park { .. } => counts.parked += 1,
                Fate::HandBack => {
                    counts.handed_back += 1;
                    failures.push(message_id(m));
                }
            }
        }
        (response(failures), counts)
    }

    /// Parks a message with `reason` and emits `MessageParked`. An error means it was not
    /// parked: it must go back to its queue, to be parked on a later receive.
    pub async fn park(
        &self,
        m: Parcel<'_>,
        identity: Option<&str>,
        reason: &str,
    ) -> PortResult<()> {
        let parked = ParkedMessage {
            source: self.source.to_owned(),
            source_arn: m.source_arn.map(str::to_owned),
            message_id: m.message_id.to_owned(),
            correlation_id: m.correlation_id.to_owned(),
            identity: identity.map(str::to_owned),
            reason: reason.to_owned(),
            parked_at_ms: crate::now_ms(),
            body: m.body.to_owned(),
        };
        if let Err(e) = self.parking.park(&parked).await {
            warn!(source = self.source, message_id = m.message_id, correlation_id = m.correlation_id, reason, error = %e, outcome = "handed_back", "parking failed; the message comes back and is parked then");
            return Err(e);
        }
        warn!(
            source = self.source,
            message_id = m.message_id,
            correlation_id = m.correlation_id,
            identity,
            reason,
            outcome = "parked",
            "message parked"
        );
        let event = FlowEvent::MessageParked {
            target: self.target.to_owned(),
            identity: identity.unwrap_or_default().to_owned(),
            message_id: m.message_id.to_owned(),
            reason: reason.to_owned(),
            correlation_id: Some(m.correlation_id.to_owned()),
        };
        if let Err(e) = self.events.emit(&event).await {
            warn!(source = self.source, correlation_id = m.correlation_id, error = %e, "MessageParked event not emitted");
        }
        Ok(())
    }
}

/// What is kept of a parked message: its ids, its body unchanged, and its queue.
#[derive(Debug, Clone, Copy)]
pub struct Parcel<'a> {
    pub message_id: &'a str,
    pub correlation_id: &'a str,
    pub body: &'a str,
    pub source_arn: Option<&'a str>,
}

impl<'a> Parcel<'a> {
    pub fn of(m: &'a SqsMessage) -> Self {
        Parcel {
            message_id: m.message_id.as_deref().unwrap_or_default(),
            correlation_id: correlation_id(m),
            body: m.body.as_deref().unwrap_or_default(),
            source_arn: m.event_source_arn.as_deref(),
        }
    }
}

/// Runs `one` on each message in turn, for a function with no parking place (a message it
/// can never use is dropped, `Done`): answers with the messages handed back.
pub async fn each<'m, F, Fut>(messages: &'m [SqsMessage], one: F) -> SqsBatchResponse
where
    F: Fn(&'m SqsMessage) -> Fut,
    Fut: Future<Output = Fate>,
{
    let mut failures = Vec::new();
    for m in messages {
        if !matches!(one(m).await, Fate::Done(_)) {
            failures.push(message_id(m));
        }
    }
    response(failures)
}

/// The SQS message id (empty if SQS sent none).
pub fn message_id(m: &SqsMessage) -> String {
    m.message_id.clone().unwrap_or_default()
}

/// The message's correlation id: its `correlation_id` message attribute (of a `String` type)
/// when the sender set a usable one, otherwise its SQS message id
/// ([`steadfast_domain::correlation_id`]).
pub fn correlation_id(m: &SqsMessage) -> &str {
    let sent = m
        .message_attributes
        .get(CORRELATION_ATTRIBUTE)
        .filter(|a| {
            a.data_type
                .as_deref()
                .is_none_or(|t| t.starts_with("String"))
        })
        .and_then(|a| a.string_value.as_deref());
    steadfast_domain::correlation_id(sent, m.message_id.as_deref().unwrap_or_default())
}

/// How often SQS has handed this message out, this time included.
pub fn receive_count(m: &SqsMessage) -> u32 {
    m.attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Every message back to the queue.
pub fn hand_back_all(messages: &[SqsMessage]) -> (SqsBatchResponse, Counts) {
    let counts = Counts {
        handed_back: messages.len() as u32,
        ..Counts::default()
    };
    (response(messages.iter().map(message_id).collect()), counts)
}

fn response(failures: Vec<String>) -> SqsBatchResponse {
    let mut r = SqsBatchResponse::default();
    r.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::fakes::{MemBus, MemParking};

    fn messages(n: usize) -> Vec<SqsMessage> {
        (0..n)
            .map(|i| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m{i}"));
                m.body = Some(format!("body {i}"));
                m
            })
            .collect()
    }

    fn handed_back(r: &SqsBatchResponse) -> Vec<&str> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn each_fate_is_carried_out_and_only_hand_backs_are_answered() {
        let (parking, bus) = (MemParking::default(), MemBus::default());
        let parker = Parker {
            parking: &parking,
            events: &bus,
            source: "orders",
            target: "portal",
        };
        let batch = messages(3);
        let (r, counts) = parker
            .run(&batch, |m| async move {
                match m.message_id.as_deref() {
                    Some("m0") => Fate::Done("stored"),
                    Some("m1") => Fate::Park {
                        reason: "not JSON".into(),
                        identity: None,
                    },
                    _ => Fate::HandBack,
                }
            })
            .await;
        assert_eq!(handed_back(&r), vec!["m2"]);
        assert_eq!(
            (counts.done("stored"), counts.parked, counts.handed_back),
            (1, 1, 1)
        );
        let parked = parking.all();
        assert_eq!(parked.len(), 1);
        assert_eq!(
            (parked[0].body.as_str(), parked[0].reason.as_str()),
            ("body 1", "not JSON")
        );
        assert_eq!(bus.types().len(), 1, "MessageParked emitted");
        // AND the parked copy and its event carry the message's correlation id
        assert_eq!(parked[0].correlation_id, "m1");
        assert!(matches!(
            &bus.0.lock().unwrap()[0],
            FlowEvent::MessageParked { correlation_id: Some(c), .. } if c == "m1"
        ));
    }

    /// A message as Lambda hands it over, with a `correlation_id` attribute of `data_type`.
    fn sent_with(data_type: &str, value: &str) -> SqsMessage {
        serde_json::from_value(serde_json::json!({
            "messageId": "m-9",
            "body": "{}",
            "messageAttributes": {
                "correlation_id": {"stringValue": value, "dataType": data_type}
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_correlation_id_is_the_senders_attribute_or_else_the_message_id() {
        assert_eq!(
            correlation_id(&sent_with("String", "order-flow-42")),
            "order-flow-42"
        );
        assert_eq!(correlation_id(&sent_with("String.trace", "t-1")), "t-1");
        assert_eq!(correlation_id(&sent_with("Number", "42")), "m-9");
        assert_eq!(correlation_id(&sent_with("String", "has a space")), "m-9");
        assert_eq!(correlation_id(&messages(1)[0]), "m0");
        assert_eq!(
            Parcel::of(&sent_with("String", "c-7")).correlation_id,
            "c-7"
        );
    }

    #[tokio::test]
    async fn a_parked_message_keeps_the_senders_correlation_id() {
        let (parking, bus) = (MemParking::default(), MemBus::default());
        let parker = Parker::of_source(&parking, &bus, "orders");
        let batch = vec![sent_with("String", "flow-1")];
        let fates = vec![Fate::Park {
            reason: "bad".into(),
            identity: None,
        }];
        parker.finish(&batch, fates).await;
        let parked = parking.all();
        assert_eq!(
            (
                parked[0].message_id.as_str(),
                parked[0].correlation_id.as_str()
            ),
            ("m-9", "flow-1")
        );
    }

    #[tokio::test]
    async fn a_message_that_cannot_be_parked_is_handed_back_not_deleted() {
        let (parking, bus) = (MemParking::default(), MemBus::default());
        parking.fail_next(1);
        let parker = Parker {
            parking: &parking,
            events: &bus,
            source: "orders",
            target: "portal",
        };
        let batch = messages(2);
        let fates = vec![
            Fate::Park {
                reason: "bad".into(),
                identity: Some("A".into()),
            },
            Fate::Done("stored"),
        ];
        let (r, counts) = parker.finish(&batch, fates).await;
        assert_eq!(handed_back(&r), vec!["m0"]);
        assert_eq!(
            (counts.done("stored"), counts.parked, counts.handed_back),
            (1, 0, 1)
        );
        assert!(bus.types().is_empty(), "nothing parked, nothing announced");
    }
}
