//! Pipeline C, the inbox: from a noisy source (an ERP that resends the same record under new
//! message ids, with changing export metadata, sometimes out of order) to exactly one clean
//! delivery per real change.
//!
//! Per entity type the configuration names the business key (JSON pointers, composite keys
//! allowed), the source timestamp that orders versions, the noise fields that never count as a
//! change, and the portal endpoint. A message becomes an [`Incoming`]: the record's id
//! (`type/key`), its clean record (the message without its noise fields) and a content hash
//! over the canonical form of that record without noise and timestamp, so key order,
//! whitespace, `1.0` vs `1`, message ids and export times never make two copies differ.
//!
//! The merge rules ([`merge()`]), applied with conditional writes on the stored version:
//!
//! ```text
//!   no record yet                                        → Insert: ToBeProcessed, version 1
//!   same hash as stored                                  → Duplicate: dropped
//!   different hash, older (timestamp, hash) than stored  → Stale: dropped
//!   different hash otherwise                             → Replace: version + 1, ToBeProcessed
//!                                                          (an InProgress record stays InProgress)
//! ```
//!
//! Equal timestamps with different content are ordered by their hash, so every arrival order
//! of the same copies ends in the same stored version (a refinement of DESIGN §4, which would
//! let the last arrival win and so depend on SQS's order).
//!
//! The processor's side is the leased-record lifecycle of [`crate::lease`], with the version
//! check: a delivered version is `Processed` only if it is still the stored one, otherwise the
//! record is due again so the newer version goes next. A new version of a `Processed` or
//! `Failed` record makes it `ToBeProcessed` again.
//!
//! The parts: `config` checks the configuration and reads messages, `canonical` gives the
//! canonical form and the content hash, `merge` decides on each copy, and `lifecycle` is what
//! the processor delivers of a claimed record.

mod canonical;
mod config;
mod lifecycle;
mod merge;

pub use canonical::canonical;
pub use config::{EntitySpec, InboxConfig, InboxError, Incoming};
pub use lifecycle::{default_policy, InboxRecord};
pub use merge::{merge, Current, Merge};

/// Default largest clean record kept (DynamoDB items hold at most 400 KB, attributes included).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 350_000;
/// SQS's own largest message body (1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Largest `type/key` id (DynamoDB allows 2048 bytes for a partition key).
pub const MAX_ID_BYTES: usize = 1024;
