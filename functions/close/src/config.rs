//! The function's settings, read from the environment at cold start.

use std::time::Duration;

use steadfast_aws::clients::{backoff_schedule, identity_rule, pipelines};
use steadfast_aws::metrics::Pipelines;
use steadfast_aws::{ConfigError, Env};
use steadfast_domain::{Backoff, IdentityRule};

pub struct Config {
    /// The probe schedule (`BACKOFF_*`, as the backoff function's).
    pub backoff: Backoff,
    /// A halt this soon after a resume continues the last probe chain.
    /// `RELAPSE_WINDOW_SECONDS`, default 600.
    pub relapse: Duration,
    /// How late a probe may be before the watchdog repairs. `WATCHDOG_GRACE_SECONDS`,
    /// default 120.
    pub grace: Duration,
    /// How long a ramp-up lasts at most. `RAMP_UP_SECONDS`, default 60.
    pub ramp: Duration,
    /// The mapping's MaximumConcurrency once ramped up. `DELIVERY_CONCURRENCY`, default 5.
    pub full_concurrency: u32,
    /// Orders' identity, for message probes.
    pub identity: IdentityRule,
    /// Recorded on orders a message probe parks. `SOURCE_NAME`, default `orders`.
    pub source: String,
    /// The pipeline of each guarded target, for the metrics.
    pub pipelines: Pipelines,
}

/// Reads the settings; an error names the variable at fault.
pub fn config(env: &Env) -> Result<Config, ConfigError> {
    Ok(Config {
        backoff: backoff_schedule(env)?,
        relapse: Duration::from_secs(env.whole_in("RELAPSE_WINDOW_SECONDS", 600, 0, 86_400)?),
        grace: Duration::from_secs(env.whole_in("WATCHDOG_GRACE_SECONDS", 120, 1, 86_400)?),
        ramp: Duration::from_secs(env.whole_in("RAMP_UP_SECONDS", 60, 0, 86_400)?),
        full_concurrency: env.whole_in("DELIVERY_CONCURRENCY", 5, 2, 1000)? as u32,
        identity: identity_rule(env)?,
        source: env
            .optional("SOURCE_NAME")
            .unwrap_or_else(|| "orders".into()),
        pipelines: pipelines(env),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_a_bad_value_is_named() {
        let c = config(&Env::from_pairs(&[])).unwrap();
        assert_eq!(c.relapse, Duration::from_secs(600));
        assert_eq!(c.grace, Duration::from_secs(120));
        assert_eq!(c.ramp, Duration::from_secs(60));
        assert_eq!(c.full_concurrency, 5);
        assert_eq!(c.source, "orders");
        let Err(e) = config(&Env::from_pairs(&[("DELIVERY_CONCURRENCY", "1")])) else {
            panic!("a concurrency of 1 was accepted");
        };
        assert!(e.to_string().contains("DELIVERY_CONCURRENCY"), "{e}");
    }
}
