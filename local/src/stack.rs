//! A deployed copy of `infra/template.yaml` in LocalStack: `infra/local/deploy.py` creates it
//! through LocalStack's CloudFormation with the functions' real code, and this module reads
//! what it reports (outputs, resources, functions, event source mappings).

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Deserialize;

/// One resource of the stack.
#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    /// What `Ref` gives: a queue URL, a table or function name.
    pub physical: String,
    pub arn: Option<String>,
}

/// A function of the stack, by the binary that runs it.
#[derive(Debug, Clone, Deserialize)]
pub struct Function {
    pub logical: String,
    /// The deployed function's name.
    pub name: String,
    /// Seconds.
    pub timeout: u64,
}

/// An event source mapping of the stack.
#[derive(Debug, Clone, Deserialize)]
pub struct Mapping {
    pub uuid: String,
    /// The binary of the mapped function.
    pub binary: String,
    pub source_arn: String,
    /// `sqs` or `stream`.
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Stack {
    #[serde(rename = "stack")]
    pub name: String,
    pub endpoint: String,
    pub status: String,
    pub seconds: f64,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub resources: BTreeMap<String, Resource>,
    /// By binary name.
    pub functions: BTreeMap<String, Function>,
    pub mappings: Vec<Mapping>,
    #[serde(default)]
    pub failures: Vec<String>,
}

impl Stack {
    /// What `Ref` gives for a logical resource (a queue URL, a table name, ...).
    pub fn reference(&self, logical: &str) -> Result<&str> {
        self.resources
            .get(logical)
            .map(|r| r.physical.as_str())
            .ok_or_else(|| anyhow!("stack {} has no resource {logical}", self.name))
    }

    /// The ARN of a logical resource (queues, tables, functions; `Table.StreamArn` for a
    /// table's stream).
    pub fn arn(&self, logical: &str) -> Result<&str> {
        self.resources
            .get(logical)
            .and_then(|r| r.arn.as_deref())
            .ok_or_else(|| anyhow!("stack {} has no ARN for {logical}", self.name))
    }

    pub fn function(&self, binary: &str) -> Result<&Function> {
        self.functions
            .get(binary)
            .ok_or_else(|| anyhow!("stack {} has no function {binary}", self.name))
    }

    /// The queue mapping of a function.
    pub fn mapping_of(&self, binary: &str) -> Result<&Mapping> {
        self.mappings
            .iter()
            .find(|m| m.binary == binary && m.kind == "sqs")
            .ok_or_else(|| anyhow!("no queue mapping for {binary}"))
    }

    /// The stream mapping of a function.
    pub fn stream_of(&self, binary: &str) -> Result<&Mapping> {
        self.mappings
            .iter()
            .find(|m| m.binary == binary && m.kind == "stream")
            .ok_or_else(|| anyhow!("no stream mapping for {binary}"))
    }

    /// The binary whose function has ARN or name `target`, if it is one of this stack's.
    pub fn binary_of(&self, target: &str) -> Option<&str> {
        self.functions.iter().find_map(|(b, f)| {
            let arn = self
                .resources
                .get(&f.logical)
                .and_then(|r| r.arn.as_deref());
            (f.name == target || arn == Some(target)).then_some(b.as_str())
        })
    }
}

/// How a stack's functions get their code: `Dir` points at the built `bootstrap` folders
/// (LocalStack's hot-reload location: one copy for every test stack), `Zip` uploads each
/// `bootstrap.zip` as `sam deploy` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Dir,
    Zip,
}

/// Deploys the template as stack `name` with these parameters and local function environment
/// overrides, through `infra/local/deploy.py` (LocalStack's Python, boto3).
pub fn deploy(
    name: &str,
    params: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    code: Code,
) -> Result<Stack> {
    let root = crate::workspace_root();
    let python = root.join(".tools/localstack-venv/bin/python");
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("infra/local/deploy.py")).arg(name);
    cmd.arg("--code").arg(match code {
        Code::Dir => "dir",
        Code::Zip => "zip",
    });
    for (k, v) in params {
        cmd.arg("--param").arg(format!("{k}={v}"));
    }
    for (k, v) in env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    let out = cmd.output().with_context(|| {
        format!(
            "run {} (is LocalStack installed? make tools)",
            python.display()
        )
    })?;
    let stack: Stack = serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow!(
            "deploy {name}: {e}; {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    if stack.status != "CREATE_COMPLETE" {
        bail!(
            "deploy {name}: {} ({})",
            stack.status,
            stack.failures.join("; ")
        );
    }
    Ok(stack)
}

/// Deletes a stack (CloudFormation finishes it in the background) and its local overrides.
pub fn delete(name: &str) {
    let root = crate::workspace_root();
    let _ = Command::new(root.join(".tools/localstack-venv/bin/python"))
        .arg(root.join("infra/local/deploy.py"))
        .arg(name)
        .arg("--delete")
        .output();
}
