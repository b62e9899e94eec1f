//! open: resumes the flow.
//!
//! A resume (from `close` after a healthy probe, with epoch and attempt; or from an operator,
//! target only) first enables the target's mapping at a low MaximumConcurrency (the ramp-up,
//! default 2), then writes `Halted | Probing → Flowing` with a condition on the version it
//! read, only for the halt the request belongs to, then deletes any pending probe schedule and
//! emits `FlowResumed`. Enabling first means a crash leaves a halted gate with an enabled
//! mapping, which the processor treats as halted and the watchdog disables, never a flowing
//! gate that nothing delivers. An automatic resume never lifts an operator's halt.
//!
//! A ramp-up request (from the processor once `RAMP_UP_SUCCESSES` deliveries went through, or
//! the watchdog once `RAMP_UP_SECONDS` passed) raises the mapping to its full concurrency.
//!
//! A resume counts in `Resumes`, for its gate's pipeline (`steadfast_aws::metrics`).

use std::collections::BTreeMap;

use steadfast_aws::metrics::{Document, Metric, Pipelines};
use steadfast_domain::ports::*;
use steadfast_domain::{FlowEvent, OpenRequest, ProbeRequest};
use tracing::{info, warn};

pub struct Config {
    /// MaximumConcurrency right after a resume. `RAMP_UP_CONCURRENCY`, default 2 (the least
    /// SQS mappings allow).
    pub ramp_concurrency: u32,
    /// MaximumConcurrency once ramped up. `DELIVERY_CONCURRENCY`, default 5.
    pub full_concurrency: u32,
    /// The pipeline of each guarded target, for the metrics.
    pub pipelines: Pipelines,
}

impl Config {
    pub fn from_env(env: &steadfast_aws::Env) -> Result<Config, steadfast_aws::ConfigError> {
        let full = env.whole_in("DELIVERY_CONCURRENCY", 5, 2, 1000)? as u32;
        Ok(Config {
            ramp_concurrency: env.whole_in("RAMP_UP_CONCURRENCY", 2, 2, u64::from(full))? as u32,
            full_concurrency: full,
            pipelines: steadfast_aws::clients::pipelines(env),
        })
    }
}

pub struct Ports<G, S, E, M> {
    pub gates: G,
    /// Every guarded target by name, with its mapping if it has one.
    pub switches: BTreeMap<String, Option<S>>,
    pub events: E,
    pub timers: M,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Resumed { epoch: u64 },
    RampedUp { epoch: u64 },
    NoOp(String),
}

use steadfast_aws::now_ms;

impl<G: GateStore, S: FlowSwitch, E: EventBus, M: Timers> Ports<G, S, E, M> {
    pub async fn handle(&self, cfg: &Config, request: OpenRequest) -> Result<Done, PortError> {
        let switch = match self.switches.get(&request.target) {
            Some(s) => s.as_ref(),
            None => {
                return Err(PortError::invalid(
                    "find the target",
                    format!(
                        "`{}` is not a guarded target here (known: {})",
                        request.target,
                        self.switches.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
        };
        if request.ramp_up {
            return self.ramp_up(cfg, &request, switch).await;
        }
        let gate = self.gates.load(&request.target).await?;
        let now = now_ms();
        let next = match gate.resume(request.epoch, now, "resumed", switch.is_some()) {
            Ok(n) => n,
            Err(refused) => {
                if gate.is_flowing() {
                    // A retry of an open that stopped half-way: make sure the flow runs, unless
                    // a halt came meanwhile.
                    if let Some(s) = switch {
                        s.set(Some(true), None).await?;
                        if !self.gates.load(&request.target).await?.is_flowing() {
                            s.set(Some(false), None).await?;
                        }
                    }
                }
                info!(reason = %refused, outcome = "no_op", "nothing to resume");
                return Ok(Done::NoOp(refused.to_string()));
            }
        };
        if let Some(s) = switch {
            s.set(Some(true), Some(cfg.ramp_concurrency)).await?;
        }
        if !self.gates.save(&next).await? {
            // Someone else changed the gate meanwhile: the mapping follows what it says now.
            if let Some(s) = switch {
                if !self.gates.load(&request.target).await?.is_flowing() {
                    s.set(Some(false), None).await?;
                }
            }
            return Ok(Done::NoOp("the gate changed concurrently".into()));
        }
        // The timer the gate was waiting for, if it is a schedule, is now pointless.
        let pending = ProbeRequest {
            target: gate.target.clone(),
            epoch: gate.epoch,
            attempt: gate.attempt,
            at_ms: None,
        };
        if let Err(e) = self.timers.cancel(&pending).await {
            warn!(error = %e, "pending schedule not deleted; it will fire stale and be ignored");
        }
        let probes = request.attempt.map(|a| a + 1).unwrap_or(gate.attempt);
        let halted_for_ms = now.saturating_sub(gate.halted_at_ms);
        info!(target_api = %gate.target, epoch = gate.epoch, probes, halted_for_ms, ramp_concurrency = switch.map(|_| cfg.ramp_concurrency), outcome = "resumed", "flow resumed");
        let event = FlowEvent::FlowResumed {
            target: gate.target.clone(),
            epoch: gate.epoch,
            probes,
            halted_for_ms,
        };
        if let Err(e) = self.events.emit(&event).await {
            warn!(error = %e, "FlowResumed event not emitted");
        }
        let done = Done::Resumed { epoch: gate.epoch };
        metrics(cfg, &gate.target, &done).emit();
        Ok(done)
    }

    async fn ramp_up(
        &self,
        cfg: &Config,
        request: &OpenRequest,
        switch: Option<&S>,
    ) -> Result<Done, PortError> {
        let gate = self.gates.load(&request.target).await?;
        let epoch = request.epoch.unwrap_or(gate.epoch);
        let full = match gate.end_ramp(epoch, now_ms()) {
            Ok(g) => g,
            Err(refused) => return Ok(Done::NoOp(refused.to_string())),
        };
        if let Some(s) = switch {
            s.set(None, Some(cfg.full_concurrency)).await?;
        }
        if !self.gates.save(&full).await? {
            return Ok(Done::NoOp("the gate changed concurrently".into()));
        }
        info!(target_api = %gate.target, epoch, delivered = gate.ramp_delivered, concurrency = cfg.full_concurrency, outcome = "ramped_up", "ramp-up done: full concurrency");
        Ok(Done::RampedUp { epoch })
    }
}

/// The metrics of a request on `target` that came to `done`: a resume; nothing otherwise.
pub fn metrics(cfg: &Config, target: &str, done: &Done) -> Document {
    let d = Document::new(cfg.pipelines.of(target), target);
    match done {
        Done::Resumed { .. } => d.count(Metric::Resumes, 1u32),
        Done::RampedUp { .. } | Done::NoOp(_) => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::fakes::*;
    use steadfast_domain::Gate;

    type Fake = Ports<MemGates, MemSwitch, MemBus, MemTimers>;

    fn ports() -> Fake {
        Ports {
            gates: MemGates::default(),
            switches: BTreeMap::from([("portal".to_owned(), Some(MemSwitch::default()))]),
            events: MemBus::default(),
            timers: MemTimers::default(),
        }
    }

    fn cfg() -> Config {
        Config {
            ramp_concurrency: 2,
            full_concurrency: 5,
            pipelines: Pipelines::of_guarded(&["portal".into(), "portal-inbox".into()]),
        }
    }

    fn switch(p: &Fake) -> &MemSwitch {
        p.switches["portal"].as_ref().unwrap()
    }

    fn req(epoch: Option<u64>) -> OpenRequest {
        OpenRequest {
            target: "portal".into(),
            epoch,
            attempt: epoch.map(|_| 2),
            ramp_up: false,
        }
    }

    async fn halted(p: &Fake, manual: bool) {
        let g = Gate::new("portal").trip(0, "x", manual, 0).unwrap();
        p.gates.save(&g).await.unwrap();
        switch(p).set(Some(false), None).await.unwrap();
    }

    #[tokio::test]
    async fn resumes_once_for_the_current_halt_only_at_the_ramp_concurrency() {
        let p = ports();
        halted(&p, false).await;
        assert!(matches!(
            p.handle(&cfg(), req(Some(7))).await.unwrap(),
            Done::NoOp(_)
        ));
        assert_eq!(
            p.handle(&cfg(), req(Some(1))).await.unwrap(),
            Done::Resumed { epoch: 1 }
        );
        assert!(matches!(
            p.handle(&cfg(), req(Some(1))).await.unwrap(),
            Done::NoOp(_)
        ));
        assert!(switch(&p).enabled());
        assert_eq!(switch(&p).max_concurrency(), Some(2));
        let g = p.gates.get("portal").unwrap();
        assert!(g.is_flowing() && g.ramping);
        assert_eq!(p.events.types(), vec!["FlowResumed"]);
        assert_eq!(
            p.timers.cancelled.lock().unwrap().len(),
            1,
            "pending schedule removed"
        );
    }

    #[test]
    fn a_resume_counts_for_its_gates_pipeline_and_nothing_else_does() {
        let resumed = Done::Resumed { epoch: 1 };
        assert_eq!(
            metrics(&cfg(), "portal-inbox", &resumed),
            Document::new("inbox", "portal-inbox").count(Metric::Resumes, 1u32)
        );
        assert_eq!(
            metrics(&cfg(), "portal", &resumed).total(Metric::Resumes),
            1
        );
        let ramped = metrics(&cfg(), "portal", &Done::RampedUp { epoch: 1 });
        assert!(ramped.lines(0).is_empty());
    }

    #[tokio::test]
    async fn the_mapping_is_enabled_before_the_gate_says_flowing() {
        // GIVEN the mapping cannot be enabled (still Disabling, past the adapter's retries)
        let p = ports();
        halted(&p, false).await;
        *switch(&p).1.lock().unwrap() = 1;
        // THEN the resume fails and the gate stays halted: nothing claims a flow that is off
        assert!(p.handle(&cfg(), req(Some(1))).await.is_err());
        assert!(!p.gates.get("portal").unwrap().is_flowing());
        assert!(!switch(&p).enabled());
        // AND the async retry completes it
        assert_eq!(
            p.handle(&cfg(), req(Some(1))).await.unwrap(),
            Done::Resumed { epoch: 1 }
        );
        assert!(switch(&p).enabled());
    }

    #[tokio::test]
    async fn a_probe_never_lifts_a_manual_halt_but_an_operator_does() {
        let p = ports();
        halted(&p, true).await;
        assert!(matches!(
            p.handle(&cfg(), req(Some(1))).await.unwrap(),
            Done::NoOp(_)
        ));
        assert!(!switch(&p).enabled());
        assert_eq!(
            p.handle(&cfg(), req(None)).await.unwrap(),
            Done::Resumed { epoch: 1 }
        );
    }

    #[tokio::test]
    async fn a_ramp_up_request_raises_the_concurrency_once() {
        let p = ports();
        halted(&p, false).await;
        p.handle(&cfg(), req(Some(1))).await.unwrap();
        let ramp = OpenRequest {
            ramp_up: true,
            ..req(Some(1))
        };
        assert_eq!(
            p.handle(&cfg(), ramp.clone()).await.unwrap(),
            Done::RampedUp { epoch: 1 }
        );
        assert_eq!(switch(&p).max_concurrency(), Some(5));
        assert!(!p.gates.get("portal").unwrap().ramping);
        assert!(matches!(
            p.handle(&cfg(), ramp).await.unwrap(),
            Done::NoOp(_)
        ));
    }

    #[tokio::test]
    async fn a_target_without_a_mapping_resumes_without_ramping() {
        let p: Fake = Ports {
            switches: BTreeMap::from([("inbox".to_owned(), None)]),
            ..ports()
        };
        let g = Gate::new("inbox").trip(0, "x", false, 0).unwrap();
        p.gates.save(&g).await.unwrap();
        let r = OpenRequest {
            target: "inbox".into(),
            ..req(Some(1))
        };
        assert_eq!(
            p.handle(&cfg(), r).await.unwrap(),
            Done::Resumed { epoch: 1 }
        );
        assert!(!p.gates.get("inbox").unwrap().ramping);
    }
}
