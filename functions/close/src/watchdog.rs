//! The watchdog (every minute): reconciles every gate with its mapping and its timers (see
//! `shared/domain/src/watchdog.rs`), says what it fixed in a `GateRepaired` event, ends
//! ramp-ups that have run their time, and writes each gate's `GateHaltedSeconds` and
//! `GateRepairs`.

use steadfast_aws::metrics::{Document, Metric};
use steadfast_aws::now_ms;
use steadfast_domain::ports::*;
use steadfast_domain::watchdog::{self, Fix};
use steadfast_domain::{FlowEvent, Gate, Refused};
use tracing::{info, warn};

use crate::{Config, Done, Ports};

impl<G, E, I, S, T, Q, L, P> Ports<G, E, I, S, T, Q, L, P>
where
    G: GateStore,
    E: EventBus,
    I: Invoker,
    S: FlowSwitch,
{
    /// One watchdog run over every guarded target.
    pub(crate) async fn watch(&self, cfg: &Config) -> Result<Done, PortError> {
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

    /// Checks one gate and applies the fixes the watchdog's verdict asks for.
    async fn watch_one(
        &self,
        cfg: &Config,
        target: &str,
        switch: Option<&S>,
    ) -> Result<Vec<Fix>, PortError> {
        let gate = self.gates.load(target).await?;
        let reading = read_switch(target, switch).await;
        let now = now_ms();
        let verdict = watchdog::judge(
            &gate,
            reading.as_ref().map(|r| &r.state),
            now,
            cfg.grace.as_millis() as u64,
            cfg.ramp.as_millis() as u64,
        );
        let applied = self
            .apply_all(cfg, target, switch, &gate, &verdict.fixes, now)
            .await;
        let repairs = applied.as_ref().map_or(0, Vec::len) as u64;
        Document::new(cfg.pipelines.of(target), target)
            .gauge(Metric::GateHaltedSeconds, verdict.halted_seconds)
            .count(Metric::GateRepairs, repairs)
            .emit();
        let done = applied?;
        if !done.is_empty() {
            self.repaired(target, &gate, &done).await;
        }
        if verdict.end_ramp {
            self.end_ramp(cfg, &gate, now).await?;
        }
        Ok(done)
    }

    /// Applies the fixes in turn, until one finds the gate changed meanwhile; the ones applied.
    async fn apply_all(
        &self,
        cfg: &Config,
        target: &str,
        switch: Option<&S>,
        gate: &Gate,
        fixes: &[Fix],
        now: u64,
    ) -> Result<Vec<Fix>, PortError> {
        let mut done = Vec::new();
        for fix in fixes {
            match self.apply(cfg, target, switch, gate, *fix, now).await? {
                Some(true) => done.push(*fix),
                Some(false) => {}
                None => break,
            }
        }
        Ok(done)
    }

    /// Applies one fix: `Some(applied)`, or `None` when the gate changed meanwhile (the other
    /// fixes are left for the next run).
    async fn apply(
        &self,
        cfg: &Config,
        target: &str,
        switch: Option<&S>,
        gate: &Gate,
        fix: Fix,
        now: u64,
    ) -> Result<Option<bool>, PortError> {
        let applied = match fix {
            Fix::DisableMapping => self.switch_to(target, switch, false).await?,
            Fix::EnableMapping => self.switch_to(target, switch, true).await?,
            Fix::ReplaceTimer => match gate.reschedule(now, now) {
                Ok(again) => self.set_timer(&again).await?,
                Err(refused) => return Ok(changed_meanwhile(refused)),
            },
            Fix::AbandonProbe => match gate.probe_failed(
                gate.epoch,
                gate.attempt,
                now,
                "the probe did not finish in time",
            ) {
                Ok(mut halted) => {
                    halted.next_probe_at_ms = Self::due(cfg, &halted, None, now);
                    self.set_timer(&halted).await?
                }
                Err(refused) => return Ok(changed_meanwhile(refused)),
            },
        };
        Ok(Some(applied))
    }

    /// Switches the mapping on or off, then looks at the gate again: a resume or a halt may
    /// have come between the read and the switch, and then the switch goes back.
    async fn switch_to(
        &self,
        target: &str,
        switch: Option<&S>,
        enabled: bool,
    ) -> Result<bool, PortError> {
        let Some(s) = switch else {
            return Ok(false);
        };
        s.set(Some(enabled), None).await?;
        if self.gates.load(target).await?.is_flowing() != enabled {
            s.set(Some(!enabled), None).await?;
            Ok(false)
        } else {
            Ok(true)
        }
    }

    /// Stores `next` and sets its timer; `false` when the gate changed meanwhile.
    async fn set_timer(&self, next: &Gate) -> Result<bool, PortError> {
        if self.gates.save(next).await? {
            self.invoker.backoff(&Self::timer_of(next)).await?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Logs the repairs and says so in a `GateRepaired` event.
    async fn repaired(&self, target: &str, gate: &Gate, done: &[Fix]) {
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

/// The mapping's state, if it can be read.
async fn read_switch<S: FlowSwitch>(target: &str, switch: Option<&S>) -> Option<SwitchReading> {
    match switch {
        Some(s) => match s.read().await {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(target_api = %target, error = %e, "mapping unreadable; only the timers are checked");
                None
            }
        },
        None => None,
    }
}

/// Logs a gate that changed while the watchdog looked; nothing more is done to it this run.
fn changed_meanwhile(refused: Refused) -> Option<bool> {
    info!(reason = %refused, "gate changed while the watchdog looked; left for the next run");
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

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
}
