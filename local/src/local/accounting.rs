//! The end-of-case accounting of the fault matrix: what must hold after any fault, once it is
//! over: no record held past its lease, no gate halted with nobody probing, no message on a
//! dead-letter queue.

use std::collections::BTreeMap;

use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;

use super::Local;

/// Every dead-letter queue of the template.
pub const DLQS: [&str; 10] = [
    "OrdersDLQ",
    "ErpRecordsDLQ",
    "TimersDLQ",
    "AsyncInvokeDLQ",
    "StreamFailuresDLQ",
    "ScheduleDLQ",
    "ApplicationsDLQ",
    "ApprovalDLQ",
    "ApprovalRuleDLQ",
    "AlertsRuleDLQ",
];

/// What the accounting found wrong; empty when all is well.
#[derive(Debug, Default, PartialEq)]
pub struct Accounting {
    /// Outbox and inbox records `InProgress` whose lease has run out.
    pub held_past_lease: Vec<String>,
    /// Gates not flowing whose next probe is overdue by more than the grace: nobody probing.
    pub unprobed_gates: Vec<String>,
    /// Messages on each dead-letter queue that holds any.
    pub dead_letters: BTreeMap<String, u64>,
}

impl Accounting {
    pub fn is_clean(&self) -> bool {
        *self == Accounting::default()
    }
}

fn num(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> u64 {
    match item.get(k) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

impl Local {
    /// The accounting now; `grace_ms` is how overdue a probe may be before its gate counts as
    /// unprobed (the watchdog's grace plus its period).
    pub async fn accounting(&self, grace_ms: u64) -> Result<Accounting> {
        let now = crate::now_ms();
        let mut out = Accounting::default();
        for table in ["OutboxTable", "InboxTable"] {
            for item in self.scan(table, "id, #s, due_at").await? {
                let in_progress =
                    matches!(item.get("status"), Some(AttributeValue::S(s)) if s == "InProgress");
                if in_progress && num(&item, "due_at") < now {
                    if let Some(AttributeValue::S(id)) = item.get("id") {
                        out.held_past_lease.push(format!("{table}/{id}"));
                    }
                }
            }
        }
        for target in [self.stack.name.clone(), self.inbox_target()] {
            let Some(gate) = self.gate_of(&target).await? else {
                continue;
            };
            let overdue = gate.next_probe_at_ms + grace_ms < now;
            if !gate.is_flowing() && !gate.manual && overdue {
                out.unprobed_gates.push(format!(
                    "{target} ({:?}, reason {})",
                    gate.state, gate.reason
                ));
            }
        }
        for dlq in DLQS {
            let (v, f, d) = self.depth(dlq).await?;
            if v + f + d > 0 {
                out.dead_letters.insert(dlq.to_owned(), v + f + d);
            }
        }
        Ok(out)
    }
}
