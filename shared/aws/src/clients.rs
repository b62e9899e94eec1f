//! The AWS clients, built once per cold start from the standard configuration chain (which
//! honours `AWS_ENDPOINT_URL`, so the same binaries talk to LocalStack or moto locally).

use aws_config::BehaviorVersion;

use crate::config::Env;

#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    /// Control plane (event source mappings).
    pub lambda: aws_sdk_lambda::Client,
    /// Invocations of the other functions. In AWS the same endpoint as `lambda`; locally
    /// `LAMBDA_INVOKE_ENDPOINT_URL` points it at the Runtime API server that runs the real
    /// binaries, with SDK retries off (an error there must not re-run a function).
    pub invoke: aws_sdk_lambda::Client,
}

impl Clients {
    pub async fn load(env: &Env) -> Self {
        let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let invoke = match env.optional("LAMBDA_INVOKE_ENDPOINT_URL") {
            Some(url) => {
                let conf = aws_sdk_lambda::config::Builder::from(&shared)
                    .endpoint_url(url)
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .build();
                aws_sdk_lambda::Client::from_conf(conf)
            }
            None => aws_sdk_lambda::Client::new(&shared),
        };
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            sqs: aws_sdk_sqs::Client::new(&shared),
            events: aws_sdk_eventbridge::Client::new(&shared),
            scheduler: aws_sdk_scheduler::Client::new(&shared),
            lambda: aws_sdk_lambda::Client::new(&shared),
            invoke,
        }
    }
}
