//! One local stack: the fake portal, a uniquely named copy of `infra/template.yaml` deployed
//! to LocalStack through its CloudFormation with the functions' real code (LocalStack runs
//! them), the Scheduler firing no emulator does, and an observer queue that receives every
//! event the functions put on the bus. Helpers read what tests and the demo need to count:
//! queue depths, mapping state, the gate, events, parked messages, the functions' own logs.
//!
//! This file holds the [`Local`] handle and its [`Options`]; its methods live by topic in the
//! submodules: bringing it up and down (`up`), invoking functions and reading their logs
//! (`functions`), event source mappings (`mappings`), queues (`queues`), gates (`gates`), the
//! outbox and inbox tables (`tables`), events on the bus (`events`), waiting (`wait`), and the
//! message bodies tests and the demo send (`bodies`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::aws::Emulator;
use crate::faults::FaultProxy;
use crate::portal::Portal;
use crate::schedules::Scheduler;
use crate::stack::{Code, Stack};

mod accounting;
mod bodies;
mod events;
mod functions;
mod gates;
mod mappings;
mod queues;
mod tables;
mod up;
mod wait;

pub use accounting::{Accounting, DLQS};
pub use bodies::{application, order};
pub use events::{Approval, Observed};
pub use functions::lambda_log_dir;
pub use queues::send_batches;
pub use tables::InboxRow;

pub struct Options {
    /// Prefix of the unique stack name.
    pub prefix: String,
    /// Template parameters on top of the local defaults.
    pub parameters: HashMap<String, String>,
    /// Run `rate(...)` schedules at this period instead (time compression). Default 2 s.
    pub rate_every: Option<Duration>,
    /// Function environment on top of the template's and the local stack's.
    pub env: Vec<(String, String)>,
    /// How the functions get their code. Default [`Code::Dir`].
    pub code: Code,
    /// Serve the fake portal and point the stack at it. Default true; `false` needs
    /// `TargetUrl`, `PortalUrl` and `PortalProbeUrl` in `parameters`.
    pub portal: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "sf".into(),
            parameters: HashMap::new(),
            rate_every: Some(Duration::from_secs(2)),
            env: vec![],
            code: Code::Dir,
            portal: true,
        }
    }
}

pub struct Local {
    pub emu: Emulator,
    pub stack: Stack,
    pub portal: Portal,
    pub scheduler: Option<Scheduler>,
    pub observer_url: String,
    /// The fault-injecting proxy every function reaches EventBridge through.
    pub faults: FaultProxy,
    events: Mutex<Vec<Observed>>,
    approvals: Mutex<Vec<Approval>>,
}
