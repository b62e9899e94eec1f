//! Unit tests of the handler, on the in-memory fakes.

use super::*;
use std::time::Duration;
use steadfast_domain::backoff::{Backoff, Jitter};
use steadfast_domain::fakes::*;
use steadfast_domain::inbox::{InboxConfig, DEFAULT_MAX_RECORD_BYTES};
use steadfast_domain::lease::LeasePolicy;
use steadfast_domain::ports::InboxStore;
use steadfast_domain::ports::InboxWrite;
use steadfast_domain::RetryPolicy;
use steadfast_domain::{CloseRequest, Gate, Status};

type Fake = Ports<MemInbox, MemGates, MemBus, MemInvoker, ScriptedTarget>;

fn cfg() -> Config {
    Config {
        target: "portal".into(),
        policy: LeasePolicy {
            retry: Backoff {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(4),
                jitter: Jitter::None,
                queue_limit: Duration::ZERO,
            },
            ..LeasePolicy::new(3, Duration::from_secs(10), "claim")
        },
        retry: RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            reserve: Duration::ZERO,
            min_call: Duration::from_millis(1),
        },
        shards: 2,
        sweep_limit: 100,
        invocation_timeout: Duration::from_secs(60),
    }
}

fn ports(target: ScriptedTarget) -> Fake {
    Ports {
        store: MemInbox::default(),
        gates: MemGates::default(),
        events: MemBus::default(),
        invoker: MemInvoker::default(),
        targets: BTreeMap::from([("customer".to_owned(), target)]),
    }
}

async fn put(p: &Fake, no: u32, name: &str, ts: &str) -> String {
    let inbox = InboxConfig::parse(
        "/entity",
        r#"{"customer":{"key":["/no"],"endpoint":"/c"}}"#,
        DEFAULT_MAX_RECORD_BYTES,
    )
    .unwrap();
    let i = inbox
        .read(&format!(
            r#"{{"entity":"customer","no":{no},"name":"{name}","changedAt":"{ts}"}}"#
        ))
        .unwrap();
    // The receiver stores the accepted copy's correlation id with it: `erp-{no}` here.
    let correlation_id = format!("erp-{no}");
    let w = InboxWrite {
        incoming: &i,
        message_id: "m",
        correlation_id: &correlation_id,
        now_ms: 0,
        shard: no % 2,
    };
    match p.store.current(&i.id).await.unwrap() {
        None => assert!(p.store.insert(&w).await.unwrap()),
        Some(c) => {
            let (version, status, fresh) =
                match steadfast_domain::inbox::merge(Some(&c), &i.hash, i.changed_at_ms) {
                    steadfast_domain::Merge::Replace {
                        version,
                        status,
                        fresh,
                    } => (version, status, fresh),
                    other => panic!("{other:?}"),
                };
            assert!(p
                .store
                .replace(&w, &c, version, status, fresh)
                .await
                .unwrap());
        }
    }
    i.id
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

#[tokio::test]
async fn a_sweep_delivers_each_record_once_with_its_versioned_key() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    for no in 0..5 {
        put(&p, no, "A", "2026-01-01T00:00:00Z").await;
    }
    let t = p.run(&cfg(), Trigger::Sweep, || 10, "t1", later()).await;
    assert_eq!((t.claimed, t.delivered, t.api_calls), (5, 5, 5));
    let mut calls = p.targets["customer"].calls();
    calls.sort();
    assert_eq!(calls[0], "customer/0/1");
    assert_eq!(p.store.get("customer/0").unwrap().status, Status::Processed);
    // nothing is due any more
    let again = p.run(&cfg(), Trigger::Sweep, || 20, "t2", later()).await;
    assert_eq!(again.claimed, 0);
}

#[tokio::test]
async fn a_halted_gate_claims_nothing() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    put(&p, 1, "A", "2026-01-01T00:00:00Z").await;
    let mut g = Gate::new("portal");
    g.state = steadfast_domain::GateState::Halted;
    g.version = 1;
    p.gates.0.lock().unwrap().insert("portal".into(), g);
    let t = p
        .run(
            &cfg(),
            Trigger::Records(vec!["customer/1".into()]),
            || 10,
            "t",
            later(),
        )
        .await;
    assert!(t.gate_closed);
    assert_eq!(t.claimed, 0);
    assert!(p.targets["customer"].calls().is_empty());
}

#[tokio::test]
async fn a_portal_down_for_everyone_halts_once_and_nothing_is_lost() {
    let p = ports(ScriptedTarget::always(Outcome::unavailable("HTTP 503")));
    for no in 0..6 {
        put(&p, no, "A", "2026-01-01T00:00:00Z").await;
    }
    let t = p.run(&cfg(), Trigger::Sweep, || 10, "t", later()).await;
    assert!(t.tripped);
    // the judge's calls: the first record one short, the next one's answer as witness
    assert_eq!(t.api_calls, 2, "{t:?}");
    assert_eq!((t.released, t.retried, t.failed), (t.claimed - 1, 1, 0));
    assert_eq!(p.invoker.all().len(), 1, "one halt request");
    assert!(p.events.types().contains(&"DeliveryFailed"));
    let rows: Vec<_> = (0..6)
        .map(|no| p.store.get(&format!("customer/{no}")).unwrap())
        .collect();
    assert!(
        rows.iter().all(|r| r.status == Status::ToBeProcessed),
        "nothing lost"
    );
    // the record whose failures halted the flow waits its retry time, counted; the rest
    // are released uncounted
    let counted: Vec<_> = rows.iter().filter(|r| r.attempts == 1).collect();
    assert_eq!(counted.len(), 1);
    assert!(counted[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("HTTP 503"));
    assert_eq!(rows.iter().filter(|r| r.attempts == 0).count(), 5);
    // AND the halt request and DeliveryFailed carry that record's correlation id
    let decided = counted[0].record.correlation_id.clone();
    assert!(decided.as_deref().is_some_and(|c| c.starts_with("erp-")));
    assert!(
        matches!(&p.invoker.all()[..], [Invoked::Close(CloseRequest::Trip(t))] if t.correlation_id == decided),
        "{:?}",
        p.invoker.all()
    );
    assert!(p.events.0.lock().unwrap().iter().any(|e| matches!(e,
        FlowEvent::DeliveryFailed { correlation_id, .. } if *correlation_id == decided)));
}

#[tokio::test]
async fn a_record_that_fails_while_others_are_delivered_retries_later_without_a_halt() {
    let p = ports(ScriptedTarget::new(
        vec![
            Outcome::Delivered { status: 201 },
            Outcome::Delivered { status: 201 },
            Outcome::unavailable("HTTP 500"),
            Outcome::unavailable("HTTP 500"),
        ],
        Outcome::Delivered { status: 201 },
    ));
    for no in [0, 2, 4] {
        put(&p, no, "A", "2026-01-01T00:00:00Z").await; // one shard, one page
    }
    // the record with the most claims is tried last: make customer/0 the known failure
    let c = p
        .store
        .claim("customer/0", 1, 2, "old")
        .await
        .unwrap()
        .unwrap();
    let back = Settle::Retry {
        due_at_ms: 3,
        error: "HTTP 500".into(),
    };
    p.store.settle(&c, &back).await.unwrap();
    let t = p.run(&cfg(), Trigger::Sweep, || 10, "t", later()).await;
    assert!(!t.tripped, "{t:?}");
    assert_eq!((t.delivered, t.retried), (2, 1), "{t:?}");
    // AND the run's metrics: two delivered, the failing record's second call a retry
    assert_eq!(
        t.metrics("portal-inbox"),
        Document::new("inbox", "portal-inbox")
            .count(Metric::Delivered, 2u32)
            .count(Metric::Retries, 1u32)
    );
    let failing = p.store.get("customer/0").unwrap();
    assert_eq!(failing.status, Status::ToBeProcessed);
    assert!(failing.last_error.unwrap().contains("HTTP 500"));
    assert!(p.invoker.all().is_empty());
}

#[tokio::test]
async fn a_refused_record_is_failed_with_its_reason_and_the_others_go_on() {
    let p = ports(ScriptedTarget::new(
        vec![Outcome::Refused("HTTP 422: Unprocessable Entity".into())],
        Outcome::Delivered { status: 201 },
    ));
    let c = cfg();
    put(&p, 1, "A", "2026-01-01T00:00:00Z").await;
    put(&p, 3, "B", "2026-01-01T00:00:00Z").await;
    let t = p.run(&c, Trigger::Sweep, || 10, "t", later()).await;
    assert_eq!((t.failed, t.delivered), (1, 1));
    let failed: Vec<_> = (0..4)
        .filter_map(|n| p.store.get(&format!("customer/{n}")))
        .filter(|r| r.status == Status::Failed)
        .collect();
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("HTTP 422: Unprocessable Entity")
    );
    assert_eq!(p.events.types(), vec!["MessageParked"]);
    let parked = p.events.0.lock().unwrap()[0].clone();
    assert!(
        matches!(&parked, FlowEvent::MessageParked { correlation_id, .. } if *correlation_id == failed[0].record.correlation_id),
        "{parked:?}"
    );
    // a newer version of the failed record is taken again
    let id = put(
        &p,
        if failed[0].record.record.contains("\"A\"") {
            1
        } else {
            3
        },
        "C",
        "2026-01-02T00:00:00Z",
    )
    .await;
    assert_eq!(p.store.get(&id).unwrap().status, Status::ToBeProcessed);
}

#[tokio::test]
async fn an_update_while_in_progress_is_delivered_next() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    let id = put(&p, 1, "A", "2026-01-01T00:00:00Z").await;
    let claimed = p.store.claim(&id, 10, 100, "x").await.unwrap().unwrap();
    put(&p, 1, "B", "2026-01-02T00:00:00Z").await;
    let s = p
        .store
        .settle(
            &claimed,
            &Settle::Done {
                at_ms: 11,
                expires_at_s: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(s, Settled::NewerVersion);
    let t = p
        .run(
            &cfg(),
            Trigger::Records(vec![id.clone()]),
            || 12,
            "t",
            later(),
        )
        .await;
    assert_eq!(t.delivered, 1);
    assert_eq!(p.targets["customer"].calls(), vec!["customer/1/2"]);
    assert_eq!(p.store.get(&id).unwrap().status, Status::Processed);
}

#[test]
fn stream_events_give_the_ids_that_became_pending() {
    let event = serde_json::json!({"Records": [
        {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "customer/1"}}, "NewImage": {"status": {"S": "ToBeProcessed"}}}},
        {"eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {"Keys": {"id": {"S": "customer/2"}}, "NewImage": {"status": {"S": "InProgress"}}}},
        {"eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {"Keys": {"id": {"S": "customer/3"}}}},
        {"eventSource": "aws:dynamodb", "eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"S": "customer/4"}}}}
    ]});
    assert_eq!(
        trigger(&event),
        Trigger::Records(vec!["customer/1".into(), "customer/3".into()])
    );
    assert_eq!(
        trigger(&serde_json::json!({"source": "aws.scheduler"})),
        Trigger::Sweep
    );
}

#[tokio::test]
async fn with_only_the_reserve_left_nothing_is_claimed_and_no_claim_is_spent() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    for no in 0..25 {
        put(&p, no, "A", "2026-01-01T00:00:00Z").await;
    }
    let mut c = cfg();
    c.retry.reserve = Duration::from_secs(3);
    let t = p
        .run(
            &c,
            Trigger::Sweep,
            || 10,
            "t",
            Instant::now() + Duration::from_secs(1),
        )
        .await;
    assert_eq!((t.claimed, t.api_calls), (0, 0), "{t:?}");
    assert!((0..25).all(|no| p.store.get(&format!("customer/{no}")).unwrap().attempts == 0));
    // with time, all 25 go, claimed ten at a time
    let t = p.run(&c, Trigger::Sweep, || 10, "t2", later()).await;
    assert_eq!((t.claimed, t.delivered), (25, 25), "{t:?}");
}
