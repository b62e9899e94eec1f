//! The target's bearer token. From Secrets Manager by ARN (`TARGET_TOKEN_SECRET_ARN`), read at
//! cold start (an unreadable secret fails the cold start, naming the variable) and kept for
//! five minutes; read again sooner once the target answered 401 or 403, so a rotated token is
//! picked up without a redeploy. `TARGET_TOKEN` (local runs) is fixed. Never logged.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// How long a token read from the secret is used before it is read again.
const KEEP: Duration = Duration::from_secs(300);
/// After a failed read, how long the last token is used before the secret is read again.
const AFTER_FAILURE: Duration = Duration::from_secs(30);
/// The longest a read may take (it happens before a delivery, inside its time budget).
const READ_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Token {
    source: Source,
    cached: Mutex<Option<(String, Instant)>>,
    failed_at: Mutex<Option<Instant>>,
}

enum Source {
    Fixed(Option<String>),
    Secret {
        client: aws_sdk_secretsmanager::Client,
        arn: String,
    },
}

impl Token {
    /// A fixed token, or none.
    pub fn fixed(token: Option<String>) -> Self {
        Token {
            source: Source::Fixed(token),
            cached: Mutex::new(None),
            failed_at: Mutex::new(None),
        }
    }

    /// The secret `arn`, read now: an error says why it cannot be used.
    pub async fn secret(
        client: aws_sdk_secretsmanager::Client,
        arn: String,
    ) -> Result<Self, String> {
        let first = read(&client, &arn).await?;
        Ok(Token {
            source: Source::Secret { client, arn },
            cached: Mutex::new(Some((first, Instant::now()))),
            failed_at: Mutex::new(None),
        })
    }

    /// The token to send, if any. A secret that cannot be read again keeps the last token.
    pub async fn get(&self) -> Option<String> {
        let (client, arn) = match &self.source {
            Source::Fixed(t) => return t.clone(),
            Source::Secret { client, arn } => (client, arn),
        };
        let mut cached = self.cached.lock().await;
        if let Some((t, at)) = cached.as_ref() {
            let resting = self
                .failed_at
                .lock()
                .await
                .is_some_and(|f| f.elapsed() < AFTER_FAILURE);
            if at.elapsed() < KEEP || resting {
                return Some(t.clone());
            }
        }
        let read = tokio::time::timeout(READ_TIMEOUT, read(client, arn))
            .await
            .unwrap_or_else(|_| Err("a secret that answers within 2 s".into()));
        match read {
            Ok(t) => {
                *cached = Some((t.clone(), Instant::now()));
                *self.failed_at.lock().await = None;
                Some(t)
            }
            Err(why) => {
                tracing::warn!(error = %why, "target token not read again; using the last one for 30 s");
                *self.failed_at.lock().await = Some(Instant::now());
                cached.as_ref().map(|(t, _)| t.clone())
            }
        }
    }

    /// The target refused the token (401/403): read the secret again before the next call.
    pub async fn refused(&self) {
        if let Some((_, at)) = self.cached.lock().await.as_mut() {
            *at = Instant::now() - KEEP;
        }
    }
}

async fn read(client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<String, String> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| format!("a readable secret ({})", crate::describe(&e)))?;
    match out.secret_string.map(|t| t.trim().to_owned()) {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err("a secret whose value is a non-empty text".into()),
    }
}
