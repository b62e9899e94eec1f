//! The trip: `Flowing → Halted` with a conditional write, so of many concurrent callers
//! exactly one wins. The winner switches the mapping off, says so, and starts the probe chain
//! (an operator's manual halt has none).

use std::time::Duration;

use steadfast_aws::now_ms;
use steadfast_domain::ports::*;
use steadfast_domain::{FlowEvent, Gate, TripRequest};
use tracing::warn;

use crate::requests::no_op;
use crate::{Config, Done, Ports};

/// What a trip whose conditional write lost says.
const LOST_RACE: &str = "another writer changed the gate first";
/// How often an operator's halt is tried against concurrent writers.
const MANUAL_TRIES: u32 = 5;

impl<G, E, I, S, T, Q, L, P> Ports<G, E, I, S, T, Q, L, P>
where
    G: GateStore,
    E: EventBus,
    I: Invoker,
    S: FlowSwitch,
{
    /// One trip request: halts a flowing gate, or does nothing when another caller won or the
    /// request is out of date.
    pub(crate) async fn trip(&self, cfg: &Config, trip: TripRequest) -> Result<Done, PortError> {
        self.known(&trip.target)?;
        // An operator's halt must take even when a probe or the watchdog writes the gate at
        // the same moment: it is tried again on the gate as it then stands.
        let tries = if trip.manual { MANUAL_TRIES } else { 1 };
        for _ in 1..tries {
            match self.trip_once(cfg, &trip).await? {
                Done::NoOp(why) if why == LOST_RACE => continue,
                done => return Ok(done),
            }
        }
        self.trip_once(cfg, &trip).await
    }

    async fn trip_once(&self, cfg: &Config, trip: &TripRequest) -> Result<Done, PortError> {
        let gate = self.gates.load(&trip.target).await?;
        if let Some(refused) = gate.outdated(trip.observed_at_ms) {
            return Ok(no_op(refused, trip.correlation_id.as_deref()));
        }
        let now = now_ms();
        let mut next = match gate.trip(
            now,
            &trip.reason,
            trip.manual,
            cfg.relapse.as_millis() as u64,
        ) {
            Ok(n) => n,
            Err(refused) => return Ok(no_op(refused, trip.correlation_id.as_deref())),
        };
        if !trip.manual {
            let announced = trip.wait_hint_ms.map(Duration::from_millis);
            next.next_probe_at_ms = Self::due(cfg, &next, announced, now);
        }
        if !self.gates.save(&next).await? {
            return Ok(Done::NoOp(LOST_RACE.into()));
        }
        self.halted(trip, &next).await?;
        Ok(Done::Halted { epoch: next.epoch })
    }

    /// The halt is stored: log it, switch the mapping off, say so, and start the probe chain.
    /// The log line and `FlowHalted` carry the correlation id of the message whose failures
    /// halted the flow (none for an operator's halt).
    async fn halted(&self, trip: &TripRequest, next: &Gate) -> Result<(), PortError> {
        let correlation_id = trip.correlation_id.as_deref();
        warn!(target_api = %trip.target, epoch = next.epoch, attempt = next.attempt, manual = trip.manual, next_probe_at_ms = next.next_probe_at_ms, correlation_id, reason = %trip.reason, outcome = "halted", "flow halted");
        // The gate already stops deliveries; disabling the mapping only saves the polling. A
        // failure here must not keep the probe chain from starting.
        self.set_switch(&trip.target, false, None).await;
        let halted = FlowEvent::FlowHalted {
            target: trip.target.clone(),
            epoch: next.epoch,
            reason: trip.reason.clone(),
            correlation_id: trip.correlation_id.clone(),
        };
        if let Err(e) = self.events.emit(&halted).await {
            warn!(correlation_id, error = %e, "FlowHalted event not emitted");
        }
        if !next.manual {
            self.invoker.backoff(&Self::timer_of(next)).await?;
        }
        Ok(())
    }

    /// Switches `target`'s mapping; a failure is only logged (the watchdog repairs it).
    async fn set_switch(&self, target: &str, enabled: bool, max: Option<u32>) {
        if let Some(Some(switch)) = self.switches.get(target) {
            if let Err(e) = switch.set(Some(enabled), max).await {
                warn!(target_api = %target, enabled, error = %e, "mapping not switched; the watchdog will");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

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
    async fn the_halt_event_names_the_message_whose_failures_halted_the_flow() {
        let p = ports(ScriptedTarget::always(sick()));
        let CloseRequest::Trip(mut request) = trip() else {
            unreachable!()
        };
        request.correlation_id = Some("flow-7".into());
        p.handle(&cfg(), CloseRequest::Trip(request)).await.unwrap();
        let events = p.events.0.lock().unwrap().clone();
        assert!(
            matches!(&events[..], [FlowEvent::FlowHalted { correlation_id: Some(c), .. }] if c == "flow-7"),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn an_announced_wait_moves_the_first_probe() {
        let p = ports(ScriptedTarget::always(sick()));
        p.handle(&cfg(), trip_with(Some(120_000))).await.unwrap();
        let g = p.gates.get("portal").unwrap();
        assert_eq!(g.next_probe_at_ms - g.changed_at_ms, 120_000);
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
            correlation_id: None,
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
        let manual = manual_trip();
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
    async fn an_operators_halt_takes_even_when_probes_write_the_gate_meanwhile() {
        let p = ports(ScriptedTarget::always(sick()));
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        // two saves lost to concurrent writers (a probe, the watchdog), then it takes
        p.gates.race_next_saves(2);
        let manual = manual_trip();
        assert!(matches!(
            p.handle(&c, manual).await.unwrap(),
            Done::Halted { .. }
        ));
        let g = p.gates.get("portal").unwrap();
        assert!(g.manual && g.reason == "maintenance", "{g:?}");
        // an automatic trip that loses its race is not tried again
        let p = ports(ScriptedTarget::always(sick()));
        p.gates.race_next_saves(1);
        assert!(matches!(p.handle(&c, trip()).await.unwrap(), Done::NoOp(_)));
    }
}
