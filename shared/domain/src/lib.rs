//! Steadfast's pure logic: no AWS, no I/O, no clocks. Everything here is decided from its
//! inputs, so it is exhaustively unit- and property-tested. The functions carry out what this
//! crate decides, through the ports in [`ports`].

pub mod application;
pub mod backoff;
pub mod error;
pub mod gate;
pub mod inbox;
pub mod json;
pub mod judge;
pub mod lease;
pub mod message;
pub mod outbox;
pub mod outcome;
pub mod ports;
pub mod retry;
pub mod signal;
pub mod watchdog;

#[cfg(feature = "test-util")]
pub mod fakes;

pub use application::{transform, ApplicationError, ApprovalApplication};
pub use backoff::{Backoff, Jitter, TimerRoute};
pub use gate::{Gate, GateState, Refused};
pub use inbox::{InboxConfig, InboxError, Incoming, Merge};
pub use judge::{is_poison, Action, BatchRun, Fate, Trip};
pub use lease::{Claimed, LeasePolicy, Settle, Settled, Status};
pub use message::{
    correlation_id, idempotency_key, IdentityRule, MessageError, OrderMessage,
    CORRELATION_ATTRIBUTE,
};
pub use outbox::{NewRecord, OutboxRecord, RelayPolicy};
pub use outcome::{Outcome, StatusClasses};
pub use retry::{Next, RetryPolicy};
pub use signal::{CloseRequest, FlowEvent, OpenRequest, ProbeRequest, TripRequest};
pub use watchdog::ProbeMode;
