//! Which stack: its outputs, parameters and resources, read from CloudFormation (`--stack`)
//! or from the file `make stack` writes (`--stack-file`, by default
//! `target/steadfast/stack.json` when present).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Deserialize;

use crate::aws::{describe, Aws};

/// The file `make stack` writes, the default stack when present.
pub const DEFAULT_FILE: &str = "target/steadfast/stack.json";

/// One resource of the stack.
#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    /// What `Ref` gives: a queue URL, a table or function name, a mapping's UUID.
    pub physical: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Stack {
    #[serde(rename = "stack")]
    pub name: String,
    /// The AWS endpoint the stack file was written for (a local stack's), if any.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    pub resources: BTreeMap<String, Resource>,
}

/// Where the stack is described.
#[derive(Debug, Clone)]
pub enum Source {
    CloudFormation(String),
    File(PathBuf),
}

impl Source {
    /// `--stack NAME`, else `--stack-file PATH`, else the default file when present.
    pub fn choose(stack: Option<String>, file: Option<PathBuf>) -> Result<Source> {
        match (stack, file) {
            (Some(name), _) => Ok(Source::CloudFormation(name)),
            (None, Some(path)) => Ok(Source::File(path)),
            (None, None) if Path::new(DEFAULT_FILE).exists() => {
                Ok(Source::File(DEFAULT_FILE.into()))
            }
            (None, None) => bail!(
                "no stack given: pass --stack NAME (a CloudFormation stack) or --stack-file PATH \
                 (the file `make stack` writes; {DEFAULT_FILE} is used when present)"
            ),
        }
    }

    /// The endpoint a stack file names, for when `AWS_ENDPOINT_URL` is not set.
    pub fn file_endpoint(&self) -> Result<Option<String>> {
        match self {
            Source::File(path) => Ok(Stack::from_file(path)?.endpoint),
            Source::CloudFormation(_) => Ok(None),
        }
    }
}

impl Stack {
    pub fn from_file(path: &Path) -> Result<Stack> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading stack file {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "stack file {} is not what `make stack` writes (stack, parameters, resources)",
                path.display()
            )
        })
    }

    pub async fn load(source: &Source, aws: &Aws) -> Result<Stack> {
        match source {
            Source::File(path) => Stack::from_file(path),
            Source::CloudFormation(name) => Stack::from_cloudformation(name, aws).await,
        }
    }

    async fn from_cloudformation(name: &str, aws: &Aws) -> Result<Stack> {
        let out = aws
            .cloudformation
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| anyhow!("DescribeStacks {name}: {}", describe(&e)))?;
        let stack = out
            .stacks()
            .first()
            .ok_or_else(|| anyhow!("CloudFormation has no stack {name}"))?;
        let parameters = stack
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_owned(),
                    p.parameter_value()?.to_owned(),
                ))
            })
            .collect();
        let mut resources = BTreeMap::new();
        let mut pages = aws
            .cloudformation
            .list_stack_resources()
            .stack_name(name)
            .into_paginator()
            .items()
            .send();
        while let Some(r) = pages.next().await {
            let r = r.map_err(|e| anyhow!("ListStackResources {name}: {}", describe(&e)))?;
            if let (Some(logical), Some(physical), Some(kind)) = (
                r.logical_resource_id(),
                r.physical_resource_id(),
                r.resource_type(),
            ) {
                resources.insert(
                    logical.to_owned(),
                    Resource {
                        kind: kind.to_owned(),
                        physical: physical.to_owned(),
                    },
                );
            }
        }
        Ok(Stack {
            name: name.to_owned(),
            endpoint: None,
            parameters,
            resources,
        })
    }

    /// What `Ref` gives for a logical resource.
    pub fn physical(&self, logical: &str) -> Result<&str> {
        self.resources
            .get(logical)
            .map(|r| r.physical.as_str())
            .ok_or_else(|| anyhow!("stack {} has no resource {logical}", self.name))
    }

    /// The logical ids and physical ids of every resource of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.resources
            .iter()
            .filter(move |(_, r)| r.kind == kind)
            .map(|(l, r)| (l.as_str(), r.physical.as_str()))
    }

    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The guarded targets: the processor's (with its orders mapping) and the inbox's.
    pub fn targets(&self) -> Vec<Target> {
        let main = self.parameter("TargetName").unwrap_or("portal").to_owned();
        let inbox = self
            .parameter("InboxTargetName")
            .map_or_else(|| format!("{main}-inbox"), str::to_owned);
        vec![
            Target {
                name: main,
                mapping: self
                    .physical("ProcessorFunctionOrders")
                    .ok()
                    .map(str::to_owned),
            },
            Target {
                name: inbox,
                mapping: None,
            },
        ]
    }

    /// Shards of a leased table's due index (`OutboxShards`, `InboxShards`).
    pub fn shards(&self, table: crate::Table) -> u32 {
        let (name, default) = match table {
            crate::Table::Outbox => ("OutboxShards", 8),
            crate::Table::Inbox => ("InboxShards", 4),
        };
        self.parameter(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

/// A guarded target: its gate's key and the mapping its gate switches, if any.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub mapping: Option<String>,
}

/// The last part of a queue URL or ARN: the queue's name.
pub fn queue_name(url_or_arn: &str) -> &str {
    url_or_arn.rsplit(['/', ':']).next().unwrap_or(url_or_arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_file_gives_targets_and_resources() {
        let s: Stack = serde_json::from_str(
            r#"{"stack":"s","endpoint":"http://127.0.0.1:4566","parameters":{"TargetName":"erp","InboxTargetName":""},
                "resources":{"ProcessorFunctionOrders":{"type":"AWS::Lambda::EventSourceMapping","physical":"u-1","arn":null},
                             "OrdersQueue":{"type":"AWS::SQS::Queue","physical":"http://h/queue/r/1/s-orders","arn":"a"}}}"#,
        )
        .unwrap();
        let t = s.targets();
        assert_eq!(
            (t[0].name.as_str(), t[0].mapping.as_deref()),
            ("erp", Some("u-1"))
        );
        assert_eq!(
            (t[1].name.as_str(), t[1].mapping.as_deref()),
            ("erp-inbox", None)
        );
        assert_eq!(s.of_kind("AWS::SQS::Queue").count(), 1);
        assert_eq!(s.shards(crate::Table::Outbox), 8);
        assert!(s
            .physical("Nope")
            .unwrap_err()
            .to_string()
            .contains("no resource Nope"));
    }

    #[test]
    fn a_queue_is_named_by_the_end_of_its_url_or_arn() {
        assert_eq!(
            queue_name("http://h:4566/queue/us-east-1/000/s-orders"),
            "s-orders"
        );
        assert_eq!(queue_name("arn:aws:sqs:us-east-1:000:s-orders"), "s-orders");
    }
}
