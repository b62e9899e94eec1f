//! The probe: `Halted → Probing` only for the epoch and attempt the gate waits for, so a
//! duplicate or stale timer is a no-op. Then the target is checked, by its health URL (only 2xx
//! is healthy) or by one real queued order: healthy → `open`; still sick → `Halted` at the next
//! attempt and `backoff`.

use std::time::Duration;

use steadfast_aws::now_ms;
use steadfast_domain::ports::*;
use steadfast_domain::{FlowEvent, Gate, OpenRequest, Outcome, ProbeMode, ProbeRequest};
use tracing::{info, warn};

use crate::requests::no_op;
use crate::{Config, Done, Ports};

/// A probe's finding.
pub(crate) enum Health {
    Healthy(String),
    /// The probe could not tell (nothing visible to probe with yet): ask again later without
    /// raising the backoff.
    NotYet(String),
    Sick {
        reason: String,
        retry_after: Option<Duration>,
    },
}

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
    /// One probe timer: claims the probe, checks the target, and resumes or backs off.
    pub(crate) async fn probe(&self, cfg: &Config, probe: ProbeRequest) -> Result<Done, PortError> {
        self.known(&probe.target)?;
        let gate = self.gates.load(&probe.target).await?;
        let probing = match gate.begin_probe(probe.epoch, probe.attempt, now_ms()) {
            Ok(n) => n,
            Err(refused) => return Ok(no_op(refused, None)),
        };
        if !self.gates.save(&probing).await? {
            return Ok(Done::NoOp("a concurrent probe won".into()));
        }
        let now = now_ms();
        let (halted, reason, retry_after) = match self.check(cfg, &probe.target).await? {
            Health::Healthy(how) => return self.healthy(&probe, how).await,
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
        self.still_sick(cfg, &probe, halted, reason, retry_after, now)
            .await
    }

    /// The target is up: `open` resumes the flow.
    async fn healthy(&self, probe: &ProbeRequest, how: String) -> Result<Done, PortError> {
        info!(target_api = %probe.target, epoch = probe.epoch, attempt = probe.attempt, how, outcome = "healthy", "probe: target is up");
        self.invoker.open(&OpenRequest::from(probe)).await?;
        Ok(Done::Resuming {
            epoch: probe.epoch,
            attempt: probe.attempt,
        })
    }

    /// The target is still down: the next attempt is due after the backoff.
    async fn still_sick(
        &self,
        cfg: &Config,
        probe: &ProbeRequest,
        mut halted: Gate,
        reason: String,
        retry_after: Option<Duration>,
        now: u64,
    ) -> Result<Done, PortError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

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
}
