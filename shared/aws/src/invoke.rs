//! Asynchronous invocations (InvocationType=Event) of close, backoff and open.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde::Serialize;
use steadfast_domain::ports::{Invoker, PortError, PortResult};
use steadfast_domain::{CloseRequest, OpenRequest, ProbeRequest};

pub struct LambdaInvoker {
    pub client: aws_sdk_lambda::Client,
    pub close_function: String,
    pub backoff_function: String,
    pub open_function: String,
}

impl LambdaInvoker {
    /// Only `close` (`CLOSE_FUNCTION`): for pipelines that trip the gate and nothing else.
    pub fn close_only(client: aws_sdk_lambda::Client, close_function: String) -> Self {
        LambdaInvoker {
            client,
            close_function,
            backoff_function: String::new(),
            open_function: String::new(),
        }
    }

    async fn fire<T: Serialize>(&self, function: &str, payload: &T) -> PortResult<()> {
        if function.is_empty() {
            return Err(PortError::new(
                "Invoke",
                "this function is not configured to invoke it",
            ));
        }
        let body = serde_json::to_vec(payload).map_err(|e| PortError::new("encode payload", e))?;
        self.client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| crate::error::port_error(format!("Invoke {function}"), e))?;
        Ok(())
    }
}

impl Invoker for LambdaInvoker {
    async fn close(&self, request: &CloseRequest) -> PortResult<()> {
        self.fire(&self.close_function, request).await
    }
    async fn backoff(&self, probe: &ProbeRequest) -> PortResult<()> {
        self.fire(&self.backoff_function, probe).await
    }
    async fn open(&self, request: &OpenRequest) -> PortResult<()> {
        self.fire(&self.open_function, request).await
    }
}
