//! The adapters' contract: every adapter of `shared/aws` against the emulator (LocalStack, and
//! moto with `EMULATOR=moto`), each on resources of its own with unique names. These are the
//! answers the functions rely on: conditional writes refused when they should be, per-key read
//! errors, parked bodies unchanged with their attributes, timers and schedules, the mapping
//! switch, events on the bus, the outbox and inbox stores' claims and settles.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use steadfast_aws::events::{EventBridgeBus, EventBridgePublisher};
use steadfast_aws::gates::DynamoGates;
use steadfast_aws::inbox::DynamoInbox;
use steadfast_aws::ledger::DynamoLedger;
use steadfast_aws::outbox::DynamoApplications;
use steadfast_aws::parking::SqsParking;
use steadfast_aws::probe::SqsProbeSource;
use steadfast_aws::switch::EsmSwitch;
use steadfast_aws::timers::QueueAndScheduleTimers;
use steadfast_domain::ports::*;
use steadfast_domain::{FlowEvent, ProbeRequest, Settle, Settled, TimerRoute};
use steadfast_local::aws::Emulator;
use steadfast_local::now_ms;
use steadfast_tests::{create_table, emulator, unique};

async fn emu() -> Emulator {
    emulator().await
}

/// A table of its own keyed by `key` (S), with the sparse `due` index when asked.
async fn table(e: &Emulator, key: &str, due_index: bool) -> Result<String> {
    let name = unique("t");
    create_table(e, &name, key, due_index).await?;
    Ok(name)
}

#[tokio::test]
async fn the_gate_store_writes_only_on_the_version_it_read_and_counts_ramp_ups() -> Result<()> {
    let e = emu().await;
    let gates = DynamoGates {
        client: e.dynamodb.clone(),
        table: table(&e, "target", false).await?,
    };
    // GIVEN no gate: it reads as a new flowing gate
    let g = gates.load("portal").await?;
    assert!(g.is_flowing() && g.version == 0);
    // WHEN two writers race from the same read, only one wins
    let halted = g.trip(1, "x", false, 0).unwrap();
    assert!(gates.save(&halted).await?);
    assert!(
        !gates.save(&halted).await?,
        "the second writer of version 1 loses"
    );
    let stale = g.trip(2, "y", false, 0).unwrap();
    assert!(!gates.save(&stale).await?);
    // THEN what was stored reads back whole
    assert_eq!(gates.load("portal").await?, halted);
    // AND ramp-up deliveries are counted only while ramping in that epoch
    assert_eq!(gates.count_ramp("portal", 1, 3).await?, None, "not ramping");
    let resumed = halted.resume(Some(1), 3, "", true).unwrap();
    assert!(gates.save(&resumed).await?);
    assert_eq!(gates.count_ramp("portal", 1, 3).await?, Some(3));
    assert_eq!(gates.count_ramp("portal", 1, 4).await?, Some(7));
    assert_eq!(
        gates.count_ramp("portal", 2, 1).await?,
        None,
        "another epoch"
    );
    let mut stored = gates.load("portal").await?;
    assert_eq!(stored.ramp_delivered, 7);
    stored.ramp_delivered = 0;
    assert_eq!(stored, resumed, "the count is all the counting changed");
    Ok(())
}

#[tokio::test]
async fn the_ledger_remembers_deliveries_counts_strikes_and_reports_unreadable_keys() -> Result<()>
{
    let e = emu().await;
    let ledger = DynamoLedger {
        client: e.dynamodb.clone(),
        table: table(&e, "identity", false).await?,
        window: Duration::from_secs(3600),
    };
    let ids = vec!["orders/1".to_owned(), "orders/2".to_owned()];
    assert!(ledger.delivered(&ids).await.delivered.is_empty());
    ledger.record("orders/1", "m1").await?;
    // a strike is no delivery
    assert_eq!(ledger.strike("orders/2").await?, 1);
    assert_eq!(ledger.strike("orders/2").await?, 2);
    let read = ledger.delivered(&ids).await;
    assert_eq!(
        read.delivered.into_iter().collect::<Vec<_>>(),
        vec!["orders/1"]
    );
    assert!(read.unreadable.is_empty());
    assert_eq!(
        read.strikes.get("orders/2"),
        Some(&2),
        "strikes are read with deliveries"
    );
    // a key DynamoDB refuses (over 2 048 bytes) affects only itself, and says it never works
    let long = format!("orders/{}", "x".repeat(3000));
    let read = ledger
        .delivered(&[long.clone(), "orders/1".to_owned()])
        .await;
    assert!(read.delivered.contains("orders/1"), "{read:?}");
    if e.is_localstack().await {
        let err = read
            .unreadable
            .get(&long)
            .expect("the long key is reported");
        assert!(err.is_invalid(), "{err}");
    } else {
        // moto does not enforce DynamoDB's key size limit; LocalStack's DynamoDB Local does.
        assert!(read.unreadable.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn parking_keeps_the_body_unchanged_and_says_why_in_attributes() -> Result<()> {
    let e = emu().await;
    let (url, _) = e.create_queue(&unique("parked")).await?;
    let parking = SqsParking {
        client: e.sqs.clone(),
        queue_url: url.clone(),
    };
    let body = "{\"orderId\": \"A-1\",  \"note\": \"kept as sent\"}";
    parking
        .park(&ParkedMessage {
            source: "orders".into(),
            source_arn: Some("arn:aws:sqs:us-east-1:000000000000:orders".into()),
            message_id: "m-1".into(),
            correlation_id: "flow-1".into(),
            identity: Some("orders/A\u{0}1".into()),
            reason: "HTTP 422: Unprocessable Entity".into(),
            parked_at_ms: 1_700_000_000_000,
            body: body.into(),
        })
        .await?;
    let got = e.drain_messages(&url, 1).await?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, body, "the original body, byte for byte");
    let a = &got[0].attributes;
    assert_eq!(a["reason"], "HTTP 422: Unprocessable Entity");
    assert_eq!(a["source"], "orders");
    assert_eq!(a["source_arn"], "arn:aws:sqs:us-east-1:000000000000:orders");
    assert_eq!(a["message_id"], "m-1");
    assert_eq!(a["correlation_id"], "flow-1");
    assert_eq!(
        a["identity"], "orders/A\u{FFFD}1",
        "a character SQS refuses is replaced"
    );
    assert_eq!(a["parked_at_ms"], "1700000000000");
    Ok(())
}

#[tokio::test]
async fn timers_go_through_the_queue_or_a_schedule_named_once() -> Result<()> {
    let e = emu().await;
    let (url, arn) = e.create_queue(&unique("timers")).await?;
    let timers = QueueAndScheduleTimers {
        sqs: e.sqs.clone(),
        scheduler: e.scheduler.clone(),
        queue_url: url.clone(),
        queue_arn: arn.clone(),
        scheduler_role_arn: "arn:aws:iam::000000000000:role/scheduler".into(),
        group: "default".into(),
        dead_letter_arn: None,
    };
    let probe = ProbeRequest {
        target: unique("portal"),
        epoch: 3,
        attempt: 1,
        at_ms: Some(now_ms() + 3_600_000),
    };
    // A short delay: a delayed message on the timers queue
    timers
        .set(&probe, TimerRoute::Queue { delay_seconds: 1 })
        .await?;
    let mut got = Vec::new();
    let start = std::time::Instant::now();
    while got.is_empty() && start.elapsed() < Duration::from_secs(10) {
        got = e.drain(&url, 1).await?;
    }
    assert_eq!(got.len(), 1, "the delayed timer, once");
    let sent: ProbeRequest = serde_json::from_str(&got[0])?;
    assert_eq!(sent, probe);
    // A long one: one schedule, whatever the repeats, targeting the queue, deleted after
    let route = TimerRoute::Schedule {
        fire_at_ms: now_ms() + 3_600_000,
    };
    timers.set(&probe, route).await?;
    timers.set(&probe, route).await?;
    let name = probe.schedule_name(&arn);
    let s = e
        .scheduler
        .get_schedule()
        .name(&name)
        .group_name("default")
        .send()
        .await?;
    assert!(s.schedule_expression.unwrap_or_default().starts_with("at("));
    let target = s.target.expect("target");
    assert_eq!(target.arn, arn);
    assert_eq!(
        serde_json::from_str::<ProbeRequest>(&target.input.unwrap_or_default())?,
        probe
    );
    // open cancels it; cancelling again is no error
    timers.cancel(&probe).await?;
    timers.cancel(&probe).await?;
    assert!(e
        .scheduler
        .get_schedule()
        .name(&name)
        .group_name("default")
        .send()
        .await
        .is_err());
    Ok(())
}

#[tokio::test]
async fn the_switch_reads_and_sets_a_mapping_and_its_concurrency() -> Result<()> {
    let e = emu().await;
    let (_, queue_arn) = e.create_queue(&unique("orders")).await?;
    let function = unique("processor");
    let role = e
        .iam
        .create_role()
        .role_name(unique("role"))
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await?
        .role
        .map(|r| r.arn)
        .unwrap_or_default();
    let zip = std::fs::read(
        steadfast_local::workspace_root().join("target/lambda-local/processor/bootstrap.zip"),
    )
    .map_err(|e| anyhow::anyhow!("target/lambda-local/processor/bootstrap.zip ({e}): make zips"))?;
    e.lambda
        .create_function()
        .function_name(&function)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(zip.into())
                .build(),
        )
        .send()
        .await?;
    e.lambda
        .create_event_source_mapping()
        .function_name(&function)
        .event_source_arn(&queue_arn)
        .batch_size(10)
        .scaling_config(
            aws_sdk_lambda::types::ScalingConfig::builder()
                .maximum_concurrency(5)
                .build(),
        )
        .send()
        .await?;
    let switch = EsmSwitch::new(e.lambda.clone(), function, queue_arn);
    let settled = |want: SwitchState| {
        let switch = &switch;
        async move {
            for _ in 0..60 {
                let r = switch.read().await?;
                if r.state == want {
                    return Ok::<_, anyhow::Error>(r);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            anyhow::bail!("the mapping never read {want:?}")
        }
    };
    assert_eq!(
        settled(SwitchState::Enabled).await?.max_concurrency,
        Some(5)
    );
    switch.set(Some(false), None).await?;
    settled(SwitchState::Disabled).await?;
    // concurrency alone leaves the mapping off
    switch.set(None, Some(3)).await?;
    let r = settled(SwitchState::Disabled).await?;
    assert_eq!(r.max_concurrency, Some(3));
    switch.set(Some(true), Some(2)).await?;
    assert_eq!(
        settled(SwitchState::Enabled).await?.max_concurrency,
        Some(2)
    );
    Ok(())
}

#[tokio::test]
async fn events_reach_the_bus_and_every_entry_of_a_batch_is_checked() -> Result<()> {
    let e = emu().await;
    let bus = unique("bus");
    e.events.create_event_bus().name(&bus).send().await?;
    let (url, arn) = e.create_queue(&unique("seen")).await?;
    e.events
        .put_rule()
        .name(unique("rule"))
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":[{"prefix":"steadfast"}]}"#)
        .send()
        .await?;
    let rules = e.events.list_rules().event_bus_name(&bus).send().await?;
    let rule = rules.rules.unwrap_or_default()[0]
        .name
        .clone()
        .unwrap_or_default();
    e.events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(&arn)
                .build()?,
        )
        .send()
        .await?;
    EventBridgeBus {
        client: e.events.clone(),
        bus: bus.clone(),
    }
    .emit(&FlowEvent::FlowHalted {
        target: "portal".into(),
        epoch: 1,
        reason: "test".into(),
        correlation_id: Some("flow-1".into()),
    })
    .await?;
    let results = EventBridgePublisher {
        client: e.events.clone(),
        bus: bus.clone(),
        source: "steadfast.outbox".into(),
    }
    .publish(&[
        Outgoing {
            detail_type: "A".into(),
            detail: r#"{"n":1}"#.into(),
        },
        Outgoing {
            detail_type: "B".into(),
            detail: r#"{"n":2}"#.into(),
        },
    ])
    .await;
    assert_eq!(results, vec![Ok(()), Ok(())]);
    let mut seen = Vec::new();
    for _ in 0..20 {
        seen.extend(e.drain(&url, 1).await?);
        if seen.len() >= 3 {
            break;
        }
    }
    let types: Vec<String> = seen
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .map(|v| v["detail-type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        types.contains(&"FlowHalted".to_owned())
            && types.contains(&"A".to_owned())
            && types.contains(&"B".to_owned()),
        "{types:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_outbox_store_writes_once_claims_once_and_settles_only_its_own_claim() -> Result<()> {
    use steadfast_domain::outbox::NewRecord;
    let e = emu().await;
    let outbox_table = table(&e, "id", true).await?;
    let apps = DynamoApplications {
        client: e.dynamodb.clone(),
        applications_table: table(&e, "id", false).await?,
        outbox_table: outbox_table.clone(),
    };
    let outbox = steadfast_aws::outbox::outbox(e.dynamodb.clone(), outbox_table);
    let now = now_ms();
    let record =
        NewRecord::new("APP-1", "Received", r#"{"x":1}"#.into(), now, 1).correlated("flow-1");
    // one transaction writes both; a resubmission writes nothing
    assert_eq!(
        apps.store("APP-1", &json!({"a": 1}), "m1", &record).await?,
        Stored::New
    );
    assert_eq!(
        apps.store("APP-1", &json!({"a": 2}), "m2", &record).await?,
        Stored::AlreadyExists
    );
    // it is due; one claim wins
    let mut due = vec![];
    for _ in 0..20 {
        due = outbox.due(0, now + 1, 10).await?;
        if !due.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await; // the index is eventually consistent
    }
    assert_eq!(due, vec!["APP-1"]);
    let claimed = outbox
        .claim("APP-1", now + 1, now + 60_000, "tok-a")
        .await?
        .expect("claimed");
    assert_eq!(claimed.record.correlation_id.as_deref(), Some("flow-1"));
    assert!(outbox
        .claim("APP-1", now + 2, now + 60_000, "tok-b")
        .await?
        .is_none());
    // a settle by another claim is refused; its own goes through
    let mut other = claimed.clone();
    other.token = "tok-b".into();
    let done = Settle::Done {
        at_ms: now + 3,
        expires_at_s: Some(now / 1000 + 3600),
    };
    assert_eq!(outbox.settle(&other, &done).await?, Settled::LeaseLost);
    assert_eq!(outbox.settle(&claimed, &done).await?, Settled::Done);
    assert!(
        outbox.due(0, now + 10, 10).await?.is_empty(),
        "no longer due"
    );
    Ok(())
}

#[tokio::test]
async fn a_claimed_item_that_cannot_be_read_is_named_and_failed_not_reclaimed_forever() -> Result<()>
{
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    let e = emu().await;
    let table_name = table(&e, "id", true).await?;
    let outbox = steadfast_aws::outbox::outbox(e.dynamodb.clone(), table_name.clone());
    let now = now_ms();
    // An outbox record someone edited by hand: its detail is gone.
    e.dynamodb
        .put_item()
        .table_name(&table_name)
        .item("id", Av::S("BROKEN-1".into()))
        .item("event_id", Av::S("e".into()))
        .item("detail_type", Av::S("Received".into()))
        .item("created_at_ms", Av::N(now.to_string()))
        .item("status", Av::S("ToBeProcessed".into()))
        .item("attempts", Av::N("0".into()))
        .item("due_shard", Av::S("0".into()))
        .item("due_at", Av::N(now.to_string()))
        .send()
        .await?;
    let err = outbox
        .claim("BROKEN-1", now + 1, now + 60_000, "tok")
        .await
        .expect_err("an unreadable item is an error, not a record with defaults");
    let text = err.to_string();
    assert!(
        text.contains("BROKEN-1") && text.contains(&table_name),
        "{text}"
    );
    assert!(
        text.contains("missing field `detail`"),
        "names the field: {text}"
    );
    let stored = e
        .dynamodb
        .get_item()
        .table_name(&table_name)
        .key("id", Av::S("BROKEN-1".into()))
        .consistent_read(true)
        .send()
        .await?
        .item
        .unwrap_or_default();
    assert_eq!(stored.get("status"), Some(&Av::S("Failed".into())));
    assert!(!stored.contains_key("due_at"), "out of the due index");
    assert!(
        outbox
            .claim("BROKEN-1", now + 120_000, now + 180_000, "tok2")
            .await?
            .is_none(),
        "never claimed again"
    );
    Ok(())
}

#[tokio::test]
async fn the_inbox_store_inserts_once_replaces_on_what_it_read_and_settles_by_version() -> Result<()>
{
    use steadfast_domain::inbox::InboxConfig;
    use steadfast_domain::Status;
    let e = emu().await;
    let table_name = table(&e, "id", true).await?;
    let inbox = DynamoInbox {
        client: e.dynamodb.clone(),
        table: table_name.clone(),
    };
    let records = steadfast_aws::inbox::records(e.dynamodb.clone(), table_name);
    let cfg = InboxConfig::parse(
        "/entity",
        r#"{"customer":{"key":["/no"],"changedAt":"/at","noise":[],"endpoint":"https://p/c"}}"#,
        350_000,
    )
    .map_err(anyhow::Error::msg)?;
    let v1 =
        cfg.read(r#"{"entity":"customer","no":"C-1","name":"A","at":"2026-11-28T09:00:00Z"}"#)?;
    let v2 =
        cfg.read(r#"{"entity":"customer","no":"C-1","name":"B","at":"2026-11-28T10:00:00Z"}"#)?;
    let now = now_ms();
    let w1 = InboxWrite {
        incoming: &v1,
        message_id: "m1",
        correlation_id: "flow-1",
        now_ms: now,
        shard: 0,
    };
    assert!(inbox.insert(&w1).await?);
    assert!(!inbox.insert(&w1).await?, "a second insert loses");
    let seen = inbox.current(&v1.id).await?.expect("stored");
    assert_eq!((seen.version, seen.status), (1, Status::ToBeProcessed));
    // claim version 1, then version 2 arrives while it is in progress
    let c = records
        .claim(&v1.id, now + 1, now + 60_000, "tok")
        .await?
        .expect("claimed");
    assert_eq!(c.record.correlation_id.as_deref(), Some("flow-1"));
    let in_progress = inbox.current(&v1.id).await?.expect("stored");
    let w2 = InboxWrite {
        incoming: &v2,
        message_id: "m2",
        correlation_id: "flow-2",
        now_ms: now + 2,
        shard: 0,
    };
    assert!(
        !inbox
            .replace(&w2, &seen, 2, Status::InProgress, false)
            .await?,
        "stale read"
    );
    assert!(
        inbox
            .replace(&w2, &in_progress, 2, Status::InProgress, false)
            .await?
    );
    // delivering version 1 does not mark the record Processed: version 2 is due next
    assert_eq!(
        records
            .settle(
                &c,
                &Settle::Done {
                    at_ms: now + 3,
                    expires_at_s: None
                }
            )
            .await?,
        Settled::NewerVersion
    );
    let after = inbox.current(&v1.id).await?.expect("stored");
    assert_eq!((after.version, after.status), (2, Status::ToBeProcessed));
    // version 2 is claimed and refused for good while version 3 arrives: version 3 is due at
    // once with its attempts reset, not Failed with version 2's reason
    let c2 = records
        .claim(&v1.id, now + 4, now + 60_000, "tok2")
        .await?
        .expect("version 2 claimed");
    let seen2 = inbox.current(&v1.id).await?.expect("stored");
    let v3 =
        cfg.read(r#"{"entity":"customer","no":"C-1","name":"C","at":"2026-11-28T11:00:00Z"}"#)?;
    let w3 = InboxWrite {
        incoming: &v3,
        message_id: "m3",
        correlation_id: "flow-3",
        now_ms: now + 5,
        shard: 0,
    };
    assert!(
        inbox
            .replace(&w3, &seen2, 3, Status::InProgress, false)
            .await?
    );
    let refused = Settle::Failed {
        error: "HTTP 422".into(),
    };
    assert_eq!(records.settle(&c2, &refused).await?, Settled::NewerVersion);
    let after3 = inbox.current(&v1.id).await?.expect("stored");
    assert_eq!((after3.version, after3.status), (3, Status::ToBeProcessed));
    let c3 = records
        .claim(&v1.id, now_ms() + 1, now_ms() + 60_000, "tok3")
        .await?
        .expect("version 3 is due at once");
    assert_eq!((c3.record.version, c3.attempts), (3, 1), "attempts reset");
    assert_eq!(
        c3.record.correlation_id.as_deref(),
        Some("flow-3"),
        "the accepted copy's"
    );
    Ok(())
}

#[tokio::test]
async fn the_probe_source_tells_an_empty_queue_from_orders_not_visible_yet() -> Result<()> {
    let e = emu().await;
    let (url, arn) = e.create_queue(&unique("orders")).await?;
    let source = SqsProbeSource {
        client: e.sqs.clone(),
        queue_url: url.clone(),
        queue_arn: arn,
    };
    assert_eq!(source.take().await?, Taken::Empty);
    e.sqs
        .send_message()
        .queue_url(&url)
        .message_body(r#"{"orderId":"P-1"}"#)
        .send()
        .await?;
    let Taken::Message(q) = source.take().await? else {
        panic!("a visible order is taken");
    };
    assert_eq!(q.body, r#"{"orderId":"P-1"}"#);
    assert_eq!(
        q.correlation_id, q.message_id,
        "no sender's id: the message id"
    );
    assert!(
        matches!(source.take().await?, Taken::Unseen { waiting: 1 }),
        "in flight"
    );
    source.release(&q).await?;
    let Taken::Message(again) = source.take().await? else {
        panic!("released: visible at once");
    };
    assert!(again.receive_count >= 2);
    source.done(&again).await?;
    assert_eq!(source.take().await?, Taken::Empty);
    // An order sent with a `correlation_id` attribute (set here by the parking adapter, as a
    // sender sets it) is taken with that id.
    let sender = SqsParking {
        client: e.sqs.clone(),
        queue_url: url.clone(),
    };
    sender
        .park(&ParkedMessage {
            source: "orders".into(),
            source_arn: None,
            message_id: "m-0".into(),
            correlation_id: "flow-1".into(),
            identity: None,
            reason: "sent with a correlation id".into(),
            parked_at_ms: 0,
            body: r#"{"orderId":"P-2"}"#.into(),
        })
        .await?;
    let Taken::Message(q) = source.take().await? else {
        panic!("a visible order is taken");
    };
    assert_eq!(q.correlation_id, "flow-1", "the sender's correlation id");
    source.done(&q).await?;
    Ok(())
}
