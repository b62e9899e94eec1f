//! backoff: sets the timer of the next probe. `close` decides when the probe is due (the
//! request's `at_ms`, the same time the gate holds, from min(max(base · 2^attempt,
//! Retry-After), cap)); a request without it (an operator's) gets min(base · 2^attempt, cap),
//! optionally jittered. Up to the queue limit (900 s) the timer is a delayed message on the
//! `timers` queue, longer a one-time Scheduler schedule. Setting the same timer twice is
//! harmless: `close` accepts one probe per (epoch, attempt).

use std::time::Duration;

use steadfast_domain::ports::{PortError, Timers};
use steadfast_domain::{Backoff, ProbeRequest, TimerRoute};
use tracing::info;

pub async fn handle<M: Timers>(
    timers: &M,
    schedule: &Backoff,
    probe: &ProbeRequest,
    now_ms: u64,
    unit: f64,
) -> Result<TimerRoute, PortError> {
    let delay = match probe.at_ms {
        Some(at) => Duration::from_millis(at.saturating_sub(now_ms)),
        None => schedule.delay(probe.attempt, unit),
    };
    let route = schedule.route(delay, now_ms);
    timers.set(probe, route).await?;
    info!(target_api = %probe.target, epoch = probe.epoch, attempt = probe.attempt, delay_ms = delay.as_millis() as u64, route = ?route, "probe timer set");
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::fakes::MemTimers;

    fn p(attempt: u32, at_ms: Option<u64>) -> ProbeRequest {
        ProbeRequest {
            target: "portal".into(),
            epoch: 1,
            attempt,
            at_ms,
        }
    }

    #[tokio::test]
    async fn short_delays_use_the_queue_and_long_ones_a_schedule() {
        let timers = MemTimers::default();
        let b = Backoff::default();
        assert_eq!(
            handle(&timers, &b, &p(3, None), 0, 0.0).await.unwrap(),
            TimerRoute::Queue { delay_seconds: 8 }
        );
        // 2^10 s = 1024 s > 900 s
        assert_eq!(
            handle(&timers, &b, &p(10, None), 5, 0.0).await.unwrap(),
            TimerRoute::Schedule {
                fire_at_ms: 1_024_005
            }
        );
        assert_eq!(
            handle(&timers, &b, &p(40, None), 0, 0.0).await.unwrap(),
            TimerRoute::Schedule {
                fire_at_ms: Duration::from_secs(14_400).as_millis() as u64
            }
        );
        assert_eq!(timers.set.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn the_due_time_close_decided_is_kept() {
        let timers = MemTimers::default();
        let b = Backoff::default();
        assert_eq!(
            handle(&timers, &b, &p(0, Some(120_000)), 0, 0.0)
                .await
                .unwrap(),
            TimerRoute::Queue { delay_seconds: 120 },
            "a Retry-After of 120 s moved the first probe"
        );
        assert_eq!(
            handle(&timers, &b, &p(0, Some(5)), 10, 0.0).await.unwrap(),
            TimerRoute::Queue { delay_seconds: 0 },
            "overdue: at once"
        );
    }
}
