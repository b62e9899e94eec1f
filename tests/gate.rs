//! End-to-end tests of the self-healing gate (pipeline A) on the deployed template in
//! LocalStack: the faults an outside API really produces — a maintenance window announced by Retry-After, an expired
//! token, a poison order, an over-long identity — and the crash states the watchdog repairs.
//! Each test provisions its own uniquely named stack.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use steadfast_domain::{Gate, GateState};
use steadfast_local::local::{order, Local};
use steadfast_local::now_ms;
use steadfast_local::portal::Mode;
use steadfast_tests::{assert_each_created_once, calls_to, emulator, secret, stack, token, SWEEPS};

async fn up(params: &[(&str, &str)]) -> Result<Local> {
    stack("g", params, &[], SWEEPS).await
}

fn order_calls(l: &Local) -> usize {
    calls_to(l, "/orders")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_maintenance_window_halts_at_once_and_the_first_probe_waits_for_its_retry_after(
) -> Result<()> {
    // GIVEN a portal in a maintenance window: 503 with Retry-After 30 s, health down too
    // (the backoff cap is raised so the announced wait is not cut to the local 8 s)
    let l = up(&[("BackoffCapSeconds", "300")]).await?;
    l.portal.set(Mode::Maintenance { retry_after_s: 30 });
    let started = now_ms();
    // WHEN 40 orders arrive
    let ids: Vec<String> = (0..40).map(|i| format!("M-{i}")).collect();
    let orders: Vec<_> = ids.iter().map(|i| order(i)).collect();
    l.send(&orders).await?;
    // THEN the flow halts at once
    l.wait_for("gate Halted", Duration::from_secs(60), || async {
        Ok(l.gate().await?.is_some_and(|g| g.0 != "Flowing"))
    })
    .await?;
    let gate = l.gate_of(&l.stack.name).await?.expect("gate stored");
    assert!(
        gate.next_probe_at_ms >= gate.changed_at_ms + 30_000,
        "first probe due {} ms after the halt",
        gate.next_probe_at_ms - gate.changed_at_ms
    );
    l.wait_for("mapping Disabled", Duration::from_secs(30), || async {
        Ok(l.mapping_state("processor").await? == "Disabled")
    })
    .await?;
    // AND the portal is not hammered: no more order calls after the first few
    let early = order_calls(&l);
    // WHEN the window ends just before the announced time
    let until_probe = gate.next_probe_at_ms.saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(until_probe.saturating_sub(2_000))).await;
    let during = order_calls(&l);
    let health_before: Vec<u64> = l
        .portal
        .seen()
        .iter()
        .filter(|s| s.path == "/health")
        .map(|s| s.at_ms)
        .collect();
    l.portal.set(Mode::Up);
    // THEN the first probe comes no earlier than the Retry-After, finds the portal up, and
    // every order is delivered exactly once
    l.wait_for("all 40 delivered", Duration::from_secs(90), || async {
        Ok(l.portal.created_orders().len() == 40)
    })
    .await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(30))
        .await?;
    let first_probe = l
        .portal
        .seen()
        .iter()
        .find(|s| s.path == "/health")
        .map(|s| s.at_ms)
        .expect("a probe");
    eprintln!(
        "maintenance: {during} order calls in {} s of the window ({early} before the halt was complete); first probe {} ms after the halt; parked {}",
        (now_ms() - started) / 1000,
        first_probe - gate.changed_at_ms,
        l.take_parked().await?.len()
    );
    assert!(health_before.is_empty(), "no probe before the Retry-After");
    assert!(first_probe >= gate.changed_at_ms + 30_000);
    assert!(during <= 10, "{during} order calls during the window");
    assert_each_created_once(&l, &ids);
    assert!(l.take_parked().await?.is_empty(), "nothing parked");
    assert_eq!(l.count_events("FlowHalted").await?, 1);
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_token_halts_the_flow_parks_nothing_and_delivers_all_after_renewal() -> Result<()>
{
    // GIVEN a portal whose token expired: 401 on every delivery while its health URL is up
    let l = up(&[]).await?;
    l.portal.set(Mode::Auth);
    let ids: Vec<String> = (0..30).map(|i| format!("T-{i}")).collect();
    let orders: Vec<_> = ids.iter().map(|i| order(i)).collect();
    l.send(&orders).await?;
    // THEN the flow halts instead of parking every order
    l.wait_for("gate Halted", Duration::from_secs(60), || async {
        Ok(l.gate().await?.is_some_and(|g| g.0 != "Flowing"))
    })
    .await?;
    // AND while the token stays bad, the health check lies (200) and every resume relapses:
    // each relapse waits longer than the one before
    tokio::time::sleep(Duration::from_secs(20)).await;
    let during = order_calls(&l);
    let halts = l.count_events("FlowHalted").await?;
    let parked_during = l.take_parked().await?;
    // WHEN the token is renewed
    l.portal.set(Mode::Up);
    // THEN every order is delivered once, nothing was parked, nothing dead-lettered
    l.wait_for("all 30 delivered", Duration::from_secs(90), || async {
        Ok(l.portal.created_orders().len() == 30)
    })
    .await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(30))
        .await?;
    eprintln!(
        "auth: {during} order calls and {halts} halts in the 20 s of bad token; parked {}",
        parked_during.len()
    );
    assert!(parked_during.is_empty(), "{parked_during:?}");
    assert!(l.take_parked().await?.is_empty());
    assert_each_created_once(&l, &ids);
    assert_eq!(l.depth("OrdersDLQ").await?, (0, 0, 0));
    let gate = l.gate_of(&l.stack.name).await?.expect("gate");
    assert_eq!(gate.state, GateState::Flowing);
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_over_long_identity_and_a_malformed_body_are_parked_and_their_batch_mates_delivered(
) -> Result<()> {
    // GIVEN one batch of 10 (the mapping gathers for 2 s): a 5 000-byte order id, a body that
    // is not JSON, and 8 good orders
    let l = up(&[("OrdersBatchingWindowSeconds", "2")]).await?;
    let long_id = "L".repeat(5000);
    let good: Vec<String> = (0..8).map(|i| format!("B-{i}")).collect();
    let mut bodies: Vec<String> = good.iter().map(|i| order(i).to_string()).collect();
    bodies.insert(3, order(&long_id).to_string());
    bodies.insert(6, "{not json".to_owned());
    l.send_text_to("OrdersQueue", &bodies).await?;
    // THEN the 8 are delivered and the 2 parked with their reasons, in one pass
    l.wait_for("8 delivered", Duration::from_secs(60), || async {
        Ok(l.portal.created_orders().len() == 8)
    })
    .await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(30))
        .await?;
    let parked = l.take_parked().await?;
    let reasons: Vec<&str> = parked.iter().filter_map(|p| p["reason"].as_str()).collect();
    assert_eq!(parked.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("identity is 5007 bytes, over the limit of 1024")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not valid JSON")),
        "{reasons:?}"
    );
    // AND each parked message is its original body, with where it came from beside it
    let bodies_parked: HashSet<&str> = parked.iter().filter_map(|p| p["body"].as_str()).collect();
    assert!(bodies_parked.contains("{not json"));
    assert!(parked.iter().all(|p| p["source"] == "orders"
        && p["source_arn"]
            .as_str()
            .is_some_and(|a| a.ends_with("-orders"))
        && p["message_id"].as_str().is_some_and(|m| !m.is_empty())));
    assert_each_created_once(&l, &good);
    let handed_back = l.log_sum("processor", "batch done", "handed_back")?;
    assert_eq!(handed_back, 0, "nothing handed back, let alone twice");
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_order_is_parked_after_its_receives_and_the_gate_never_halts() -> Result<()> {
    // GIVEN a portal that answers 500 for one order only, and orders that keep coming
    let l = up(&[("OrdersBatchingWindowSeconds", "2")]).await?;
    l.portal.set(Mode::FailOrder {
        order_id: "X-POISON".into(),
    });
    let mut ids: Vec<String> = (0..9).map(|i| format!("G-{i}")).collect();
    let mut first: Vec<_> = ids.iter().map(|i| order(i)).collect();
    first.insert(4, order("X-POISON"));
    l.send(&first).await?;
    // WHEN good orders keep arriving while the poison one comes back again and again
    let mut n = 0;
    let parked = loop {
        let more: Vec<String> = (0..3).map(|i| format!("K-{n}-{i}")).collect();
        l.send(&more.iter().map(|i| order(i)).collect::<Vec<_>>())
            .await?;
        ids.extend(more);
        n += 1;
        let p = l.take_parked().await?;
        if !p.is_empty() {
            break p;
        }
        assert!(n < 120, "the poison order was not parked within 2 minutes");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // THEN it is parked with its last error, after PoisonReceiveCount receives
    assert_eq!(parked.len(), 1);
    let reason = parked[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("6 receives") && reason.contains("HTTP 500"),
        "{reason}"
    );
    assert_eq!(parked[0]["identity"], "orders/X-POISON");
    // AND every good order is delivered once, and the gate never halted
    l.wait_for(
        "all good orders delivered",
        Duration::from_secs(60),
        || async { Ok(l.portal.created_orders().len() == ids.len()) },
    )
    .await?;
    assert_each_created_once(&l, &ids);
    assert_eq!(l.count_events("FlowHalted").await?, 0);
    assert!(l.gate().await?.is_none(), "the gate was never written");
    let poison_calls = l
        .portal
        .seen()
        .iter()
        .filter(|s| s.order_id.as_deref() == Some("X-POISON"))
        .count();
    eprintln!(
        "poison: {poison_calls} calls for the poison order over {n} s; {} good orders delivered",
        ids.len()
    );
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_watchdog_repairs_a_lost_probe_timer_and_a_disabled_mapping_once_each() -> Result<()> {
    // The compressed schedules run hourly here: the test runs the watchdog itself, twice each.
    let l = stack("g", &[], &[], Some(Duration::from_secs(3600))).await?;
    let watchdog = json!({"kind": "watchdog"});

    // GIVEN a flowing gate whose mapping was left disabled (open crashed after a failed enable)
    l.set_mapping_enabled("processor", false).await?;
    // WHEN the watchdog runs twice
    l.invoke("close", &watchdog).await?;
    l.invoke("close", &watchdog).await?;
    // THEN the mapping is enabled again, said once, and orders flow
    l.wait_for("mapping Enabled", Duration::from_secs(30), || async {
        Ok(l.mapping_state("processor").await? == "Enabled")
    })
    .await?;
    l.send(&[order("W-1")]).await?;
    l.wait_for("W-1 delivered", Duration::from_secs(30), || async {
        Ok(l.portal.created_orders().contains_key("W-1"))
    })
    .await?;
    assert_eq!(l.count_events("GateRepaired").await?, 1);

    // GIVEN a gate halted ten minutes ago whose probe timer never came (close crashed after
    // writing Halted), its mapping disabled, and orders waiting
    l.set_mapping_enabled("processor", false).await?;
    let now = now_ms();
    let mut gate = Gate::new(l.stack.name.clone())
        .trip(now - 600_000, "crash test", false, 0)
        .expect("trip");
    gate.next_probe_at_ms = now - 599_000;
    l.put_gate(&gate).await?;
    l.send(&[order("W-2"), order("W-3")]).await?;
    // WHEN the watchdog runs twice
    l.invoke("close", &watchdog).await?;
    l.invoke("close", &watchdog).await?;
    // THEN it set one new probe timer, said so once, the probe resumed the flow and the
    // orders went through
    l.wait_for("W-2 and W-3 delivered", Duration::from_secs(60), || async {
        let c = l.portal.created_orders();
        Ok(c.contains_key("W-2") && c.contains_key("W-3"))
    })
    .await?;
    let events = l.events().await?;
    let repairs: Vec<_> = events
        .iter()
        .filter(|e| e.detail_type == "GateRepaired")
        .collect();
    assert_eq!(repairs.len(), 2, "one per broken state");
    assert!(
        repairs[1].detail["repairs"]
            .to_string()
            .contains("probe timer"),
        "{:?}",
        repairs[1].detail
    );
    l.wait_for("FlowResumed observed", Duration::from_secs(15), || async {
        Ok(l.count_events("FlowResumed").await? >= 1)
    })
    .await?;
    assert_eq!(l.count_events("FlowResumed").await?, 1);
    let health = l
        .portal
        .seen()
        .iter()
        .filter(|s| s.path == "/health")
        .count();
    assert_eq!(health, 1, "one probe for the repaired timer");
    assert_each_created_once(&l, &["W-1".into(), "W-2".into(), "W-3".into()]);
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_probe_delivers_one_real_order_exactly_once_and_resumes() -> Result<()> {
    // GIVEN no health URL: the probe delivers a real queued order
    let l = up(&[("ProbeUrl", ""), ("ProbeMode", "message")]).await?;
    l.portal.set(Mode::Down);
    let ids: Vec<String> = (0..12).map(|i| format!("Q-{i}")).collect();
    l.send(&ids.iter().map(|i| order(i)).collect::<Vec<_>>())
        .await?;
    l.wait_for("gate Halted", Duration::from_secs(60), || async {
        Ok(l.gate().await?.is_some_and(|g| g.0 != "Flowing"))
    })
    .await?;
    // WHEN a probe fails (the order goes back) and the portal then comes back
    l.wait_for("a probe event", Duration::from_secs(30), || async {
        Ok(l.count_events("ProbeFailed").await? >= 1)
    })
    .await?;
    l.portal.set(Mode::Up);
    // THEN the next probe delivers one order, the flow resumes, and all are delivered once
    l.wait_for("all 12 delivered", Duration::from_secs(60), || async {
        Ok(l.portal.created_orders().len() == 12)
    })
    .await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(30))
        .await?;
    assert_each_created_once(&l, &ids);
    assert_eq!(l.count_events("FlowResumed").await?, 1);
    assert!(
        l.portal.seen().iter().all(|s| s.path != "/health"),
        "message probes never call a health URL"
    );
    let conflicts = l.portal.stats().conflicts_409;
    assert_eq!(
        conflicts, 0,
        "the probe order was not sent again by the processor"
    );
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_resume_the_flow_ramps_up_from_two_to_the_configured_concurrency() -> Result<()> {
    let l = up(&[("DeliveryConcurrency", "5"), ("RampUpSuccesses", "20")]).await?;
    assert_eq!(l.mapping_concurrency("processor").await?, Some(5));
    // GIVEN an outage that halted the flow
    l.portal.set(Mode::Down);
    l.send(&[order("R-0")]).await?;
    l.wait_for("gate Halted", Duration::from_secs(60), || async {
        Ok(l.gate().await?.is_some_and(|g| g.0 != "Flowing"))
    })
    .await?;
    // WHEN the portal comes back and the flow resumes
    l.portal.set(Mode::Up);
    l.wait_for("resumed", Duration::from_secs(30), || async {
        Ok(l.count_events("FlowResumed").await? == 1)
    })
    .await?;
    // THEN the mapping runs at 2 right after the resume
    assert_eq!(l.mapping_concurrency("processor").await?, Some(2));
    // AND after 20 deliveries at the configured 5
    let ids: Vec<String> = (1..=25).map(|i| format!("R-{i}")).collect();
    l.send(&ids.iter().map(|i| order(i)).collect::<Vec<_>>())
        .await?;
    l.wait_for(
        "MaximumConcurrency 5, ramp over",
        Duration::from_secs(45),
        || async {
            let ramping = l.gate_of(&l.stack.name).await?.is_none_or(|g| g.ramping);
            Ok(l.mapping_concurrency("processor").await? == Some(5) && !ramping)
        },
    )
    .await?;
    let gate = l.gate_of(&l.stack.name).await?.expect("gate");
    assert!(
        gate.ramp_delivered >= 20,
        "raised by the deliveries, not the clock: {gate:?}"
    );
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_token_is_picked_up_without_a_redeploy() -> Result<()> {
    // GIVEN the portal's token in Secrets Manager, the functions holding only its ARN
    let first = token();
    let arn = secret("rotate", &first).await?;
    let l = stack("g", &[], &[("TARGET_TOKEN_SECRET_ARN", &arn)], SWEEPS).await?;
    l.portal.require_token(&first);
    let before: Vec<String> = (0..5).map(|i| format!("K1-{i}")).collect();
    l.send(&before.iter().map(|i| order(i)).collect::<Vec<_>>())
        .await?;
    l.wait_for("the first 5 delivered", Duration::from_secs(60), || async {
        Ok(l.portal.created_orders().len() == 5)
    })
    .await?;
    // WHEN the token is rotated: the secret holds a new one, the portal takes only that
    let second = token();
    emulator()
        .await
        .secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(&second)
        .send()
        .await?;
    l.portal.require_token(&second);
    let after: Vec<String> = (0..5).map(|i| format!("K2-{i}")).collect();
    l.send(&after.iter().map(|i| order(i)).collect::<Vec<_>>())
        .await?;
    // THEN the functions read the secret again after the first 401 and deliver everything
    l.wait_for("the next 5 delivered", Duration::from_secs(90), || async {
        Ok(l.portal.created_orders().len() == 10)
    })
    .await?;
    let refused = l.portal.seen().iter().filter(|s| s.status == 401).count();
    eprintln!("rotation: {refused} answers 401 before the new token was used");
    assert!(refused >= 1, "the old token was refused at least once");
    let all: Vec<String> = before.into_iter().chain(after).collect();
    assert_each_created_once(&l, &all);
    assert!(l.take_parked().await?.is_empty());
    l.down().await;
    Ok(())
}
