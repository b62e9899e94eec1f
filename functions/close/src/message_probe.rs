//! The message probe (`ProbeMode=message`): one real queued order is delivered as the probe,
//! so its delivery is the health signal and counts as that order's delivery. Every line about
//! a probe order carries its correlation id, read from the queue as the processor reads it.

use std::time::Duration;

use steadfast_domain::ports::*;
use steadfast_domain::{OrderMessage, Outcome};
use steadfast_runtime::batch::{Parcel, Parker};
use tracing::{info, warn};

use crate::probe::Health;
use crate::{Config, MessageProbe, Ports};

/// An order that failed target-level in this probe: the order, its identity, why, and the
/// wait the target announced.
type Failed = (Queued, String, String, Option<Duration>);

impl<G, E, I, S, T, Q, L, P> Ports<G, E, I, S, T, Q, L, P>
where
    E: EventBus,
    T: Target,
    Q: ProbeSource,
    L: Ledger,
    P: Parking,
{
    /// Delivers one real queued order as the probe: its delivery is the health signal and
    /// counts as that order's delivery (recorded in the ledger, then deleted). Up to three
    /// orders are taken: a malformed or refused one is parked, one already delivered is
    /// deleted, one that fails target-level stays invisible while the next is tried. If a later
    /// one is delivered, the earlier failures were their own (each gets a strike); if none is,
    /// the target is sick and the failed orders go back to the queue at once. An empty queue
    /// has nothing to protect: healthy. Orders that exist but are not visible yet (handed back
    /// by the halt) cannot probe: not yet.
    pub(crate) async fn check_by_message(
        &self,
        cfg: &Config,
        target: &T,
    ) -> Result<Health, PortError> {
        let m = self.messages.as_ref().ok_or_else(|| {
            PortError::invalid("message probe", "no queue is configured for message probes")
        })?;
        let mut failed: Vec<Failed> = Vec::new();
        let health = self.probe_orders(cfg, m, target, &mut failed).await;
        let delivered = matches!(health, Ok(Health::Healthy(_)));
        put_back(m, &failed, delivered).await;
        match (health?, failed.first()) {
            (Health::NotYet(_) | Health::Sick { .. }, Some((_, identity, reason, retry_after))) => {
                Ok(Health::Sick {
                    reason: format!("probe order {identity}: {reason}"),
                    retry_after: *retry_after,
                })
            }
            (h, _) => Ok(h),
        }
    }

    /// Takes up to three orders until one is delivered or the queue has none to give.
    async fn probe_orders(
        &self,
        cfg: &Config,
        m: &MessageProbe<Q, L, P>,
        target: &T,
        failed: &mut Vec<Failed>,
    ) -> Result<Health, PortError> {
        for _ in 0..3 {
            let q = match m.source.take().await? {
                Taken::Message(q) => q,
                Taken::Empty if failed.is_empty() => {
                    return Ok(Health::Healthy(
                        "no order queued: nothing waits to be protected".into(),
                    ))
                }
                Taken::Empty => break,
                Taken::Unseen { waiting } => {
                    return Ok(Health::NotYet(format!(
                        "no order visible to probe with yet ({waiting} in flight or delayed)"
                    )))
                }
            };
            if let Some(health) = self.probe_order(cfg, m, target, q, failed).await? {
                return Ok(health);
            }
        }
        Ok(Health::Sick {
            reason: "no probe order went through".into(),
            retry_after: None,
        })
    }

    /// One taken order: `Some` when its delivery decides the probe, `None` to go on with the
    /// next one.
    async fn probe_order(
        &self,
        cfg: &Config,
        m: &MessageProbe<Q, L, P>,
        target: &T,
        q: Queued,
        failed: &mut Vec<Failed>,
    ) -> Result<Option<Health>, PortError> {
        let order = match OrderMessage::parse(&q.body, &cfg.identity) {
            Ok(o) => o,
            Err(e) => {
                self.park_probe(cfg, m, &q, None, &e.to_string()).await?;
                return Ok(None);
            }
        };
        if !self.undelivered(cfg, m, &q, &order).await? {
            return Ok(None);
        }
        let outcome = target
            .deliver(&order.identity, &order.body, target.timeout())
            .await;
        match outcome {
            Outcome::Delivered { status } => {
                if let Err(e) = m.ledger.record(&order.identity, &q.message_id).await {
                    warn!(identity = %order.identity, correlation_id = %q.correlation_id, error = %e, "ledger write failed");
                }
                forget(m, &q).await;
                info!(message_id = %q.message_id, correlation_id = %q.correlation_id, identity = %order.identity, status, outcome = "delivered", "probe order delivered");
                return Ok(Some(Health::Healthy(format!(
                    "probe order {} delivered (HTTP {status})",
                    order.identity
                ))));
            }
            Outcome::Refused(reason) => {
                self.park_probe(cfg, m, &q, Some(&order.identity), &reason)
                    .await?;
            }
            Outcome::Unavailable {
                reason,
                retry_after,
            } => {
                info!(message_id = %q.message_id, correlation_id = %q.correlation_id, identity = %order.identity, reason, outcome = "target_failed", "probe order not delivered");
                failed.push((q, order.identity, reason, retry_after))
            }
        }
        Ok(None)
    }

    /// Is the order still to be delivered? One the ledger already has is deleted, one whose
    /// identity the ledger cannot hold is parked; an unreadable ledger hands the order back
    /// and fails the probe.
    async fn undelivered(
        &self,
        cfg: &Config,
        m: &MessageProbe<Q, L, P>,
        q: &Queued,
        order: &OrderMessage,
    ) -> Result<bool, PortError> {
        let read = m
            .ledger
            .delivered(std::slice::from_ref(&order.identity))
            .await;
        if let Some(e) = read.unreadable.get(&order.identity) {
            if e.is_invalid() {
                let reason = format!("the ledger cannot hold this identity: {e}");
                self.park_probe(cfg, m, q, Some(&order.identity), &reason)
                    .await?;
                return Ok(false);
            }
            m.source.release(q).await?;
            return Err(e.clone());
        }
        if read.delivered.contains(&order.identity) {
            forget(m, q).await;
            return Ok(false);
        }
        Ok(true)
    }

    /// Parks an order that can never be delivered, and deletes it from the queue.
    async fn park_probe(
        &self,
        cfg: &Config,
        m: &MessageProbe<Q, L, P>,
        q: &Queued,
        identity: Option<&str>,
        reason: &str,
    ) -> Result<(), PortError> {
        let parker = Parker {
            parking: &m.parking,
            events: &self.events,
            source: &cfg.source,
            target: &cfg.source,
        };
        let parcel = Parcel {
            message_id: &q.message_id,
            correlation_id: &q.correlation_id,
            body: &q.body,
            source_arn: Some(&q.source_arn),
        };
        parker.park(parcel, identity, reason).await?;
        m.source.done(q).await?;
        Ok(())
    }
}

/// Deletes a delivered order from the queue. A delete that fails says nothing of the target's
/// health: the order comes back after its visibility timeout, and the processor finds it in
/// the ledger (or the target's idempotency check does).
async fn forget<Q: ProbeSource, L, P>(m: &MessageProbe<Q, L, P>, q: &Queued) {
    if let Err(e) = m.source.done(q).await {
        warn!(message_id = %q.message_id, correlation_id = %q.correlation_id, error = %e, "delivered probe order not deleted; it comes back and is found delivered");
    }
}

/// The orders that failed go back to the queue at once. If another was delivered, each failed
/// on its own and gets a strike.
async fn put_back<Q: ProbeSource, L: Ledger, P>(
    m: &MessageProbe<Q, L, P>,
    failed: &[Failed],
    delivered: bool,
) {
    for (q, identity, reason, _) in failed {
        if delivered {
            // Another order went through: this one failed on its own.
            match m.ledger.strike(identity).await {
                Ok(n) => {
                    info!(message_id = %q.message_id, correlation_id = %q.correlation_id, identity, strikes = n, reason, "probe order failed on its own")
                }
                Err(e) => {
                    warn!(identity, correlation_id = %q.correlation_id, error = %e, "strike not counted")
                }
            }
        }
        if let Err(e) = m.source.release(q).await {
            warn!(message_id = %q.message_id, correlation_id = %q.correlation_id, error = %e, "probe order not released; it returns after its visibility timeout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    #[tokio::test]
    async fn a_message_probe_delivers_one_real_order_exactly_once() {
        let p = ports_with(
            ScriptedTarget::always(Outcome::Delivered { status: 201 }),
            ProbeMode::Message,
            &[r#"{"orderId":"P-1"}"#, r#"{"orderId":"P-2"}"#],
        );
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        assert!(matches!(
            p.handle(&c, probe(1, 0)).await.unwrap(),
            Done::Resuming { .. }
        ));
        let m = p.messages.as_ref().unwrap();
        assert_eq!(p.probes["portal"].target.calls(), vec!["orders/P-1"]);
        assert_eq!(*m.source.deleted.lock().unwrap(), vec!["q0"]);
        assert!(
            m.ledger.0.lock().unwrap().contains("orders/P-1"),
            "recorded: the processor will not send it again"
        );
        assert_eq!(m.source.left(), 1);
    }

    #[tokio::test]
    async fn a_probe_order_delivered_but_not_deleted_still_resumes_the_flow() {
        let p = ports_with(
            ScriptedTarget::always(Outcome::Delivered { status: 201 }),
            ProbeMode::Message,
            &[r#"{"orderId":"P-1"}"#],
        );
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        let m = p.messages.as_ref().unwrap();
        m.source
            .failing_deletes
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            p.handle(&c, probe(1, 0)).await.unwrap(),
            Done::Resuming { .. }
        ));
        assert!(m.source.deleted.lock().unwrap().is_empty());
        assert!(
            m.ledger.0.lock().unwrap().contains("orders/P-1"),
            "recorded: when it comes back, the processor will not send it again"
        );
    }

    #[tokio::test]
    async fn a_failed_message_probe_puts_the_order_back_and_parks_refused_ones() {
        let p = ports_with(
            ScriptedTarget::new(vec![Outcome::Refused("HTTP 422".into())], sick()),
            ProbeMode::Message,
            &["not json", r#"{"orderId":"P-1"}"#, r#"{"orderId":"P-2"}"#],
        );
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        assert!(matches!(
            p.handle(&c, probe(1, 0)).await.unwrap(),
            Done::StillSick { .. }
        ));
        let m = p.messages.as_ref().unwrap();
        let all = m.parking.all();
        let parked: Vec<&str> = all.iter().map(|x| x.reason.as_str()).collect();
        assert_eq!(parked.len(), 2, "{parked:?}");
        assert!(parked[1].contains("422"));
        assert_eq!(m.source.left(), 1, "P-2 is back in the queue");
        // AND each parked order keeps the correlation id it was queued with
        let ids: Vec<&str> = all.iter().map(|x| x.correlation_id.as_str()).collect();
        assert_eq!(ids, vec!["c-q0", "c-q1"]);
    }

    #[tokio::test]
    async fn a_message_probe_past_a_poison_order_resumes_and_strikes_it() {
        // GIVEN the first queued order fails on its own and the next one goes through
        let p = ports_with(
            ScriptedTarget::new(vec![sick()], Outcome::Delivered { status: 201 }),
            ProbeMode::Message,
            &[r#"{"orderId":"POISON"}"#, r#"{"orderId":"G-1"}"#],
        );
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        // THEN the probe resumes the flow, strikes the poison order and puts it back
        assert!(matches!(
            p.handle(&c, probe(1, 0)).await.unwrap(),
            Done::Resuming { .. }
        ));
        let m = p.messages.as_ref().unwrap();
        assert_eq!(m.ledger.2.lock().unwrap()["orders/POISON"], 1);
        assert!(m.ledger.0.lock().unwrap().contains("orders/G-1"));
        assert_eq!(m.source.left(), 1, "the poison order is back in the queue");
    }

    #[tokio::test]
    async fn a_message_probe_with_orders_in_flight_waits_and_an_empty_queue_resumes() {
        let p = ports_with(
            ScriptedTarget::always(Outcome::Delivered { status: 201 }),
            ProbeMode::Message,
            &[],
        );
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        *p.messages
            .as_ref()
            .unwrap()
            .source
            .invisible
            .lock()
            .unwrap() = 10;
        assert!(matches!(
            p.handle(&c, probe(1, 0)).await.unwrap(),
            Done::StillSick { .. }
        ));
        *p.messages
            .as_ref()
            .unwrap()
            .source
            .invisible
            .lock()
            .unwrap() = 0;
        assert!(matches!(
            p.handle(&c, probe(1, 1)).await.unwrap(),
            Done::Resuming { .. }
        ));
        assert!(p.probes["portal"].target.calls().is_empty());
    }
}
