//! close: wiring only; the logic is in `lib.rs`.

use close::Ports;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steadfast_aws::{http::HttpTarget, Clients, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let clients = Clients::load(&env).await;
    let ports = Ports {
        gates: clients.gates(&env)?,
        switch: clients.flow_switch(&env)?,
        events: clients.bus(&env)?,
        invoker: clients.invoker(&env)?,
        target: HttpTarget::from_env(&env, clients.target_token(&env).await?)?,
    };
    let ports = &ports;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        ports.handle_value(event.payload).await.map_err(Error::from)
    }))
    .await
}
