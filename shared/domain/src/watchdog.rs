//! The watchdog's judgement: from a stored gate and its switch as read, what is out of line
//! and how to fix it. A crash anywhere between the writes of close, open and backoff leaves
//! one of these states; the watchdog, run every minute, puts each right:
//!
//! | gate | switch (the queue's mapping) | fix |
//! |---|---|---|
//! | Flowing | Disabled | enable the mapping |
//! | Halted (automatic or manual) | Enabled | disable the mapping |
//! | Halted (automatic) | — | probe timer overdue by more than the grace: set it again, due now |
//! | Probing | — | probe under way for longer than the grace: count it as failed, set the next timer (and disable an enabled mapping) |
//!
//! A switch that is still changing (Enabling, Disabling, Updating) is left alone this time.
//! The end of a ramp-up after its time is not a repair, but the watchdog does it too.

use serde::{Deserialize, Serialize};

use crate::gate::{Gate, GateState};
use crate::ports::SwitchState;

/// How `close` probes a target after a halt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeMode {
    /// GET the probe URL; only 2xx is healthy.
    Health,
    /// Deliver one real queued message; its delivery is the health signal (and counts as its
    /// delivery). With nothing queued there is nothing to protect: the flow resumes.
    Message,
}

impl ProbeMode {
    /// `health`, `message`, or `auto` (health when a probe URL is configured, else message).
    pub fn parse(value: &str, has_probe_url: bool) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "health" => Ok(ProbeMode::Health),
            "message" => Ok(ProbeMode::Message),
            "auto" | "" if has_probe_url => Ok(ProbeMode::Health),
            "auto" | "" => Ok(ProbeMode::Message),
            other => Err(format!("`{other}` is not health, message or auto")),
        }
    }
}

/// One thing the watchdog puts right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fix {
    /// Flowing, but the mapping is disabled.
    EnableMapping,
    /// Halted, but the mapping is enabled.
    DisableMapping,
    /// Halted, and the probe timer is overdue: set it again, due now.
    ReplaceTimer,
    /// A probe started and never finished: count it as failed and set the next timer.
    AbandonProbe,
}

impl Fix {
    pub fn describe(self) -> &'static str {
        match self {
            Fix::EnableMapping => "the gate flows but the mapping was disabled: enabled it",
            Fix::DisableMapping => "the gate is halted but the mapping was enabled: disabled it",
            Fix::ReplaceTimer => {
                "the gate is halted and no probe came in time: set a new probe timer"
            }
            Fix::AbandonProbe => {
                "a probe never finished: counted it as failed and set the next timer"
            }
        }
    }
}

/// What the watchdog does for one gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub fixes: Vec<Fix>,
    /// The ramp-up has run its time: raise the mapping to its full concurrency.
    pub end_ramp: bool,
    /// How long the gate has been out of `Flowing` (0 while flowing), for the
    /// `GateHaltedSeconds` metric.
    pub halted_seconds: u64,
}

/// Judges `gate` and its `switch` (`None`: the target has no mapping, e.g. the inbox portal)
/// at `now_ms`, allowing `grace_ms` past a due probe and `ramp_ms` of ramp-up.
pub fn judge(
    gate: &Gate,
    switch: Option<&SwitchState>,
    now_ms: u64,
    grace_ms: u64,
    ramp_ms: u64,
) -> Verdict {
    let mut fixes = Vec::new();
    let halted_seconds = if gate.is_flowing() {
        0
    } else {
        now_ms.saturating_sub(gate.halted_at_ms) / 1000
    };
    let mut end_ramp = false;
    match gate.state {
        GateState::Flowing => {
            if switch == Some(&SwitchState::Disabled) {
                fixes.push(Fix::EnableMapping);
            }
            end_ramp = gate.ramping && now_ms.saturating_sub(gate.resumed_at_ms) >= ramp_ms;
        }
        GateState::Halted => {
            if switch == Some(&SwitchState::Enabled) {
                fixes.push(Fix::DisableMapping);
            }
            let due = gate.next_probe_at_ms.max(gate.changed_at_ms);
            if !gate.manual && now_ms > due.saturating_add(grace_ms) {
                fixes.push(Fix::ReplaceTimer);
            }
        }
        GateState::Probing => {
            if now_ms > gate.changed_at_ms.saturating_add(grace_ms) {
                // A resume that stopped half-way may have left the mapping enabled.
                if switch == Some(&SwitchState::Enabled) {
                    fixes.push(Fix::DisableMapping);
                }
                fixes.push(Fix::AbandonProbe);
            }
        }
    }
    Verdict {
        fixes,
        end_ramp,
        halted_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: u64 = 120_000;
    const RAMP: u64 = 60_000;

    fn halted(at: u64, probe_at: u64) -> Gate {
        let mut g = Gate::new("t").trip(at, "x", false, 0).unwrap();
        g.next_probe_at_ms = probe_at;
        g
    }

    #[test]
    fn a_halt_whose_timer_was_lost_gets_a_new_one_after_the_grace() {
        let g = halted(1_000, 2_000);
        let disabled = Some(&SwitchState::Disabled);
        assert!(judge(&g, disabled, 2_000 + GRACE, GRACE, RAMP)
            .fixes
            .is_empty());
        let v = judge(&g, disabled, 2_001 + GRACE, GRACE, RAMP);
        assert_eq!(v.fixes, vec![Fix::ReplaceTimer]);
        assert_eq!(v.halted_seconds, (1_001 + GRACE) / 1000);
    }

    #[test]
    fn a_halted_gate_with_an_enabled_mapping_disables_it() {
        let g = halted(1_000, 10_000);
        let v = judge(&g, Some(&SwitchState::Enabled), 5_000, GRACE, RAMP);
        assert_eq!(v.fixes, vec![Fix::DisableMapping]);
        let changing = SwitchState::Changing("Disabling".into());
        assert!(judge(&g, Some(&changing), 5_000, GRACE, RAMP)
            .fixes
            .is_empty());
    }

    #[test]
    fn a_flowing_gate_with_a_disabled_mapping_enables_it_and_ends_its_ramp_in_time() {
        let g = halted(0, 0).resume(None, 1_000, "", true).unwrap();
        let v = judge(&g, Some(&SwitchState::Disabled), 2_000, GRACE, RAMP);
        assert_eq!(
            (v.fixes.clone(), v.end_ramp, v.halted_seconds),
            (vec![Fix::EnableMapping], false, 0)
        );
        assert!(judge(&g, Some(&SwitchState::Enabled), 1_000 + RAMP, GRACE, RAMP).end_ramp);
    }

    #[test]
    fn a_probe_that_never_finished_is_abandoned() {
        let g = halted(0, 1_000).begin_probe(1, 0, 1_000).unwrap();
        assert!(judge(&g, None, 1_000 + GRACE, GRACE, RAMP).fixes.is_empty());
        assert_eq!(
            judge(&g, None, 1_001 + GRACE, GRACE, RAMP).fixes,
            vec![Fix::AbandonProbe]
        );
    }

    #[test]
    fn a_manual_halt_gets_no_probe_but_keeps_its_mapping_disabled() {
        let g = Gate::new("t").trip(0, "ops", true, 0).unwrap();
        let v = judge(&g, Some(&SwitchState::Enabled), 10 * GRACE, GRACE, RAMP);
        assert_eq!(v.fixes, vec![Fix::DisableMapping]);
    }

    #[test]
    fn probe_modes_parse_with_auto_following_the_probe_url() {
        assert_eq!(ProbeMode::parse("auto", true), Ok(ProbeMode::Health));
        assert_eq!(ProbeMode::parse("auto", false), Ok(ProbeMode::Message));
        assert_eq!(ProbeMode::parse("Message", true), Ok(ProbeMode::Message));
        assert!(ProbeMode::parse("ping", true).unwrap_err().contains("ping"));
    }
}
