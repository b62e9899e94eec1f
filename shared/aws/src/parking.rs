//! The parking queue: messages that will never be delivered, whole, with their reason in the
//! body and in a message attribute, so an operator can read, fix and requeue them.

use aws_sdk_sqs::types::MessageAttributeValue;
use steadfast_domain::ports::{ParkedMessage, Parking, PortError, PortResult};

use crate::describe;

pub struct SqsParking {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl Parking for SqsParking {
    async fn park(&self, message: &ParkedMessage) -> PortResult<()> {
        let body = serde_json::to_string(message)
            .map_err(|e| PortError::new("encode parked message", e))?;
        let reason: String = message.reason.chars().take(256).collect();
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes(
                "reason",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(reason)
                    .build()
                    .map_err(|e| PortError::new("build reason attribute", e))?,
            )
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    format!("SendMessage {} to parking queue", message.message_id),
                    describe(&e),
                )
            })?;
        Ok(())
    }
}
