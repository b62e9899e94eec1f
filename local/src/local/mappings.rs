//! The functions' event source mappings in the emulator (queue and stream): their state and
//! MaximumConcurrency as reported, and turning them on or off.

use std::time::Duration;

use anyhow::{anyhow, Result};
use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingOutput;

use super::Local;
use crate::aws::describe;
use crate::stack::Mapping;

impl Local {
    /// Turns a function's stream mapping on or off in the emulator, and waits until it says so.
    pub async fn set_stream_enabled(&self, binary: &str, enabled: bool) -> Result<()> {
        let m = self.stack.stream_of(binary)?;
        self.set_enabled(m, enabled, "stream mapping").await
    }

    /// Turns a function's SQS mapping on or off in the emulator, and waits until it says so.
    pub async fn set_mapping_enabled(&self, binary: &str, enabled: bool) -> Result<()> {
        let m = self.stack.mapping_of(binary)?;
        self.set_enabled(m, enabled, "mapping").await
    }

    /// The state of a function's mapping as the emulator reports it (`Enabled`, `Disabled`, ...).
    pub async fn mapping_state(&self, binary: &str) -> Result<String> {
        let m = self.stack.mapping_of(binary)?;
        Ok(self.get_mapping(m).await?.state.unwrap_or_default())
    }

    /// A function's SQS mapping's MaximumConcurrency as the emulator reports it.
    pub async fn mapping_concurrency(&self, binary: &str) -> Result<Option<i32>> {
        let m = self.stack.mapping_of(binary)?;
        let out = self.get_mapping(m).await?;
        Ok(out.scaling_config.and_then(|c| c.maximum_concurrency))
    }

    /// Turns mapping `m` on or off and waits (30 s at most) until the emulator reports it
    /// so; `what` names it in the timeout.
    async fn set_enabled(&self, m: &Mapping, enabled: bool, what: &str) -> Result<()> {
        self.emu
            .lambda
            .update_event_source_mapping()
            .uuid(&m.uuid)
            .enabled(enabled)
            .send()
            .await
            .map_err(|e| anyhow!("UpdateEventSourceMapping: {}", describe(&e)))?;
        let want = if enabled { "Enabled" } else { "Disabled" };
        self.wait_for(
            &format!("{what} {want}"),
            Duration::from_secs(30),
            || async { Ok(self.get_mapping(m).await?.state.as_deref() == Some(want)) },
        )
        .await?;
        Ok(())
    }

    /// Mapping `m` as the emulator reports it.
    async fn get_mapping(&self, m: &Mapping) -> Result<GetEventSourceMappingOutput> {
        self.emu
            .lambda
            .get_event_source_mapping()
            .uuid(&m.uuid)
            .send()
            .await
            .map_err(|e| anyhow!("GetEventSourceMapping: {}", describe(&e)))
    }
}
