//! The batch judge: one SQS batch's deliveries as a pure state machine. The processor asks
//! [`BatchRun::next`] what to do (call the target, wait, or stop), does it, and reports each
//! answer with [`BatchRun::answer`]; at the end every message has a [`Fate`], and [`Trip`]
//! says whether the flow must halt.
//!
//! The question it answers is whether target-level failures mean "the target is broken for
//! everyone" (halt the flow; every message stays queued) or "this one message is its own
//! problem" (hand it back; park it once it has kept failing). Rules (property-tested):
//! - messages are tried fewest receives first, so a message that failed before is tried after
//!   fresh ones;
//! - a message makes at most `max_attempts` calls per invocation;
//! - before any delivery in the batch, a message with a batch-mate after it stops one call
//!   short and the next message's first answer witnesses for the target: a failure there too
//!   (`max_attempts` failures over two messages) halts the flow; a delivery means the first
//!   message's failures were its own;
//! - after a delivery in the batch, the target worked moments ago: a message that uses up its
//!   calls failed on its own, for at most [`OWN_FAILURES_PER_DELIVERY`] messages per
//!   delivery; past that, failures count against the target again (an outage that begins
//!   mid-batch costs at most `max_attempts` · 3 calls);
//! - a message whose failures were its own ends [`Fate::Own`]: handed back, or parked as
//!   poison once it has failed on its own on more than `PoisonReceiveCount` receives (the
//!   processor counts these in the ledger; halts do not count);
//! - a message that fails with no batch-mate delivered before or after it halts the flow:
//!   without a witness a sick API and a poison message cannot be told apart — unless it has
//!   failed on its own before (its strikes, from the ledger): then it fails on its own again;
//! - an announced wait (Retry-After) longer than the retry cap (5 s), or than the invocation
//!   has left, halts the flow at once (the first probe then waits for it), unless a delivery
//!   in this batch vouches that the wait is this message's alone;
//! - a failure that leaves no time for another try hands the message back untouched while a
//!   delivery vouches for the target, and counts against the target otherwise;
//! - when the flow halts after all, messages taken for failing on their own since the last
//!   delivery go back untouched too (the target failed them, not themselves);
//! - message-level answers neither halt nor count; no call starts that cannot end in time.

use std::time::Duration;

use crate::outcome::Outcome;
use crate::retry::RetryPolicy;

/// What the processor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Call the target with message `index` (of the batch as given), try number `attempt`,
    /// ending the call after `timeout`.
    Call {
        index: usize,
        attempt: u32,
        timeout: Duration,
    },
    /// Pause before the next call.
    Wait(Duration),
    /// Nothing more to do: read the fates.
    Done,
}

/// How one message of the batch ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Not decided yet (only before [`Action::Done`]).
    Open,
    Delivered,
    /// The target refused it (message-level): park it with this reason.
    Refused(String),
    /// Back to the queue untouched: the flow halted, or the invocation ran out of time.
    HandBack,
    /// It failed on its own while batch-mates were delivered, with this last error: count it
    /// against the message (hand it back, or park it as poison after enough such receives).
    Own(String),
}

/// Messages per delivery whose failures may count as their own (see the module rules).
pub const OWN_FAILURES_PER_DELIVERY: u32 = 2;

/// Whether a message that has failed on its own on `strikes` receives is poison, for a
/// threshold of `poison_receive_count` (default 5): parked on the receive after that.
pub fn is_poison(strikes: u32, poison_receive_count: u32) -> bool {
    strikes > poison_receive_count
}

/// The flow must halt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    /// The message whose answer decided it.
    pub index: usize,
    /// Calls made for that message.
    pub attempts: u32,
    /// Target-level failures in a row that led here.
    pub failures: u32,
    /// The last failure.
    pub reason: String,
    /// The longest wait the target announced in this batch, for the first probe.
    pub wait_hint: Option<Duration>,
}

/// One batch's deliveries. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct BatchRun {
    policy: RetryPolicy,
    call_timeout: Duration,
    receive_counts: Vec<u32>,
    /// Receives on which each message failed on its own before (from the ledger).
    strikes: Vec<u32>,
    /// Message indexes in the order they are tried.
    order: Vec<usize>,
    pos: usize,
    /// Calls made for the message at `pos`.
    attempt: u32,
    wait: Option<Duration>,
    /// A message that stopped one try short, waiting for the next message's answer.
    suspect: Option<usize>,
    /// Target-level failures since the last delivery or absolution.
    streak: u32,
    /// Messages those failures came from.
    streak_messages: u32,
    /// Messages whose failures may still count as their own (refilled by each delivery).
    credit: u32,
    /// Messages judged to have failed on their own since the last delivery: if the flow halts
    /// after all, they go back untouched.
    own_since_delivery: Vec<usize>,
    longest_wait: Option<Duration>,
    last_reason: Vec<String>,
    fates: Vec<Fate>,
    trip: Option<Trip>,
    done: bool,
}

impl BatchRun {
    /// A run over messages with these receive counts (their SQS `ApproximateReceiveCount`).
    /// `call_timeout` is the target's configured timeout.
    pub fn new(policy: RetryPolicy, call_timeout: Duration, receive_counts: &[u32]) -> Self {
        let mut order: Vec<usize> = (0..receive_counts.len()).collect();
        order.sort_by_key(|&i| receive_counts[i]);
        BatchRun {
            policy,
            call_timeout,
            receive_counts: receive_counts.to_vec(),
            strikes: vec![0; receive_counts.len()],
            order,
            pos: 0,
            attempt: 0,
            wait: None,
            suspect: None,
            streak: 0,
            streak_messages: 0,
            credit: 0,
            own_since_delivery: Vec::new(),
            longest_wait: None,
            last_reason: vec![String::new(); receive_counts.len()],
            fates: vec![Fate::Open; receive_counts.len()],
            trip: None,
            done: false,
        }
    }

    /// The messages' strikes so far: a message that has failed on its own before is tried
    /// after the others, and failing again with no batch-mate to vouch, it fails on its own
    /// again instead of halting the flow (a lone poison message must not halt a healthy API).
    pub fn with_strikes(mut self, strikes: &[u32]) -> Self {
        self.strikes = strikes.to_vec();
        self.strikes.resize(self.fates.len(), 0);
        let (strikes, receives) = (&self.strikes, &self.receive_counts);
        self.order.sort_by_key(|&i| (strikes[i], receives[i]));
        self
    }

    /// The next step, with `remaining` time left in the invocation.
    pub fn next(&mut self, remaining: Duration) -> Action {
        if self.done {
            return Action::Done;
        }
        if let Some(w) = self.wait.take() {
            return Action::Wait(w);
        }
        let Some(&index) = self.order.get(self.pos) else {
            self.finish();
            return Action::Done;
        };
        match self.policy.call_timeout(self.call_timeout, remaining) {
            Some(timeout) => {
                self.attempt += 1;
                Action::Call {
                    index,
                    attempt: self.attempt,
                    timeout,
                }
            }
            None => {
                // No call can end in time: what was not tried goes back untouched.
                if self.attempt > 0 {
                    self.out_of_time(index);
                } else {
                    self.finish();
                }
                self.next(remaining)
            }
        }
    }

    /// The answer to the last [`Action::Call`]; `unit` in [0, 1) for the jitter.
    pub fn answer(&mut self, outcome: &Outcome, remaining: Duration, unit: f64) {
        let Some(&index) = self.order.get(self.pos) else {
            return;
        };
        match outcome {
            Outcome::Delivered { .. } => {
                self.fates[index] = Fate::Delivered;
                self.streak = 0;
                self.streak_messages = 0;
                self.credit = OWN_FAILURES_PER_DELIVERY;
                self.own_since_delivery.clear();
                if let Some(s) = self.suspect.take() {
                    self.its_own(s);
                }
                self.advance();
            }
            Outcome::Refused(reason) => {
                self.fates[index] = Fate::Refused(reason.clone());
                self.advance();
            }
            Outcome::Unavailable {
                reason,
                retry_after,
            } => {
                self.last_reason[index] = reason.clone();
                self.streak += 1;
                if self.attempt == 1 {
                    self.streak_messages += 1;
                }
                if let Some(w) = retry_after {
                    self.longest_wait = Some(self.longest_wait.map_or(*w, |l| l.max(*w)));
                }
                self.after_failure(index, *retry_after, remaining, unit);
            }
        }
    }

    fn after_failure(
        &mut self,
        index: usize,
        announced: Option<Duration>,
        remaining: Duration,
        unit: f64,
    ) {
        let max = self.policy.max_attempts.max(1);
        if self.streak_messages >= 2 && self.streak >= max {
            return self.halt(index);
        }
        if announced.is_some_and(|w| w > self.policy.cap || !self.policy.fits(w, remaining)) {
            // The target announced a wait longer than a short retry pause, or longer than this
            // invocation can sit out: the gate waits for it, not the invocation (unless a
            // delivery just now vouches that the wait is this message's alone).
            return self.stopped(index);
        }
        let has_next = self.pos + 1 < self.order.len();
        if self.attempt >= max {
            return self.stopped(index);
        }
        if self.credit == 0 && has_next && max >= 2 && self.attempt + 1 >= max {
            self.suspect = Some(index);
            return self.advance();
        }
        let pause = self.policy.pause(self.attempt, announced, unit);
        if !self.policy.fits(pause, remaining) {
            return self.out_of_time(index);
        }
        self.wait = Some(pause);
    }

    /// Message `index` has tries left but no time for them: the invocation's fault, not the
    /// message's. It goes back untouched while a delivery vouches for the target; else its
    /// failures count against the target.
    fn out_of_time(&mut self, index: usize) {
        if self.vouched() {
            self.streak = 0;
            self.streak_messages = 0;
            self.fates[index] = Fate::HandBack;
            self.advance();
        } else {
            self.halt(index);
        }
    }

    /// Message `index` can make no more calls: its own failure while a delivery in this
    /// batch vouches for the target, else the target's.
    fn stopped(&mut self, index: usize) {
        if self.vouched() {
            self.credit -= 1;
            self.its_own(index);
            self.advance();
        } else if self.known_poison(index) {
            self.its_own(index);
            self.advance();
        } else {
            self.halt(index);
        }
    }

    /// Message `index` failed on its own before and is the only one failing now.
    fn known_poison(&self, index: usize) -> bool {
        self.strikes[index] > 0 && self.streak_messages == 1
    }

    /// A delivery in this batch vouches for the target, for this one message's failures.
    fn vouched(&self) -> bool {
        self.credit > 0 && self.streak_messages == 1
    }

    fn its_own(&mut self, index: usize) {
        self.streak = 0;
        self.streak_messages = 0;
        self.fates[index] = Fate::Own(self.last_reason[index].clone());
        self.own_since_delivery.push(index);
    }

    fn halt(&mut self, index: usize) {
        self.trip = Some(Trip {
            index,
            attempts: self.attempt,
            failures: self.streak,
            reason: self.last_reason[index].clone(),
            wait_hint: self.longest_wait,
        });
        self.fates[index] = Fate::HandBack;
        // The target failed after all: what was taken for messages' own failures since the
        // last delivery was the target's too.
        for i in std::mem::take(&mut self.own_since_delivery) {
            self.fates[i] = Fate::HandBack;
        }
        self.suspect = None;
        self.finish();
    }

    fn advance(&mut self) {
        self.pos += 1;
        self.attempt = 0;
    }

    /// The batch ends: a pending suspect is judged without a witness, and whatever is still
    /// open goes back to the queue.
    fn finish(&mut self) {
        if let Some(s) = self.suspect.take() {
            if self.vouched() {
                self.credit -= 1;
                self.its_own(s);
            } else if self.known_poison(s) {
                self.its_own(s);
            } else {
                return self.halt(s);
            }
        }
        for f in &mut self.fates {
            if *f == Fate::Open {
                *f = Fate::HandBack;
            }
        }
        self.done = true;
    }

    pub fn fates(&self) -> &[Fate] {
        &self.fates
    }

    pub fn trip(&self) -> Option<&Trip> {
        self.trip.as_ref()
    }
}

#[cfg(test)]
mod tests;
