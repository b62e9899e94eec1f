//! The emulator's raw rate for the minimum calls a pipeline's messages need, made by the bench
//! itself with the same SDK and through the same fault proxy the functions use, without Lambda:
//! the messages sent to a queue of their own in batches of 10 while loops receive up to 10, do
//! each message's one durable write and its one call to the target (the 10 side by side, as
//! the functions do), and delete the 10. Timed from the first send to the last delete. One
//! loop is what LocalStack gives a mapping (it runs one invocation at a time per mapping);
//! the mapping's MaximumConcurrency is what AWS would allow.
//!
//! The minimum per message: breaker, a ledger write (PutItem) and the POST to the portal;
//! outbox, the transaction of the application and its record (TransactWriteItems of 2) and
//! its event (PutEvents, 10 to a call); inbox, the record's write (PutItem) and the call to
//! the portal.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use serde_json::{json, Value};
use steadfast_local::local::{order, send_batches, Local};

use crate::pipelines::Pipeline;

/// The proxy's clients: every raw call takes the path a function's call takes.
struct Via {
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    http: reqwest::Client,
}

/// Messages per second of the raw calls for `n` messages of `p`, by `workers` loops.
pub async fn measure(l: &Local, p: Pipeline, n: usize, workers: usize) -> Result<Value> {
    let name = format!("{}-raw-{}", l.stack.name, p.name());
    let (queue, _) = l.emu.create_queue(&name).await?;
    steadfast_tests::create_table(&l.emu, &name, "pk", false).await?;
    let proxy = l.faults.endpoint();
    steadfast_aws::tls::install();
    let via = Via {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            l.emu
                .dynamodb
                .config()
                .to_builder()
                .endpoint_url(&proxy)
                .build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(
            l.emu.sqs.config().to_builder().endpoint_url(&proxy).build(),
        ),
        events: aws_sdk_eventbridge::Client::from_conf(
            l.emu
                .events
                .config()
                .to_builder()
                .endpoint_url(&proxy)
                .build(),
        ),
        http: reqwest::Client::new(),
    };
    let bodies: Vec<String> = (0..n)
        .map(|i| p.body(&format!("R{}-{i:05}", p.name())))
        .collect();
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    let sending = async {
        for r in
            futures::future::join_all(bodies.chunks(10).map(|c| send_batches(&via.sqs, &queue, c)))
                .await
        {
            r?;
        }
        anyhow::Ok(())
    };
    let working =
        futures::future::join_all((0..workers).map(|_| work(l, &via, p, &queue, &name, &done, n)));
    let (sent, worked) = tokio::join!(sending, working);
    sent?;
    for r in worked {
        r?;
    }
    let seconds = start.elapsed().as_secs_f64();
    l.emu.sqs.delete_queue().queue_url(&queue).send().await.ok();
    l.emu
        .dynamodb
        .delete_table()
        .table_name(&name)
        .send()
        .await
        .ok();
    Ok(json!({
        "messages": n,
        "workers": workers,
        "seconds": crate::flow::round1(seconds),
        "per_second": crate::flow::round1(n as f64 / seconds.max(0.001)),
    }))
}

/// Receives, works and deletes until `n` messages are done in all.
async fn work(
    l: &Local,
    via: &Via,
    p: Pipeline,
    queue: &str,
    table: &str,
    done: &AtomicUsize,
    n: usize,
) -> Result<()> {
    let bus = l.stack.reference("EventBus")?;
    while done.load(Ordering::SeqCst) < n {
        let got = via
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| anyhow!("ReceiveMessage: {e:?}"))?;
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            // As LocalStack's pollers: short polls, 50 ms apart.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let worked = futures::future::join_all(
            messages
                .iter()
                .map(|m| one(l, via, p, table, m.body.as_deref().unwrap_or_default())),
        )
        .await;
        let mut events = Vec::new();
        for w in worked {
            events.extend(w?);
        }
        if !events.is_empty() {
            via.events
                .put_events()
                .set_entries(Some(
                    events
                        .into_iter()
                        .map(|id| {
                            PutEventsRequestEntry::builder()
                                .event_bus_name(bus)
                                .source("bench.raw")
                                .detail_type("RawEvent")
                                .detail(json!({ "id": id }).to_string())
                                .build()
                        })
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| anyhow!("PutEvents: {e:?}"))?;
        }
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        via.sqs
            .delete_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| anyhow!("DeleteMessageBatch: {e:?}"))?;
        done.fetch_add(messages.len(), Ordering::SeqCst);
    }
    Ok(())
}

/// One message's write and target call; the id of the event to publish (outbox).
async fn one(l: &Local, via: &Via, p: Pipeline, table: &str, body: &str) -> Result<Option<String>> {
    let id: String = (0..16)
        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
        .collect();
    let item = |pk: String| {
        Put::builder()
            .table_name(table)
            .item("pk", AttributeValue::S(pk))
            .item("body", AttributeValue::S(body.to_owned()))
            .build()
    };
    match p {
        Pipeline::Outbox => {
            via.dynamodb
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(item(id.clone())?).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .put(item(format!("outbox#{id}"))?)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| anyhow!("TransactWriteItems: {e:?}"))?;
            Ok(Some(id))
        }
        Pipeline::Breaker | Pipeline::Inbox => {
            via.dynamodb
                .put_item()
                .table_name(table)
                .item("pk", AttributeValue::S(id.clone()))
                .item("body", AttributeValue::S(body.to_owned()))
                .send()
                .await
                .map_err(|e| anyhow!("PutItem: {e:?}"))?;
            let call = if p == Pipeline::Breaker {
                via.http.post(l.portal.orders_url()).json(&order(&id))
            } else {
                via.http
                    .post(format!("{}/customer", l.portal.inbox_url()))
                    .json(&json!({"id": id, "entity": "customer", "version": 1,
                                  "changedAt": "2026-01-01T00:00:00Z", "record": {"name": "n"}}))
            };
            let answer = call
                .header("Idempotency-Key", &id)
                .timeout(Duration::from_secs(5))
                .send()
                .await?;
            if !answer.status().is_success() {
                return Err(anyhow!("the portal answered {}", answer.status()));
            }
            Ok(None)
        }
    }
}
