//! What the end-to-end and contract tests share: logging, a deployed stack per test, the
//! emulator, counting what the fake portal created, and secrets for the token tests.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use steadfast_local::aws::Emulator;
use steadfast_local::local::{order, Local, Options};

/// Test logging at `warn`, once per test binary.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
}

/// The rate schedules' compressed period in most tests.
pub const SWEEPS: Option<Duration> = Some(Duration::from_secs(2));

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A stack of its own for one test: `prefix` names it, `params` are template parameters,
/// `env` local environment overrides of its functions, `rate_every` the compressed period of
/// the rate schedules ([`SWEEPS`] for most tests; `None` runs them at their own period).
pub async fn stack(
    prefix: &str,
    params: &[(&str, &str)],
    env: &[(&str, &str)],
    rate_every: Option<Duration>,
) -> Result<Local> {
    init();
    Local::up(Options {
        prefix: prefix.into(),
        parameters: pairs(params).into_iter().collect(),
        env: pairs(env),
        rate_every,
        ..Options::default()
    })
    .await
}

/// The emulator the tests run against (`AWS_ENDPOINT_URL`).
pub async fn emulator() -> Emulator {
    Emulator::connect(&Emulator::endpoint_from_env()).await
}

/// A name no other test uses.
pub fn unique(what: &str) -> String {
    format!("c-{what}-{:08x}", rand::random::<u32>())
}

/// Calls the fake portal took on `path`.
pub fn calls_to(l: &Local, path: &str) -> usize {
    l.portal.seen().iter().filter(|s| s.path == path).count()
}

/// `n` ids `PREFIX-000`, `PREFIX-001`, …
pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}

/// Sends an order for each id to the stack's orders queue.
pub async fn send_orders(l: &Local, ids: &[String]) -> Result<()> {
    let bodies: Vec<Value> = ids.iter().map(|id| order(id)).collect();
    l.send(&bodies).await
}

/// Waits until the portal has created an order for each id.
pub async fn wait_created(l: &Local, ids: &[String], limit: Duration) -> Result<()> {
    let want: HashSet<&str> = ids.iter().map(String::as_str).collect();
    l.wait_for(
        &format!("{} orders created at the portal", ids.len()),
        limit,
        || async {
            let created = l.portal.created_orders();
            Ok(want.iter().all(|id| created.contains_key(*id)))
        },
    )
    .await?;
    Ok(())
}

/// Every order id was created exactly once at the portal, and nothing else was.
pub fn assert_each_created_once(l: &Local, ids: &[String]) {
    let created = l.portal.created_orders();
    let want: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let got: HashSet<&str> = created.keys().map(String::as_str).collect();
    assert_eq!(got, want, "nothing lost, nothing extra");
    assert!(
        created.values().all(|n| *n == 1),
        "nothing created twice: {created:?}"
    );
}

/// A Secrets Manager secret holding `value`, named after `what`; returns its ARN.
pub async fn secret(what: &str, value: &str) -> Result<String> {
    let emu = emulator().await;
    let out = emu
        .secrets
        .create_secret()
        .name(format!("steadfast-{what}-{:08x}", rand::random::<u32>()))
        .secret_string(value)
        .send()
        .await?;
    Ok(out.arn.expect("secret ARN"))
}

/// A token-like random value.
pub fn token() -> String {
    format!("tok-{:016x}", rand::random::<u64>())
}

/// Creates table `name` keyed by `key` (S), with the sparse `due` index (`due_shard`,
/// `due_at`) when asked.
pub async fn create_table(e: &Emulator, name: &str, key: &str, due_index: bool) -> Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let mut req = e
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()?,
        );
    if due_index {
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("due_shard")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("due_at")
                    .attribute_type(ScalarAttributeType::N)
                    .build()?,
            )
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("due")
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("due_shard")
                            .key_type(KeyType::Hash)
                            .build()?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("due_at")
                            .key_type(KeyType::Range)
                            .build()?,
                    )
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()?,
            );
    }
    req.send().await.map_err(|e| {
        anyhow::anyhow!("CreateTable {name}: {}", steadfast_local::aws::describe(&e))
    })?;
    Ok(())
}
