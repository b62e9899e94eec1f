//! End-to-end tests of pipeline C (inbox) on the deployed template in LocalStack: the real
//! inbox-receiver and inbox-processor binaries run by LocalStack, fed by its queue and stream
//! mappings (and the processor's schedule, fired locally), the portal's own gate (and
//! close/open/backoff), and the fake portal counting every record delivery. Each test deploys
//! its own uniquely named stack.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use steadfast_local::erp::{late_copies, noisy_copy, storm, Storm};
use steadfast_local::local::Local;
use steadfast_local::portal::Mode;
use steadfast_tests::{secret, stack, token, SWEEPS};

async fn up(params: &[(&str, &str)]) -> Result<Local> {
    up_with(params, &[]).await
}

async fn up_with(params: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Local> {
    stack("ib", params, env, SWEEPS).await
}

/// Waits until every planned record is `Processed` at its final version in the table and the
/// portal holds that version.
async fn wait_settled(l: &Local, storm: &Storm, limit: Duration) -> Result<()> {
    let expected = storm.expected();
    l.wait_for(
        "every record delivered at its newest version",
        limit,
        || async {
            let states = l.portal.record_states();
            if !expected
                .iter()
                .all(|(id, rec)| states.get(id).is_some_and(|s| &s.record == rec))
            {
                return Ok(false);
            }
            let rows = l.inbox_rows().await?;
            Ok(rows.len() == expected.len()
                && rows
                    .values()
                    .all(|r| r.status == "Processed" && r.delivered_version == Some(r.version)))
        },
    )
    .await?;
    Ok(())
}

/// Sends `bodies` from `senders` concurrent senders.
async fn send_concurrently(l: &Local, bodies: &[String], senders: usize) -> Result<()> {
    let size = bodies.len().div_ceil(senders.max(1)).max(1);
    let sends = bodies
        .chunks(size)
        .map(|chunk| l.send_text_to("ErpRecordsQueue", chunk));
    for r in futures::future::join_all(sends).await {
        r?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_storm_becomes_exactly_one_delivery_per_change_and_late_copies_change_nothing(
) -> Result<()> {
    let l = up(&[]).await?;
    // GIVEN 100 records in 1-3 versions, up to 20 noisy copies each, in random order
    let s = storm(100, 20, 42);
    let bodies: Vec<String> = s.messages.iter().map(|m| m.2.clone()).collect();
    assert!(
        bodies.len() > 300,
        "a storm, not a drizzle: {}",
        bodies.len()
    );
    // WHEN four senders send them at once
    send_concurrently(&l, &bodies, 4).await?;
    l.wait_drained("ErpRecordsQueue", Duration::from_secs(240))
        .await?;
    wait_settled(&l, &s, Duration::from_secs(180)).await?;
    // THEN the portal's state equals the source's final state, counted at the portal
    let deliveries = l.portal.record_deliveries();
    let states = l.portal.record_states();
    let expected = s.expected();
    assert_eq!(states.len(), 100);
    for (id, rec) in &expected {
        assert_eq!(&states[id].record, rec, "{id}");
    }
    // exactly one delivery per delivered version: no key twice, no content twice, never older
    let keys: HashSet<&str> = deliveries.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys.len(),
        deliveries.len(),
        "an Idempotency-Key was applied twice"
    );
    assert_eq!(deliveries.iter().filter(|d| d.duplicate).count(), 0);
    assert_eq!(deliveries.iter().filter(|d| d.stale_overwrite).count(), 0);
    let mut per_id: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for d in &deliveries {
        per_id.entry(&d.id).or_default().push(d.version);
    }
    let rows = l.inbox_rows().await?;
    for (id, versions) in &per_id {
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "{id}: {versions:?}"
        );
        assert_eq!(*versions.last().unwrap(), rows[*id].version, "{id}");
    }
    // a stored version per change that was the newest when it arrived; never more than the
    // distinct changes (a copy that arrived after a newer version was dropped as stale)
    let stored_versions: u64 = rows.values().map(|r| r.version).sum();
    assert!(stored_versions as usize <= s.distinct_changes());
    assert!(deliveries.len() as u64 <= stored_versions);
    assert!(deliveries.len() >= 100);
    eprintln!(
        "storm: {} messages, {} distinct changes, {} deliveries",
        bodies.len(),
        s.distinct_changes(),
        deliveries.len()
    );

    // WHEN late copies of older versions arrive after all that
    let late = late_copies(&s, 43);
    assert!(!late.is_empty());
    send_concurrently(&l, &late, 2).await?;
    l.wait_drained("ErpRecordsQueue", Duration::from_secs(120))
        .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // THEN nothing is delivered and nothing changes
    assert_eq!(l.portal.record_deliveries().len(), deliveries.len());
    assert_eq!(l.portal.record_states(), states);
    assert_eq!(l.inbox_rows().await?, rows);
    assert!(l.take_parked().await?.is_empty());
    assert_eq!(l.depth("ErpRecordsDLQ").await?, (0, 0, 0));
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_arriving_while_its_record_is_in_progress_is_delivered_next() -> Result<()> {
    // The portal holds version 1's delivery (within the client's timeout and the claim's lease)
    // until version 2 is stored.
    let l = up_with(
        &[("InboxLeaseSeconds", "90")],
        &[("TARGET_TIMEOUT_SECONDS", "60")],
    )
    .await?;
    let mut rng = rand::rng();
    let v1 = json!({"entity": "customer", "customerNo": "C-77", "name": "Ada",
                    "changedAt": "2026-11-28T10:00:00.000Z"});
    let mut v2 = v1.clone();
    v2["name"] = json!("Ada Lovelace");
    v2["changedAt"] = json!("2026-11-28T10:05:00.000Z");
    // GIVEN version 1 being delivered, its answer held by the portal
    l.portal.set(Mode::Hold);
    l.send_text_to("ErpRecordsQueue", &[noisy_copy(&v1, &mut rng)])
        .await?;
    l.wait_for("C-77 in progress", Duration::from_secs(60), || async {
        Ok(l.inbox_rows()
            .await?
            .get("customer/C-77")
            .is_some_and(|r| r.status == "InProgress"))
    })
    .await?;
    // WHEN version 2 arrives meanwhile
    l.send_text_to("ErpRecordsQueue", &[noisy_copy(&v2, &mut rng)])
        .await?;
    l.wait_for("version 2 stored", Duration::from_secs(45), || async {
        Ok(l.inbox_rows()
            .await?
            .get("customer/C-77")
            .is_some_and(|r| r.version == 2))
    })
    .await?;
    let row = l.inbox_rows().await?["customer/C-77"].clone();
    assert_eq!(
        row.status, "InProgress",
        "a change keeps a claimed record InProgress"
    );
    assert!(
        l.portal.record_deliveries().is_empty(),
        "version 1 is still held"
    );
    l.portal.set(Mode::Up);
    // THEN version 1 completes, and version 2 is delivered next, not lost
    l.wait_for("version 2 delivered", Duration::from_secs(60), || async {
        Ok(l.portal
            .record_states()
            .get("customer/C-77")
            .is_some_and(|s| s.version == 2))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let versions: Vec<u64> = l
        .portal
        .record_deliveries()
        .iter()
        .map(|d| d.version)
        .collect();
    assert_eq!(versions, vec![1, 2]);
    let keys: Vec<String> = l
        .portal
        .record_deliveries()
        .iter()
        .map(|d| d.key.clone())
        .collect();
    assert_eq!(keys, vec!["customer/C-77/1", "customer/C-77/2"]);
    assert!(l.portal.record_states()["customer/C-77"]
        .record
        .contains("Ada Lovelace"));
    let row = l.inbox_rows().await?["customer/C-77"].clone();
    assert_eq!(
        (row.status.as_str(), row.delivered_version),
        ("Processed", Some(2))
    );
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_messages_are_parked_with_reasons_and_the_rest_of_their_batch_is_delivered(
) -> Result<()> {
    let l = up(&[("InboxMaxRecordBytes", "2048")]).await?;
    let good = |n: u32| {
        json!({"entity": "product", "sku": format!("P-{n}"), "title": "Lamp",
               "changedAt": "2026-11-28T09:00:00Z", "messageId": format!("m{n}")})
        .to_string()
    };
    let bodies = vec![
        good(1),
        "{\"entity\": \"product\", \"sku\": ".to_owned(),
        json!({"entity": "vendor", "vendorNo": "V-1", "changedAt": "2026-11-28T09:00:00Z"})
            .to_string(),
        json!({"entity": "customer", "name": "no key", "changedAt": "2026-11-28T09:00:00Z"})
            .to_string(),
        json!({"entity": "order", "orderNo": "O-1", "changedAt": "last tuesday"}).to_string(),
        json!({"entity": "product", "sku": "P-BIG", "changedAt": "2026-11-28T09:00:00Z",
               "description": "x".repeat(3000)})
        .to_string(),
        good(2),
        good(3),
    ];
    l.send_text_to("ErpRecordsQueue", &bodies).await?;
    l.wait_for("3 products delivered", Duration::from_secs(60), || async {
        Ok(l.portal.record_states().len() == 3)
    })
    .await?;
    let parked = std::sync::Mutex::new(Vec::new());
    l.wait_for("5 parked", Duration::from_secs(30), || async {
        let more = l.take_parked().await?;
        let mut p = parked.lock().unwrap();
        p.extend(more);
        Ok(p.len() >= 5)
    })
    .await?;
    let parked = parked.into_inner().unwrap();
    let all: Vec<String> = parked
        .iter()
        .map(|p| p["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    let has = |s: &str| all.iter().any(|r| r.contains(s));
    assert!(has("body is not valid JSON"), "{all:?}");
    assert!(has("entity type `vendor` is not configured"), "{all:?}");
    assert!(has("key field /customerNo is missing"), "{all:?}");
    assert!(has("timestamp field /changedAt is unusable"), "{all:?}");
    assert!(has("over the limit of 2048"), "{all:?}");
    assert!(parked.iter().all(|p| p["source"] == "erp-records"));
    assert_eq!(parked.len(), 5);
    assert_eq!(l.portal.record_deliveries().len(), 3);
    assert_eq!(l.depth("ErpRecordsDLQ").await?, (0, 0, 0));
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_down_portal_halts_the_inbox_through_its_own_gate_and_it_resumes_by_itself() -> Result<()>
{
    let l = up(&[]).await?;
    // GIVEN the portal down, and 12 records arriving
    l.portal.set(Mode::Down);
    let s = storm(12, 3, 9);
    let bodies: Vec<String> = s.messages.iter().map(|m| m.2.clone()).collect();
    l.send_text_to("ErpRecordsQueue", &bodies).await?;
    // THEN the processor trips the inbox portal's own gate; the orders gate is untouched
    let inbox = l.inbox_target();
    l.wait_for("inbox gate Halted", Duration::from_secs(60), || async {
        Ok(l.gate_summary(&inbox)
            .await?
            .is_some_and(|g| g.0 != "Flowing"))
    })
    .await?;
    assert!(
        l.gate().await?.is_none(),
        "the orders gate was never written"
    );
    // Runs already delivering when the gate closed finish their tries (each run has one
    // retrying caller); after that, nothing reaches the portal's inbox endpoints.
    let inbox_calls = || {
        l.portal
            .seen()
            .iter()
            .filter(|r| r.path.starts_with("/inbox/"))
            .count()
    };
    let burst = inbox_calls();
    let mut last = burst;
    tokio::time::sleep(Duration::from_secs(3)).await;
    l.wait_for_every(
        "3 s without an inbox call",
        Duration::from_secs(30),
        Duration::from_secs(3),
        || {
            let (before, now) = (last, inbox_calls());
            last = now;
            async move { Ok(now == before) }
        },
    )
    .await?;
    let settled_at = l.portal.seen().len();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let while_halted: Vec<_> = l
        .portal
        .seen()
        .into_iter()
        .skip(settled_at)
        .filter(|r| r.path.starts_with("/inbox/"))
        .collect();
    eprintln!(
        "inbox calls before the halt was seen: {burst}; in 8 s while halted: {}",
        while_halted.len()
    );
    assert!(
        while_halted.is_empty(),
        "the halted inbox kept calling the portal: {} calls",
        while_halted.len()
    );
    assert!(l.portal.record_states().is_empty());
    assert!(l.count_events("DeliveryFailed").await? >= 1);
    // WHEN the portal comes back
    l.portal.set(Mode::Up);
    // THEN the probes find it, the flow resumes, and every record is delivered once
    wait_settled(&l, &s, Duration::from_secs(90)).await?;
    assert_eq!(l.gate_summary(&inbox).await?.unwrap().0, "Flowing");
    assert!(
        l.portal.seen().iter().any(|r| r.path == "/health"),
        "probed at the portal's own health URL"
    );
    assert_eq!(
        l.mapping_state("processor").await?,
        "Enabled",
        "orders kept flowing"
    );
    let deliveries = l.portal.record_deliveries();
    let keys: HashSet<&str> = deliveries.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys.len(), deliveries.len());
    assert_eq!(deliveries.iter().filter(|d| d.duplicate).count(), 0);
    assert_eq!(l.portal.record_states().len(), 12);
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_portal_token_is_read_from_a_secret_by_reference() -> Result<()> {
    // GIVEN the portal's token in Secrets Manager, and only its ARN in the functions' settings
    let token = token();
    let arn = secret("test", &token).await?;
    let l = up_with(&[], &[("TARGET_TOKEN_SECRET_ARN", arn.as_str())]).await?;
    l.portal.require_token(&token);
    // WHEN a record arrives
    let body = json!({"entity": "product", "sku": "P-SECRET", "title": "Lamp",
                      "changedAt": "2026-11-28T09:00:00Z"});
    l.send_text_to("ErpRecordsQueue", &[body.to_string()])
        .await?;
    // THEN it is delivered with the token (the portal answers 401 without it)
    l.wait_for("P-SECRET delivered", Duration::from_secs(60), || async {
        Ok(l.portal.record_states().contains_key("product/P-SECRET"))
    })
    .await?;
    assert!(l.portal.seen().iter().all(|r| r.status != 401));
    l.down().await;
    Ok(())
}
