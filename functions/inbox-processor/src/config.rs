//! The processor's settings and its portal endpoints, read once at cold start.

use std::collections::BTreeMap;
use std::time::Duration;

use steadfast_aws::{ConfigError, Env};
use steadfast_domain::lease::LeasePolicy;
use steadfast_domain::RetryPolicy;

pub struct Config {
    /// The portal's gate. `INBOX_TARGET_NAME`, default `portal-inbox`: its own gate, apart
    /// from the orders target's (set both names alike to share one on purpose).
    pub target: String,
    /// `INBOX_MAX_CLAIMS`, `INBOX_RETRY_BASE_SECONDS`, `INBOX_RETRY_CAP_SECONDS`,
    /// `INBOX_LEASE_SECONDS`.
    pub policy: LeasePolicy,
    /// In-process tries (`MAX_ATTEMPTS`, `RETRY_BASE_SECONDS`, `RETRY_CAP_SECONDS`).
    pub retry: RetryPolicy,
    /// Shards of the due index. `INBOX_SHARDS`, default 4.
    pub shards: u32,
    /// Records claimed per sweep at most. `INBOX_SWEEP_LIMIT`, default 500.
    pub sweep_limit: usize,
    /// The invocation's length when the runtime gives no usable deadline (local Runtime API
    /// servers). `INBOX_INVOCATION_TIMEOUT_SECONDS`, default 60.
    pub invocation_timeout: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let r = RetryPolicy::default();
        let d = steadfast_domain::inbox::default_policy();
        Ok(Config {
            target: env
                .optional("INBOX_TARGET_NAME")
                .unwrap_or_else(|| "portal-inbox".into()),
            policy: env.lease_policy("INBOX", Some("INBOX_MAX_CLAIMS"), d)?,
            retry: RetryPolicy {
                max_attempts: env.whole_in("MAX_ATTEMPTS", u64::from(r.max_attempts), 2, 20)?
                    as u32,
                base: env.seconds("RETRY_BASE_SECONDS", r.base)?,
                cap: env.seconds("RETRY_CAP_SECONDS", r.cap)?,
                ..r
            },
            shards: steadfast_aws::inbox::shards_from(env)?,
            sweep_limit: env.whole_in("INBOX_SWEEP_LIMIT", 500, 1, 100_000)? as usize,
            invocation_timeout: env
                .seconds("INBOX_INVOCATION_TIMEOUT_SECONDS", Duration::from_secs(60))?,
        })
    }
}

/// One HTTP target per entity type, from `INBOX_ENTITIES` and `INBOX_PORTAL_URL`.
pub fn targets(
    env: &Env,
    token: std::sync::Arc<steadfast_aws::token::Token>,
) -> Result<BTreeMap<String, steadfast_aws::http::HttpTarget>, ConfigError> {
    let inbox = steadfast_aws::inbox::config_from(env)?;
    let base = env.optional("INBOX_PORTAL_URL");
    let urls = inbox
        .endpoints(base.as_deref())
        .map_err(|why| env.invalid("INBOX_PORTAL_URL", base.as_deref().unwrap_or(""), why))?;
    urls.into_iter()
        .map(|(entity, url)| {
            let target = steadfast_aws::http::HttpTarget::at(
                env,
                "INBOX_ENTITIES endpoint",
                url,
                None,
                token.clone(),
            )?;
            Ok((entity, target))
        })
        .collect()
}
