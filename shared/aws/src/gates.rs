//! The gate store on DynamoDB: one item per target (key `target`), written only with a
//! condition on the version read, so of concurrent writers exactly one wins.

use aws_sdk_dynamodb::types::AttributeValue;
use steadfast_domain::ports::{GateStore, PortError, PortResult};
use steadfast_domain::Gate;

use crate::describe;

pub struct DynamoGates {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl GateStore for DynamoGates {
    async fn load(&self, target: &str) -> PortResult<Gate> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("target", AttributeValue::S(target.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    format!("GetItem gate {target} from {}", self.table),
                    describe(&e),
                )
            })?;
        match out.item {
            None => Ok(Gate::new(target)),
            Some(item) => serde_dynamo::from_item(item).map_err(|e| {
                PortError::new(format!("decode gate {target} from {}", self.table), e)
            }),
        }
    }

    async fn save(&self, next: &Gate) -> PortResult<bool> {
        let item = serde_dynamo::to_item(next).map_err(|e| PortError::new("encode gate", e))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        put = if next.version <= 1 {
            put.condition_expression("attribute_not_exists(#t)")
                .expression_attribute_names("#t", "target")
        } else {
            put.condition_expression("#v = :prev")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(
                    ":prev",
                    AttributeValue::N((next.version - 1).to_string()),
                )
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(PortError::new(
                format!("PutItem gate {} into {}", next.target, self.table),
                describe(&e),
            )),
        }
    }
}
