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
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Invocations of the other functions. In AWS the same endpoint as `lambda`; locally
    /// `LAMBDA_INVOKE_ENDPOINT_URL` points it at the Runtime API server that runs the real
    /// binaries, with SDK retries off (an error there must not re-run a function).
    pub invoke: aws_sdk_lambda::Client,
    /// The loaded configuration, for clients that need settings of their own.
    pub shared: aws_config::SdkConfig,
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
            secrets: aws_sdk_secretsmanager::Client::new(&shared),
            invoke,
            shared,
        }
    }
}

use crate::config::ConfigError;
use crate::events::EventBridgeBus;
use crate::gates::DynamoGates;
use crate::invoke::LambdaInvoker;
use crate::switch::EsmSwitch;
use crate::timers::QueueAndScheduleTimers;

/// The adapters built from configuration, one constructor each, so every function wires the
/// same adapter the same way.
impl Clients {
    /// `GATE_TABLE`.
    pub fn gates(&self, env: &Env) -> Result<DynamoGates, ConfigError> {
        Ok(DynamoGates {
            client: self.dynamodb.clone(),
            table: env.required("GATE_TABLE")?,
        })
    }

    /// An EventBridge client that tries each call at most twice, quickly: for callers that
    /// have their own retry schedule (the outbox relay), so a sick bus does not hold a lease.
    pub fn events_quick_retry(&self) -> aws_sdk_eventbridge::Client {
        let conf = aws_sdk_eventbridge::config::Builder::from(&self.shared)
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(std::time::Duration::from_millis(100)),
            )
            .build();
        aws_sdk_eventbridge::Client::from_conf(conf)
    }

    /// `EVENT_BUS_NAME`.
    pub fn bus(&self, env: &Env) -> Result<EventBridgeBus, ConfigError> {
        Ok(EventBridgeBus {
            client: self.events.clone(),
            bus: env.required("EVENT_BUS_NAME")?,
        })
    }

    /// `PROCESSOR_FUNCTION` and `ORDERS_QUEUE_ARN`: the flow's event source mapping.
    pub fn flow_switch(&self, env: &Env) -> Result<EsmSwitch, ConfigError> {
        Ok(EsmSwitch::new(
            self.lambda.clone(),
            env.required("PROCESSOR_FUNCTION")?,
            env.required("ORDERS_QUEUE_ARN")?,
        ))
    }

    /// `CLOSE_FUNCTION`, `BACKOFF_FUNCTION`, `OPEN_FUNCTION`.
    pub fn invoker(&self, env: &Env) -> Result<LambdaInvoker, ConfigError> {
        Ok(LambdaInvoker {
            client: self.invoke.clone(),
            close_function: env.required("CLOSE_FUNCTION")?,
            backoff_function: env.required("BACKOFF_FUNCTION")?,
            open_function: env.required("OPEN_FUNCTION")?,
        })
    }

    /// `CLOSE_FUNCTION` only: asks `close` to halt the flow, nothing else.
    pub fn tripper(&self, env: &Env) -> Result<LambdaInvoker, ConfigError> {
        Ok(LambdaInvoker::close_only(
            self.invoke.clone(),
            env.required("CLOSE_FUNCTION")?,
        ))
    }

    /// The target's bearer token: the secret `TARGET_TOKEN_SECRET_ARN` names (Secrets Manager,
    /// read once at cold start), else `TARGET_TOKEN` (local runs), else none. The token is
    /// never logged; a secret that cannot be read fails the cold start naming the variable.
    pub async fn target_token(&self, env: &Env) -> Result<Option<String>, ConfigError> {
        let Some(arn) = env.optional("TARGET_TOKEN_SECRET_ARN") else {
            return Ok(env.optional("TARGET_TOKEN"));
        };
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .map_err(|e| {
                env.invalid(
                    "TARGET_TOKEN_SECRET_ARN",
                    &arn,
                    format!("a readable secret ({})", crate::describe(&e)),
                )
            })?;
        match out.secret_string.map(|t| t.trim().to_owned()) {
            Some(t) if !t.is_empty() => Ok(Some(t)),
            _ => Err(env.invalid(
                "TARGET_TOKEN_SECRET_ARN",
                &arn,
                "a secret whose value is a non-empty text",
            )),
        }
    }

    /// `TIMERS_QUEUE_URL`, `TIMERS_QUEUE_ARN`, `SCHEDULER_ROLE_ARN`, `SCHEDULE_GROUP` (default
    /// `default`), `SCHEDULE_DLQ_ARN` (optional).
    pub fn timers(&self, env: &Env) -> Result<QueueAndScheduleTimers, ConfigError> {
        Ok(QueueAndScheduleTimers {
            sqs: self.sqs.clone(),
            scheduler: self.scheduler.clone(),
            queue_url: env.required("TIMERS_QUEUE_URL")?,
            queue_arn: env.required("TIMERS_QUEUE_ARN")?,
            scheduler_role_arn: env.required("SCHEDULER_ROLE_ARN")?,
            group: env
                .optional("SCHEDULE_GROUP")
                .unwrap_or_else(|| "default".into()),
            dead_letter_arn: env.optional("SCHEDULE_DLQ_ARN"),
        })
    }
}
