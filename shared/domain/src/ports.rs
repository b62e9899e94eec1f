//! The ports: what the functions need from the outside world, as small traits. `shared/aws`
//! implements them against AWS; `fakes` (feature `test-util`) in memory for unit tests.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backoff::TimerRoute;
use crate::gate::Gate;
use crate::outcome::Outcome;
use crate::signal::{CloseRequest, FlowEvent, OpenRequest, ProbeRequest};

pub use crate::error::{ErrorKind, PortError, PortResult};

/// The persisted gates, one per target.
pub trait GateStore: Send + Sync {
    /// The gate of `target`; [`Gate::new`] if none is stored.
    fn load(&self, target: &str) -> impl Future<Output = PortResult<Gate>> + Send;
    /// Stores `next` only if the stored version is still `next.version - 1` (absent for 0).
    /// `Ok(false)`: another writer got there first, and nothing was written.
    fn save(&self, next: &Gate) -> impl Future<Output = PortResult<bool>> + Send;
    /// Adds `delivered` to the ramp-up count of `target`'s resume in `epoch` (an atomic add,
    /// not a transition). `Ok(None)`: the gate is no longer ramping up in that epoch.
    fn count_ramp(
        &self,
        target: &str,
        epoch: u64,
        delivered: u64,
    ) -> impl Future<Output = PortResult<Option<u64>>> + Send;
}

/// What the ledger knows of a set of identities. A read error concerns only its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerRead {
    /// Delivered within the dedup window.
    pub delivered: HashSet<String>,
    /// Identities that could not be read, with why.
    pub unreadable: HashMap<String, PortError>,
    /// Receives on which an identity failed on its own so far (only those with any).
    pub strikes: HashMap<String, u32>,
}

/// Identities already delivered (within the dedup window).
pub trait Ledger: Send + Sync {
    fn delivered(&self, identities: &[String]) -> impl Future<Output = LedgerRead> + Send;
    fn record(
        &self,
        identity: &str,
        message_id: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Counts one receive on which `identity` failed on its own (while other messages were
    /// delivered); returns how many so far. Halts and hand-backs do not count.
    fn strike(&self, identity: &str) -> impl Future<Output = PortResult<u32>> + Send;
}

/// A message that will never be delivered, with why; kept whole so it can be replayed to its
/// source as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedMessage {
    /// Where it came from (queue or pipeline name).
    pub source: String,
    /// The ARN of the queue it came from, when it came from one.
    #[serde(default)]
    pub source_arn: Option<String>,
    pub message_id: String,
    /// Its correlation id ([`crate::message::correlation_id`]).
    #[serde(default)]
    pub correlation_id: String,
    pub identity: Option<String>,
    pub reason: String,
    pub parked_at_ms: u64,
    /// The original body, unchanged.
    pub body: String,
}

pub trait Parking: Send + Sync {
    fn park(&self, message: &ParkedMessage) -> impl Future<Output = PortResult<()>> + Send;
}

pub trait EventBus: Send + Sync {
    fn emit(&self, event: &FlowEvent) -> impl Future<Output = PortResult<()>> + Send;
}

/// Where the switch of a flow stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchState {
    Enabled,
    Disabled,
    /// On its way (`Enabling`, `Disabling`, `Updating`, ...): leave it alone for now.
    Changing(String),
}

/// The switch as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchReading {
    pub state: SwitchState,
    /// The mapping's MaximumConcurrency, if set.
    pub max_concurrency: Option<u32>,
}

/// The switch of the flow: the event source mapping of the guarded queue.
pub trait FlowSwitch: Send + Sync {
    fn read(&self) -> impl Future<Output = PortResult<SwitchReading>> + Send;
    /// Enables or disables the flow when `enabled` is given, and sets its MaximumConcurrency
    /// when given (alone, it leaves the flow on or off as it is). A switch that is still
    /// changing is waited for a short, bounded while.
    fn set(
        &self,
        enabled: Option<bool>,
        max_concurrency: Option<u32>,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// Probe timers: an SQS delayed message or a one-time Scheduler schedule.
pub trait Timers: Send + Sync {
    /// Sets the timer. Setting the same schedule twice is not an error.
    fn set(
        &self,
        probe: &ProbeRequest,
        route: TimerRoute,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Removes a pending schedule of `probe`, if any (delayed SQS messages cannot be removed;
    /// they fire stale and are refused by the gate).
    fn cancel(&self, probe: &ProbeRequest) -> impl Future<Output = PortResult<()>> + Send;
}

/// Asynchronous invocation of the other breaker functions.
pub trait Invoker: Send + Sync {
    fn close(&self, request: &CloseRequest) -> impl Future<Output = PortResult<()>> + Send;
    fn backoff(&self, probe: &ProbeRequest) -> impl Future<Output = PortResult<()>> + Send;
    fn open(&self, request: &OpenRequest) -> impl Future<Output = PortResult<()>> + Send;
}

/// The guarded external API.
pub trait Target: Send + Sync {
    /// One delivery attempt with the header-safe `Idempotency-Key` of `identity`
    /// ([`crate::message::idempotency_key`]), ending after `timeout`. Network errors and
    /// timeouts come back as target-level [`Outcome::Unavailable`].
    fn deliver(
        &self,
        identity: &str,
        body: &Value,
        timeout: Duration,
    ) -> impl Future<Output = Outcome> + Send;
    /// The health probe: only a 2xx answer is [`Outcome::Delivered`]; any other answer, a
    /// timeout or a connection error is [`Outcome::Unavailable`] (with its Retry-After).
    fn check(&self, timeout: Duration) -> impl Future<Output = Outcome> + Send;
    /// The timeout of one call, as configured.
    fn timeout(&self) -> Duration;
}

/// How a guarded target is probed after a halt: its health check (`target.check`) or, in
/// [`ProbeMode::Message`], one real queued message delivered through `target.deliver`.
pub struct Probe<T> {
    pub target: T,
    pub mode: crate::watchdog::ProbeMode,
}

/// A message taken from the guarded queue for a probe (`ProbeMode=message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub message_id: String,
    /// Its correlation id ([`crate::message::correlation_id`]).
    pub correlation_id: String,
    pub receipt: String,
    pub body: String,
    pub receive_count: u32,
    pub source_arn: String,
}

/// What the guarded queue gave a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// One message, invisible to others until [`ProbeSource::done`] or
    /// [`ProbeSource::release`].
    Message(Queued),
    /// The queue holds nothing at all: nothing waits to be delivered.
    Empty,
    /// Nothing visible now, but `waiting` messages are in flight or delayed (e.g. handed back
    /// by the halt): they cannot probe yet.
    Unseen { waiting: u64 },
}

/// The guarded queue, as the message probe uses it.
pub trait ProbeSource: Send + Sync {
    /// Takes one message, waiting briefly for one to be visible.
    fn take(&self) -> impl Future<Output = PortResult<Taken>> + Send;
    /// Deletes a message that was delivered or parked.
    fn done(&self, message: &Queued) -> impl Future<Output = PortResult<()>> + Send;
    /// Makes a message visible again at once.
    fn release(&self, message: &Queued) -> impl Future<Output = PortResult<()>> + Send;
}

// ---- The leased records of pipelines B and C ----

use crate::lease::{Claimed, Leased, Settle, Settled};

/// A table of leased records (the outbox, the inbox) as the worker that settles them sees it.
pub trait LeasedStore: Send + Sync {
    type Record: Leased;
    /// Ids of records in due-index shard `shard` whose `due_at` has come, oldest first.
    fn due(
        &self,
        shard: u32,
        now_ms: u64,
        limit: usize,
    ) -> impl Future<Output = PortResult<Vec<String>>> + Send;
    /// Claims record `id` if it is due (pending and due, or its lease expired): `InProgress`,
    /// `due_at = lease_until_ms`, attempts + 1, claim `token`. `None`: not due, or taken.
    fn claim(
        &self,
        id: &str,
        now_ms: u64,
        lease_until_ms: u64,
        token: &str,
    ) -> impl Future<Output = PortResult<Option<Claimed<Self::Record>>>> + Send;
    /// Settles a claimed record, only while the claim is still `c.token`
    /// ([`Settled::LeaseLost`] otherwise, and nothing is written); a `Done` of a versioned
    /// record also only while its version is still `c.record.version()`.
    fn settle(
        &self,
        c: &Claimed<Self::Record>,
        how: &Settle,
    ) -> impl Future<Output = PortResult<Settled>> + Send;
}

// ---- Pipeline B: the transactional outbox ----

use crate::outbox::NewRecord;

/// What the writer's transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    /// An application with this id exists already: nothing was written.
    AlreadyExists,
}

/// The business table and the outbox, written together.
pub trait ApplicationStore: Send + Sync {
    /// One transaction: the business record `application` under `id` and `record`, only if no
    /// application `id` exists yet.
    fn store(
        &self,
        id: &str,
        application: &Value,
        message_id: &str,
        record: &NewRecord,
    ) -> impl Future<Output = PortResult<Stored>> + Send;
}

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub detail_type: String,
    /// JSON text.
    pub detail: String,
}

/// The event bus the outbox publishes to.
pub trait Publisher: Send + Sync {
    /// One PutEvents call; one result per entry, in order. A failed call fails every entry.
    /// An entry the bus refuses as malformed is [`ErrorKind::Validation`]: it can never be
    /// published.
    fn publish(&self, entries: &[Outgoing]) -> impl Future<Output = Vec<PortResult<()>>> + Send;
}

// ---- Pipeline C: the inbox ----

use crate::inbox::{Current, Incoming};

/// A change the receiver writes: the incoming copy, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxWrite<'a> {
    pub incoming: &'a Incoming,
    pub message_id: &'a str,
    /// The correlation id of the copy, stored beside its message id.
    pub correlation_id: &'a str,
    pub now_ms: u64,
    /// Due-index shard of the record.
    pub shard: u32,
}

/// The inbox table as the receiver merges copies into it (the processor claims and settles
/// it as a [`LeasedStore`]).
pub trait InboxStore: Send + Sync {
    /// What is stored for `id` (a strongly consistent read).
    fn current(&self, id: &str) -> impl Future<Output = PortResult<Option<Current>>> + Send;
    /// Stores a new record (`ToBeProcessed`, version 1) only if none exists. `Ok(false)`:
    /// another writer stored one first, and nothing was written.
    fn insert(&self, w: &InboxWrite<'_>) -> impl Future<Output = PortResult<bool>> + Send;
    /// Replaces the record with `w` as `version` with `status`, only if the stored version and
    /// status are still `seen`'s. `fresh`: it enters the due index now, attempts reset.
    /// `Ok(false)`: it changed meanwhile, and nothing was written.
    fn replace(
        &self,
        w: &InboxWrite<'_>,
        seen: &Current,
        version: u64,
        status: crate::lease::Status,
        fresh: bool,
    ) -> impl Future<Output = PortResult<bool>> + Send;
    /// Moves the stored change time of `id` to `changed_at_ms`, only if the stored version and
    /// content are still `seen`'s. `Ok(false)`: it changed meanwhile, and nothing was written.
    fn touch(
        &self,
        id: &str,
        seen: &Current,
        changed_at_ms: u64,
    ) -> impl Future<Output = PortResult<bool>> + Send;
}
