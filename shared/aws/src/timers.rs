//! Probe timers. Up to the queue limit (900 s): a message on the `timers` queue with
//! DelaySeconds. Longer: a one-time EventBridge Scheduler schedule `at(...)` with a
//! deterministic name and ActionAfterCompletion=DELETE, whose target is the same queue.

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};
use steadfast_domain::ports::{PortError, PortResult, Timers};
use steadfast_domain::{ProbeRequest, TimerRoute};

pub struct QueueAndScheduleTimers {
    pub sqs: aws_sdk_sqs::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub queue_url: String,
    pub queue_arn: String,
    /// Role the Scheduler assumes to send to the queue.
    pub scheduler_role_arn: String,
    /// Schedule group. Default `default`.
    pub group: String,
    /// Where the Scheduler puts a timer it could not deliver. `SCHEDULE_DLQ_ARN`, optional.
    pub dead_letter_arn: Option<String>,
}

/// `at(yyyy-mm-ddThh:mm:ss)` in UTC, rounded up to the next whole second.
pub fn at_expression(fire_at_ms: u64) -> String {
    let secs = fire_at_ms.div_ceil(1000) as i64;
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    format!("at({})", t.format(f).unwrap_or_default())
}

impl Timers for QueueAndScheduleTimers {
    async fn set(&self, probe: &ProbeRequest, route: TimerRoute) -> PortResult<()> {
        let body = serde_json::to_string(probe).map_err(|e| PortError::new("encode probe", e))?;
        match route {
            TimerRoute::Queue { delay_seconds } => {
                self.sqs
                    .send_message()
                    .queue_url(&self.queue_url)
                    .message_body(body)
                    .delay_seconds(delay_seconds.min(900) as i32)
                    .send()
                    .await
                    .map_err(|e| {
                        crate::error::port_error(
                            format!("SendMessage timer {}", probe.schedule_name(&self.queue_arn)),
                            e,
                        )
                    })?;
            }
            TimerRoute::Schedule { fire_at_ms } => {
                let mut target = Target::builder()
                    .arn(&self.queue_arn)
                    .role_arn(&self.scheduler_role_arn)
                    .input(body);
                if let Some(dlq) = &self.dead_letter_arn {
                    target = target.dead_letter_config(
                        aws_sdk_scheduler::types::DeadLetterConfig::builder()
                            .arn(dlq)
                            .build(),
                    );
                }
                let target = target
                    .build()
                    .map_err(|e| PortError::new("build schedule target", e))?;
                let window = FlexibleTimeWindow::builder()
                    .mode(FlexibleTimeWindowMode::Off)
                    .build()
                    .map_err(|e| PortError::new("build time window", e))?;
                let name = probe.schedule_name(&self.queue_arn);
                let result = self
                    .scheduler
                    .create_schedule()
                    .name(&name)
                    .group_name(&self.group)
                    .schedule_expression(at_expression(fire_at_ms))
                    .schedule_expression_timezone("UTC")
                    .flexible_time_window(window)
                    .action_after_completion(ActionAfterCompletion::Delete)
                    .target(target)
                    .send()
                    .await;
                match result {
                    Ok(_) => {}
                    // the same (target, epoch, attempt) was already scheduled: nothing to do
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_conflict_exception()) => {}
                    Err(e) => {
                        return Err(crate::error::port_error(
                            format!("CreateSchedule {name}"),
                            e,
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    async fn cancel(&self, probe: &ProbeRequest) -> PortResult<()> {
        let name = probe.schedule_name(&self.queue_arn);
        match self
            .scheduler
            .delete_schedule()
            .name(&name)
            .group_name(&self.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(crate::error::port_error(
                format!("DeleteSchedule {name}"),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_expressions_are_utc_and_round_up() {
        assert_eq!(
            super::at_expression(1_700_000_000_001),
            "at(2023-11-14T22:13:21)"
        );
    }
}
