//! The HTTP delivery client of a target API: POST with a header-safe `Idempotency-Key`,
//! rustls, a per-call timeout, and every answer classified by the domain's status classes.
//! Bodies of answers are never read nor logged.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use steadfast_domain::outcome::{parse_retry_after, StatusClasses};
use steadfast_domain::ports::Target;
use steadfast_domain::{idempotency_key, Outcome};

use crate::config::{ConfigError, Env};
use crate::token::Token;

pub struct HttpTarget {
    client: reqwest::Client,
    url: String,
    probe_url: String,
    bearer: Arc<Token>,
    classes: StatusClasses,
    timeout: Duration,
}

impl HttpTarget {
    /// From `TARGET_URL` (https unless `ALLOW_INSECURE_HTTP=true`), `PROBE_URL` (default:
    /// `TARGET_URL`), and the common settings of [`HttpTarget::at`].
    pub fn from_env(env: &Env, token: Arc<Token>) -> Result<Self, ConfigError> {
        let url = env.target_url("TARGET_URL")?;
        let probe_url = match env.optional("PROBE_URL") {
            Some(_) => env.target_url("PROBE_URL")?,
            None => url.clone(),
        };
        Self::build(env, "TARGET_URL", url, probe_url, token)
    }

    /// A target at `url` probed at `probe_url` (both checked like `TARGET_URL`; `setting` names
    /// where `url` came from). Common settings: `TARGET_TIMEOUT_SECONDS` (default 10),
    /// `DELIVERED_STATUSES` (default `2xx,409`), `TARGET_LEVEL_STATUSES` (default
    /// `3xx,401,403,404,405,407,408,410,429,5xx`), and the bearer token
    /// [`crate::Clients::target_token`] gives (never logged; read again after a 401 or 403).
    pub fn at(
        env: &Env,
        setting: &str,
        url: String,
        probe_url: Option<String>,
        token: Arc<Token>,
    ) -> Result<Self, ConfigError> {
        let url = env.secure_url(setting, url)?;
        let probe_url = match probe_url {
            Some(p) => env.secure_url(setting, p)?,
            None => url.clone(),
        };
        Self::build(env, setting, url, probe_url, token)
    }

    fn build(
        env: &Env,
        setting: &str,
        url: String,
        probe_url: String,
        token: Arc<Token>,
    ) -> Result<Self, ConfigError> {
        let timeout = env.seconds("TARGET_TIMEOUT_SECONDS", Duration::from_secs(10))?;
        let classes = status_classes(env)?;
        crate::tls::install();
        let client = reqwest::Client::builder()
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
            classes,
            timeout,
        })
    }

    /// The request with the bearer token, if there is one.
    async fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.bearer.get().await {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A 401 or 403 may mean a rotated token: read it again before the next call.
    async fn note_refusal(&self, response: &reqwest::Response) {
        let s = response.status().as_u16();
        if s == 401 || s == 403 {
            self.bearer.refused().await;
        }
    }

    fn outcome(&self, response: reqwest::Response) -> Outcome {
        let status = response.status();
        self.classes.classify(
            status.as_u16(),
            retry_after(&response),
            status.canonical_reason().unwrap_or(""),
        )
    }

    /// A call that got no answer: timed out, not connected, or cut off (the innermost cause
    /// named, e.g. a connection closed before the answer; never a body or a header value).
    fn failure(e: reqwest::Error) -> Outcome {
        if e.is_timeout() {
            return Outcome::unavailable("timeout");
        }
        if e.is_connect() {
            return Outcome::unavailable("connection failed");
        }
        let e = e.without_url(); // a URL may carry a query the logs must not
        let mut cause: &dyn std::error::Error = &e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        Outcome::unavailable(format!("request failed: {cause}"))
    }
}

/// The answer's Retry-After (seconds or an HTTP date), if any.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// `DELIVERED_STATUSES` and `TARGET_LEVEL_STATUSES` (see [`HttpTarget::at`]).
pub fn status_classes(env: &Env) -> Result<StatusClasses, ConfigError> {
    use steadfast_domain::outcome::{DELIVERED_STATUSES, TARGET_LEVEL_STATUSES};
    let delivered = env
        .optional("DELIVERED_STATUSES")
        .unwrap_or_else(|| DELIVERED_STATUSES.into());
    let target_level = env
        .optional("TARGET_LEVEL_STATUSES")
        .unwrap_or_else(|| TARGET_LEVEL_STATUSES.into());
    StatusClasses::parse(&delivered, &target_level).map_err(|why| {
        env.invalid(
            "TARGET_LEVEL_STATUSES",
            &format!("{target_level} (DELIVERED_STATUSES={delivered})"),
            why,
        )
    })
}

impl Target for HttpTarget {
    async fn deliver(&self, identity: &str, body: &Value, timeout: Duration) -> Outcome {
        let request = self
            .client
            .post(&self.url)
            .timeout(timeout)
            .header("Idempotency-Key", idempotency_key(identity))
            .json(body);
        match self.authorized(request).await.send().await {
            Ok(r) => {
                self.note_refusal(&r).await;
                self.outcome(r)
            }
            Err(e) => Self::failure(e),
        }
    }

    async fn check(&self, timeout: Duration) -> Outcome {
        let request = self.client.get(&self.probe_url).timeout(timeout);
        match self.authorized(request).await.send().await {
            Ok(r) => {
                self.note_refusal(&r).await;
                let status = r.status();
                // Only 2xx is healthy: a 404 or a redirect says the probe URL is wrong, not
                // that the API is back.
                if status.is_success() {
                    Outcome::Delivered {
                        status: status.as_u16(),
                    }
                } else {
                    Outcome::Unavailable {
                        reason: format!(
                            "probe HTTP {}: {}",
                            status.as_u16(),
                            status.canonical_reason().unwrap_or("")
                        ),
                        retry_after: retry_after(&r),
                    }
                }
            }
            Err(e) => Self::failure(e),
        }
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}
