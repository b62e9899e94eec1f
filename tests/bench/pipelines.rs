//! The three pipelines as the bench drives them on one local stack: what a message is, where
//! it goes in, and how to tell it was delivered.

use std::collections::HashSet;

use anyhow::Result;
use serde_json::json;
use steadfast_local::local::{application, order, Local};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pipeline {
    Breaker,
    Outbox,
    Inbox,
}

pub const ALL: [Pipeline; 3] = [Pipeline::Breaker, Pipeline::Outbox, Pipeline::Inbox];

impl Pipeline {
    pub fn name(self) -> &'static str {
        match self {
            Pipeline::Breaker => "breaker",
            Pipeline::Outbox => "outbox",
            Pipeline::Inbox => "inbox",
        }
    }

    /// The functions that carry a message (the gate's close/open/backoff only act on faults).
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            Pipeline::Breaker => &["processor"],
            Pipeline::Outbox => &["outbox-writer", "outbox-relay"],
            Pipeline::Inbox => &["inbox-receiver", "inbox-processor"],
        }
    }

    pub fn queue(self) -> &'static str {
        match self {
            Pipeline::Breaker => "OrdersQueue",
            Pipeline::Outbox => "ApplicationsQueue",
            Pipeline::Inbox => "ErpRecordsQueue",
        }
    }

    /// The message body for `id`: an order, a mortgage application, an ERP customer record.
    pub fn body(self, id: &str) -> String {
        match self {
            Pipeline::Breaker => order(id).to_string(),
            Pipeline::Outbox => application(id).to_string(),
            Pipeline::Inbox => json!({"entity": "customer", "customerNo": id, "name": "n",
                                      "changedAt": "2026-01-01T00:00:00Z"})
            .to_string(),
        }
    }

    /// How many of `ids` were delivered: created at the portal, published to the consumer,
    /// applied at the portal.
    pub async fn delivered(self, l: &Local, ids: &[String]) -> Result<usize> {
        Ok(match self {
            Pipeline::Breaker => {
                let created = l.portal.created_orders();
                ids.iter().filter(|id| created.contains_key(*id)).count()
            }
            Pipeline::Outbox => {
                let got: HashSet<String> = l
                    .approvals()
                    .await?
                    .into_iter()
                    .map(|a| a.application_id)
                    .collect();
                ids.iter().filter(|id| got.contains(*id)).count()
            }
            Pipeline::Inbox => {
                let states = l.portal.record_states();
                ids.iter()
                    .filter(|id| states.contains_key(&format!("customer/{id}")))
                    .count()
            }
        })
    }
}
