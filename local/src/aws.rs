//! AWS clients for the local stack and the tests, pointed at the emulator, with fixed local credentials and
//! region so nothing ever looks for instance metadata.

/// Environment every local process gets: emulator endpoint, region, dummy credentials, and no
/// instance-metadata lookups (which would leave loopback).
pub fn local_aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[derive(Clone)]
pub struct Emulator {
    pub endpoint: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Emulator {
    pub async fn connect(endpoint: &str) -> Self {
        let creds = aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "local");
        let conf = steadfast_aws::tls::aws_defaults()
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .load()
            .await;
        Emulator {
            endpoint: endpoint.to_owned(),
            dynamodb: aws_sdk_dynamodb::Client::new(&conf),
            sqs: aws_sdk_sqs::Client::new(&conf),
            events: aws_sdk_eventbridge::Client::new(&conf),
            scheduler: aws_sdk_scheduler::Client::new(&conf),
            lambda: aws_sdk_lambda::Client::new(&conf),
            iam: aws_sdk_iam::Client::new(&conf),
            secrets: aws_sdk_secretsmanager::Client::new(&conf),
        }
    }

    /// Whether the emulator is LocalStack (it answers its health endpoint).
    pub async fn is_localstack(&self) -> bool {
        let url = format!("{}/_localstack/health", self.endpoint);
        match reqwest::get(&url).await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }

    /// Creates (or finds) queue `name`; returns its URL and ARN.
    pub async fn create_queue(&self, name: &str) -> anyhow::Result<(String, String)> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateQueue {name}: {}", describe(&e)))?
            .queue_url
            .unwrap_or_default();
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GetQueueAttributes {name}: {}", describe(&e)))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .unwrap_or_default();
        Ok((url, arn))
    }

    /// Receives and deletes every message on a queue until a receive comes back empty
    /// (each receive waits up to `wait_s` seconds); returns the bodies, oldest first.
    pub async fn drain(&self, url: &str, wait_s: i32) -> anyhow::Result<Vec<String>> {
        Ok(self
            .drain_messages(url, wait_s)
            .await?
            .into_iter()
            .map(|m| m.body)
            .collect())
    }

    /// As [`Emulator::drain`], with each message's `SentTimestamp` (ms): when it reached the queue.
    pub async fn drain_timed(&self, url: &str, wait_s: i32) -> anyhow::Result<Vec<(String, u64)>> {
        Ok(self
            .drain_messages(url, wait_s)
            .await?
            .into_iter()
            .map(|m| (m.body, m.sent_ms))
            .collect())
    }

    /// As [`Emulator::drain`], with each message's `SentTimestamp` and message attributes.
    pub async fn drain_messages(&self, url: &str, wait_s: i32) -> anyhow::Result<Vec<Drained>> {
        let mut drained = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait_s)
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp,
                )
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("ReceiveMessage {url}: {}", describe(&e)))?;
            let msgs = out.messages.unwrap_or_default();
            if msgs.is_empty() {
                return Ok(drained);
            }
            let mut done = Vec::new();
            for (i, m) in msgs.into_iter().enumerate() {
                let sent_ms = m
                    .attributes
                    .as_ref()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp)
                    })
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let attributes = m
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                    .collect();
                drained.push(Drained {
                    body: m.body.unwrap_or_default(),
                    sent_ms,
                    attributes,
                });
                if let Some(h) = m.receipt_handle {
                    done.push(
                        aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(h)
                            .build()?,
                    );
                }
            }
            if !done.is_empty() {
                self.sqs
                    .delete_message_batch()
                    .queue_url(url)
                    .set_entries(Some(done))
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("DeleteMessageBatch {url}: {}", describe(&e)))?;
            }
        }
    }

    /// The endpoint from `AWS_ENDPOINT_URL`, else LocalStack's default.
    pub fn endpoint_from_env() -> String {
        std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:4566".into())
    }
}

/// A message taken off a queue.
#[derive(Debug, Clone)]
pub struct Drained {
    pub body: String,
    /// When it reached the queue, ms since the Unix epoch.
    pub sent_ms: u64,
    /// Its message attributes (string and number values).
    pub attributes: std::collections::HashMap<String, String>,
}

pub fn describe<E: std::error::Error>(e: &E) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
}
