//! inbox-receiver: wiring only. Configuration (read once, failing with the variable's name),
//! adapters, and the Lambda runtime loop. The logic is in `lib.rs`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use inbox_receiver::{Config, Ports};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steadfast_aws::{inbox::DynamoInbox, parking::SqsParking, Clients, ConfigError, Env};

fn config(env: &Env) -> Result<Config, ConfigError> {
    Ok(Config {
        inbox: steadfast_aws::inbox::config_from(env)?,
        source: env
            .optional("INBOX_SOURCE_NAME")
            .unwrap_or_else(|| "erp-records".into()),
        shards: steadfast_aws::inbox::shards_from(env)?,
    })
}

async fn ports(env: &Env) -> Result<Ports<DynamoInbox, SqsParking>, ConfigError> {
    let clients = Clients::load(env).await;
    Ok(Ports {
        store: DynamoInbox {
            client: clients.dynamodb.clone(),
            table: env.required("INBOX_TABLE")?,
        },
        parking: SqsParking {
            client: clients.sqs.clone(),
            queue_url: env.required("PARKING_QUEUE_URL")?,
        },
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = config(&env)?;
    let ports = ports(&env).await?;
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let (response, _tally) = ports
            .handle(cfg, event.payload, steadfast_aws::now_ms)
            .await;
        Ok::<SqsBatchResponse, Error>(response)
    }))
    .await
}
