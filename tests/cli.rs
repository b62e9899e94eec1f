//! The operator's `steadfast` command against a deployed stack in LocalStack, read through
//! CloudFormation (`--stack NAME`), as an operator runs it: `status` sees what a test made
//! (a halted gate, a parked message, a pending outbox record) and says so in its exit code;
//! `halt` and `resume` steer the flow; `replay parked` and `requeue outbox --failed` bring
//! messages and records back, each delivered exactly once; `replay dlq` moves dead letters by
//! SQS's own message move task.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use serde_json::{json, Value};
use steadfast_local::faults::BusFaults;
use steadfast_local::local::{application, order, Local};
use steadfast_local::portal::Mode;
use steadfast_tests::{assert_each_created_once, ids, send_orders, stack, wait_created, SWEEPS};

/// Runs `steadfast --stack <the test's stack> --json ARGS…`: its exit code and JSON answer.
async fn steadfast(l: &Local, args: &[&str]) -> Result<(i32, Value)> {
    let mut argv = vec!["steadfast", "--stack", &l.stack.name, "--json"];
    argv.extend_from_slice(args);
    let cli = steadfast_cli::Cli::try_parse_from(argv)?;
    let mut out = Vec::new();
    let code = steadfast_cli::run(cli, &mut out).await;
    let text = String::from_utf8(out)?;
    if code == 2 {
        bail!("steadfast {args:?} could not read the stack: {text}");
    }
    Ok((code, serde_json::from_str(&text)?))
}

/// Messages in the parking queue (visible or not).
async fn parked(l: &Local) -> Result<u64> {
    let (visible, in_flight, delayed) = l.depth("ParkingQueue").await?;
    Ok(visible + in_flight + delayed)
}

fn kinds(status: &Value) -> Vec<String> {
    status["attention"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_a_halted_gate_a_parked_message_and_a_pending_record_and_exits_1_until_resolved(
) -> Result<()> {
    let l = stack("cs", &[], &[], SWEEPS).await?;
    // GIVEN a healthy stack, status needs nothing and exits 0
    let (code, s) = steadfast(&l, &["status"]).await?;
    assert_eq!((code, kinds(&s)), (0, vec![]), "{s:#}");
    assert_eq!(s["gates"][0]["state"], "Flowing");
    // WHEN the portal goes down under orders, one order is not JSON, and the bus refuses
    // everything while an application arrives
    l.portal.set(Mode::Down);
    l.faults.set_bus(BusFaults {
        down: true,
        ..Default::default()
    });
    // (the bad order goes first and is parked before the others: once the gate halts, a
    // message still queued behind the orders waits for the probe)
    l.send_text_to("OrdersQueue", &["{not json".to_owned()])
        .await?;
    l.wait_for("one message parked", Duration::from_secs(60), || async {
        Ok(parked(&l).await? == 1)
    })
    .await?;
    let orders = ids("S", 5);
    send_orders(&l, &orders).await?;
    let written = Instant::now();
    l.send_to("ApplicationsQueue", &[application("APP-S-1")])
        .await?;
    l.wait_for("the gate halted", Duration::from_secs(60), || async {
        Ok(l.gate().await?.is_some_and(|g| g.0 == "Halted"))
    })
    .await?;
    // THEN status names each, with counts and ages, and exits 1 (read between probes, once the
    // mapping is off and the application written: while a probe is on its way the gate is
    // Probing and has no next probe time)
    let between = std::sync::Mutex::new(None);
    l.wait_for(
        "a status between probes",
        Duration::from_secs(30),
        || async {
            let (code, s) = steadfast(&l, &["status"]).await?;
            let settled = s["gates"][0]["state"] == "Halted"
                && s["gates"][0]["mapping"]["state"] == "Disabled"
                && s["tables"].as_array().is_some_and(|t| {
                    t.iter()
                        .any(|t| t["pipeline"] == "outbox" && t["oldest_pending_age_s"].is_u64())
                });
            *between.lock().expect("one reader") = settled.then_some((code, s));
            Ok(settled)
        },
    )
    .await?;
    let (code, s) = between
        .into_inner()
        .expect("one reader")
        .expect("a status between probes");
    assert_eq!(code, 1, "{s:#}");
    let k = kinds(&s);
    assert!(
        k.contains(&"halted".into()) && k.contains(&"parked".into()),
        "{k:?}"
    );
    let gate = &s["gates"][0];
    assert_eq!(gate["state"], "Halted");
    assert_eq!(gate["mapping"]["state"], "Disabled");
    assert!(gate["next_probe_at_ms"].as_u64().is_some(), "{gate}");
    assert_eq!(s["parked"]["count"], 1);
    let reason = s["parked"]["top_reasons"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("JSON"), "{reason}");
    let outbox = s["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["pipeline"] == "outbox"))
        .cloned()
        .unwrap_or_default();
    let pending = outbox["by_status"]["ToBeProcessed"].as_u64().unwrap_or(0)
        + outbox["by_status"]["InProgress"].as_u64().unwrap_or(0);
    assert_eq!(pending, 1, "{outbox}");
    // the age is the record's own, as of the status
    let (_, story) = steadfast(&l, &["inspect", "outbox", "APP-S-1"]).await?;
    let created = story["attributes"]["created_at_ms"].as_u64().unwrap_or(0);
    let age = (s["at_ms"].as_u64().unwrap_or(0) - created) / 1000;
    assert_eq!(outbox["oldest_pending_age_s"], age, "{outbox}");
    assert!(age <= written.elapsed().as_secs(), "age {age}");
    // WHEN all is resolved: the portal and the bus back, the parked message taken away
    l.portal.set(Mode::Up);
    l.faults.set_bus(BusFaults::default());
    wait_created(&l, &orders, Duration::from_secs(90)).await?;
    assert_eq!(l.take_parked().await?.len(), 1);
    l.wait_for("APP-S-1 published", Duration::from_secs(90), || async {
        Ok(l.approvals()
            .await?
            .iter()
            .any(|a| a.application_id == "APP-S-1"))
    })
    .await?;
    // THEN status needs nothing again and exits 0
    l.wait_for("status exit 0", Duration::from_secs(90), || async {
        Ok(steadfast(&l, &["status"]).await?.0 == 0)
    })
    .await?;
    assert_each_created_once(&l, &orders);
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manual_halt_holds_every_order_survives_a_healthy_probe_and_resume_delivers_each_once(
) -> Result<()> {
    let l = stack("ch", &[], &[], SWEEPS).await?;
    // GIVEN the flow halted by failures, with probes scheduled
    l.portal.set(Mode::Down);
    let first = ids("H", 3);
    send_orders(&l, &first).await?;
    l.wait_for("the gate halted", Duration::from_secs(60), || async {
        Ok(l.gate().await?.is_some_and(|g| g.0 == "Halted"))
    })
    .await?;
    // WHEN an operator halts it, then the portal recovers and more orders come
    let (_, s) = steadfast(&l, &["status"]).await?;
    let target = s["gates"][0]["target"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (code, g) = steadfast(&l, &["halt", &target, "--reason", "portal migration"]).await?;
    assert_eq!(
        (code, &g["state"], &g["manual"]),
        (0, &"Halted".into(), &true.into())
    );
    assert_eq!(g["reason"], "portal migration");
    let refused_probes = || -> Result<usize> {
        Ok(l.function_log("close")?
            .iter()
            .filter(|line| line["fields"]["outcome"] == "no_op")
            .filter(|line| {
                line["fields"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("halted by an operator"))
            })
            .count())
    };
    let refused_before = refused_probes()?;
    l.portal.set(Mode::Up);
    let second = ids("H2", 5);
    send_orders(&l, &second).await?;
    // THEN a probe timer of this halt, as the backoff sends one, finds the portal healthy and
    // is refused all the same (a timer set before the manual halt may also come; whether one
    // was pending depends on the moment), and in 20 s nothing is delivered
    let (_, s) = steadfast(&l, &["status"]).await?;
    let (epoch, attempt) = (&s["gates"][0]["epoch"], &s["gates"][0]["attempt"]);
    let timer = json!({"kind": "probe", "target": target, "epoch": epoch, "attempt": attempt});
    l.invoke("close", &timer).await?;
    // (the function's log reaches its file a moment after the answer)
    l.wait_for(
        "the probe timer refused",
        Duration::from_secs(10),
        || async { Ok(refused_probes()? > refused_before) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (_, s) = steadfast(&l, &["status"]).await?;
    assert_eq!(s["gates"][0]["state"], "Halted", "{s:#}");
    assert_eq!(s["gates"][0]["manual"], true);
    assert_eq!(s["gates"][0]["mapping"]["state"], "Disabled");
    assert!(l.portal.created_orders().is_empty());
    // WHEN the operator resumes
    let (code, g) = steadfast(&l, &["resume", &target]).await?;
    assert_eq!((code, &g["state"]), (0, &"Flowing".into()), "{g}");
    // THEN the queue drains and each order is delivered once
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    wait_created(&l, &all, Duration::from_secs(90)).await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(60))
        .await?;
    assert_each_created_once(&l, &all);
    // AND an unknown target is refused with the known ones named
    let cli = steadfast_cli::Cli::try_parse_from([
        "steadfast",
        "--stack",
        &l.stack.name,
        "halt",
        "nope",
    ])?;
    assert_eq!(steadfast_cli::run(cli, &mut Vec::new()).await, 2);
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_parked_delivers_orders_parked_on_401_exactly_once_after_the_token_is_fixed(
) -> Result<()> {
    // 401 as message-level: an order the target refuses is parked (not a halt).
    let l = stack(
        "cr",
        &[("TargetLevelStatuses", "3xx,403,404,405,407,408,410,429,5xx")],
        &[],
        SWEEPS,
    )
    .await?;
    // GIVEN orders parked while the target said 401
    l.portal.set(Mode::Auth);
    let orders = ids("P", 4);
    send_orders(&l, &orders).await?;
    l.wait_for("4 orders parked", Duration::from_secs(60), || async {
        Ok(parked(&l).await? == 4)
    })
    .await?;
    // WHEN the token is fixed; a dry run moves nothing
    l.portal.set(Mode::Up);
    let (code, r) = steadfast(&l, &["replay", "parked", "--dry-run"]).await?;
    assert_eq!((code, &r["moved"]["OrdersQueue"]), (0, &4.into()), "{r}");
    assert_eq!(parked(&l).await?, 4);
    assert!(l.portal.created_orders().is_empty());
    // AND the replay of another source's messages moves none
    let (_, r) = steadfast(&l, &["replay", "parked", "--source", "applications"]).await?;
    assert_eq!(r["moved"], json!({}), "{r}");
    // WHEN the orders' parked messages are replayed
    let (code, r) = steadfast(&l, &["replay", "parked", "--source", "orders"]).await?;
    assert_eq!((code, &r["moved"]["OrdersQueue"]), (0, &4.into()), "{r}");
    // THEN each is delivered exactly once, and nothing stays parked
    wait_created(&l, &orders, Duration::from_secs(60)).await?;
    l.wait_drained("OrdersQueue", Duration::from_secs(60))
        .await?;
    assert_each_created_once(&l, &orders);
    assert_eq!(parked(&l).await?, 0);
    // AND a dead letter goes back to its source by SQS's message move task
    let dead = vec!["D-001".to_owned()];
    l.send_to("OrdersDLQ", &[order(&dead[0])]).await?;
    let (code, r) = steadfast(&l, &["replay", "dlq", "--source", "orders"]).await?;
    assert_eq!((code, &r["moved"]["OrdersQueue"]), (0, &1.into()), "{r}");
    assert_eq!(r["method"]["OrdersDLQ"], "move-task");
    wait_created(&l, &dead, Duration::from_secs(60)).await?;
    let all: Vec<String> = orders.iter().chain(&dead).cloned().collect();
    assert_each_created_once(&l, &all);
    l.down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requeue_outbox_failed_publishes_a_failed_record_exactly_once() -> Result<()> {
    let l = stack(
        "cq",
        &[
            ("OutboxRetryWindowSeconds", "6"),
            ("OutboxRetryBaseSeconds", "1"),
        ],
        &[],
        SWEEPS,
    )
    .await?;
    // GIVEN an outbox record that ended Failed while the bus refused it
    l.faults.set_bus(BusFaults {
        poison: Some(r#""applicationId":"POISON-Q""#.into()),
        ..Default::default()
    });
    l.send_to(
        "ApplicationsQueue",
        &[application("POISON-Q"), application("OK-Q")],
    )
    .await?;
    l.wait_for("POISON-Q Failed", Duration::from_secs(90), || async {
        Ok(l.outbox_statuses().await?.get("Failed") == Some(&1))
    })
    .await?;
    // AND status says so, with the way out
    let (code, s) = steadfast(&l, &["status"]).await?;
    assert_eq!(code, 1, "{s:#}");
    assert!(kinds(&s).contains(&"failed".to_owned()), "{s:#}");
    let (code, story) = steadfast(&l, &["inspect", "outbox", "POISON-Q"]).await?;
    assert_eq!(
        (code, &story["attributes"]["status"]),
        (0, &"Failed".into()),
        "{story}"
    );
    assert!(
        story["attributes"]["last_error"].as_str().is_some(),
        "{story}"
    );
    assert!(story["attributes"]["detail"]
        .as_str()
        .is_some_and(|d| d.ends_with("bytes>")));
    // WHEN the bus accepts it again and the operator requeues every Failed record
    l.faults.set_bus(BusFaults::default());
    let (code, r) = steadfast(&l, &["requeue", "outbox", "--failed"]).await?;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["records"][0]["id"], "POISON-Q");
    assert_eq!(r["records"][0]["outcome"], "requeued");
    // THEN it is published exactly once (and the other once)
    let count = |got: &[steadfast_local::local::Approval], id: &str| {
        got.iter().filter(|a| a.application_id == id).count()
    };
    l.wait_for("POISON-Q published", Duration::from_secs(90), || async {
        Ok(count(&l.approvals().await?, "POISON-Q") >= 1)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let got = l.approvals().await?;
    let seen: HashMap<&str, usize> = ["POISON-Q", "OK-Q"]
        .iter()
        .map(|id| (*id, count(&got, id)))
        .collect();
    assert_eq!(seen, HashMap::from([("POISON-Q", 1), ("OK-Q", 1)]));
    // AND requeueing it again does nothing: it is no longer Failed
    let (code, r) = steadfast(&l, &["requeue", "outbox", "POISON-Q"]).await?;
    assert_eq!(
        (code, &r["records"][0]["outcome"]),
        (1, &"not-failed".into()),
        "{r}"
    );
    l.down().await;
    Ok(())
}
