//! The guarded queue as the message probe uses it (`PROBE_MODE=message`): one message at a
//! time (a 2 s long poll), invisible while it is tried, deleted once delivered or parked,
//! visible again at once when the target is still sick. Nothing visible is told apart from an
//! empty queue by the queue's counts: orders handed back by the halt are still waiting.

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use steadfast_domain::ports::{PortResult, ProbeSource, Queued, Taken};
use steadfast_domain::{correlation_id, CORRELATION_ATTRIBUTE};

use crate::error::port_error;

pub struct SqsProbeSource {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
}

/// Long enough for one delivery with its ledger write; the flow's mapping is disabled anyway.
const INVISIBLE_SECONDS: i32 = 60;

impl SqsProbeSource {
    /// Nothing came in a long poll: empty, or only messages in flight or delayed?
    async fn nothing_visible(&self) -> PortResult<Taken> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| port_error("GetQueueAttributes for a probe", e))?;
        let a = out.attributes.unwrap_or_default();
        let waiting: u64 = a.values().filter_map(|v| v.parse::<u64>().ok()).sum();
        Ok(if waiting == 0 {
            Taken::Empty
        } else {
            Taken::Unseen { waiting }
        })
    }
}

impl ProbeSource for SqsProbeSource {
    async fn take(&self) -> PortResult<Taken> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(2)
            .visibility_timeout(INVISIBLE_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names(CORRELATION_ATTRIBUTE)
            .send()
            .await
            .map_err(|e| port_error("ReceiveMessage for a probe", e))?;
        let Some(m) = out.messages.unwrap_or_default().into_iter().next() else {
            return self.nothing_visible().await;
        };
        let receive_count = m
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let message_id = m.message_id.unwrap_or_default();
        let sent = m
            .message_attributes
            .as_ref()
            .and_then(|a| a.get(CORRELATION_ATTRIBUTE))
            .filter(|v| v.data_type.starts_with("String"))
            .and_then(|v| v.string_value.as_deref());
        Ok(Taken::Message(Queued {
            correlation_id: correlation_id(sent, &message_id).to_owned(),
            message_id,
            receipt: m.receipt_handle.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
            receive_count,
            source_arn: self.queue_arn.clone(),
        }))
    }

    async fn done(&self, message: &Queued) -> PortResult<()> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&message.receipt)
            .send()
            .await
            .map_err(|e| port_error(format!("DeleteMessage {}", message.message_id), e))?;
        Ok(())
    }

    async fn release(&self, message: &Queued) -> PortResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&message.receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| {
                port_error(format!("ChangeMessageVisibility {}", message.message_id), e)
            })?;
        Ok(())
    }
}
