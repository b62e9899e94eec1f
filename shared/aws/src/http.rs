//! The HTTP delivery client of a target API: POST with `Idempotency-Key`, rustls, a timeout,
//! and every answer classified by the domain. Bodies of answers are never logged.

use std::time::Duration;

use serde_json::Value;
use steadfast_domain::outcome::{classify, parse_retry_after_seconds};
use steadfast_domain::ports::Target;
use steadfast_domain::Outcome;

use crate::config::{ConfigError, Env};

pub struct HttpTarget {
    client: reqwest::Client,
    url: String,
    probe_url: String,
    bearer: Option<String>,
}

impl HttpTarget {
    /// From `TARGET_URL` (https unless `ALLOW_INSECURE_HTTP=true`), `PROBE_URL` (default:
    /// `TARGET_URL`), `TARGET_TIMEOUT_SECONDS` (default 10), and the bearer token
    /// [`crate::Clients::target_token`] found (never logged).
    pub fn from_env(env: &Env, token: Option<String>) -> Result<Self, ConfigError> {
        let url = env.target_url("TARGET_URL")?;
        let probe_url = match env.optional("PROBE_URL") {
            Some(_) => env.target_url("PROBE_URL")?,
            None => url.clone(),
        };
        Self::build(env, "TARGET_URL", url, probe_url, token)
    }

    /// A target at `url` (checked like `TARGET_URL`; `setting` names where it came from), with
    /// the same timeout and token settings; its probe is a GET of `url`.
    pub fn at(
        env: &Env,
        setting: &str,
        url: String,
        token: Option<String>,
    ) -> Result<Self, ConfigError> {
        let url = env.secure_url(setting, url)?;
        Self::build(env, setting, url.clone(), url, token)
    }

    fn build(
        env: &Env,
        setting: &str,
        url: String,
        probe_url: String,
        token: Option<String>,
    ) -> Result<Self, ConfigError> {
        let timeout = env.seconds("TARGET_TIMEOUT_SECONDS", Duration::from_secs(10))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                env.invalid(
                    setting,
                    &url,
                    format!("an HTTP client could not be built: {e}"),
                )
            })?;
        Ok(HttpTarget {
            client,
            url,
            probe_url,
            bearer: token,
        })
    }

    fn outcome(response: reqwest::Response) -> Outcome {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after_seconds);
        classify(
            status.as_u16(),
            retry_after,
            status.canonical_reason().unwrap_or(""),
        )
    }

    fn failure(e: reqwest::Error) -> Outcome {
        let kind = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        Outcome::Transient(kind.to_owned())
    }
}

impl Target for HttpTarget {
    async fn deliver(&self, identity: &str, body: &Value) -> Outcome {
        let mut request = self
            .client
            .post(&self.url)
            .header("Idempotency-Key", identity)
            .json(body);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(r) => Self::outcome(r),
            Err(e) => Self::failure(e),
        }
    }

    async fn check(&self) -> Outcome {
        let mut request = self.client.get(&self.probe_url);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(r) => match Self::outcome(r) {
                // any definite answer means the API is up again
                Outcome::Permanent(_) => Outcome::Delivered { status: 200 },
                other => other,
            },
            Err(e) => Self::failure(e),
        }
    }
}
