//! The CLI's AWS clients, from the usual AWS configuration (environment, profiles;
//! `AWS_ENDPOINT_URL` honoured). A stack file written for a local stack brings its endpoint,
//! and there any credentials do.

use std::collections::HashMap;
use std::error::Error;

use aws_sdk_sqs::types::QueueAttributeName;

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_types::error::display::DisplayErrorContext;

pub struct Aws {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

fn is_loopback(endpoint: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| endpoint.starts_with(p))
}

impl Aws {
    /// `file_endpoint`: the endpoint a stack file names, used when `AWS_ENDPOINT_URL` is unset.
    pub async fn new(file_endpoint: Option<String>) -> Aws {
        let set = |var: &str| std::env::var(var).is_ok_and(|v| !v.is_empty());
        let mut loader = steadfast_aws::tls::aws_defaults();
        let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
            Ok(e) if !e.is_empty() => Some(e),
            _ => {
                if let Some(e) = &file_endpoint {
                    loader = loader.endpoint_url(e);
                }
                file_endpoint
            }
        };
        if endpoint.as_deref().is_some_and(is_loopback) {
            // A local emulator: any credentials and region do; the user's are taken when set.
            if !set("AWS_ACCESS_KEY_ID") && !set("AWS_PROFILE") {
                loader = loader
                    .credentials_provider(Credentials::new("test", "test", None, None, "local"));
            }
            if !set("AWS_REGION") && !set("AWS_DEFAULT_REGION") {
                loader = loader.region(Region::new("us-east-1"));
            }
        }
        let config = loader.load().await;
        Aws {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            cloudformation: aws_sdk_cloudformation::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        }
    }
}

/// Attributes of a queue.
pub type QueueAttributes = HashMap<QueueAttributeName, String>;

impl Aws {
    /// The attribute `name` of the queue at `url` (`All` for every one).
    pub async fn queue_attributes(
        &self,
        url: &str,
        name: QueueAttributeName,
    ) -> anyhow::Result<QueueAttributes> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(name)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "GetQueueAttributes {}: {}",
                    crate::stack::queue_name(url),
                    describe(&e)
                )
            })?;
        Ok(out.attributes().cloned().unwrap_or_default())
    }
}

/// A numeric queue attribute (0 when absent).
pub fn number(attrs: &QueueAttributes, name: QueueAttributeName) -> u64 {
    attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// An SDK error with its causes, in one line.
pub fn describe(e: &(dyn Error + 'static)) -> String {
    DisplayErrorContext(e).to_string()
}
