//! close: halts the flow, runs the probes, and keeps watch.
//!
//! - Trip (from the processor, the inbox processor or an operator): `Flowing → Halted` with a
//!   conditional write, so of many concurrent callers exactly one wins and the others do
//!   nothing. The gate records when its first probe is due: min(max(base · 2^attempt,
//!   Retry-After), cap), where the attempt is 0, or one past the last chain's if the flow
//!   resumed only moments ago (a relapse). The winner disables the target's mapping, emits
//!   `FlowHalted`, and asks `backoff` to set the timer. An operator's (manual) halt has no
//!   probes.
//! - Probe (from a timer on the `timers` queue): `Halted → Probing` only for the epoch and
//!   attempt the gate waits for, so a duplicate or stale timer is a no-op. Then the target is
//!   checked, by its health URL (only 2xx is healthy) or by delivering one real queued order
//!   (`ProbeMode=message`): healthy → `open`; still sick → `Halted` at attempt + 1 and
//!   `backoff`.
//! - Watchdog (every minute): reconciles every gate with its mapping and its timers (see
//!   `shared/domain/src/watchdog.rs`), says what it fixed in a `GateRepaired` event, ends
//!   ramp-ups that have run their time, and writes `GateHaltedSeconds`.
//!
//! Every step is safe to repeat: a crash between two writes leaves a state the next timer, the
//! async retry or the watchdog completes.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;
use steadfast_domain::ports::*;
use steadfast_domain::watchdog::{self, Fix};
use steadfast_domain::{
    Backoff, CloseRequest, FlowEvent, Gate, IdentityRule, OpenRequest, OrderMessage, Outcome,
    ProbeMode, ProbeRequest, Refused, TripRequest,
};
use tracing::{info, warn};

pub struct Config {
    /// The probe schedule (`BACKOFF_*`, as the backoff function's).
    pub backoff: Backoff,
    /// A halt this soon after a resume continues the last probe chain.
    /// `RELAPSE_WINDOW_SECONDS`, default 600.
    pub relapse: Duration,
    /// How late a probe may be before the watchdog repairs. `WATCHDOG_GRACE_SECONDS`,
    /// default 120.
    pub grace: Duration,
    /// How long a ramp-up lasts at most. `RAMP_UP_SECONDS`, default 60.
    pub ramp: Duration,
    /// The mapping's MaximumConcurrency once ramped up. `DELIVERY_CONCURRENCY`, default 5.
    pub full_concurrency: u32,
    /// Orders' identity, for message probes.
    pub identity: IdentityRule,
    /// Recorded on orders a message probe parks. `SOURCE_NAME`, default `orders`.
    pub source: String,
}

/// What a message probe needs besides the target: the guarded queue, the ledger, parking.
pub struct MessageProbe<Q, L, P> {
    pub source: Q,
    pub ledger: L,
    pub parking: P,
}

pub struct Ports<G, E, I, S, T, Q, L, P> {
    pub gates: G,
    pub events: E,
    pub invoker: I,
    /// Every guarded target by name, with its mapping if it has one.
    pub switches: BTreeMap<String, Option<S>>,
    /// How each guarded target is probed.
    pub probes: BTreeMap<String, Probe<T>>,
    /// For targets probed in [`ProbeMode::Message`].
    pub messages: Option<MessageProbe<Q, L, P>>,
}

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Halted {
        epoch: u64,
    },
    Resuming {
        epoch: u64,
        attempt: u32,
    },
    StillSick {
        epoch: u64,
        next_attempt: u32,
    },
    /// The watchdog's run: what it fixed, per target.
    Watched {
        repaired: Vec<(String, Vec<Fix>)>,
    },
    /// Someone else did it, or the request is out of date: nothing was changed.
    NoOp(String),
}

/// A probe's finding.
enum Health {
    Healthy(String),
    /// The probe could not tell (nothing visible to probe with yet): ask again later without
    /// raising the backoff.
    NotYet(String),
    Sick {
        reason: String,
        retry_after: Option<Duration>,
    },
}

use steadfast_aws::now_ms;

/// After a probe that could not tell, the next one comes no sooner than this.
const NOT_YET_WAIT: Duration = Duration::from_secs(30);

impl<G, E, I, S, T, Q, L, P> Ports<G, E, I, S, T, Q, L, P>
where
    G: GateStore,
    E: EventBus,
    I: Invoker,
    S: FlowSwitch,
    T: Target,
    Q: ProbeSource,
    L: Ledger,
    P: Parking,
{
    /// Entry point: a direct request, or an SQS event from the timers queue.
    pub async fn handle_value(&self, cfg: &Config, event: Value) -> Result<Value, PortError> {
        if event.get("Records").is_some() {
            let sqs: SqsEvent =
                serde_json::from_value(event).map_err(|e| PortError::new("decode SQS event", e))?;
            let response = self.handle_timers(cfg, sqs).await;
            return Ok(serde_json::to_value(response).unwrap_or(Value::Null));
        }
        let request: CloseRequest = serde_json::from_value(event).map_err(|e| {
            PortError::invalid(
                "decode close request",
                format!("{e}; expected {{\"kind\":\"trip\"|\"probe\"|\"watchdog\", ...}}"),
            )
        })?;
        let done = self.handle(cfg, request).await?;
        Ok(serde_json::json!({ "done": format!("{done:?}") }))
    }

    /// Timer messages. A malformed timer is logged and dropped (it can never become valid);
    /// one that failed on an AWS error is handed back to be retried.
    pub async fn handle_timers(&self, cfg: &Config, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let probe: ProbeRequest = match serde_json::from_str(
                record.body.as_deref().unwrap_or(""),
            ) {
                Ok(p) => p,
                Err(e) => {
                    warn!(message_id = id, error = %e, outcome = "dropped", "timer message is not a probe request");
                    continue;
                }
            };
            if let Err(e) = self.handle(cfg, CloseRequest::Probe(probe)).await {
                warn!(message_id = id, error = %e, "probe failed on an AWS error; timer handed back");
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
                response.batch_item_failures.push(f);
            }
        }
        response
    }

    pub async fn handle(&self, cfg: &Config, request: CloseRequest) -> Result<Done, PortError> {
        match request {
            CloseRequest::Trip(trip) => self.trip(cfg, trip).await,
            CloseRequest::Probe(probe) => self.probe(cfg, probe).await,
            CloseRequest::Watchdog {} => self.watch(cfg).await,
        }
    }

    fn known(&self, target: &str) -> Result<(), PortError> {
        if self.switches.contains_key(target) {
            Ok(())
        } else {
            Err(PortError::invalid(
                "find the target",
                format!(
                    "`{target}` is not a guarded target here (known: {})",
                    self.switches.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    }

    /// The probe request for `gate`'s next timer.
    fn timer_of(gate: &Gate) -> ProbeRequest {
        ProbeRequest {
            target: gate.target.clone(),
            epoch: gate.epoch,
            attempt: gate.attempt,
            at_ms: Some(gate.next_probe_at_ms),
        }
    }

    /// When the timer of `gate`'s current attempt is due, from `now`.
    fn due(cfg: &Config, gate: &Gate, announced: Option<Duration>, now: u64) -> u64 {
        let delay = cfg
            .backoff
            .delay_after(gate.step, announced, rand::random::<f64>());
        now.saturating_add(delay.as_millis() as u64)
    }

    async fn set_switch(&self, target: &str, enabled: bool, max: Option<u32>) {
        if let Some(Some(switch)) = self.switches.get(target) {
            if let Err(e) = switch.set(Some(enabled), max).await {
                warn!(target_api = %target, enabled, error = %e, "mapping not switched; the watchdog will");
            }
        }
    }

    async fn trip(&self, cfg: &Config, trip: TripRequest) -> Result<Done, PortError> {
        self.known(&trip.target)?;
        let gate = self.gates.load(&trip.target).await?;
        if let Some(refused) = gate.outdated(trip.observed_at_ms) {
            return Ok(no_op(refused));
        }
        let now = now_ms();
        let mut next = match gate.trip(
            now,
            &trip.reason,
            trip.manual,
            cfg.relapse.as_millis() as u64,
        ) {
            Ok(n) => n,
            Err(refused) => return Ok(no_op(refused)),
        };
        if !trip.manual {
            let announced = trip.wait_hint_ms.map(Duration::from_millis);
            next.next_probe_at_ms = Self::due(cfg, &next, announced, now);
        }
        if !self.gates.save(&next).await? {
            return Ok(Done::NoOp("another trip won".into()));
        }
        warn!(target_api = %trip.target, epoch = next.epoch, attempt = next.attempt, manual = trip.manual, next_probe_at_ms = next.next_probe_at_ms, reason = %trip.reason, outcome = "halted", "flow halted");
        // The gate already stops deliveries; disabling the mapping only saves the polling. A
        // failure here must not keep the probe chain from starting.
        self.set_switch(&trip.target, false, None).await;
        let halted = FlowEvent::FlowHalted {
            target: trip.target.clone(),
            epoch: next.epoch,
            reason: trip.reason.clone(),
        };
        if let Err(e) = self.events.emit(&halted).await {
            warn!(error = %e, "FlowHalted event not emitted");
        }
        if !next.manual {
            self.invoker.backoff(&Self::timer_of(&next)).await?;
        }
        Ok(Done::Halted { epoch: next.epoch })
    }

    async fn probe(&self, cfg: &Config, probe: ProbeRequest) -> Result<Done, PortError> {
        self.known(&probe.target)?;
        let gate = self.gates.load(&probe.target).await?;
        let probing = match gate.begin_probe(probe.epoch, probe.attempt, now_ms()) {
            Ok(n) => n,
            Err(refused) => return Ok(no_op(refused)),
        };
        if !self.gates.save(&probing).await? {
            return Ok(Done::NoOp("a concurrent probe won".into()));
        }
        let now = now_ms();
        let (mut halted, reason, retry_after) = match self.check(cfg, &probe.target).await? {
            Health::Healthy(how) => {
                info!(target_api = %probe.target, epoch = probe.epoch, attempt = probe.attempt, how, outcome = "healthy", "probe: target is up");
                self.invoker.open(&OpenRequest::from(&probe)).await?;
                return Ok(Done::Resuming {
                    epoch: probe.epoch,
                    attempt: probe.attempt,
                });
            }
            Health::NotYet(reason) => {
                let g = probing
                    .probe_inconclusive(probe.epoch, probe.attempt, now, &reason)
                    .map_err(|r| PortError::new("probe_inconclusive", r))?;
                (g, reason, Some(NOT_YET_WAIT))
            }
            Health::Sick {
                reason,
                retry_after,
            } => {
                let g = probing
                    .probe_failed(probe.epoch, probe.attempt, now, &reason)
                    .map_err(|r| PortError::new("probe_failed", r))?;
                (g, reason, retry_after)
            }
        };
        halted.next_probe_at_ms = Self::due(cfg, &halted, retry_after, now);
        if !self.gates.save(&halted).await? {
            return Ok(Done::NoOp("the gate changed during the probe".into()));
        }
        info!(target_api = %probe.target, epoch = probe.epoch, attempt = probe.attempt, reason, next_probe_at_ms = halted.next_probe_at_ms, outcome = "still_sick", "probe: target still down");
        let event = FlowEvent::ProbeFailed {
            target: probe.target.clone(),
            epoch: probe.epoch,
            attempt: probe.attempt,
            reason,
        };
        if let Err(e) = self.events.emit(&event).await {
            warn!(error = %e, "ProbeFailed event not emitted");
        }
        self.invoker.backoff(&Self::timer_of(&halted)).await?;
        Ok(Done::StillSick {
            epoch: halted.epoch,
            next_attempt: halted.attempt,
        })
    }

    /// Is `target` healthy? By its health URL, or by one real queued order.
    async fn check(&self, cfg: &Config, target: &str) -> Result<Health, PortError> {
        let probe = self.probes.get(target).ok_or_else(|| {
            PortError::invalid(
                "find the probe",
                format!("no probe configured for `{target}`"),
            )
        })?;
        match probe.mode {
            ProbeMode::Health => Ok(match probe.target.check(probe.target.timeout()).await {
                Outcome::Delivered { status } => Health::Healthy(format!("health HTTP {status}")),
                other => Health::Sick {
                    retry_after: other.retry_after(),
                    reason: other.reason(),
                },
            }),
            ProbeMode::Message => self.check_by_message(cfg, &probe.target).await,
        }
    }

    /// Delivers one real queued order as the probe: its delivery is the health signal and
    /// counts as that order's delivery (recorded in the ledger, then deleted). Up to three
    /// orders are taken: a malformed or refused one is parked, one already delivered is
    /// deleted, one that fails target-level stays invisible while the next is tried. If a later
    /// one is delivered, the earlier failures were their own (each gets a strike); if none is,
    /// the target is sick and the failed orders go back to the queue at once. An empty queue
    /// has nothing to protect: healthy. Orders that exist but are not visible yet (handed back
    /// by the halt) cannot probe: not yet.
    async fn check_by_message(&self, cfg: &Config, target: &T) -> Result<Health, PortError> {
        let m = self.messages.as_ref().ok_or_else(|| {
            PortError::invalid("message probe", "no queue is configured for message probes")
        })?;
        let mut failed: Vec<(Queued, String, String, Option<Duration>)> = Vec::new();
        let health = self.probe_orders(cfg, m, target, &mut failed).await;
        let delivered = matches!(health, Ok(Health::Healthy(_)));
        for (q, identity, reason, _) in &failed {
            if delivered {
                // Another order went through: this one failed on its own.
                match m.ledger.strike(identity).await {
                    Ok(n) => {
                        info!(message_id = %q.message_id, identity, strikes = n, reason, "probe order failed on its own")
                    }
                    Err(e) => warn!(identity, error = %e, "strike not counted"),
                }
            }
            if let Err(e) = m.source.release(q).await {
                warn!(message_id = %q.message_id, error = %e, "probe order not released; it returns after its visibility timeout");
            }
        }
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

    async fn probe_orders(
        &self,
        cfg: &Config,
        m: &MessageProbe<Q, L, P>,
        target: &T,
        failed: &mut Vec<(Queued, String, String, Option<Duration>)>,
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
            let order = match OrderMessage::parse(&q.body, &cfg.identity) {
                Ok(o) => o,
                Err(e) => {
                    self.park_probe(cfg, m, &q, None, &e.to_string()).await?;
                    continue;
                }
            };
            let read = m
                .ledger
                .delivered(std::slice::from_ref(&order.identity))
                .await;
            if let Some(e) = read.unreadable.get(&order.identity) {
                if e.is_invalid() {
                    let reason = format!("the ledger cannot hold this identity: {e}");
                    self.park_probe(cfg, m, &q, Some(&order.identity), &reason)
                        .await?;
                    continue;
                }
                m.source.release(&q).await?;
                return Err(e.clone());
            }
            if read.delivered.contains(&order.identity) {
                m.source.done(&q).await?;
                continue;
            }
            let outcome = target
                .deliver(&order.identity, &order.body, target.timeout())
                .await;
            match outcome {
                Outcome::Delivered { status } => {
                    if let Err(e) = m.ledger.record(&order.identity, &q.message_id).await {
                        warn!(identity = %order.identity, error = %e, "ledger write failed");
                    }
                    m.source.done(&q).await?;
                    info!(message_id = %q.message_id, identity = %order.identity, status, outcome = "delivered", "probe order delivered");
                    return Ok(Health::Healthy(format!(
                        "probe order {} delivered (HTTP {status})",
                        order.identity
                    )));
                }
                Outcome::Refused(reason) => {
                    self.park_probe(cfg, m, &q, Some(&order.identity), &reason)
                        .await?;
                }
                Outcome::Unavailable {
                    reason,
                    retry_after,
                } => failed.push((q, order.identity, reason, retry_after)),
            }
        }
        Ok(Health::Sick {
            reason: "no probe order went through".into(),
            retry_after: None,
        })
    }

    async fn park_probe(
        &self,
        cfg: &Config,
        m: &MessageProbe<Q, L, P>,
        q: &Queued,
        identity: Option<&str>,
        reason: &str,
    ) -> Result<(), PortError> {
        m.parking
            .park(&ParkedMessage {
                source: cfg.source.clone(),
                source_arn: Some(q.source_arn.clone()),
                message_id: q.message_id.clone(),
                identity: identity.map(str::to_owned),
                reason: reason.to_owned(),
                parked_at_ms: now_ms(),
                body: q.body.clone(),
            })
            .await?;
        m.source.done(q).await?;
        warn!(message_id = %q.message_id, identity, reason, outcome = "parked", "probe order parked");
        Ok(())
    }

    /// One watchdog run over every guarded target.
    async fn watch(&self, cfg: &Config) -> Result<Done, PortError> {
        let mut repaired = Vec::new();
        for (target, switch) in &self.switches {
            match self.watch_one(cfg, target, switch.as_ref()).await {
                Ok(fixes) if !fixes.is_empty() => repaired.push((target.clone(), fixes)),
                Ok(_) => {}
                Err(e) => {
                    warn!(target_api = %target, error = %e, "watchdog could not check this gate")
                }
            }
        }
        Ok(Done::Watched { repaired })
    }

    async fn watch_one(
        &self,
        cfg: &Config,
        target: &str,
        switch: Option<&S>,
    ) -> Result<Vec<Fix>, PortError> {
        let gate = self.gates.load(target).await?;
        let reading = match switch {
            Some(s) => match s.read().await {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(target_api = %target, error = %e, "mapping unreadable; only the timers are checked");
                    None
                }
            },
            None => None,
        };
        let now = now_ms();
        let verdict = watchdog::judge(
            &gate,
            reading.as_ref().map(|r| &r.state),
            now,
            cfg.grace.as_millis() as u64,
            cfg.ramp.as_millis() as u64,
        );
        steadfast_aws::metrics::gate_halted_seconds(target, verdict.halted_seconds);
        let mut done = Vec::new();
        'fixes: for fix in &verdict.fixes {
            let applied = match fix {
                Fix::DisableMapping => match switch {
                    Some(s) => {
                        s.set(Some(false), None).await?;
                        // A resume may have come between the read and the switch: look again.
                        if self.gates.load(target).await?.is_flowing() {
                            s.set(Some(true), None).await?;
                            false
                        } else {
                            true
                        }
                    }
                    None => false,
                },
                Fix::EnableMapping => match switch {
                    Some(s) => {
                        s.set(Some(true), None).await?;
                        // A halt may have come between the read and the switch: look again.
                        if !self.gates.load(target).await?.is_flowing() {
                            s.set(Some(false), None).await?;
                            false
                        } else {
                            true
                        }
                    }
                    None => false,
                },
                Fix::ReplaceTimer => {
                    let again = match gate.reschedule(now, now) {
                        Ok(g) => g,
                        Err(refused) => {
                            changed_meanwhile(refused);
                            break 'fixes;
                        }
                    };
                    if self.gates.save(&again).await? {
                        self.invoker.backoff(&Self::timer_of(&again)).await?;
                        true
                    } else {
                        false
                    }
                }
                Fix::AbandonProbe => {
                    let mut halted = match gate.probe_failed(
                        gate.epoch,
                        gate.attempt,
                        now,
                        "the probe did not finish in time",
                    ) {
                        Ok(g) => g,
                        Err(refused) => {
                            changed_meanwhile(refused);
                            break 'fixes;
                        }
                    };
                    halted.next_probe_at_ms = Self::due(cfg, &halted, None, now);
                    if self.gates.save(&halted).await? {
                        self.invoker.backoff(&Self::timer_of(&halted)).await?;
                        true
                    } else {
                        false
                    }
                }
            };
            if applied {
                done.push(*fix);
            }
        }
        if !done.is_empty() {
            warn!(target_api = %target, epoch = gate.epoch, repairs = ?done, outcome = "repaired", "watchdog repaired the gate");
            let event = FlowEvent::GateRepaired {
                target: target.to_owned(),
                epoch: gate.epoch,
                state: format!("{:?}", gate.state),
                repairs: done.iter().map(|f| f.describe().to_owned()).collect(),
            };
            if let Err(e) = self.events.emit(&event).await {
                warn!(error = %e, "GateRepaired event not emitted");
            }
        }
        if verdict.end_ramp {
            self.end_ramp(cfg, &gate, now).await?;
        }
        Ok(done)
    }

    /// A ramp-up that has run its time: full concurrency first, then the gate says so.
    async fn end_ramp(&self, cfg: &Config, gate: &Gate, now: u64) -> Result<(), PortError> {
        let Ok(full) = gate.end_ramp(gate.epoch, now) else {
            return Ok(());
        };
        if let Some(Some(s)) = self.switches.get(&gate.target) {
            s.set(None, Some(cfg.full_concurrency)).await?;
        }
        if self.gates.save(&full).await? {
            info!(target_api = %gate.target, epoch = gate.epoch, concurrency = cfg.full_concurrency, outcome = "ramped_up", "ramp-up time over: full concurrency");
        }
        Ok(())
    }
}

fn changed_meanwhile(refused: Refused) {
    info!(reason = %refused, "gate changed while the watchdog looked; left for the next run");
}

fn no_op(refused: Refused) -> Done {
    info!(reason = %refused, outcome = "no_op", "nothing to do");
    Done::NoOp(refused.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::fakes::*;
    use steadfast_domain::GateState;

    type Fake = Ports<
        MemGates,
        MemBus,
        MemInvoker,
        MemSwitch,
        ScriptedTarget,
        MemProbeSource,
        MemLedger,
        MemParking,
    >;

    fn cfg() -> Config {
        Config {
            backoff: Backoff::default(),
            relapse: Duration::from_secs(600),
            grace: Duration::from_secs(120),
            ramp: Duration::from_secs(60),
            full_concurrency: 5,
            identity: IdentityRule::parse("orders", "/orderId").unwrap(),
            source: "orders".into(),
        }
    }

    fn ports_with(target: ScriptedTarget, mode: ProbeMode, queued: &[&str]) -> Fake {
        Ports {
            gates: MemGates::default(),
            events: MemBus::default(),
            invoker: MemInvoker::default(),
            switches: BTreeMap::from([("portal".to_owned(), Some(MemSwitch::default()))]),
            probes: BTreeMap::from([("portal".to_owned(), Probe { target, mode })]),
            messages: Some(MessageProbe {
                source: MemProbeSource::with(queued),
                ledger: MemLedger::default(),
                parking: MemParking::default(),
            }),
        }
    }

    fn ports(target: ScriptedTarget) -> Fake {
        ports_with(target, ProbeMode::Health, &[])
    }

    fn switch(p: &Fake) -> &MemSwitch {
        p.switches["portal"].as_ref().unwrap()
    }

    fn trip_with(wait_hint_ms: Option<u64>) -> CloseRequest {
        CloseRequest::Trip(TripRequest {
            target: "portal".into(),
            reason: "5 failures".into(),
            wait_hint_ms,
            manual: false,
            observed_at_ms: None,
        })
    }

    fn trip() -> CloseRequest {
        trip_with(None)
    }

    fn probe(epoch: u64, attempt: u32) -> CloseRequest {
        CloseRequest::Probe(ProbeRequest {
            target: "portal".into(),
            epoch,
            attempt,
            at_ms: None,
        })
    }

    fn sick() -> Outcome {
        Outcome::unavailable("HTTP 503")
    }

    fn backoffs(p: &Fake) -> Vec<ProbeRequest> {
        p.invoker
            .all()
            .into_iter()
            .filter_map(|i| match i {
                Invoked::Backoff(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn the_first_trip_halts_disables_and_starts_the_chain_the_second_does_nothing() {
        let p = ports(ScriptedTarget::always(sick()));
        let c = cfg();
        assert_eq!(
            p.handle(&c, trip()).await.unwrap(),
            Done::Halted { epoch: 1 }
        );
        assert!(matches!(p.handle(&c, trip()).await.unwrap(), Done::NoOp(_)));
        assert!(!switch(&p).enabled());
        assert_eq!(p.events.types(), vec!["FlowHalted"]);
        let timers = backoffs(&p);
        assert_eq!(timers.len(), 1);
        let g = p.gates.get("portal").unwrap();
        assert_eq!((timers[0].epoch, timers[0].attempt), (1, 0));
        assert_eq!(timers[0].at_ms, Some(g.next_probe_at_ms));
        assert!(g.next_probe_at_ms >= g.changed_at_ms + 1000, "base 1 s");
    }

    #[tokio::test]
    async fn an_announced_wait_moves_the_first_probe() {
        let p = ports(ScriptedTarget::always(sick()));
        p.handle(&cfg(), trip_with(Some(120_000))).await.unwrap();
        let g = p.gates.get("portal").unwrap();
        assert_eq!(g.next_probe_at_ms - g.changed_at_ms, 120_000);
    }

    #[tokio::test]
    async fn a_sick_probe_schedules_the_next_attempt_and_a_duplicate_timer_is_a_no_op() {
        let p = ports(ScriptedTarget::always(sick()));
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        assert_eq!(
            p.handle(&c, probe(1, 0)).await.unwrap(),
            Done::StillSick {
                epoch: 1,
                next_attempt: 1
            }
        );
        assert!(matches!(
            p.handle(&c, probe(1, 0)).await.unwrap(),
            Done::NoOp(_)
        ));
        assert!(matches!(
            p.handle(&c, probe(0, 1)).await.unwrap(),
            Done::NoOp(_)
        ));
        assert_eq!(p.probes["portal"].target.calls().len(), 1, "one probe");
        let g = p.gates.get("portal").unwrap();
        assert_eq!((g.state, g.attempt), (GateState::Halted, 1));
        assert_eq!(backoffs(&p).len(), 2);
    }

    #[tokio::test]
    async fn only_a_2xx_health_answer_resumes() {
        // A probe URL that answers 404 is not a healthy API.
        let p = ports(ScriptedTarget::new(
            vec![Outcome::unavailable("probe HTTP 404: Not Found")],
            Outcome::Delivered { status: 200 },
        ));
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        assert!(matches!(
            p.handle(&c, probe(1, 0)).await.unwrap(),
            Done::StillSick { .. }
        ));
        assert_eq!(
            p.handle(&c, probe(1, 1)).await.unwrap(),
            Done::Resuming {
                epoch: 1,
                attempt: 1
            }
        );
        assert!(matches!(p.invoker.all().last(), Some(Invoked::Open(o)) if o.epoch == Some(1)));
    }

    #[tokio::test]
    async fn the_probe_chain_starts_even_when_the_mapping_cannot_be_disabled() {
        let p = ports(ScriptedTarget::always(sick()));
        *switch(&p).1.lock().unwrap() = 1;
        assert_eq!(
            p.handle(&cfg(), trip()).await.unwrap(),
            Done::Halted { epoch: 1 }
        );
        assert_eq!(backoffs(&p).len(), 1);
    }

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
        let parked: Vec<String> = m.parking.all().into_iter().map(|x| x.reason).collect();
        assert_eq!(parked.len(), 2, "{parked:?}");
        assert!(parked[1].contains("422"));
        assert_eq!(m.source.left(), 1, "P-2 is back in the queue");
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

    #[tokio::test]
    async fn a_trip_request_from_before_the_last_resume_is_out_of_date() {
        let p = ports(ScriptedTarget::always(sick()));
        let resumed = Gate::new("portal")
            .trip(1_000, "x", false, 0)
            .unwrap()
            .resume(None, 5_000, "", false)
            .unwrap();
        p.gates.0.lock().unwrap().insert("portal".into(), resumed);
        let stale = CloseRequest::Trip(TripRequest {
            target: "portal".into(),
            reason: "seen before the resume".into(),
            wait_hint_ms: None,
            manual: false,
            observed_at_ms: Some(4_000),
        });
        assert!(
            matches!(p.handle(&cfg(), stale).await.unwrap(), Done::NoOp(r) if r.contains("resumed after"))
        );
        assert!(p.gates.get("portal").unwrap().is_flowing());
    }

    #[tokio::test]
    async fn a_manual_halt_starts_no_probes_and_ignores_old_timers() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 200 }));
        let c = cfg();
        let manual = CloseRequest::Trip(TripRequest {
            target: "portal".into(),
            reason: "maintenance".into(),
            wait_hint_ms: None,
            manual: true,
            observed_at_ms: None,
        });
        assert_eq!(
            p.handle(&c, manual).await.unwrap(),
            Done::Halted { epoch: 1 }
        );
        assert!(backoffs(&p).is_empty());
        assert!(matches!(
            p.handle(&c, probe(1, 0)).await.unwrap(),
            Done::NoOp(_)
        ));
        assert!(p.probes["portal"].target.calls().is_empty());
    }

    #[tokio::test]
    async fn the_watchdog_sets_a_lost_timer_again_once() {
        // GIVEN a gate halted long ago whose timer never came (close crashed after its write)
        let p = ports(ScriptedTarget::always(sick()));
        let mut g = Gate::new("portal").trip(1_000, "x", false, 0).unwrap();
        g.next_probe_at_ms = 2_000;
        p.gates.0.lock().unwrap().insert("portal".into(), g);
        switch(&p).set(Some(false), None).await.unwrap();
        let c = cfg();
        // WHEN the watchdog runs twice
        let first = p.handle(&c, CloseRequest::Watchdog {}).await.unwrap();
        let second = p.handle(&c, CloseRequest::Watchdog {}).await.unwrap();
        // THEN it set one timer, due now, and said so once
        assert_eq!(
            first,
            Done::Watched {
                repaired: vec![("portal".into(), vec![Fix::ReplaceTimer])]
            }
        );
        assert_eq!(second, Done::Watched { repaired: vec![] });
        assert_eq!(p.events.types(), vec!["GateRepaired"]);
        let timers = backoffs(&p);
        assert_eq!(timers.len(), 1);
        assert!(timers[0].at_ms.unwrap() <= now_ms());
    }

    #[tokio::test]
    async fn the_watchdog_enables_a_mapping_left_disabled_under_a_flowing_gate() {
        let p = ports(ScriptedTarget::always(sick()));
        switch(&p).set(Some(false), None).await.unwrap();
        let c = cfg();
        let done = p.handle(&c, CloseRequest::Watchdog {}).await.unwrap();
        assert_eq!(
            done,
            Done::Watched {
                repaired: vec![("portal".into(), vec![Fix::EnableMapping])]
            }
        );
        assert!(switch(&p).enabled());
        assert_eq!(p.events.types(), vec!["GateRepaired"]);
    }

    #[tokio::test]
    async fn the_watchdog_abandons_a_probe_that_never_finished() {
        let p = ports(ScriptedTarget::always(sick()));
        let g = Gate::new("portal")
            .trip(0, "x", false, 0)
            .unwrap()
            .begin_probe(1, 0, 1_000)
            .unwrap();
        p.gates.0.lock().unwrap().insert("portal".into(), g);
        switch(&p).set(Some(false), None).await.unwrap();
        p.handle(&cfg(), CloseRequest::Watchdog {}).await.unwrap();
        let g = p.gates.get("portal").unwrap();
        assert_eq!((g.state, g.attempt), (GateState::Halted, 1));
        assert_eq!(backoffs(&p)[0].attempt, 1);
    }

    #[tokio::test]
    async fn the_watchdog_ends_a_ramp_up_that_has_run_its_time() {
        let p = ports(ScriptedTarget::always(sick()));
        let g = Gate::new("portal")
            .trip(0, "x", false, 0)
            .unwrap()
            .resume(None, 1_000, "", true)
            .unwrap();
        p.gates.0.lock().unwrap().insert("portal".into(), g);
        switch(&p).set(Some(true), Some(2)).await.unwrap();
        p.handle(&cfg(), CloseRequest::Watchdog {}).await.unwrap();
        assert_eq!(switch(&p).max_concurrency(), Some(5));
        assert!(!p.gates.get("portal").unwrap().ramping);
        assert!(p.events.types().is_empty(), "not a repair");
    }

    #[tokio::test]
    async fn timer_events_from_sqs_are_understood_and_garbage_is_dropped() {
        let p = ports(ScriptedTarget::always(sick()));
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        let ev = serde_json::json!({"Records": [
            {"messageId": "a", "body": r#"{"target":"portal","epoch":1,"attempt":0}"#},
            {"messageId": "b", "body": "garbage"}
        ]});
        let out = p.handle_value(&c, ev).await.unwrap();
        assert_eq!(out["batchItemFailures"], serde_json::json!([]));
        assert_eq!(p.probes["portal"].target.calls().len(), 1);
    }

    #[tokio::test]
    async fn an_unknown_target_is_refused_with_the_known_ones_named() {
        let p = ports(ScriptedTarget::always(sick()));
        let e = p
            .handle(
                &cfg(),
                CloseRequest::Trip(TripRequest {
                    target: "nope".into(),
                    reason: "x".into(),
                    wait_hint_ms: None,
                    manual: false,
                    observed_at_ms: None,
                }),
            )
            .await
            .unwrap_err();
        assert!(e.is_invalid() && e.message.contains("portal"), "{e}");
    }
}
