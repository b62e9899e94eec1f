//! The gate store on DynamoDB: one item per target (key `target`), written only with a
//! condition on the version read, so of concurrent writers exactly one wins.

use aws_sdk_dynamodb::types::AttributeValue;
use steadfast_domain::ports::{GateStore, PortError, PortResult};
use steadfast_domain::Gate;

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
                crate::error::port_error(format!("GetItem gate {target} from {}", self.table), e)
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
            Err(e) => Err(crate::error::port_error(
                format!("PutItem gate {} into {}", next.target, self.table),
                e,
            )),
        }
    }

    async fn count_ramp(
        &self,
        target: &str,
        epoch: u64,
        delivered: u64,
    ) -> PortResult<Option<u64>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("target", AttributeValue::S(target.to_owned()))
            .update_expression("ADD ramp_delivered :n")
            .condition_expression("#s = :flowing AND epoch = :e AND ramping = :yes")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":n", AttributeValue::N(delivered.to_string()))
            .expression_attribute_values(":flowing", AttributeValue::S("Flowing".into()))
            .expression_attribute_values(":e", AttributeValue::N(epoch.to_string()))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match out {
            Ok(o) => Ok(o
                .attributes
                .and_then(|a| match a.get("ramp_delivered") {
                    Some(AttributeValue::N(n)) => n.parse().ok(),
                    _ => None,
                })
                .or(Some(delivered))),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(crate::error::port_error(
                format!("UpdateItem ramp count of gate {target} in {}", self.table),
                e,
            )),
        }
    }
}
