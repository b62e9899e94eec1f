//! The fault matrix on the AWS side: DynamoDB, SQS, Scheduler and the Lambda control plane
//! failing under the functions (real AWS error shapes, slow calls, answers cut after the call
//! was applied), and the functions' processes killed between two writes. Each case ends with
//! the same accounting: sent = delivered + parked, nothing twice at the target, no record held
//! past its lease, no gate halted with nobody probing, the dead-letter queues empty.
//!
//! The faults come from the fault proxy of the local stack (`steadfast_local::faults`), which
//! every function reaches AWS through; the production code knows nothing of it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use steadfast_local::faults::{Action, AwsError, Fault};
use steadfast_local::local::{application, order, Local};
use steadfast_local::portal::Mode;
use steadfast_tests::{assert_each_created_once, ids, send_orders, stack, wait_created, SWEEPS};

/// The local stack of a fault case: the watchdog (every compressed minute) repairs a gate
/// whose probe is 3 s late.
async fn up(prefix: &str, params: &[(&str, &str)]) -> Result<Local> {
    let mut all = vec![("WatchdogGraceSeconds", "3")];
    all.extend_from_slice(params);
    stack(prefix, &all, &[], SWEEPS).await
}

fn err(e: AwsError) -> Action {
    Action::Error(e)
}

/// The accounting every case ends with, once its faults are cleared: no record held past its
/// lease, no gate left unprobed, and no dead letter but those the case is about.
async fn assert_accounted(l: &Local, dead_letters_allowed: &[&str]) -> Result<()> {
    let mut a = l.accounting(10_000).await?;
    a.dead_letters
        .retain(|q, _| !dead_letters_allowed.contains(&q.as_str()));
    assert!(a.is_clean(), "accounting: {a:?}");
    Ok(())
}

/// The SDK tries a call three times: a fault on three calls in a row fails one call for the
/// function itself.
const SDK_ATTEMPTS: u64 = 3;

/// Arms `sure` faults (each on its next matching calls, so each is met) and then
/// `background` ones (on a random share of the calls); returns how many are sure.
fn arm(l: &Local, sure: Vec<Fault>, background: Vec<Fault>) -> usize {
    let n = sure.len();
    for f in sure.into_iter().chain(background) {
        l.faults.inject(f);
    }
    n
}

/// Every sure fault was met, or the case proves nothing.
fn assert_all_hit(l: &Local, hits: &[u64], sure: usize) {
    assert!(
        hits[..sure].iter().all(|h| *h > 0),
        "every sure fault must have been met: {hits:?}; calls: {}",
        l.faults.calls().len()
    );
}

/// (event id, application id) of every event the approvals consumer received.
async fn approvals_by_app(l: &Local) -> Result<Vec<(String, String)>> {
    Ok(l.approvals()
        .await?
        .into_iter()
        .map(|a| (a.event_id, a.application_id))
        .collect())
}

/// Event ids received by the approvals consumer, with how often each arrived.
async fn approvals(l: &Local) -> Result<HashMap<String, u32>> {
    let mut out = HashMap::new();
    for a in l.approvals().await? {
        *out.entry(a.event_id).or_insert(0) += 1;
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_throttling_500s_and_cut_answers_under_the_processor_lose_and_repeat_no_order(
) -> Result<()> {
    let l = up("fd", &[]).await?;
    // GIVEN DynamoDB throttling and failing the processor's gate and ledger reads, and its
    // ledger writes failing or applied with the answer cut off
    let ledger_write = "delivered_at_ms";
    let on = |op: &str, action: Action| Fault::on("dynamodb", op, action).from("processor");
    let sure = vec![
        on("GetItem", err(AwsError::provisioned_throughput_exceeded())).times(SDK_ATTEMPTS),
        on("BatchGetItem", err(AwsError::internal_server_error())).times(SDK_ATTEMPTS),
        on("PutItem", err(AwsError::throttling()))
            .containing(ledger_write)
            .times(SDK_ATTEMPTS),
        on("PutItem", Action::CutAfterApply)
            .containing(ledger_write)
            .times(1),
    ];
    let background = vec![
        on("GetItem", err(AwsError::throttling())).ratio(0.3),
        on("BatchGetItem", err(AwsError::service_unavailable())).ratio(0.3),
        on("PutItem", Action::CutAfterApply).ratio(0.2),
        on("GetItem", Action::Delay(Duration::from_millis(300))).ratio(0.2),
    ];
    let sure = arm(&l, sure, background);
    // WHEN 40 orders arrive
    let orders = ids("D", 40);
    send_orders(&l, &orders).await?;
    // THEN each is created once: a failed ledger write leaves a redelivery to the portal's
    // Idempotency-Key check, a failed read hands the batch back
    wait_created(&l, &orders, Duration::from_secs(120)).await?;
    let hits = l.faults.clear();
    l.wait_drained("OrdersQueue", Duration::from_secs(60))
        .await?;
    assert_all_hit(&l, &hits, sure);
    assert_each_created_once(&l, &orders);
    assert!(l.take_parked().await?.is_empty(), "nothing parked");
    let gate = l.gate().await?.map(|g| g.0);
    assert!(
        gate.as_ref().is_none_or(|g| g == "Flowing"),
        "never halted: {gate:?}"
    );
    assert_accounted(&l, &[]).await?;
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_faults_and_a_relay_killed_before_publishing_lose_no_application_and_repeat_only_unsettled_events(
) -> Result<()> {
    let l = up("fo", &[]).await?;
    // GIVEN the writer's transactions conflicting or applied with the answer cut off, the
    // relays' queries throttled, their claims and settles failing or cut, and the first relay
    // to publish killed before its PutEvents
    let writer = |op: &str, action: Action| Fault::on("dynamodb", op, action).from("outbox-writer");
    let relay = |op: &str, action: Action| Fault::on("dynamodb", op, action).from("outbox-relay");
    let sure = vec![
        writer("TransactWriteItems", err(AwsError::transaction_conflict())).times(SDK_ATTEMPTS),
        writer("TransactWriteItems", Action::CutAfterApply).times(1),
        relay("Query", err(AwsError::throttling())).times(SDK_ATTEMPTS),
        relay("UpdateItem", err(AwsError::service_unavailable())).times(SDK_ATTEMPTS),
        relay("UpdateItem", Action::CutAfterApply).times(1),
        Fault::on("events", "PutEvents", Action::Crash)
            .from("outbox-relay")
            .times(1),
    ];
    let background = vec![
        writer("TransactWriteItems", err(AwsError::transaction_conflict())).ratio(0.2),
        relay("Query", err(AwsError::throttling())).ratio(0.2),
        relay("UpdateItem", err(AwsError::service_unavailable())).ratio(0.1),
        relay("UpdateItem", Action::CutAfterApply).ratio(0.1),
    ];
    let sure = arm(&l, sure, background);
    // WHEN 40 applications arrive
    let apps = ids("APP", 40);
    let bodies: Vec<Value> = apps.iter().map(|id| application(id)).collect();
    l.send_to("ApplicationsQueue", &bodies).await?;
    // THEN all 40 reach the consumer, each event once; the killed relay's claims are taken
    // again after their lease
    l.wait_for("40 approvals", Duration::from_secs(150), || async {
        Ok(approvals(&l).await?.len() >= 40)
    })
    .await?;
    let hits = l.faults.clear();
    assert_all_hit(&l, &hits, sure);
    assert_eq!(
        l.faults.kills(),
        1,
        "the relay process that called was killed"
    );
    l.wait_for(
        "every record Processed",
        Duration::from_secs(60),
        || async { Ok(l.outbox_statuses().await?.get("Processed") == Some(&40)) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = approvals(&l).await?;
    assert_eq!(got.len(), 40, "{got:?}");
    // An event arrives twice only when its record was claimed again after its lease ran out:
    // its relay published it and then could not record that (a settle that failed after the
    // SDK's retries, or a relay killed with other entries of its run already published). It
    // comes under the same event id, for the consumer to drop.
    let attempts = l.outbox_attempts().await?;
    let reclaimed: HashSet<String> = approvals_by_app(&l)
        .await?
        .into_iter()
        .filter(|(_, app)| attempts.get(app).is_some_and(|a| *a >= 2))
        .map(|(event, _)| event)
        .collect();
    let twice: Vec<&String> = got
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(
        twice.iter().all(|id| reclaimed.contains(*id)),
        "published twice under one claim: {twice:?} (claimed again: {reclaimed:?})"
    );
    assert!(got.values().all(|n| *n <= 2), "{got:?}");
    assert!(l.take_parked().await?.is_empty(), "nothing parked");
    l.wait_drained("ApplicationsQueue", Duration::from_secs(30))
        .await?;
    assert_accounted(&l, &[]).await?;
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_faults_and_an_inbox_processor_killed_after_delivering_deliver_each_change_once(
) -> Result<()> {
    let l = up("fi", &[]).await?;
    // GIVEN the receiver's writes throttled or cut after being applied, the inbox processors'
    // queries and settles failing, and the first processor to settle a delivered record
    // killed before it could
    let receiver =
        |op: &str, action: Action| Fault::on("dynamodb", op, action).from("inbox-receiver");
    let processor =
        |op: &str, action: Action| Fault::on("dynamodb", op, action).from("inbox-processor");
    let sure = vec![
        receiver("PutItem", err(AwsError::throttling())).times(SDK_ATTEMPTS),
        receiver("UpdateItem", Action::CutAfterApply).times(1),
        processor("Query", err(AwsError::request_limit_exceeded())).times(SDK_ATTEMPTS),
        processor("UpdateItem", Action::Crash)
            .containing("delivered_version")
            .times(1),
        processor("UpdateItem", err(AwsError::internal_server_error())).times(SDK_ATTEMPTS),
    ];
    let background = vec![
        receiver("PutItem", err(AwsError::throttling())).ratio(0.2),
        receiver("UpdateItem", Action::CutAfterApply).ratio(0.1),
        processor("Query", err(AwsError::request_limit_exceeded())).ratio(0.2),
        processor("UpdateItem", err(AwsError::internal_server_error())).ratio(0.1),
    ];
    let sure = arm(&l, sure, background);
    // WHEN a storm of 30 records in up to 3 versions, with up to 6 copies each, arrives
    let s = steadfast_local::erp::storm(30, 6, 7);
    let bodies: Vec<String> = s.messages.iter().map(|m| m.2.clone()).collect();
    l.send_text_to("ErpRecordsQueue", &bodies).await?;
    // THEN the portal ends at every record's newest version
    let expected = s.expected();
    l.wait_for(
        "the newest version of all 30 records",
        Duration::from_secs(180),
        || async {
            let states = l.portal.record_states();
            Ok(expected
                .iter()
                .all(|(id, rec)| states.get(id).is_some_and(|s| &s.record == rec)))
        },
    )
    .await?;
    let hits = l.faults.clear();
    assert_all_hit(&l, &hits, sure);
    assert_eq!(
        l.faults.kills(),
        1,
        "the inbox processor that called was killed"
    );
    l.wait_for(
        "every record Processed",
        Duration::from_secs(60),
        || async {
            let rows = l.inbox_rows().await?;
            Ok(rows.len() == 30 && rows.values().all(|r| r.status == "Processed"))
        },
    )
    .await?;
    // AND no content was applied twice (the killed processor's delivery came again under the
    // same Idempotency-Key, which the portal refused as known) and no older version
    // overwrote a newer one
    let deliveries = l.portal.record_deliveries();
    assert_eq!(deliveries.iter().filter(|d| d.duplicate).count(), 0);
    assert_eq!(deliveries.iter().filter(|d| d.stale_overwrite).count(), 0);
    let known_keys = l
        .portal
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/inbox") && s.status == 409)
        .count();
    assert!(
        known_keys >= 1,
        "the killed processor's delivery was sent again"
    );
    assert!(l.take_parked().await?.is_empty(), "nothing parked");
    l.wait_drained("ErpRecordsQueue", Duration::from_secs(30))
        .await?;
    assert_accounted(&l, &[]).await?;
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parking_and_probe_timers_failing_in_sqs_and_scheduler_lose_nothing_and_the_watchdog_resumes(
) -> Result<()> {
    // Probe delays over 1 s go through Scheduler, shorter ones through the timers queue.
    let l = up("fq", &[("TimerQueueLimitSeconds", "1")]).await?;
    // GIVEN SQS refusing the processor's parking sends for a while
    l.faults.inject(
        Fault::on("sqs", "SendMessage", err(AwsError::internal_server_error()))
            .from("processor")
            .times(6),
    );
    // WHEN orders arrive, two of them bad
    let good = ids("Q", 12);
    let mut bodies: Vec<Value> = good.iter().map(|id| order(id)).collect();
    let mut refused = order("Q-BAD-1");
    refused["quantity"] = json!(0);
    bodies.insert(3, refused);
    bodies.insert(7, json!({"customer": "no identity"}));
    l.send(&bodies).await?;
    // THEN the good ones are delivered and the bad ones parked once SQS takes them
    wait_created(&l, &good, Duration::from_secs(60)).await?;
    let parked = std::sync::Mutex::new(Vec::new());
    l.wait_for("2 parked", Duration::from_secs(60), || async {
        let more = l.take_parked().await?;
        let mut p = parked.lock().unwrap_or_else(|e| e.into_inner());
        p.extend(more);
        Ok(p.len() >= 2)
    })
    .await?;
    assert_eq!(
        l.faults.hits(),
        vec![6],
        "the parking sends failed six times"
    );
    l.faults.clear();

    // GIVEN the probe timers failing: SQS refuses the backoff's sends, Scheduler its schedules
    l.faults.inject(
        Fault::on("sqs", "SendMessage", err(AwsError::service_unavailable()))
            .from("backoff")
            .times(SDK_ATTEMPTS),
    );
    l.faults.inject(
        Fault::on(
            "scheduler",
            "CreateSchedule",
            err(AwsError::too_many_requests()),
        )
        .from("backoff"),
    );
    // WHEN the portal goes down and orders keep coming
    l.portal.set(Mode::Down);
    let during = ids("R", 10);
    send_orders(&l, &during).await?;
    l.wait_for("the mapping Disabled", Duration::from_secs(60), || async {
        Ok(l.mapping_state("processor").await? == "Disabled")
    })
    .await?;
    // AND a queue timer fails once, then every Scheduler timer fails, for a while; then the
    // portal comes back
    l.wait_for(
        "both timer kinds refused",
        Duration::from_secs(90),
        || async {
            let hits = l.faults.hits();
            Ok(hits[0] == SDK_ATTEMPTS && hits[1] > 0)
        },
    )
    .await?;
    l.portal.set(Mode::Up);
    l.faults.clear();
    // THEN the watchdog gives the gate its probe back, the flow resumes, all is delivered once
    wait_created(&l, &during, Duration::from_secs(90)).await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(60))
        .await?;
    let all: Vec<String> = good.iter().chain(during.iter()).cloned().collect();
    assert_each_created_once(&l, &all);
    let parked = parked.into_inner().unwrap_or_default();
    assert_eq!(parked.len(), 2, "each bad order parked once: {parked:?}");
    assert!(l.take_parked().await?.is_empty());
    assert_eq!(l.gate().await?.map(|g| g.0), Some("Flowing".into()));
    assert!(l.count_events("GateRepaired").await? >= 1);
    // A close invocation that failed on its timer is retried by Lambda, then dead-lettered.
    assert_accounted(&l, &["AsyncInvokeDLQ"]).await?;
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lambda_control_plane_failing_during_halt_and_resume_and_a_failed_probe_delete_are_repaired(
) -> Result<()> {
    // Message probes: close takes a real order from the queue to probe with.
    let l = up("fl", &[("ProbeMode", "message")]).await?;
    // GIVEN Lambda refusing close's mapping updates, the portal down
    l.faults.inject(
        Fault::on(
            "lambda",
            "UpdateEventSourceMapping",
            err(AwsError::too_many_requests()),
        )
        .from("close"),
    );
    l.portal.set(Mode::Down);
    let orders = ids("L", 10);
    send_orders(&l, &orders).await?;
    l.wait_for("the gate halted", Duration::from_secs(60), || async {
        Ok(l.gate().await?.is_some_and(|g| g.0 != "Flowing"))
    })
    .await?;
    // THEN the mapping stays enabled while Lambda refuses, yet the halted gate keeps the
    // portal from being hammered: the processor hands its batches back, and only the
    // probes send orders (up to 3 each; one may still be running when the window ends)
    tokio::time::sleep(Duration::from_secs(5)).await;
    let halted_at = steadfast_local::now_ms();
    let attempt = |g: Option<(String, u64, u64)>| g.map_or(0, |g| g.2);
    let first = attempt(l.gate().await?);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let probes = attempt(l.gate().await?).saturating_sub(first) + 1;
    let hammered = l
        .portal
        .seen()
        .iter()
        .filter(|s| s.path == "/orders" && s.at_ms > halted_at)
        .count();
    assert!(
        hammered as u64 <= 2 + 3 * probes,
        "orders sent while halted: {hammered}, probes: {probes}"
    );
    // WHEN Lambda recovers, the watchdog disables the mapping
    let hits = l.faults.clear();
    assert_all_hit(&l, &hits, 1);
    l.wait_for("the mapping Disabled", Duration::from_secs(30), || async {
        Ok(l.mapping_state("processor").await? == "Disabled")
    })
    .await?;
    // GIVEN open's enable refused twice and close's DeleteMessage of the probe's order failing
    l.faults.inject(
        Fault::on(
            "lambda",
            "UpdateEventSourceMapping",
            err(AwsError::service_unavailable()),
        )
        .from("open")
        .times(2),
    );
    l.faults.inject(
        Fault::on(
            "sqs",
            "DeleteMessage",
            err(AwsError::internal_server_error()),
        )
        .from("close"),
    );
    // WHEN the portal comes back
    l.portal.set(Mode::Up);
    // THEN the flow resumes (the watchdog enables what open could not), and the order the
    // probe delivered but could not delete comes back and is not delivered again
    wait_created(&l, &orders, Duration::from_secs(90)).await?;
    l.wait_for("the mapping Enabled", Duration::from_secs(30), || async {
        Ok(l.mapping_state("processor").await? == "Enabled")
    })
    .await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(60))
        .await?;
    let hits = l.faults.clear();
    assert!(hits[1] > 0, "the probe's delete failed: {hits:?}");
    assert_each_created_once(&l, &orders);
    assert_eq!(l.gate().await?.map(|g| g.0), Some("Flowing".into()));
    assert!(l.take_parked().await?.is_empty(), "nothing parked");
    assert_accounted(&l, &["AsyncInvokeDLQ"]).await?;
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_killed_after_delivering_and_between_the_gate_write_and_the_mapping_update_lose_and_repeat_nothing(
) -> Result<()> {
    let l = up("fc", &[]).await?;
    // GIVEN the first processor to record a delivery in the ledger killed before it could
    l.faults.inject(
        Fault::on("dynamodb", "PutItem", Action::Crash)
            .from("processor")
            .containing("delivered_at_ms")
            .times(1),
    );
    let first = ids("K", 10);
    send_orders(&l, &first).await?;
    // THEN its batch comes back and every order is created once (the portal's idempotency)
    wait_created(&l, &first, Duration::from_secs(60)).await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(60))
        .await?;
    assert_eq!(l.faults.kills(), 1, "one processor killed");
    assert_each_created_once(&l, &first);
    l.faults.clear();

    // GIVEN close killed after writing the halt and before disabling the mapping
    l.faults.inject(
        Fault::on("lambda", "UpdateEventSourceMapping", Action::Crash)
            .from("close")
            .times(1),
    );
    l.portal.set(Mode::Down);
    let during = ids("M", 10);
    send_orders(&l, &during).await?;
    l.wait_for("close killed", Duration::from_secs(60), || async {
        Ok(l.faults.kills() == 2)
    })
    .await?;
    // THEN the watchdog finds the halted gate with its mapping enabled and no timer, and
    // repairs both; once the portal is back, everything is delivered once
    l.wait_for("the mapping Disabled", Duration::from_secs(30), || async {
        Ok(l.mapping_state("processor").await? == "Disabled")
    })
    .await?;
    l.portal.set(Mode::Up);
    wait_created(&l, &during, Duration::from_secs(90)).await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(60))
        .await?;
    let all: Vec<String> = first.iter().chain(during.iter()).cloned().collect();
    assert_each_created_once(&l, &all);
    assert!(l.count_events("GateRepaired").await? >= 1);
    assert_eq!(l.gate().await?.map(|g| g.0), Some("Flowing".into()));
    assert!(l.take_parked().await?.is_empty(), "nothing parked");
    assert_accounted(&l, &["AsyncInvokeDLQ"]).await?;
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_targets_odd_answers_half_5xx_slow_ambiguous_and_reset_create_each_order_once(
) -> Result<()> {
    let l = up("ft", &[]).await?;
    let mut all = Vec::new();
    // Each mode, and what shows it was met: the portal's answer, or (slow: 4 s, past the
    // functions' 3 s target timeout here, so the portal never gets to answer) the processor's
    // own account of the call.
    let phases = [
        (
            "H",
            Mode::Flaky { percent: 50 },
            "HTTP 503: Service Unavailable",
        ),
        ("S", Mode::Slow { delay_ms: 4_000 }, "timeout"),
        ("A", Mode::Ambiguous, "HTTP 500: Internal Server Error"),
        ("X", Mode::Reset, "request failed"),
    ];
    for (prefix, mode, met) in phases {
        // GIVEN the portal answering this way while ten orders arrive
        l.portal.set(mode.clone());
        let batch = ids(prefix, 10);
        send_orders(&l, &batch).await?;
        l.wait_for(
            &format!("{mode:?} met"),
            Duration::from_secs(30),
            || async {
                Ok(l.function_log("processor")?.iter().any(|line| {
                    let f = &line["fields"];
                    batch.iter().any(|id| f["key"] == format!("orders/{id}"))
                        && f["reason"].as_str().is_some_and(|r| r.starts_with(met))
                }))
            },
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(6)).await;
        // WHEN it recovers, THEN each order is created once
        l.portal.set(Mode::Up);
        wait_created(&l, &batch, Duration::from_secs(90)).await?;
        all.extend(batch);
    }
    l.wait_drained("OrdersQueue", Duration::from_secs(60))
        .await?;
    assert_each_created_once(&l, &all);
    assert!(l.take_parked().await?.is_empty(), "nothing parked");
    l.wait_for("the gate Flowing", Duration::from_secs(30), || async {
        Ok(l.gate().await?.is_none_or(|g| g.0 == "Flowing"))
    })
    .await?;
    assert_accounted(&l, &[]).await?;
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_inbox_processors_sweeping_at_once_deliver_each_change_once() -> Result<()> {
    // No automatic sweeps and no stream: the test runs the processors itself.
    let l = stack("f4", &[], &[], Some(Duration::from_secs(3600))).await?;
    l.set_stream_enabled("inbox-processor", false).await?;
    // GIVEN 40 records in up to 3 versions with up to 4 copies each, all stored
    let s = steadfast_local::erp::storm(40, 4, 23);
    let bodies: Vec<String> = s.messages.iter().map(|m| m.2.clone()).collect();
    l.send_text_to("ErpRecordsQueue", &bodies).await?;
    l.wait_drained("ErpRecordsQueue", Duration::from_secs(120))
        .await?;
    // WHEN four processors sweep at the same time, round after round
    let expected = s.expected();
    let sweep = json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}});
    for _ in 0..10 {
        let runs = (0..4).map(|_| l.invoke("inbox-processor", &sweep));
        for r in futures::future::join_all(runs).await {
            r?;
        }
        let rows = l.inbox_rows().await?;
        if rows.len() == 40 && rows.values().all(|r| r.status == "Processed") {
            break;
        }
    }
    // THEN every record is at its newest version at the portal, each change delivered once
    let states = l.portal.record_states();
    for (id, rec) in &expected {
        assert_eq!(states.get(id).map(|s| &s.record), Some(rec), "{id}");
    }
    let deliveries = l.portal.record_deliveries();
    let keys: HashSet<&str> = deliveries.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys.len(),
        deliveries.len(),
        "an Idempotency-Key applied twice"
    );
    assert_eq!(deliveries.iter().filter(|d| d.duplicate).count(), 0);
    assert_eq!(deliveries.iter().filter(|d| d.stale_overwrite).count(), 0);
    let rows = l.inbox_rows().await?;
    assert!(
        rows.values()
            .all(|r| r.delivered_version == Some(r.version)),
        "{rows:?}"
    );
    assert_accounted(&l, &[]).await?;
    l.down().await;
    Ok(())
}
