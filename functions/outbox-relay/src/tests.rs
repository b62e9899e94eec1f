//! Unit tests of the handler, on the in-memory fakes.

use super::*;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use steadfast_domain::backoff::{Backoff, Jitter};
use steadfast_domain::fakes::{MemOutbox, MemPublisher};
use steadfast_domain::lease::{LeasePolicy, Status};
use steadfast_domain::outbox::{NewRecord, APPLICATION_RECEIVED};

fn cfg() -> Config {
    Config {
        policy: RelayPolicy {
            lease: LeasePolicy {
                retry: Backoff {
                    base: Duration::from_secs(1),
                    cap: Duration::from_secs(4),
                    jitter: Jitter::None,
                    queue_limit: Duration::ZERO,
                },
                ..LeasePolicy::new(u32::MAX, Duration::from_secs(10), "attempt")
            },
            // records are written at 0
            window: Duration::from_secs(25),
            retention: Duration::from_secs(60),
        },
        shards: 4,
        sweep_limit: 1000,
        target: "bus".into(),
    }
}

fn ports(n: usize) -> Ports<MemOutbox, MemPublisher> {
    let p = Ports {
        outbox: MemOutbox::default(),
        bus: MemPublisher::default(),
    };
    for i in 0..n {
        let id = format!("A-{i}");
        // As the writer stores it: the correlation id in the record and in the detail.
        let correlation_id = format!("c-{i}");
        let detail = json!({"applicationId": id, "correlationId": correlation_id});
        p.outbox.insert(
            NewRecord::new(&id, APPLICATION_RECEIVED, detail.to_string(), 0, 4)
                .correlated(&correlation_id),
        );
    }
    p
}

#[test]
fn stream_events_name_their_inserted_ids() {
    let ev = json!({"Records": [
        {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "A-1"}}}},
        {"eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {"Keys": {"id": {"S": "A-2"}}}},
    ]});
    assert_eq!(trigger(&ev), Trigger::Records(vec!["A-1".into()]));
    assert_eq!(trigger(&json!({"source": "aws.scheduler"})), Trigger::Sweep);
    assert_eq!(trigger(&json!({})), Trigger::Sweep);
}

#[tokio::test]
async fn a_sweep_publishes_everything_in_batches_of_ten() {
    let p = ports(25);
    let t = p.run(&cfg(), Trigger::Sweep, || 1_000, "t1").await;
    assert_eq!((t.claimed, t.published), (25, 25));
    let calls = p.bus.calls.lock().unwrap();
    assert!(calls.iter().all(|c| c.len() <= 10));
    assert!(calls.len() >= 3);
    assert_eq!(p.outbox.get("A-7").unwrap().status, Status::Processed);
    assert_eq!(p.outbox.get("A-7").unwrap().due_at_ms, None);
}

#[tokio::test]
async fn inserted_records_are_published_without_a_sweep() {
    let p = ports(3);
    let t = p
        .run(&cfg(), Trigger::Records(vec!["A-1".into()]), || 1_000, "t1")
        .await;
    assert_eq!(t.published, 1);
    assert_eq!(p.outbox.get("A-0").unwrap().status, Status::ToBeProcessed);
}

#[tokio::test]
async fn a_bus_outage_puts_records_back_with_backoff_and_they_go_out_later() {
    let p = ports(5);
    *p.bus.down.lock().unwrap() = true;
    let t = p.run(&cfg(), Trigger::Sweep, || 1_000, "t1").await;
    assert_eq!((t.published, t.retried), (0, 5));
    let r = p.outbox.get("A-0").unwrap();
    assert_eq!(
        (r.status, r.attempts, r.due_at_ms),
        (Status::ToBeProcessed, 1, Some(2_000))
    );
    // Not due yet: nothing happens.
    let t = p.run(&cfg(), Trigger::Sweep, || 1_500, "t2").await;
    assert_eq!(t.claimed, 0);
    *p.bus.down.lock().unwrap() = false;
    let t = p.run(&cfg(), Trigger::Sweep, || 2_000, "t3").await;
    assert_eq!(t.published, 5);
    assert_eq!(p.bus.published.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn only_failed_entries_are_retried_and_a_record_failing_past_its_window_ends_failed() {
    let p = ports(12);
    *p.bus.poison.lock().unwrap() = Some(r#""applicationId":"A-3""#.into());
    let clock = AtomicU64::new(1_000);
    // at 1, 11 and 21 s the record is retried; at 31 s its 25 s window has passed
    for _ in 0..4 {
        p.run(
            &cfg(),
            Trigger::Sweep,
            || clock.load(Ordering::Relaxed),
            "t",
        )
        .await;
        clock.fetch_add(10_000, Ordering::Relaxed);
    }
    let published = p.bus.published.lock().unwrap();
    let apps: Vec<_> = published
        .iter()
        .filter(|e| e.detail_type == APPLICATION_RECEIVED)
        .collect();
    assert_eq!(apps.len(), 11, "every other record once");
    let alerts: Vec<_> = published
        .iter()
        .filter(|e| e.detail_type == RECORD_FAILED)
        .collect();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].detail.contains("A-3"));
    // AND the alert names the correlation id stored with the record
    let alert: serde_json::Value = serde_json::from_str(&alerts[0].detail).unwrap();
    assert_eq!(alert["correlationId"], "c-3");
    let r = p.outbox.get("A-3").unwrap();
    assert_eq!((r.status, r.attempts), (Status::Failed, 4));
    assert!(r
        .last_error
        .unwrap()
        .starts_with("not published within 25 s"));
}

#[tokio::test]
async fn an_entry_the_bus_refuses_as_malformed_ends_failed_at_once_with_an_alert() {
    let p = ports(3);
    *p.bus.malformed.lock().unwrap() = Some(r#""applicationId":"A-1""#.into());
    let t = p.run(&cfg(), Trigger::Sweep, || 1_000, "t").await;
    assert_eq!((t.published, t.failed, t.alerts, t.retried), (2, 1, 1, 0));
    // AND the run's metrics: two published a second after they were written, one failed
    let m = t.metrics("bus");
    assert_eq!(
        m,
        Document::new("outbox", "bus")
            .count(Metric::Delivered, 2u32)
            .samples(Metric::RelayLagMs, [1_000, 1_000])
            .count(Metric::RecordsFailed, 1u32)
    );
    let r = p.outbox.get("A-1").unwrap();
    assert_eq!((r.status, r.attempts), (Status::Failed, 1));
    assert!(r.last_error.unwrap().contains("MalformedDetail"));
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_and_the_old_holder_cannot_settle() {
    let p = ports(1);
    let c = cfg();
    // A relay claims at t=1000 and dies.
    let dead = p
        .outbox
        .claim("A-0", 1_000, c.policy.lease.lease_until(1_000), "dead")
        .await
        .unwrap()
        .unwrap();
    let t = p.run(&c, Trigger::Sweep, || 5_000, "live").await;
    assert_eq!(t.claimed, 0, "lease still held");
    // A stream event naming the held record meets the other relay's claim: a conflict.
    let held = Trigger::Records(vec!["A-0".into()]);
    let t = p.run(&c, held, || 5_000, "live").await;
    assert_eq!((t.claimed, t.skipped), (0, 1));
    assert_eq!(t.metrics("bus").total(Metric::ClaimConflicts), 1);
    let t = p.run(&c, Trigger::Sweep, || 11_001, "live").await;
    assert_eq!(t.published, 1);
    let r = p.outbox.get("A-0").unwrap();
    assert_eq!((r.status, r.attempts), (Status::Processed, 2));
    let late = p
        .outbox
        .settle(
            &dead,
            &Settle::Retry {
                due_at_ms: 0,
                error: "x".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(late, Settled::LeaseLost, "a lost lease settles nothing");
}

#[tokio::test]
async fn a_record_whose_relays_keep_dying_ends_failed() {
    let p = ports(1);
    let c = cfg();
    let mut t0 = 1_000;
    for _ in 0..3 {
        p.outbox
            .claim("A-0", t0, c.policy.lease.lease_until(t0), "dies")
            .await
            .unwrap()
            .unwrap();
        t0 += 20_000;
    }
    let t = p.run(&c, Trigger::Sweep, || t0, "live").await;
    assert_eq!((t.failed, t.alerts, t.published), (1, 1, 0));
    assert_eq!(p.outbox.get("A-0").unwrap().status, Status::Failed);
}

#[test]
fn the_retry_window_and_cap_are_read_and_a_cap_over_five_minutes_is_refused() {
    let env = steadfast_aws::Env::from_pairs(&[("OUTBOX_RETRY_WINDOW_SECONDS", "3600")]);
    let c = Config::from_env(&env).unwrap();
    assert_eq!(c.policy.window, Duration::from_secs(3600));
    assert_eq!(c.policy.lease.retry.cap, Duration::from_secs(300));
    let env = steadfast_aws::Env::from_pairs(&[("OUTBOX_RETRY_CAP_SECONDS", "900")]);
    let e = Config::from_env(&env).err().expect("refused").to_string();
    assert!(e.contains("OUTBOX_RETRY_CAP_SECONDS"), "{e}");
}
