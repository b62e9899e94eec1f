//! Reads `infra/template.yaml` for what the local stack needs from it directly: parameter
//! defaults (e.g. the inbox's entity configuration, for the noisy ERP). The stack itself is
//! deployed through LocalStack's CloudFormation (`infra/local/deploy.py`).

use anyhow::{anyhow, Context as _, Result};
use serde_yaml::Value;

pub struct Template {
    pub root: Value,
}

impl Template {
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let root: Value =
            serde_yaml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        Ok(Template { root })
    }

    /// The default of template parameter `name`, as text.
    pub fn parameter_default(&self, name: &str) -> Result<String> {
        let v = &self.root["Parameters"][name]["Default"];
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(anyhow!("template parameter {name} has no default")),
        }
    }
}
