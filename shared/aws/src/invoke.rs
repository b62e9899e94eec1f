//! Asynchronous invocations (InvocationType=Event) of close, backoff and open.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde::Serialize;
use steadfast_domain::ports::{Invoker, PortError, PortResult};
use steadfast_domain::{CloseRequest, ProbeRequest};

use crate::describe;

pub struct LambdaInvoker {
    pub client: aws_sdk_lambda::Client,
    pub close_function: String,
    pub backoff_function: String,
    pub open_function: String,
}

impl LambdaInvoker {
    async fn fire<T: Serialize>(&self, function: &str, payload: &T) -> PortResult<()> {
        let body = serde_json::to_vec(payload).map_err(|e| PortError::new("encode payload", e))?;
        self.client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| PortError::new(format!("Invoke {function}"), describe(&e)))?;
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
    async fn open(&self, probe: &ProbeRequest) -> PortResult<()> {
        self.fire(&self.open_function, probe).await
    }
}
