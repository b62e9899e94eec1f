//! What the functions share around the domain, with no AWS in it (the adapters come through
//! the ports): how an SQS batch is run and answered ([`batch`]), how the due index is swept and
//! a stream event read ([`sweep`]), and how deliveries are driven by the batch judge until they
//! are done or the flow must halt ([`deliver`]).

pub mod batch;
pub mod deliver;
pub mod serve;
pub mod sweep;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
