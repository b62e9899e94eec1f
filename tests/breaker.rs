//! End-to-end tests of pipeline A on the deployed template in LocalStack: LocalStack runs the
//! real function binaries, drives them by its own mappings and async invokes, and the fake
//! portal injects the faults. Each test deploys its own uniquely named stack.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use steadfast_local::local::{order, Local};
use steadfast_local::portal::Mode;
use steadfast_tests::{stack, SWEEPS};

async fn up(params: &[(&str, &str)]) -> Result<Local> {
    stack("t", params, &[], SWEEPS).await
}

/// Keys the portal created, with how often each was created.
fn creations(l: &Local) -> HashMap<String, u32> {
    l.portal.created_orders()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_halts_the_flow_probes_with_doubling_delays_and_resumes_exactly_once(
) -> Result<()> {
    // GIVEN a healthy stack (backoff 1 s doubling, capped at 8 s) delivering orders
    let l = up(&[]).await?;
    let first: Vec<_> = (0..20).map(|i| order(&format!("A-{i}"))).collect();
    l.send(&first).await?;
    l.wait_for(
        "the first 20 orders delivered",
        Duration::from_secs(60),
        || async { Ok(creations(&l).len() == 20) },
    )
    .await?;
    assert_eq!(l.mapping_state("processor").await?, "Enabled");

    // WHEN the portal goes down and orders keep arriving
    l.portal.set(Mode::Down);
    let during: Vec<_> = (0..30).map(|i| order(&format!("B-{i}"))).collect();
    l.send(&during[..10]).await?;

    // THEN after MAX_ATTEMPTS failures the mapping is Disabled in the emulator
    l.wait_for("the mapping Disabled", Duration::from_secs(60), || async {
        Ok(l.mapping_state("processor").await? == "Disabled")
    })
    .await?;
    let halted_at = steadfast_local::now_ms();
    l.send(&during[10..]).await?;
    let gate = l.gate().await?.expect("gate stored");
    assert!(gate.0 == "Halted" || gate.0 == "Probing", "gate {gate:?}");
    // (the events travel through the bus to the observer queue after the mapping is disabled)
    l.wait_for("FlowHalted observed", Duration::from_secs(15), || async {
        Ok(l.count_events("FlowHalted").await? >= 1)
    })
    .await?;
    assert_eq!(l.count_events("FlowHalted").await?, 1, "one halt");
    // a second run that read Flowing just before the halt was saved may give up too
    let failed = l.count_events("DeliveryFailed").await?;
    assert!((1..=2).contains(&failed), "DeliveryFailed {failed}");

    // AND while it is down, orders stay in the queue and the portal only sees probes
    let health = |l: &Local| {
        l.portal
            .seen()
            .iter()
            .filter(|s| s.path == "/health")
            .count()
    };
    l.wait_for("four probes", Duration::from_secs(60), || async {
        Ok(health(&l) >= 4)
    })
    .await?;
    // (a run invoked before the disable finishes its in-invocation retries, about 3 s)
    let orders_calls_before = l
        .portal
        .seen()
        .iter()
        .filter(|s| s.path == "/orders" && s.at_ms > halted_at + 5_000)
        .count();
    assert_eq!(orders_calls_before, 0, "no order requests while halted");
    let (visible, in_flight, _) = l.depth("OrdersQueue").await?;
    assert_eq!(
        visible + in_flight,
        30,
        "every order of the outage is still queued"
    );
    // AND LocalStack's disabled mapping no longer consumes the queue: nothing in flight, and
    // the processor is not invoked, over a few seconds
    let invoked = l.invocations_of("processor");
    l.wait_for("no order in flight", Duration::from_secs(15), || async {
        Ok(l.depth("OrdersQueue").await?.1 == 0)
    })
    .await?;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (v, f, _) = l.depth("OrdersQueue").await?;
        assert_eq!((v, f), (30, 0), "queued, and nobody receiving");
    }
    assert!(
        l.invocations_of("processor") <= invoked + 1,
        "the processor is not invoked while the mapping is disabled"
    );
    let probes: Vec<u64> = l
        .portal
        .seen()
        .iter()
        .filter(|s| s.path == "/health")
        .map(|s| s.at_ms)
        .collect();
    assert!(probes.len() >= 3, "probes: {probes:?}");
    // doubling: 1 s, 2 s, 4 s, 8 s (each gap at least the delay, plus processing: a second
    // rounding the delay up, two function calls and the timer queue's poll, slower on a busy
    // machine)
    let gaps: Vec<u64> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, gap) in gaps.iter().enumerate() {
        let expected = 1000u64 << (i + 1).min(3);
        assert!(
            *gap + 150 >= expected,
            "gap {i} was {gap} ms, expected about {expected} ms (gaps {gaps:?})"
        );
        assert!(
            *gap < expected + 8_000,
            "gap {i} was {gap} ms, expected about {expected} ms (gaps {gaps:?})"
        );
    }
    assert!(l.count_events("ProbeFailed").await? >= 3);

    // WHEN the portal comes back
    l.portal.set(Mode::Up);
    l.wait_for(
        "the mapping Enabled again",
        Duration::from_secs(30),
        || async { Ok(l.mapping_state("processor").await? == "Enabled") },
    )
    .await?;
    // THEN the queue drains and every order is delivered exactly once
    l.wait_for(
        "all 50 orders delivered",
        Duration::from_secs(60),
        || async { Ok(creations(&l).len() == 50) },
    )
    .await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(30))
        .await?;
    let created = creations(&l);
    let expected: HashSet<String> = first
        .iter()
        .chain(during.iter())
        .map(|o| o["orderId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        created.keys().cloned().collect::<HashSet<_>>(),
        expected,
        "nothing lost"
    );
    assert!(created.values().all(|n| *n == 1), "nothing created twice");
    assert_eq!(l.count_events("FlowResumed").await?, 1);
    assert_eq!(l.gate().await?.unwrap().0, "Flowing");
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_orders_are_parked_with_a_reason_and_the_rest_of_the_batch_is_delivered() -> Result<()>
{
    let l = up(&[]).await?;
    // GIVEN a batch with an order the portal refuses (400), one without an identity, one that
    // is not JSON, and good ones
    let mut refused = order("P-1");
    refused["quantity"] = json!(0);
    let no_identity = json!({"sku": "X", "quantity": 1});
    let url = l.queue_url("OrdersQueue")?;
    l.send(&[order("P-0"), refused, no_identity, order("P-2")])
        .await?;
    l.emu
        .sqs
        .send_message()
        .queue_url(&url)
        .message_body("not json {")
        .send()
        .await?;
    // THEN the good ones are delivered and the three bad ones parked, each with its reason
    l.wait_for("2 delivered", Duration::from_secs(60), || async {
        Ok(creations(&l).len() == 2)
    })
    .await?;
    let parked = std::sync::Mutex::new(Vec::new());
    l.wait_for("3 parked", Duration::from_secs(30), || async {
        let more = l.take_parked().await?;
        let mut p = parked.lock().unwrap();
        p.extend(more);
        Ok(p.len() >= 3)
    })
    .await?;
    let parked = parked.into_inner().unwrap();
    let reasons: Vec<String> = parked
        .iter()
        .map(|p| p["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("HTTP 400")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("identity field /orderId is missing")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not valid JSON")),
        "{reasons:?}"
    );
    assert!(
        parked
            .iter()
            .all(|p| p["body"].as_str().is_some_and(|b| !b.is_empty())),
        "parked whole"
    );
    l.wait_drained("OrdersQueue", Duration::from_secs(30))
        .await?;
    assert_eq!(
        l.mapping_state("processor").await?,
        "Enabled",
        "a 400 does not halt the flow"
    );
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_is_retried_after_its_retry_after_and_a_redelivered_order_is_not_sent_again(
) -> Result<()> {
    let l = up(&[]).await?;
    // GIVEN the portal answers the next request with 429 Retry-After: 2
    l.portal.set(Mode::TooMany {
        retry_after_s: 2,
        count: 1,
    });
    l.send(&[order("R-1")]).await?;
    l.wait_for("R-1 delivered", Duration::from_secs(60), || async {
        Ok(creations(&l).len() == 1)
    })
    .await?;
    let seen: Vec<_> = l
        .portal
        .seen()
        .into_iter()
        .filter(|s| s.path == "/orders")
        .collect();
    assert_eq!(seen[0].status, 429);
    assert_eq!(seen[1].status, 201);
    assert!(
        seen[1].at_ms - seen[0].at_ms >= 2_000,
        "retried {} ms after the 429",
        seen[1].at_ms - seen[0].at_ms
    );
    l.wait_drained("OrdersQueue", Duration::from_secs(30))
        .await?;

    // WHEN the same order arrives again under a new message id (an SQS redelivery, or a
    // resend by the source)
    let requests_before = l.portal.stats().order_requests;
    l.send(&[order("R-1")]).await?;
    l.wait_for("the resend consumed", Duration::from_secs(30), || async {
        let (v, f, _) = l.depth("OrdersQueue").await?;
        Ok(v + f == 0 && l.invocations_of("processor") >= 2)
    })
    .await?;
    // THEN the ledger stops it: the portal sees no new request
    assert_eq!(l.portal.stats().order_requests, requests_before);
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_trips_make_one_halt_and_a_duplicated_timer_makes_no_second_chain(
) -> Result<()> {
    // Long delays so the chain is easy to observe: the first probe only after 20 s.
    let l = up(&[("BackoffBaseSeconds", "20"), ("BackoffCapSeconds", "40")]).await?;
    let trip = json!({"kind": "trip", "target": l.stack.name, "reason": "test"});
    // WHEN ten trip requests arrive at once, through LocalStack's Invoke API
    let answers = futures::future::join_all((0..10).map(|_| l.invoke("close", &trip))).await;
    let done: Vec<String> = answers
        .into_iter()
        .map(|a| a.map(|v| v.to_string()).unwrap_or_else(|e| e.to_string()))
        .collect();
    // THEN exactly one halted; the others did nothing
    assert_eq!(
        done.iter().filter(|d| d.contains("Halted")).count(),
        1,
        "{done:?}"
    );
    assert_eq!(
        done.iter().filter(|d| d.contains("NoOp")).count(),
        9,
        "{done:?}"
    );
    assert_eq!(
        l.gate().await?.map(|g| (g.0, g.1)),
        Some(("Halted".into(), 1))
    );
    l.wait_for("one FlowHalted", Duration::from_secs(10), || async {
        Ok(l.count_events("FlowHalted").await? == 1)
    })
    .await?;
    // AND one backoff chain: one timer (attempt 0) on the timers queue (set by backoff,
    // which close calls asynchronously after the halt)
    l.wait_for("the probe timer set", Duration::from_secs(15), || async {
        Ok(l.depth("TimersQueue").await?.2 >= 1)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, _, delayed) = l.depth("TimersQueue").await?;
    assert_eq!(delayed, 1, "one probe timer");
    l.wait_for("the mapping Disabled", Duration::from_secs(15), || async {
        Ok(l.mapping_state("processor").await? == "Disabled")
    })
    .await?;

    // WHEN the timer for attempt 0 is delivered twice (the original plus a duplicate)
    let timers = l.queue_url("TimersQueue")?;
    let probe = json!({"target": l.stack.name, "epoch": 1, "attempt": 0}).to_string();
    l.emu
        .sqs
        .send_message()
        .queue_url(&timers)
        .message_body(&probe)
        .send()
        .await?;
    l.emu
        .sqs
        .send_message()
        .queue_url(&timers)
        .message_body(&probe)
        .send()
        .await?;
    l.wait_for("the probe ran", Duration::from_secs(20), || async {
        Ok(l.count_events("FlowResumed").await? == 1)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // THEN exactly one probe ran and the flow resumed once; the duplicate was a no-op
    let probes = l
        .portal
        .seen()
        .iter()
        .filter(|s| s.path == "/health")
        .count();
    assert_eq!(probes, 1, "one probe for two identical timers");
    assert_eq!(l.mapping_state("processor").await?, "Enabled");
    // AND the original delayed timer, when it fires, is stale and does nothing
    l.wait_drained("TimersQueue", Duration::from_secs(40))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        l.portal
            .seen()
            .iter()
            .filter(|s| s.path == "/health")
            .count(),
        1
    );
    assert_eq!(l.count_events("FlowResumed").await?, 1);
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_delays_go_through_a_scheduler_schedule_that_targets_the_timers_queue() -> Result<()> {
    // The queue limit lowered to 1 s, so the 2 s delay of attempt 1 takes the Scheduler route.
    let l = up(&[("TimerQueueLimitSeconds", "1")]).await?;
    l.portal.set(Mode::Down);
    l.send(&[order("S-1")]).await?;
    l.wait_for("halted", Duration::from_secs(60), || async {
        Ok(l.mapping_state("processor").await? == "Disabled")
    })
    .await?;
    // probe 0 after 1 s (queue) fails; probe 1 in 2 s goes through a schedule
    l.wait_for("a schedule fired", Duration::from_secs(30), || async {
        Ok(l.schedules_fired().0 >= 1)
    })
    .await?;
    l.portal.set(Mode::Up);
    l.wait_for("S-1 delivered", Duration::from_secs(60), || async {
        Ok(creations(&l).len() == 1)
    })
    .await?;
    // the fired schedules were deleted (ActionAfterCompletion=DELETE), or by open
    let left = l
        .emu
        .scheduler
        .list_schedules()
        .send()
        .await?
        .schedules
        .into_iter()
        .filter(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.starts_with("probe-") && n.contains(&l.stack.name))
        })
        .count();
    assert_eq!(left, 0, "no probe schedule of this stack left");
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_functions_answer_the_invoke_api_as_on_aws_and_a_timeout_ends_the_invocation(
) -> Result<()> {
    // GIVEN a stack probing by message, with the orders mapping off and one order queued, and
    // a portal that answers after 45 s while close may run 30 s
    let l = stack(
        "t",
        &[("ProbeUrl", ""), ("ProbeMode", "message")],
        &[("TARGET_TIMEOUT_SECONDS", "60")],
        SWEEPS,
    )
    .await?;
    // WHEN a function is invoked with a request it refuses, through LocalStack's Invoke API
    let refused = l.invoke("open", &json!({"target": "no-such-target"})).await;
    // THEN it answers an Unhandled function error with its message, as Lambda does
    let e = refused.expect_err("refused").to_string();
    assert!(
        e.contains("answered Unhandled") && e.contains("not a guarded target"),
        "{e}"
    );
    // AND a request it understands gets its answer
    let watched = l.invoke("close", &json!({"kind": "watchdog"})).await?;
    assert!(
        watched["done"]
            .as_str()
            .is_some_and(|d| d.starts_with("Watched")),
        "{watched}"
    );

    // WHEN close probes through an order the portal holds past close's 30 s timeout
    l.set_mapping_enabled("processor", false).await?;
    l.send(&[order("SLOW-1")]).await?;
    let mut gate = steadfast_domain::Gate::new(l.stack.name.clone())
        .trip(steadfast_local::now_ms(), "test", false, 0)
        .expect("trip");
    gate.next_probe_at_ms = steadfast_local::now_ms() + 3_600_000;
    l.put_gate(&gate).await?;
    l.portal.set(Mode::Slow { delay_ms: 45_000 });
    let started = std::time::Instant::now();
    let probe = json!({"kind": "probe", "target": l.stack.name, "epoch": 1, "attempt": 0});
    let timed_out = l.invoke("close", &probe).await;
    // THEN the invocation is ended at the timeout and reports it
    let e = timed_out.expect_err("timed out").to_string();
    let took = started.elapsed();
    assert!(e.contains("Task timed out after 30.00 seconds"), "{e}");
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(40),
        "{took:?}"
    );
    // AND the function runs again afresh on the next invocation
    l.portal.set(Mode::Up);
    let again = l.invoke("close", &json!({"kind": "watchdog"})).await?;
    assert!(again["done"].as_str().is_some(), "{again}");
    l.down().await;
    Ok(())
}
