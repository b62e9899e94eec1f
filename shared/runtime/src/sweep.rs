//! How a leased-record worker finds its work: the ids a DynamoDB stream event names, or a
//! sweep of the sparse `due` index, shard by shard and page by page, until a limit.

use futures::future::join_all;
use serde_json::Value;
use steadfast_domain::lease::{Claimed, LeasePolicy, Leased, Settled};
use steadfast_domain::ports::{ErrorKind, LeasedStore, PortResult};
use tracing::{debug, error, warn};

/// What started a leased-record worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Records named by a DynamoDB stream event, by id (sorted, once each).
    Records(Vec<String>),
    /// The schedule (any event that is not a stream event).
    Sweep,
}

impl Trigger {
    /// Reads a Lambda event: a DynamoDB stream event gives the ids (key attribute `id`) of the
    /// records `keep` accepts; anything else is a sweep.
    pub fn of(event: &Value, keep: impl Fn(&Value) -> bool) -> Trigger {
        let Some(records) = event.get("Records").and_then(Value::as_array) else {
            return Trigger::Sweep;
        };
        if !records.iter().any(|r| r["eventSource"] == "aws:dynamodb") {
            return Trigger::Sweep;
        }
        let mut ids: Vec<String> = records
            .iter()
            .filter(|r| keep(r))
            .filter_map(|r| r["dynamodb"]["Keys"]["id"]["S"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        Trigger::Records(ids)
    }
}

/// A stream record of one of `names` (`INSERT`, `MODIFY`, `REMOVE`).
pub fn event_name_in(record: &Value, names: &[&str]) -> bool {
    names.iter().any(|n| record["eventName"] == *n)
}

/// A sweep of every shard of the due index: pages of due ids, oldest first, as of the sweep's
/// start (a record put back during the sweep waits for the next one), until `limit` records
/// have been claimed. A shard is left when a page is short, or when nothing in it could be
/// claimed (the index lagging, or another worker): the next sweep sees it again.
#[derive(Debug)]
pub struct Sweep {
    shards: u32,
    limit: usize,
    page: usize,
    as_of_ms: u64,
    shard: u32,
    claimed: usize,
    /// Due queries that failed (each ends its shard).
    pub errors: u32,
}

impl Sweep {
    pub fn new(shards: u32, limit: usize, as_of_ms: u64) -> Self {
        Sweep {
            shards,
            limit,
            page: 100usize.min(limit.max(1)),
            as_of_ms,
            shard: 0,
            claimed: 0,
            errors: 0,
        }
    }

    /// The next page of due ids; `None` when the sweep is over.
    pub async fn next<S: LeasedStore>(&mut self, store: &S, pipeline: &str) -> Option<Vec<String>> {
        while self.shard < self.shards && self.claimed < self.limit {
            match store.due(self.shard, self.as_of_ms, self.page).await {
                Ok(ids) if !ids.is_empty() => return Some(ids),
                Ok(_) => {}
                Err(e) => {
                    error!(pipeline, shard = self.shard, error = %e, "due query failed");
                    self.errors += 1;
                }
            }
            self.shard += 1;
        }
        None
    }

    /// Reports what became of the last page: `claimed` of its `page_len` ids.
    pub fn claimed(&mut self, claimed: usize, page_len: usize) {
        self.claimed += claimed;
        if claimed == 0 || page_len < self.page {
            self.shard += 1;
        }
    }
}

/// Runs `page` on the ids a trigger names: once on a stream event's records, or on each page
/// of a sweep until it ends or `page` answers `None` (stop). `page` answers how many of the ids
/// it claimed. Returns the due queries that failed.
pub async fn pages<S: LeasedStore>(
    trigger: Trigger,
    store: &S,
    mut sweep: Sweep,
    pipeline: &str,
    mut page: impl AsyncFnMut(&[String]) -> Option<usize>,
) -> u32 {
    let Trigger::Sweep = trigger else {
        let Trigger::Records(ids) = trigger else {
            unreachable!()
        };
        page(&ids).await;
        return 0;
    };
    while let Some(ids) = sweep.next(store, pipeline).await {
        let Some(claimed) = page(&ids).await else {
            break;
        };
        sweep.claimed(claimed, ids.len());
    }
    sweep.errors
}

/// What claiming a page of ids came to.
#[derive(Debug)]
pub struct Held<R> {
    pub claimed: Vec<Claimed<R>>,
    /// Ids not due, or claimed by another worker first.
    pub skipped: u32,
    /// Claims that failed (a later sweep tries again).
    pub errors: u32,
    /// Items claimed that could not be read: the store set them `Failed` with the reason.
    pub unreadable: u32,
}

/// Claims `ids` concurrently, each with a lease from `now()` under `token`.
pub async fn claim_all<S: LeasedStore>(
    store: &S,
    ids: &[String],
    policy: &LeasePolicy,
    now: &impl Fn() -> u64,
    token: &str,
    pipeline: &str,
) -> Held<S::Record> {
    let claims = join_all(ids.iter().map(|id| async move {
        let t = now();
        (id, store.claim(id, t, policy.lease_until(t), token).await)
    }))
    .await;
    let mut held = Held {
        claimed: Vec::new(),
        skipped: 0,
        errors: 0,
        unreadable: 0,
    };
    for (id, claim) in claims {
        match claim {
            Ok(Some(c)) => {
                debug!(pipeline, id = %c.id, correlation_id = c.record.correlation_id(), attempts = c.attempts, outcome = "claimed");
                held.claimed.push(c)
            }
            Ok(None) => held.skipped += 1,
            Err(e) if e.kind == ErrorKind::Malformed => {
                error!(pipeline, id = %id, error = %e, outcome = "failed", "claimed item cannot be read; set Failed");
                held.unreadable += 1;
            }
            Err(e) => {
                warn!(pipeline, id = %id, error = %e, "claim failed; a sweep retries");
                held.errors += 1;
            }
        }
    }
    held
}

/// Logs a settle that did not take: a lost lease (another worker owns the record) or a failed
/// write (the claim holds until its lease ends; then a sweep finds the record again). `Some`
/// with what the settle did when it took.
pub fn settled<R: Leased>(
    pipeline: &str,
    c: &Claimed<R>,
    written: PortResult<Settled>,
) -> Option<Settled> {
    let correlation_id = c.record.correlation_id();
    match written {
        Ok(Settled::LeaseLost) => {
            warn!(pipeline, id = %c.id, correlation_id, "lease lost before settling; another worker owns the record");
            None
        }
        Err(e) => {
            error!(pipeline, id = %c.id, correlation_id, error = %e, "settle failed; the record is due again after its lease");
            None
        }
        Ok(done) => Some(done),
    }
}

/// A unique claim token for one invocation.
pub fn claim_token(request_id: &str) -> String {
    format!("{request_id}-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stream_event_names_the_records_kept_and_anything_else_is_a_sweep() {
        let event = json!({"Records": [
            {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "b"}}}},
            {"eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {"Keys": {"id": {"S": "a"}}}},
            {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "b"}}}},
            {"eventSource": "aws:dynamodb", "eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"S": "c"}}}}
        ]});
        assert_eq!(
            Trigger::of(&event, |r| event_name_in(r, &["INSERT"])),
            Trigger::Records(vec!["b".into()])
        );
        assert_eq!(
            Trigger::of(&event, |r| event_name_in(r, &["INSERT", "MODIFY"])),
            Trigger::Records(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            Trigger::of(&json!({"kind": "sweep"}), |_| true),
            Trigger::Sweep
        );
        assert_eq!(
            Trigger::of(&json!({"Records": [{"eventSource": "aws:sqs"}]}), |_| true),
            Trigger::Sweep
        );
    }

    /// A store whose every claim meets an unreadable item, or an outage.
    struct Broken(ErrorKind);

    impl LeasedStore for Broken {
        type Record = steadfast_domain::OutboxRecord;
        async fn due(&self, _: u32, _: u64, _: usize) -> PortResult<Vec<String>> {
            Ok(vec![])
        }
        async fn claim(
            &self,
            id: &str,
            _: u64,
            _: u64,
            _: &str,
        ) -> PortResult<Option<Claimed<Self::Record>>> {
            Err(steadfast_domain::ports::PortError::of(
                self.0,
                format!("claim {id}"),
                "x",
            ))
        }
        async fn settle(
            &self,
            _: &Claimed<Self::Record>,
            _: &steadfast_domain::Settle,
        ) -> PortResult<Settled> {
            Ok(Settled::Done)
        }
    }

    #[tokio::test]
    async fn an_unreadable_item_counts_as_failed_and_an_outage_as_an_error() {
        let policy =
            steadfast_domain::LeasePolicy::new(3, std::time::Duration::from_secs(1), "attempt");
        let ids = vec!["a".to_owned(), "b".to_owned()];
        let held = claim_all(
            &Broken(ErrorKind::Malformed),
            &ids,
            &policy,
            &|| 0,
            "t",
            "outbox",
        )
        .await;
        assert_eq!(
            (held.unreadable, held.errors, held.claimed.len()),
            (2, 0, 0)
        );
        let held = claim_all(
            &Broken(ErrorKind::Throttled),
            &ids,
            &policy,
            &|| 0,
            "t",
            "outbox",
        )
        .await;
        assert_eq!((held.unreadable, held.errors), (0, 2));
    }

    #[test]
    fn a_sweep_pages_within_its_limit() {
        let mut s = Sweep::new(2, 150, 0);
        assert_eq!(s.page, 100);
        s.claimed(100, 100);
        assert_eq!(s.shard, 0, "a full page stays on its shard");
        s.claimed(0, 100);
        assert_eq!(s.shard, 1, "a page with nothing claimable leaves the shard");
        s.claimed(60, 60);
        assert_eq!((s.shard, s.claimed), (2, 160));
    }
}
