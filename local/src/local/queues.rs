//! The stack's queues: sending to them (ten messages per call), their depth, the parked
//! messages, and waiting for one to drain.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use serde_json::Value;

use super::Local;
use crate::aws::describe;

/// Sends `bodies` to the queue at `url`, ten to a call; an error if the queue refuses any.
pub async fn send_batches(sqs: &aws_sdk_sqs::Client, url: &str, bodies: &[String]) -> Result<()> {
    for chunk in bodies.chunks(10) {
        let out = sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(batch_entries(chunk)?))
            .send()
            .await
            .map_err(|e| anyhow!("SendMessageBatch: {}", describe(&e)))?;
        if !out.failed.is_empty() {
            bail!("{} messages were not accepted", out.failed.len());
        }
    }
    Ok(())
}

/// One batch entry per body, numbered within the batch.
fn batch_entries(bodies: &[String]) -> Result<Vec<SendMessageBatchRequestEntry>> {
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(b)
                .build()
        })
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

impl Local {
    pub fn queue_url(&self, logical: &str) -> Result<String> {
        Ok(self.stack.reference(logical)?.to_owned())
    }

    /// Sends order bodies to the orders queue, ten per call.
    pub async fn send(&self, bodies: &[Value]) -> Result<()> {
        self.send_to("OrdersQueue", bodies).await
    }

    /// Sends message bodies to a queue of the stack, ten per call.
    pub async fn send_to(&self, logical: &str, bodies: &[Value]) -> Result<()> {
        let texts: Vec<String> = bodies.iter().map(Value::to_string).collect();
        self.send_text_to(logical, &texts).await
    }

    /// Sends message bodies, as they are, to a queue of the stack, ten per call.
    pub async fn send_text_to(&self, logical: &str, bodies: &[String]) -> Result<()> {
        send_batches(&self.emu.sqs, &self.queue_url(logical)?, bodies)
            .await
            .map_err(|e| anyhow!("{logical}: {e}"))
    }

    /// (visible, in flight, delayed) messages of a queue.
    pub async fn depth(&self, logical: &str) -> Result<(u64, u64, u64)> {
        let a = self
            .emu
            .sqs
            .get_queue_attributes()
            .queue_url(self.queue_url(logical)?)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| anyhow!("GetQueueAttributes: {}", describe(&e)))?
            .attributes
            .unwrap_or_default();
        let n = |k: QueueAttributeName| a.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        ))
    }

    /// Reads (and removes) every message on the parking queue, each as
    /// `{"body", "reason", "source", "source_arn", "message_id", "identity", "parked_at_ms"}`:
    /// the original body and the attributes the functions put beside it.
    pub async fn take_parked(&self) -> Result<Vec<Value>> {
        let url = self.queue_url("ParkingQueue")?;
        let got = self.emu.drain_messages(&url, 1).await?;
        Ok(got
            .into_iter()
            .map(|m| {
                let mut v = serde_json::json!({ "body": m.body });
                for (k, a) in m.attributes {
                    v[k] = Value::String(a);
                }
                v
            })
            .collect())
    }

    /// Waits until a queue holds no message: none visible, in flight or delayed. Polls once a
    /// second: an emulator counts a queue's messages one by one for every such call.
    pub async fn wait_drained(&self, logical: &str, limit: Duration) -> Result<Duration> {
        self.wait_for_every(
            &format!("{logical} empty"),
            limit,
            Duration::from_secs(1),
            || async {
                let (v, f, d) = self.depth(logical).await?;
                Ok(v + f + d == 0)
            },
        )
        .await
    }
}
