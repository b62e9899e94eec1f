//! The adapters, built once per cold start from the standard configuration chain (which
//! honours `AWS_ENDPOINT_URL`, so the same binaries talk to LocalStack or moto locally). Each
//! SDK client is made only when an adapter that needs it is, and each adapter only with its
//! crate feature, so a function links only the SDK clients it uses.

use steadfast_domain::{Backoff, IdentityRule, Jitter};

use crate::config::{ConfigError, Env};

#[derive(Clone)]
pub struct Clients {
    /// The loaded configuration every client is made from.
    pub shared: aws_config::SdkConfig,
    /// `LAMBDA_INVOKE_ENDPOINT_URL`: where invocations of the other functions go, when not to
    /// the Lambda endpoint itself (local runs).
    pub invoke_endpoint: Option<String>,
}

impl Clients {
    pub async fn load(env: &Env) -> Self {
        Clients {
            shared: crate::tls::aws_defaults().load().await,
            invoke_endpoint: env.optional("LAMBDA_INVOKE_ENDPOINT_URL"),
        }
    }
}

pub fn backoff_schedule(env: &Env) -> Result<Backoff, ConfigError> {
    let d = Backoff::default();
    let jitter: f64 = env.parsed("BACKOFF_JITTER", 0.0, "a fraction between 0 and 1")?;
    if !(0.0..=1.0).contains(&jitter) {
        return Err(env.invalid(
            "BACKOFF_JITTER",
            &jitter.to_string(),
            "a fraction between 0 and 1",
        ));
    }
    let base = env.seconds("BACKOFF_BASE_SECONDS", d.base)?;
    let cap = env.seconds("BACKOFF_CAP_SECONDS", d.cap)?;
    if base.is_zero() || cap < base {
        return Err(env.invalid(
            "BACKOFF_CAP_SECONDS",
            &format!("{cap:?}"),
            "at least BACKOFF_BASE_SECONDS, which must be > 0",
        ));
    }
    Ok(Backoff {
        base,
        cap,
        jitter: if jitter > 0.0 {
            Jitter::Proportion(jitter)
        } else {
            Jitter::None
        },
        queue_limit: env
            .seconds("TIMER_QUEUE_LIMIT_SECONDS", d.queue_limit)?
            .min(d.queue_limit),
    })
}

/// The names of the guarded targets: the orders target (`TARGET_NAME`, default `portal`) and,
/// when `INBOX_TARGET_NAME` names another gate, the inbox portal. Setting both to one name
/// shares one gate on purpose.
pub fn guarded_names(env: &Env) -> Vec<String> {
    let orders = env
        .optional("TARGET_NAME")
        .unwrap_or_else(|| "portal".into());
    let mut names = vec![orders.clone()];
    if let Some(inbox) = env.optional("INBOX_TARGET_NAME") {
        if inbox != orders {
            names.push(inbox);
        }
    }
    names
}

/// The pipeline of each guarded target ([`guarded_names`]), for the metrics of the functions
/// that serve every gate.
pub fn pipelines(env: &Env) -> crate::metrics::Pipelines {
    crate::metrics::Pipelines::of_guarded(&guarded_names(env))
}

/// `IDENTITY_NAMESPACE` (default `orders`) and `IDENTITY_POINTERS` (default `/orderId`).
pub fn identity_rule(env: &Env) -> Result<IdentityRule, ConfigError> {
    let pointers = env
        .optional("IDENTITY_POINTERS")
        .unwrap_or_else(|| "/orderId".into());
    let namespace = env
        .optional("IDENTITY_NAMESPACE")
        .unwrap_or_else(|| "orders".into());
    IdentityRule::parse(&namespace, &pointers)
        .map_err(|why| env.invalid("IDENTITY_POINTERS", &pointers, why))
}

/// Default of `DEDUP_WINDOW_SECONDS`: SQS's longest retention, 14 days.
#[cfg(feature = "dynamodb")]
const DEFAULT_DEDUP_WINDOW_S: u64 = 14 * 86_400;

#[cfg(feature = "dynamodb")]
impl Clients {
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.shared)
    }

    /// `GATE_TABLE`.
    pub fn gates(&self, env: &Env) -> Result<crate::gates::DynamoGates, ConfigError> {
        Ok(crate::gates::DynamoGates {
            client: self.dynamodb(),
            table: env.required("GATE_TABLE")?,
        })
    }

    /// `LEDGER_TABLE`, remembering deliveries `DEDUP_WINDOW_SECONDS` (default 14 days, the
    /// template sets the source queue's retention).
    pub fn ledger(&self, env: &Env) -> Result<crate::ledger::DynamoLedger, ConfigError> {
        let window = env.whole_in(
            "DEDUP_WINDOW_SECONDS",
            DEFAULT_DEDUP_WINDOW_S,
            60,
            366 * 86_400,
        )?;
        Ok(crate::ledger::DynamoLedger {
            client: self.dynamodb(),
            table: env.required("LEDGER_TABLE")?,
            window: std::time::Duration::from_secs(window),
        })
    }

    /// `APPLICATIONS_TABLE` and `OUTBOX_TABLE`, written together.
    pub fn applications(
        &self,
        env: &Env,
    ) -> Result<crate::outbox::DynamoApplications, ConfigError> {
        Ok(crate::outbox::DynamoApplications {
            client: self.dynamodb(),
            applications_table: env.required("APPLICATIONS_TABLE")?,
            outbox_table: env.required("OUTBOX_TABLE")?,
        })
    }

    /// `OUTBOX_TABLE`, as the relay claims and settles it.
    pub fn outbox(
        &self,
        env: &Env,
    ) -> Result<crate::leased::DynamoLeased<steadfast_domain::OutboxRecord>, ConfigError> {
        Ok(crate::outbox::outbox(
            self.dynamodb(),
            env.required("OUTBOX_TABLE")?,
        ))
    }

    /// `INBOX_TABLE`, as the receiver merges copies into it.
    pub fn inbox(&self, env: &Env) -> Result<crate::inbox::DynamoInbox, ConfigError> {
        Ok(crate::inbox::DynamoInbox {
            client: self.dynamodb(),
            table: env.required("INBOX_TABLE")?,
        })
    }

    /// `INBOX_TABLE`, as the processor claims and settles it.
    pub fn inbox_records(
        &self,
        env: &Env,
    ) -> Result<crate::leased::DynamoLeased<steadfast_domain::inbox::InboxRecord>, ConfigError>
    {
        Ok(crate::inbox::records(
            self.dynamodb(),
            env.required("INBOX_TABLE")?,
        ))
    }
}

#[cfg(feature = "eventbridge")]
impl Clients {
    /// `EVENT_BUS_NAME`.
    pub fn bus(&self, env: &Env) -> Result<crate::events::EventBridgeBus, ConfigError> {
        Ok(crate::events::EventBridgeBus {
            client: aws_sdk_eventbridge::Client::new(&self.shared),
            bus: env.required("EVENT_BUS_NAME")?,
        })
    }

    /// `EVENT_BUS_NAME` and `OUTBOX_EVENT_SOURCE` (default `steadfast.outbox`), through a
    /// client that tries each call at most twice, quickly: the relay has its own retry
    /// schedule, so a sick bus does not hold a lease.
    pub fn publisher(&self, env: &Env) -> Result<crate::events::EventBridgePublisher, ConfigError> {
        let conf = aws_sdk_eventbridge::config::Builder::from(&self.shared)
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(std::time::Duration::from_millis(100)),
            )
            .build();
        Ok(crate::events::EventBridgePublisher {
            client: aws_sdk_eventbridge::Client::from_conf(conf),
            bus: env.required("EVENT_BUS_NAME")?,
            source: env
                .optional("OUTBOX_EVENT_SOURCE")
                .unwrap_or_else(|| "steadfast.outbox".into()),
        })
    }
}

#[cfg(feature = "sqs")]
impl Clients {
    /// `PARKING_QUEUE_URL`.
    pub fn parking(&self, env: &Env) -> Result<crate::parking::SqsParking, ConfigError> {
        Ok(crate::parking::SqsParking {
            client: aws_sdk_sqs::Client::new(&self.shared),
            queue_url: env.required("PARKING_QUEUE_URL")?,
        })
    }

    /// `ORDERS_QUEUE_URL` and `ORDERS_QUEUE_ARN`: the guarded queue, for message probes.
    pub fn probe_source(&self, env: &Env) -> Result<crate::probe::SqsProbeSource, ConfigError> {
        Ok(crate::probe::SqsProbeSource {
            client: aws_sdk_sqs::Client::new(&self.shared),
            queue_url: env.required("ORDERS_QUEUE_URL")?,
            queue_arn: env.required("ORDERS_QUEUE_ARN")?,
        })
    }
}

#[cfg(feature = "scheduler")]
impl Clients {
    /// `TIMERS_QUEUE_URL`, `TIMERS_QUEUE_ARN`, `SCHEDULER_ROLE_ARN`, `SCHEDULE_GROUP` (default
    /// `default`), `SCHEDULE_DLQ_ARN` (optional).
    pub fn timers(&self, env: &Env) -> Result<crate::timers::QueueAndScheduleTimers, ConfigError> {
        Ok(crate::timers::QueueAndScheduleTimers {
            sqs: aws_sdk_sqs::Client::new(&self.shared),
            scheduler: aws_sdk_scheduler::Client::new(&self.shared),
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

#[cfg(feature = "lambda")]
impl Clients {
    /// Invocations of the other functions. In AWS the Lambda endpoint; locally
    /// `LAMBDA_INVOKE_ENDPOINT_URL` may point elsewhere, with SDK retries off (an error there
    /// must not re-run a function).
    fn invoke(&self) -> aws_sdk_lambda::Client {
        match &self.invoke_endpoint {
            Some(url) => {
                let conf = aws_sdk_lambda::config::Builder::from(&self.shared)
                    .endpoint_url(url)
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .build();
                aws_sdk_lambda::Client::from_conf(conf)
            }
            None => aws_sdk_lambda::Client::new(&self.shared),
        }
    }

    /// `PROCESSOR_FUNCTION` and `ORDERS_QUEUE_ARN`: the flow's event source mapping.
    pub fn flow_switch(&self, env: &Env) -> Result<crate::switch::EsmSwitch, ConfigError> {
        Ok(crate::switch::EsmSwitch::new(
            aws_sdk_lambda::Client::new(&self.shared),
            env.required("PROCESSOR_FUNCTION")?,
            env.required("ORDERS_QUEUE_ARN")?,
        ))
    }

    /// `CLOSE_FUNCTION`, `BACKOFF_FUNCTION`, `OPEN_FUNCTION`.
    pub fn invoker(&self, env: &Env) -> Result<crate::invoke::LambdaInvoker, ConfigError> {
        Ok(crate::invoke::LambdaInvoker {
            client: self.invoke(),
            close_function: env.required("CLOSE_FUNCTION")?,
            backoff_function: env.required("BACKOFF_FUNCTION")?,
            open_function: env.required("OPEN_FUNCTION")?,
        })
    }

    /// `CLOSE_FUNCTION` only: asks `close` to halt the flow, nothing else.
    pub fn tripper(&self, env: &Env) -> Result<crate::invoke::LambdaInvoker, ConfigError> {
        Ok(crate::invoke::LambdaInvoker::close_only(
            self.invoke(),
            env.required("CLOSE_FUNCTION")?,
        ))
    }

    /// The switch of every guarded target ([`guarded_names`]): the orders target's is its
    /// queue's mapping (`PROCESSOR_FUNCTION`, `ORDERS_QUEUE_ARN`); the inbox portal has none
    /// (its processor reads the gate and claims nothing while it is not flowing).
    pub fn switches(
        &self,
        env: &Env,
    ) -> Result<std::collections::BTreeMap<String, Option<crate::switch::EsmSwitch>>, ConfigError>
    {
        let mut names = guarded_names(env).into_iter();
        let mut out = std::collections::BTreeMap::new();
        if let Some(orders) = names.next() {
            out.insert(orders, Some(self.flow_switch(env)?));
        }
        out.extend(names.map(|n| (n, None)));
        Ok(out)
    }
}

/// How a guarded target is probed (see [`steadfast_domain::ports::Probe`]).
#[cfg(feature = "http")]
pub type Probe = steadfast_domain::ports::Probe<crate::http::HttpTarget>;

#[cfg(feature = "http")]
impl Clients {
    /// How every guarded target is probed. The orders target: `PROBE_MODE` (`health`,
    /// `message`, or `auto`, the default: health when `PROBE_URL` is set, else message) with
    /// `PROBE_URL` for health probes. The inbox portal: health probes at `INBOX_PROBE_URL`
    /// (required: a base URL that answers 404 would keep the gate halted for good).
    pub fn probes(
        &self,
        env: &Env,
        token: std::sync::Arc<crate::token::Token>,
    ) -> Result<std::collections::BTreeMap<String, Probe>, ConfigError> {
        use crate::http::HttpTarget;
        use steadfast_domain::ProbeMode;
        let mut names = guarded_names(env).into_iter();
        let mut out = std::collections::BTreeMap::new();
        if let Some(orders) = names.next() {
            let probe_url = env.optional("PROBE_URL");
            let raw = env.optional("PROBE_MODE").unwrap_or_else(|| "auto".into());
            let mode = ProbeMode::parse(&raw, probe_url.is_some())
                .map_err(|why| env.invalid("PROBE_MODE", &raw, why))?;
            if mode == ProbeMode::Health && probe_url.is_none() {
                return Err(env.invalid(
                    "PROBE_URL",
                    "",
                    "a health URL that answers 2xx when the API is up (PROBE_MODE=health)",
                ));
            }
            let url = env.target_url("TARGET_URL")?;
            let target = HttpTarget::at(env, "PROBE_URL", url, probe_url, token.clone())?;
            out.insert(orders, Probe { target, mode });
        }
        for name in names {
            let portal = env.target_url("INBOX_PORTAL_URL")?;
            let probe_url = env.target_url("INBOX_PROBE_URL")?;
            let target = HttpTarget::at(
                env,
                "INBOX_PROBE_URL",
                portal,
                Some(probe_url),
                token.clone(),
            )?;
            out.insert(
                name,
                Probe {
                    target,
                    mode: ProbeMode::Health,
                },
            );
        }
        Ok(out)
    }

    /// The target's bearer token: the secret `TARGET_TOKEN_SECRET_ARN` names (see
    /// [`crate::token::Token`]), else `TARGET_TOKEN` (local runs), else none. A secret that
    /// cannot be read fails the cold start naming the variable.
    pub async fn target_token(
        &self,
        env: &Env,
    ) -> Result<std::sync::Arc<crate::token::Token>, ConfigError> {
        use crate::token::Token;
        let Some(arn) = env.optional("TARGET_TOKEN_SECRET_ARN") else {
            return Ok(std::sync::Arc::new(Token::fixed(
                env.optional("TARGET_TOKEN"),
            )));
        };
        let secrets = aws_sdk_secretsmanager::Client::new(&self.shared);
        Token::secret(secrets, arn.clone())
            .await
            .map(std::sync::Arc::new)
            .map_err(|why| env.invalid("TARGET_TOKEN_SECRET_ARN", &arn, why))
    }
}
