//! backoff: sets the timer of the next probe. delay = min(base · 2^attempt, cap), optionally
//! jittered; up to the queue limit through the `timers` queue, longer through a one-time
//! Scheduler schedule. Setting the same timer twice is harmless: `close` accepts one probe per
//! (epoch, attempt).

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
    let delay = schedule.delay(probe.attempt, unit);
    let route = schedule.route(delay, now_ms);
    timers.set(probe, route).await?;
    info!(target_api = %probe.target, epoch = probe.epoch, attempt = probe.attempt, delay_ms = delay.as_millis() as u64, route = ?route, "probe timer set");
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use steadfast_domain::fakes::MemTimers;

    #[tokio::test]
    async fn short_delays_use_the_queue_and_long_ones_a_schedule() {
        let timers = MemTimers::default();
        let b = Backoff::default();
        let p = |attempt| ProbeRequest {
            target: "portal".into(),
            epoch: 1,
            attempt,
        };
        assert_eq!(
            handle(&timers, &b, &p(3), 0, 0.0).await.unwrap(),
            TimerRoute::Queue { delay_seconds: 8 }
        );
        // 2^10 s = 1024 s > 900 s
        assert_eq!(
            handle(&timers, &b, &p(10), 5, 0.0).await.unwrap(),
            TimerRoute::Schedule {
                fire_at_ms: 1_024_005
            }
        );
        assert_eq!(
            handle(&timers, &b, &p(40), 0, 0.0).await.unwrap(),
            TimerRoute::Schedule {
                fire_at_ms: Duration::from_secs(14_400).as_millis() as u64
            }
        );
        assert_eq!(timers.set.lock().unwrap().len(), 3);
    }
}
