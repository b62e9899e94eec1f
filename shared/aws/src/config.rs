//! Configuration from environment variables, read once at cold start. Every error names the
//! variable and says what was expected, so a bad deployment fails loudly and clearly.

use std::str::FromStr;
use std::time::Duration;

#[derive(thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(String),
    #[error("environment variable {name}={value:?} is invalid: {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: String,
    },
}

// A failed cold start prints the error's Debug form: make it the readable one.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A view of the environment (the process's, or a map in tests).
pub struct Env {
    lookup: Lookup,
}

impl Env {
    pub fn process() -> Self {
        Env {
            lookup: Box::new(|k| std::env::var(k).ok().filter(|v| !v.is_empty())),
        }
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env {
            lookup: Box::new(move |k| map.get(k).cloned()),
        }
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::Missing(name.to_owned()))
    }

    pub fn invalid(&self, name: &str, value: &str, expected: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            name: name.into(),
            value: value.into(),
            expected: expected.into(),
        }
    }

    /// A parsed value, or `default` when unset.
    pub fn parsed<T: FromStr>(
        &self,
        name: &str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| self.invalid(name, &v, expected)),
        }
    }

    /// Seconds as a float ("0.5", "14400"), or `default` when unset.
    /// A whole number within `min..=max`; `default` when unset.
    pub fn whole_in(
        &self,
        name: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let expected = format!("a whole number from {min} to {max}");
        let v: u64 = self.parsed(name, default, &expected)?;
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(self.invalid(name, &v.to_string(), expected))
        }
    }

    pub fn seconds(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| self.invalid(name, &v, "a number of seconds >= 0")),
        }
    }

    /// A leased-record policy: `max_var` (claims, 1–100, when claims are counted),
    /// `{prefix}_RETRY_BASE_SECONDS`, `{prefix}_RETRY_CAP_SECONDS`, `{prefix}_LEASE_SECONDS`
    /// (1–3600), over `d`.
    pub fn lease_policy(
        &self,
        prefix: &str,
        max_var: Option<&str>,
        d: steadfast_domain::LeasePolicy,
    ) -> Result<steadfast_domain::LeasePolicy, ConfigError> {
        let max_claims = match max_var {
            Some(var) => self.whole_in(var, u64::from(d.max_claims), 1, 100)? as u32,
            None => d.max_claims,
        };
        let lease = self.whole_in(
            &format!("{prefix}_LEASE_SECONDS"),
            d.lease.as_secs(),
            1,
            3600,
        )?;
        Ok(steadfast_domain::LeasePolicy {
            max_claims,
            retry: steadfast_domain::Backoff {
                base: self.seconds(&format!("{prefix}_RETRY_BASE_SECONDS"), d.retry.base)?,
                cap: self.seconds(&format!("{prefix}_RETRY_CAP_SECONDS"), d.retry.cap)?,
                ..d.retry
            },
            lease: Duration::from_secs(lease),
            noun: d.noun,
        })
    }

    pub fn flag(&self, name: &str) -> Result<bool, ConfigError> {
        match self
            .optional(name)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false") | Some("0") | Some("no") => Ok(false),
            Some("true") | Some("1") | Some("yes") => Ok(true),
            Some(other) => Err(self.invalid(name, other, "true or false")),
        }
    }

    /// A target URL: https only, unless `ALLOW_INSECURE_HTTP=true` (local runs).
    pub fn target_url(&self, name: &str) -> Result<String, ConfigError> {
        let url = self.required(name)?;
        self.secure_url(name, url)
    }

    /// `url`, read from setting `name`, if it is https (or http with `ALLOW_INSECURE_HTTP=true`).
    pub fn secure_url(&self, name: &str, url: String) -> Result<String, ConfigError> {
        let insecure_ok = self.flag("ALLOW_INSECURE_HTTP")?;
        if url.starts_with("https://") || (insecure_ok && url.starts_with("http://")) {
            Ok(url)
        } else if url.starts_with("http://") {
            Err(self.invalid(
                name,
                &url,
                "an https:// URL (plain http only with ALLOW_INSECURE_HTTP=true)",
            ))
        } else {
            Err(self.invalid(name, &url, "an https:// URL"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable() {
        let env = Env::from_pairs(&[("MAX_ATTEMPTS", "five"), ("TARGET_URL", "http://x")]);
        assert_eq!(
            env.required("GATE_TABLE").unwrap_err().to_string(),
            "environment variable GATE_TABLE is not set"
        );
        let e = env
            .parsed::<u32>("MAX_ATTEMPTS", 5, "a whole number")
            .unwrap_err()
            .to_string();
        assert!(e.contains("MAX_ATTEMPTS=\"five\""), "{e}");
        assert!(env
            .target_url("TARGET_URL")
            .unwrap_err()
            .to_string()
            .contains("ALLOW_INSECURE_HTTP"));
        let local = Env::from_pairs(&[
            ("TARGET_URL", "http://127.0.0.1:1"),
            ("ALLOW_INSECURE_HTTP", "true"),
        ]);
        assert!(local.target_url("TARGET_URL").is_ok());
        assert_eq!(
            env.seconds("BASE", Duration::from_secs(1)).unwrap(),
            Duration::from_secs(1)
        );
        let huge = Env::from_pairs(&[("BASE", "1e30"), ("NEG", "-1")]);
        assert!(huge
            .seconds("BASE", Duration::ZERO)
            .unwrap_err()
            .to_string()
            .contains("BASE"));
        assert!(huge.seconds("NEG", Duration::ZERO).is_err());
    }
}
