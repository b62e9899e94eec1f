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
