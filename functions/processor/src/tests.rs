//! Unit tests of the handler, on the in-memory fakes.

use super::*;
use std::time::Duration;
use steadfast_domain::fakes::*;
use steadfast_domain::{CloseRequest, FlowEvent, Outcome};

type Fake = Ports<MemGates, MemLedger, MemParking, MemBus, MemInvoker, ScriptedTarget>;

fn ports(target: ScriptedTarget) -> Fake {
    Ports {
        gates: MemGates::default(),
        ledger: MemLedger::default(),
        parking: MemParking::default(),
        events: MemBus::default(),
        invoker: MemInvoker::default(),
        target,
    }
}

fn cfg(max_attempts: u32) -> Config {
    Config {
        invocation_timeout: Duration::from_secs(30),
        target: "portal".into(),
        identity: IdentityRule::parse("orders", "/orderId").unwrap(),
        retry: RetryPolicy {
            max_attempts,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            reserve: Duration::ZERO,
            min_call: Duration::from_millis(10),
        },
        source: "orders".into(),
        poison_receive_count: 5,
        ramp_up_successes: 3,
    }
}

fn event_with(bodies: &[(&str, u32)]) -> SqsEvent {
    let records: Vec<serde_json::Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, (b, rc))| {
            serde_json::json!({"messageId": format!("m{i}"), "body": b,
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
                "attributes": {"ApproximateReceiveCount": rc.to_string()}})
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

/// A batch whose senders set a `correlation_id` attribute on each message: `flow-{i}`.
fn correlated(bodies: &[&str]) -> SqsEvent {
    let mut e = event(bodies);
    for (i, m) in e.records.iter_mut().enumerate() {
        let attribute =
            serde_json::json!({"stringValue": format!("flow-{i}"), "dataType": "String"});
        m.message_attributes.insert(
            "correlation_id".into(),
            serde_json::from_value(attribute).unwrap(),
        );
    }
    e
}

fn event(bodies: &[&str]) -> SqsEvent {
    let with: Vec<(&str, u32)> = bodies.iter().map(|b| (*b, 1)).collect();
    event_with(&with)
}

fn failed(r: &SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn down() -> Outcome {
    Outcome::unavailable("HTTP 503")
}

#[tokio::test]
async fn a_healthy_batch_is_delivered_without_any_gate_write() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    let (r, tally) = p
        .handle(
            &cfg(5),
            event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
            later(),
        )
        .await;
    assert!(failed(&r).is_empty());
    assert_eq!(tally.delivered, 2);
    assert!(
        p.gates.get("portal").is_none(),
        "no gate write while healthy"
    );
    assert_eq!(p.target.calls(), vec!["orders/1", "orders/2"]);
}

#[tokio::test]
async fn a_halted_gate_hands_everything_back_without_calling_the_api() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    let halted = Gate::new("portal").trip(0, "x", false, 0).unwrap();
    assert!(p.gates.save(&halted).await.unwrap());
    let (r, _) = p
        .handle(
            &cfg(5),
            event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
            later(),
        )
        .await;
    assert_eq!(failed(&r), vec!["m0", "m1"]);
    assert!(p.target.calls().is_empty());
}

#[tokio::test]
async fn a_failing_target_halts_the_flow_and_the_rest_is_handed_back_unattempted() {
    // GIVEN a target that fails everything
    let p = ports(ScriptedTarget::always(down()));
    let (r, tally) = p
        .handle(
            &cfg(3),
            event(&[
                r#"{"orderId":"1"}"#,
                r#"{"orderId":"2"}"#,
                r#"{"orderId":"3"}"#,
            ]),
            later(),
        )
        .await;
    // THEN order 1 is tried twice, order 2 witnesses once, and order 3 is untouched
    assert_eq!(failed(&r), vec!["m0", "m1", "m2"]);
    assert!(tally.tripped);
    assert_eq!(p.target.calls(), vec!["orders/1", "orders/1", "orders/2"]);
    assert_eq!(tally.retries, 1, "order 1's second call");
    assert_eq!(p.events.types(), vec!["DeliveryFailed"]);
    assert!(matches!(
        p.invoker.all().as_slice(),
        [Invoked::Close(CloseRequest::Trip(_))]
    ));
    assert!(
        p.parking.all().is_empty(),
        "nothing parked while the target is down"
    );
    assert!(
        p.ledger.2.lock().unwrap().is_empty(),
        "no strikes: the target's fault"
    );
}

#[tokio::test]
async fn an_outage_that_begins_mid_batch_costs_a_bounded_number_of_calls() {
    let p = ports(ScriptedTarget::new(
        vec![Outcome::Delivered { status: 201 }],
        down(),
    ));
    let bodies: Vec<String> = (0..10).map(|i| format!(r#"{{"orderId":"{i}"}}"#)).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let (r, tally) = p.handle(&cfg(3), event(&refs), later()).await;
    assert!(tally.tripped);
    assert_eq!(tally.api_calls, 1 + 3 + 3 + 2 + 1);
    assert_eq!(failed(&r).len(), 9);
}

#[tokio::test]
async fn an_expired_token_halts_instead_of_parking_every_order() {
    let p = ports(ScriptedTarget::always(Outcome::unavailable(
        "HTTP 401: Unauthorized",
    )));
    let bodies: Vec<String> = (0..10).map(|i| format!(r#"{{"orderId":"{i}"}}"#)).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let (r, tally) = p.handle(&cfg(5), event(&refs), later()).await;
    assert!(tally.tripped);
    assert_eq!(tally.api_calls, 5);
    assert_eq!(failed(&r).len(), 10);
    assert!(p.parking.all().is_empty());
}

#[tokio::test]
async fn a_long_retry_after_halts_at_once_and_carries_the_wait_to_close() {
    let p = ports(ScriptedTarget::always(Outcome::Unavailable {
        reason: "HTTP 503".into(),
        retry_after: Some(Duration::from_secs(120)),
    }));
    let (_, tally) = p
        .handle(
            &cfg(5),
            event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
            later(),
        )
        .await;
    assert_eq!((tally.api_calls, tally.tripped), (1, true));
    match p.invoker.all().as_slice() {
        [Invoked::Close(CloseRequest::Trip(t))] => {
            assert_eq!(t.wait_hint_ms, Some(120_000))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refusals_bad_input_and_over_long_identities_are_parked_and_the_batch_goes_on() {
    let p = ports(ScriptedTarget::new(
        vec![Outcome::Refused("HTTP 400: Bad Request".into())],
        Outcome::Delivered { status: 201 },
    ));
    let long = format!(r#"{{"orderId":"{}"}}"#, "x".repeat(5000));
    let (r, tally) = p
        .handle(
            &cfg(5),
            event(&[
                r#"{"orderId":"1"}"#,
                "nope",
                r#"{"x":1}"#,
                &long,
                r#"{"orderId":"4"}"#,
            ]),
            later(),
        )
        .await;
    assert!(failed(&r).is_empty(), "parked messages count as handled");
    assert_eq!((tally.parked, tally.delivered), (4, 1));
    let parked = p.parking.all();
    let reasons: Vec<&str> = parked.iter().map(|m| m.reason.as_str()).collect();
    // parked in batch order
    assert_eq!(reasons[0], "HTTP 400: Bad Request");
    assert!(reasons[1].starts_with("body is not valid JSON"));
    assert_eq!(reasons[2], "identity field /orderId is missing");
    assert!(reasons[3].contains("over the limit of 1024"));
    assert_eq!(parked[1].body, "nope", "parked as it came");
    assert_eq!(
        parked[1].source_arn.as_deref(),
        Some("arn:aws:sqs:us-east-1:000000000000:orders")
    );
    assert_eq!(p.target.calls(), vec!["orders/1", "orders/4"]);
    // AND the batch's metrics say so, for the orders pipeline and its target
    let m = tally.metrics("portal");
    assert_eq!(
        m,
        Document::new("orders", "portal")
            .count(Metric::Parked, 4u32)
            .count(Metric::Delivered, 1u32)
    );
}

#[tokio::test]
async fn a_halt_and_a_parked_message_carry_the_correlation_id_of_their_message() {
    // GIVEN a target down for everyone, and a batch whose senders named correlation ids
    let p = ports(ScriptedTarget::always(down()));
    let batch = correlated(&[r#"{"orderId":"1"}"#, "nope", r#"{"orderId":"2"}"#]);
    let (_, tally) = p.handle(&cfg(3), batch, later()).await;
    assert!(tally.tripped);
    // THEN the trip request and DeliveryFailed name the message whose failure decided the halt
    // (order 2's, the witness, as they name its message id)
    let closes = p.invoker.all();
    assert!(
        matches!(&closes[..], [Invoked::Close(CloseRequest::Trip(t))] if t.correlation_id.as_deref() == Some("flow-2")),
        "{closes:?}"
    );
    let events = p.events.0.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| matches!(e,
            FlowEvent::DeliveryFailed { correlation_id: Some(c), message_id, .. } if c == "flow-2" && message_id == "m2")),
        "{events:?}"
    );
    // AND the message that is not JSON is parked with its own
    let parked = p.parking.all();
    assert_eq!(
        (
            parked[0].message_id.as_str(),
            parked[0].correlation_id.as_str()
        ),
        ("m1", "flow-1")
    );
    assert!(
        events.iter().any(|e| matches!(e,
            FlowEvent::MessageParked { correlation_id: Some(c), .. } if c == "flow-1")),
        "{events:?}"
    );
}

#[tokio::test]
async fn without_a_senders_correlation_id_the_message_id_is_used() {
    let p = ports(ScriptedTarget::always(down()));
    p.handle(&cfg(3), event(&[r#"{"orderId":"1"}"#, "nope"]), later())
        .await;
    assert!(matches!(
        &p.invoker.all()[..],
        [Invoked::Close(CloseRequest::Trip(t))] if t.correlation_id.as_deref() == Some("m0")
    ));
    assert_eq!(p.parking.all()[0].correlation_id, "m1");
}

#[tokio::test]
async fn an_identity_the_ledger_cannot_read_is_parked_and_only_that_one() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    p.ledger.1.lock().unwrap().insert("orders/2".into());
    let (r, tally) = p
        .handle(
            &cfg(5),
            event(&[
                r#"{"orderId":"1"}"#,
                r#"{"orderId":"2"}"#,
                r#"{"orderId":"3"}"#,
            ]),
            later(),
        )
        .await;
    assert!(failed(&r).is_empty());
    assert_eq!((tally.delivered, tally.parked), (2, 1));
    assert!(p.parking.all()[0].reason.contains("ledger cannot hold"));
}

#[tokio::test]
async fn a_poison_order_is_handed_back_while_others_go_through_then_parked() {
    // GIVEN the target fails order 1 (a payload-specific 500) and takes the others
    let p = ports(ScriptedTarget::new(
        vec![
            down(),
            down(),
            down(),
            down(),
            Outcome::Delivered { status: 201 },
        ],
        down(),
    ));
    let c = cfg(5);
    let (r, tally) = p
        .handle(
            &c,
            event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
            later(),
        )
        .await;
    // THEN it goes back to the queue without halting the flow, one strike counted
    assert_eq!(failed(&r), vec!["m0"]);
    assert!(!tally.tripped && p.invoker.all().is_empty());
    assert_eq!(p.ledger.2.lock().unwrap()["orders/1"], 1);
    // AND on the sixth receive on which it fails on its own, it is parked with its last
    // error (a fresh order, tried first, is delivered each time)
    for round in 0..5 {
        *p.target.script.lock().unwrap() = vec![Outcome::Delivered { status: 201 }].into();
        let fresh = format!(r#"{{"orderId":"f{round}"}}"#);
        let (_, t) = p
            .handle(
                &c,
                event_with(&[(r#"{"orderId":"1"}"#, 9), (&fresh, 1)]),
                later(),
            )
            .await;
        assert!(!t.tripped);
    }
    let parked = p.parking.all();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].reason.contains("6 receives"),
        "{}",
        parked[0].reason
    );
    assert_eq!(parked[0].identity.as_deref(), Some("orders/1"));
}

#[tokio::test]
async fn an_order_that_failed_on_its_own_before_does_not_halt_the_flow_alone() {
    let p = ports(ScriptedTarget::always(down()));
    p.ledger.strike("orders/1").await.unwrap();
    let (r, tally) = p
        .handle(&cfg(5), event_with(&[(r#"{"orderId":"1"}"#, 3)]), later())
        .await;
    assert!(
        !tally.tripped,
        "a known poison order alone is its own problem"
    );
    assert_eq!(failed(&r), vec!["m0"]);
    assert_eq!(p.ledger.2.lock().unwrap()["orders/1"], 2);
    // while a fresh order failing alone still halts the flow
    let (_, tally) = p
        .handle(&cfg(5), event(&[r#"{"orderId":"2"}"#]), later())
        .await;
    assert!(tally.tripped);
}

#[tokio::test]
async fn identities_in_the_ledger_or_earlier_in_the_batch_are_not_sent_again() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    p.ledger.record("orders/1", "old").await.unwrap();
    let (r, tally) = p
        .handle(
            &cfg(5),
            event(&[
                r#"{"orderId":"1"}"#,
                r#"{"orderId":"2"}"#,
                r#"{"orderId":"2","messageId":"resent"}"#,
            ]),
            later(),
        )
        .await;
    assert!(failed(&r).is_empty());
    assert_eq!(tally.duplicates_skipped, 2);
    assert_eq!(tally.metrics("portal").total(Metric::DuplicatesDropped), 2);
    assert_eq!(p.target.calls(), vec!["orders/2"]);
}

#[tokio::test]
async fn without_time_for_a_call_everything_goes_back_and_nothing_halts() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    let mut c = cfg(5);
    c.retry.reserve = Duration::from_secs(5);
    let (r, tally) = p
        .handle(
            &c,
            event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
            Instant::now() + Duration::from_secs(1),
        )
        .await;
    assert_eq!(failed(&r), vec!["m0", "m1"]);
    assert!(!tally.tripped);
    assert!(p.target.calls().is_empty());
    assert!(p.invoker.all().is_empty());
}

#[tokio::test]
async fn during_a_ramp_up_deliveries_are_counted_and_the_goal_asks_open_to_raise() {
    let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
    let resumed = Gate::new("portal")
        .trip(0, "x", false, 0)
        .unwrap()
        .resume(Some(1), 1, "healthy", true)
        .unwrap();
    p.gates.0.lock().unwrap().insert("portal".into(), resumed);
    p.handle(
        &cfg(5),
        event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
        later(),
    )
    .await;
    assert!(p.invoker.all().is_empty(), "2 of 3");
    p.handle(
        &cfg(5),
        event(&[r#"{"orderId":"3"}"#, r#"{"orderId":"4"}"#]),
        later(),
    )
    .await;
    p.handle(&cfg(5), event(&[r#"{"orderId":"5"}"#]), later())
        .await;
    assert_eq!(
        p.invoker.all(),
        vec![Invoked::Open(OpenRequest {
            target: "portal".into(),
            epoch: Some(1),
            attempt: None,
            ramp_up: true
        })],
        "asked once, by the batch that reached the goal"
    );
}
