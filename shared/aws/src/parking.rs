//! The parking queue: messages that will never be delivered. The body is the original one,
//! unchanged, so a parked message can be replayed to its source as it was (SQS's own message
//! move task, or a receive-and-send); why and whence travel as message attributes:
//!
//! | attribute | value |
//! |---|---|
//! | `reason` | why it was parked (at most 1 000 characters) |
//! | `source` | the pipeline's source name (`orders`, `applications`, `erp-records`) |
//! | `source_arn` | the ARN of the queue it came from, when it came from one |
//! | `message_id` | its SQS message id at the source |
//! | `correlation_id` | its correlation id (the sender's `correlation_id` attribute, or the message id) |
//! | `identity` | its business identity, when it has one (at most 1 000 bytes) |
//! | `parked_at_ms` | when it was parked, ms since the Unix epoch |

use aws_sdk_sqs::types::MessageAttributeValue;
use steadfast_domain::ports::{ParkedMessage, Parking, PortError, PortResult};

use crate::error::port_error;

pub struct SqsParking {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// `text` cut to at most `max` bytes, on a character boundary, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `text` with every character SQS refuses in a message (controls other than tab and line
/// breaks, surrogates, U+FFFE/U+FFFF) replaced by U+FFFD, so any identity can be parked.
fn sqs_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' => c,
            c if c >= '\u{10000}' => c,
            _ => '\u{FFFD}',
        })
        .collect()
}

fn attribute(kind: &str, value: String) -> PortResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type(kind)
        .string_value(sqs_safe(&value))
        .build()
        .map_err(|e| PortError::new("build message attribute", e))
}

impl Parking for SqsParking {
    async fn park(&self, message: &ParkedMessage) -> PortResult<()> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .message_attributes("reason", attribute("String", cut(&message.reason, 1000))?)
            .message_attributes("source", attribute("String", message.source.clone())?)
            .message_attributes(
                "parked_at_ms",
                attribute("Number", message.parked_at_ms.to_string())?,
            );
        let optional = [
            ("source_arn", message.source_arn.clone()),
            ("message_id", Some(message.message_id.clone())),
            ("correlation_id", Some(message.correlation_id.clone())),
            (
                "identity",
                message.identity.as_deref().map(|i| cut(i, 1000)),
            ),
        ];
        for (name, value) in optional {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                send = send.message_attributes(name, attribute("String", v)?);
            }
        }
        send.send().await.map_err(|e| {
            port_error(
                format!("SendMessage {} to parking queue", message.message_id),
                e,
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn characters_sqs_refuses_are_replaced() {
        assert_eq!(
            super::sqs_safe("A\u{0}B\u{FFFE}\tö"),
            "A\u{FFFD}B\u{FFFD}\tö"
        );
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        assert_eq!(super::cut("short", 10), "short");
        let c = super::cut(&"ä".repeat(600), 1000);
        assert!(c.len() <= 1000 && c.ends_with('…'), "{}", c.len());
    }
}
