//! In-memory fakes of the ports, for unit tests of the functions' handlers (feature
//! `test-util`). They follow the ports' contracts, including the conditional writes.

use std::sync::Mutex;

mod breaker;
mod leased;

pub use breaker::*;
pub use leased::*;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
