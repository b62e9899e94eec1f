//! End-to-end tests of pipeline B (transactional outbox) on the deployed template in
//! LocalStack: the real outbox-writer and outbox-relay binaries run by LocalStack, fed by its
//! queue and stream mappings (and the relay's schedule, fired locally), bus faults injected by
//! the proxy, and a consumer: the approval queue the template's rule delivers to. Each test
//! deploys its own uniquely named stack.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use steadfast_domain::ports::LeasedStore;
use steadfast_local::demo_outbox::percentile;
use steadfast_local::faults::BusFaults;
use steadfast_local::local::{application, Local};
use steadfast_tests::stack;

async fn up(params: &[(&str, &str)], rate_every: Option<Duration>) -> Result<Local> {
    stack("ob", params, &[], rate_every).await
}

/// Event ids received by the consumer, with how often each arrived.
async fn received(l: &Local) -> Result<HashMap<String, u32>> {
    let mut out = HashMap::new();
    for a in l.approvals().await? {
        *out.entry(a.event_id).or_insert(0) += 1;
    }
    Ok(out)
}

async fn wait_received(l: &Local, n: usize, limit: Duration) -> Result<()> {
    let waited = l
        .wait_for(
            &format!("{n} applications at the consumer"),
            limit,
            || async { Ok(received(l).await?.len() >= n) },
        )
        .await;
    if let Err(e) = waited {
        // Say where every record stood: never written, still pending, or published but not seen.
        let statuses = l.outbox_statuses().await?;
        let seen = received(l).await?.len();
        return Err(e.context(format!(
            "{seen} received; outbox records by status: {statuses:?}"
        )));
    }
    // Anything still in flight would show up as a duplicate now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}

fn scheduled() -> Value {
    json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn applications_are_published_once_resubmissions_add_nothing_and_bad_ones_are_parked(
) -> Result<()> {
    let l = up(&[], Some(Duration::from_secs(2))).await?;
    // GIVEN 30 applications, 5 of them resubmitted with new lender metadata, and 2 invalid
    let ids: Vec<String> = (0..30).map(|i| format!("APP-{i:04}")).collect();
    let mut bodies: Vec<Value> = ids.iter().map(|id| application(id)).collect();
    let mut bad = application("APP-BAD-1");
    bad["loan"]["currency"] = json!("XBT");
    bodies.push(bad);
    bodies.push(json!({"applicationId": "APP-BAD-2"}));
    l.send_to("ApplicationsQueue", &bodies).await?;
    wait_received(&l, 30, Duration::from_secs(60)).await?;
    let resubmitted: Vec<Value> = ids[..5].iter().map(|id| application(id)).collect();
    l.send_to("ApplicationsQueue", &resubmitted).await?;
    l.wait_drained("ApplicationsQueue", Duration::from_secs(30))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // THEN each application is published exactly once, under its deterministic event id
    let got = received(&l).await?;
    assert_eq!(got.len(), 30, "unique events");
    assert!(got.values().all(|n| *n == 1), "duplicates: {got:?}");
    for id in &ids {
        let e = steadfast_domain::outbox::event_id(id);
        assert_eq!(got.get(&e), Some(&1), "{id}");
    }
    // AND the consumer got the approval schema
    let one = l
        .approvals()
        .await?
        .into_iter()
        .find(|a| a.application_id == "APP-0001")
        .expect("APP-0001");
    assert_eq!(
        one.detail["application"]["applicants"][0]["familyName"],
        "van der Berg"
    );
    assert_eq!(one.detail["application"]["loan"]["currency"], "EUR");
    // AND the resubmissions created no second outbox record
    let statuses = l.outbox_statuses().await?;
    assert_eq!(statuses.get("Processed"), Some(&30), "{statuses:?}");
    assert_eq!(statuses.values().sum::<u64>(), 30, "{statuses:?}");
    // AND the two invalid ones are parked with reasons that name the fields
    let parked = l.take_parked().await?;
    assert_eq!(parked.len(), 2, "{parked:?}");
    let reasons: Vec<&str> = parked
        .iter()
        .map(|p| p["reason"].as_str().unwrap_or_default())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("/loan/currency")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("/submittedAt is missing")),
        "{reasons:?}"
    );
    assert!(parked.iter().all(|p| p["source"] == "applications"));
    // AND the normal path was the stream, not the sweep
    let stream_records = l.log_sum("outbox-relay", "relay run done", "from_stream")?;
    assert!(
        stream_records >= 30,
        "stream records handed to the relay: {stream_records}"
    );

    // Latency, record written → on the consumer queue (reported, not asserted).
    let mut lat: Vec<u64> = l
        .approvals()
        .await?
        .iter()
        .map(|a| a.arrived_ms.saturating_sub(a.recorded_ms))
        .collect();
    lat.sort_unstable();
    eprintln!(
        "outbox latency record -> consumer (stream trigger): p50 {} ms, p99 {} ms, max {} ms over {}",
        percentile(&lat, 0.5).unwrap_or(0),
        percentile(&lat, 0.99).unwrap_or(0),
        lat.last().copied().unwrap_or(0),
        lat.len()
    );
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bus_outage_and_partial_failures_lose_nothing_and_duplicate_nothing() -> Result<()> {
    let l = up(&[], Some(Duration::from_secs(2))).await?;
    // GIVEN the bus is down
    l.faults.set_bus(BusFaults {
        down: true,
        ..Default::default()
    });
    let first: Vec<Value> = (0..20)
        .map(|i| application(&format!("DOWN-{i:03}")))
        .collect();
    l.send_to("ApplicationsQueue", &first).await?;
    l.wait_for(
        "20 records stored and attempts refused while the bus is down",
        Duration::from_secs(90),
        || async {
            Ok(l.faults.refused() >= 20 && l.outbox_statuses().await?.values().sum::<u64>() == 20)
        },
    )
    .await?;
    // THEN nothing is lost: every record is pending, none published
    let statuses = l.outbox_statuses().await?;
    assert_eq!(statuses.values().sum::<u64>(), 20, "{statuses:?}");
    assert_eq!(statuses.get("Processed"), None, "{statuses:?}");
    tokio::time::sleep(Duration::from_secs(4)).await;

    // WHEN the bus comes back refusing a third of the entries, then is healthy again
    l.faults.set_bus(BusFaults {
        fail_ratio: 0.33,
        ..Default::default()
    });
    let second: Vec<Value> = (0..20)
        .map(|i| application(&format!("PART-{i:03}")))
        .collect();
    l.send_to("ApplicationsQueue", &second).await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    l.faults.set_bus(BusFaults::default());
    wait_received(&l, 40, Duration::from_secs(90)).await?;

    // THEN all 40 are published, each event id exactly once
    let got = received(&l).await?;
    assert_eq!(got.len(), 40);
    assert!(got.values().all(|n| *n == 1), "duplicates: {got:?}");
    let statuses = l.outbox_statuses().await?;
    assert_eq!(statuses.get("Processed"), Some(&40), "{statuses:?}");
    // AND only failed entries were retried: each entry reached the bus once
    let c = &l.faults.counters;
    let forwarded = c
        .entries_forwarded
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(forwarded, 40, "entries that reached the bus");
    assert!(
        l.faults.refused() > 20,
        "some partial failures were injected: {}",
        l.faults.refused()
    );
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_after_its_claim_leaves_nothing_stuck_and_concurrent_relays_never_double_publish(
) -> Result<()> {
    // No automatic sweeps and no stream: this test fires the relay itself.
    let l = up(
        &[("OutboxLeaseSeconds", "45")],
        Some(Duration::from_secs(3600)),
    )
    .await?;
    l.set_stream_enabled("outbox-relay", false).await?;
    let ids: Vec<String> = (0..60).map(|i| format!("KILL-{i:03}")).collect();
    let bodies: Vec<Value> = ids.iter().map(|id| application(id)).collect();
    l.send_to("ApplicationsQueue", &bodies).await?;
    l.wait_for("60 outbox records", Duration::from_secs(60), || async {
        Ok(l.outbox_statuses().await?.get("ToBeProcessed") == Some(&60))
    })
    .await?;

    // GIVEN a relay that claimed KILL-000 and died before publishing
    let store = steadfast_aws::outbox::outbox(
        l.emu.dynamodb.clone(),
        l.stack.reference("OutboxTable")?.to_owned(),
    );
    let now = steadfast_local::now_ms();
    let dead = store
        .claim("KILL-000", now, now + 45_000, "killed-relay")
        .await?;
    assert!(dead.is_some(), "the doomed relay's claim");

    // WHEN four relays sweep at the same time (the lease is long enough to outlast them even on
    // a slow machine)
    let sweeps = futures_join(&l, 4).await?;
    assert!(
        steadfast_local::now_ms() < now + 45_000,
        "the sweeps outlasted the lease; the test proves nothing"
    );
    let published: u64 = sweeps
        .iter()
        .map(|t| t["published"].as_u64().unwrap_or(0))
        .sum();
    let claimed: u64 = sweeps
        .iter()
        .map(|t| t["claimed"].as_u64().unwrap_or(0))
        .sum();
    // THEN the 59 free records are published once in total, and the held one is left alone
    assert_eq!((claimed, published), (59, 59), "sweeps: {sweeps:?}");
    let statuses = l.outbox_statuses().await?;
    assert_eq!(statuses.get("InProgress"), Some(&1), "{statuses:?}");

    // WHEN its lease has expired, the next sweep publishes it
    let left = (now + 45_500).saturating_sub(steadfast_local::now_ms());
    tokio::time::sleep(Duration::from_millis(left)).await;
    let t = l.invoke("outbox-relay", &scheduled()).await?;
    assert_eq!(t["published"], 1, "{t}");
    wait_received(&l, 60, Duration::from_secs(30)).await?;
    let got = received(&l).await?;
    assert_eq!(got.len(), 60);
    assert!(got.values().all(|n| *n == 1), "duplicates: {got:?}");
    assert_eq!(l.outbox_statuses().await?.get("Processed"), Some(&60));
    l.down().await;
    Ok(())
}

/// `n` concurrent sweeps of the relay (each an HTTP call to its own relay instance); their
/// answers (tallies).
async fn futures_join(l: &Local, n: usize) -> Result<Vec<Value>> {
    let event = scheduled();
    let calls = (0..n).map(|_| l.invoke("outbox-relay", &event));
    futures::future::join_all(calls).await.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_that_always_fails_ends_failed_with_an_alert_and_blocks_no_other() -> Result<()> {
    let l = up(
        &[
            ("OutboxRetryWindowSeconds", "8"),
            ("OutboxRetryBaseSeconds", "1"),
        ],
        Some(Duration::from_secs(1)),
    )
    .await?;
    // GIVEN the bus refuses every entry of one application
    l.faults.set_bus(BusFaults {
        poison: Some(r#""applicationId":"POISON-1""#.into()),
        ..Default::default()
    });
    let mut bodies: Vec<Value> = (0..10)
        .map(|i| application(&format!("OK-{i:02}")))
        .collect();
    bodies.insert(3, application("POISON-1"));
    l.send_to("ApplicationsQueue", &bodies).await?;

    // THEN the others are published
    wait_received(&l, 10, Duration::from_secs(120)).await?;
    // AND the poisoned one, retried for its 8 s window, ends Failed with an alert on the bus
    l.wait_for("POISON-1 Failed", Duration::from_secs(60), || async {
        Ok(l.outbox_statuses().await?.get("Failed") == Some(&1))
    })
    .await?;
    l.wait_for(
        "the OutboxRecordFailed alert",
        Duration::from_secs(30),
        || async { Ok(l.count_events("OutboxRecordFailed").await? == 1) },
    )
    .await?;
    let alert = l
        .events()
        .await?
        .into_iter()
        .find(|e| e.detail_type == "OutboxRecordFailed")
        .expect("alert");
    assert_eq!(alert.detail["id"], "POISON-1");
    // AND the alerts rule routes it to the stack's alerts queue (the ticketing service's inbox)
    let alerts_url = l.stack.reference("AlertsQueue")?.to_owned();
    let routed = std::sync::Mutex::new(Vec::new());
    l.wait_for(
        "the alert on the alerts queue",
        Duration::from_secs(30),
        || async {
            let drained = l.emu.drain(&alerts_url, 1).await?;
            let mut routed = routed.lock().unwrap_or_else(|e| e.into_inner());
            routed.extend(drained);
            Ok(routed
                .iter()
                .any(|b| b.contains("OutboxRecordFailed") && b.contains("POISON-1")))
        },
    )
    .await?;
    assert!(
        alert.detail["attempts"].as_u64().unwrap_or(0) >= 2,
        "{}",
        alert.detail
    );
    assert!(
        alert.detail["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("not published within 8 s"),
        "{}",
        alert.detail
    );
    let got = received(&l).await?;
    assert_eq!(got.len(), 10);
    assert!(!got.contains_key(&steadfast_domain::outbox::event_id("POISON-1")));
    assert_eq!(l.outbox_statuses().await?.get("Processed"), Some(&10));
    l.down().await;
    Ok(())
}
