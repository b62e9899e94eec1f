//! Provisions a uniquely named copy of `infra/template.yaml` in the emulator: queues (with
//! retention, visibility, redrive), tables (keys, TTL), buses, roles, placeholder Lambda
//! functions (their code runs behind `cargo lambda watch`, not in the emulator) and the event
//! source mappings. Encryption and point-in-time recovery settings are not modelled by the
//! emulators and are checked by the template linters instead.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, Context as _, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_lambda::types::FunctionResponseType;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::Value;
use tracing::info;

use crate::aws::{describe, Emulator};
use crate::template::{as_string, resolve, Context, Physical, Template};

/// A function of the stack: its emulator name and the binary that runs it.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical: String,
    pub name: String,
    pub binary: String,
    pub timeout_s: u64,
    pub env: BTreeMap<String, String>,
}

/// An event source mapping of the stack.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub uuid: String,
    pub function: Function,
    pub queue_arn: String,
    pub queue_url: String,
    pub batch_size: i32,
    /// `MaximumBatchingWindowInSeconds`: how long a poll gathers messages for a batch.
    pub batching_window_s: u64,
}

/// A DynamoDB stream mapping of the stack.
#[derive(Debug, Clone)]
pub struct StreamMapping {
    pub uuid: String,
    pub function: Function,
    pub stream_arn: String,
    pub batch_size: i32,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    /// The mapping's filter patterns (EventBridge pattern syntax), if any.
    pub filters: Vec<serde_json::Value>,
}

/// A schedule that invokes a function at a fixed rate (`ScheduleV2` / `Schedule` events).
#[derive(Debug, Clone)]
pub struct RateSchedule {
    pub function: Function,
    /// As written in the template, e.g. `rate(1 minute)`.
    pub expression: String,
    pub every: std::time::Duration,
    /// The schedule's `Input` (JSON text), sent as the event; else a Scheduled Event.
    pub input: Option<String>,
}

/// `rate(N unit)` as a duration.
pub fn parse_rate(expr: &str) -> Option<std::time::Duration> {
    let inner = expr.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim().trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(n * secs))
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub ctx: Context,
    pub functions: Vec<Function>,
    pub mappings: Vec<Mapping>,
    pub streams: Vec<StreamMapping>,
    pub schedules: Vec<RateSchedule>,
    /// Queue URL by ARN.
    pub queue_urls: HashMap<String, String>,
}

impl Stack {
    pub fn reference(&self, logical: &str) -> Result<&str> {
        self.ctx
            .resources
            .get(logical)
            .map(|p| p.reference.as_str())
            .ok_or_else(|| anyhow!("no resource {logical}"))
    }
    pub fn arn(&self, logical: &str) -> Result<&str> {
        self.ctx
            .resources
            .get(logical)
            .map(|p| p.arn.as_str())
            .ok_or_else(|| anyhow!("no resource {logical}"))
    }
    pub fn mapping_of(&self, binary: &str) -> Result<&Mapping> {
        self.mappings
            .iter()
            .find(|m| m.function.binary == binary)
            .ok_or_else(|| anyhow!("no mapping for {binary}"))
    }
    /// One environment for all functions (they run under one `cargo lambda watch`): the union
    /// of their resolved variables. Two functions that set one variable differently is an error.
    pub fn merged_env(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for f in &self.functions {
            for (k, v) in &f.env {
                if let Some(old) = out.insert(k.clone(), v.clone()) {
                    if &old != v {
                        return Err(anyhow!("{k} differs between functions ({old} vs {v}); the local stack needs one value"));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn prop<'a>(res: &'a Value, key: &str) -> Option<&'a Value> {
    res.get("Properties")?.get(key)
}

fn string_prop(res: &Value, key: &str, ctx: &Context, t: &Template) -> Result<Option<String>> {
    match prop(res, key) {
        None => Ok(None),
        Some(v) => Ok(as_string(&resolve(v, ctx, t)?)),
    }
}

/// Provisions the template as stack `name` with parameter `overrides`.
pub async fn provision(
    emu: &Emulator,
    template: &Template,
    name: &str,
    overrides: &HashMap<String, String>,
) -> Result<Stack> {
    let mut ctx = Context {
        stack_name: name.to_owned(),
        region: "us-east-1".into(),
        account: String::new(),
        parameters: template.parameters(overrides)?,
        resources: HashMap::new(),
    };
    let mut queue_urls = HashMap::new();

    // Queues first, by name only: their ARNs tell the emulator's account id.
    let queues = template.resources_of("AWS::SQS::Queue");
    for (logical, res) in &queues {
        let qname = string_prop(res, "QueueName", &ctx, template)?
            .unwrap_or_else(|| format!("{name}-{logical}"));
        let (url, arn) = emu.create_queue(&qname).await?;
        ctx.account = arn.split(':').nth(4).unwrap_or_default().to_owned();
        queue_urls.insert(arn.clone(), url.clone());
        ctx.resources.insert(
            logical.clone(),
            Physical {
                reference: url,
                arn,
                ..Default::default()
            },
        );
    }
    // Names of the other resources are known before they exist.
    let acct = ctx.account.clone();
    type ArnOf = fn(&str, &str) -> String;
    let named: [(&str, &str, ArnOf); 4] = [
        ("AWS::DynamoDB::Table", "TableName", |acct, n| {
            format!("arn:aws:dynamodb:us-east-1:{acct}:table/{n}")
        }),
        ("AWS::Events::EventBus", "Name", |acct, n| {
            format!("arn:aws:events:us-east-1:{acct}:event-bus/{n}")
        }),
        ("AWS::IAM::Role", "RoleName", |acct, n| {
            format!("arn:aws:iam::{acct}:role/{n}")
        }),
        ("AWS::Serverless::Function", "FunctionName", |acct, n| {
            format!("arn:aws:lambda:us-east-1:{acct}:function:{n}")
        }),
    ];
    for (kind, name_key, arn_of) in named {
        for (logical, res) in template.resources_of(kind) {
            let n = string_prop(res, name_key, &ctx, template)?
                .unwrap_or_else(|| format!("{name}-{logical}"));
            let arn = arn_of(&acct, &n);
            ctx.resources.insert(
                logical,
                Physical {
                    reference: n,
                    arn,
                    ..Default::default()
                },
            );
        }
    }

    // Queue attributes, now that every ARN is known.
    for (logical, res) in &queues {
        let url = ctx.resources[logical].reference.clone();
        let mut attrs: Vec<(QueueAttributeName, String)> = Vec::new();
        for (key, attr) in [
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            ("DelaySeconds", QueueAttributeName::DelaySeconds),
            ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
        ] {
            if let Some(v) = string_prop(res, key, &ctx, template)? {
                attrs.push((attr, v));
            }
        }
        if let Some(r) = prop(res, "RedrivePolicy") {
            let r = resolve(r, &ctx, template)?;
            let policy = serde_json::json!({
                "deadLetterTargetArn": as_string(&r["deadLetterTargetArn"]).unwrap_or_default(),
                "maxReceiveCount": as_string(&r["maxReceiveCount"]).unwrap_or_default(),
            });
            attrs.push((QueueAttributeName::RedrivePolicy, policy.to_string()));
        }
        if !attrs.is_empty() {
            let mut req = emu.sqs.set_queue_attributes().queue_url(&url);
            for (k, v) in attrs {
                req = req.attributes(k, v);
            }
            req.send()
                .await
                .map_err(|e| anyhow!("SetQueueAttributes {logical}: {}", describe(&e)))?;
        }
    }

    for (logical, res) in template.resources_of("AWS::DynamoDB::Table") {
        if let Some(stream) = create_table(emu, template, &ctx, &logical, res).await? {
            if let Some(p) = ctx.resources.get_mut(&logical) {
                p.attrs.insert("StreamArn".into(), stream);
            }
        }
    }
    for (logical, _) in template.resources_of("AWS::Events::EventBus") {
        let n = ctx.resources[&logical].reference.clone();
        emu.events
            .create_event_bus()
            .name(&n)
            .send()
            .await
            .map_err(|e| anyhow!("CreateEventBus {n}: {}", describe(&e)))?;
    }
    for (logical, res) in template.resources_of("AWS::Events::Rule") {
        create_rule(emu, template, &ctx, name, &logical, res).await?;
    }
    for (logical, res) in template.resources_of("AWS::IAM::Role") {
        let n = ctx.resources[&logical].reference.clone();
        let doc = prop(res, "AssumeRolePolicyDocument")
            .map(|d| resolve(d, &ctx, template))
            .transpose()?;
        let doc = serde_json::to_string(&doc).unwrap_or_default();
        emu.iam
            .create_role()
            .role_name(&n)
            .assume_role_policy_document(doc)
            .send()
            .await
            .map_err(|e| anyhow!("CreateRole {n}: {}", describe(&e)))?;
    }

    // Placeholder functions (the emulators cannot run them; mappings need them to exist).
    let role = format!("{name}-lambda");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role_arn = emu
        .iam
        .create_role()
        .role_name(&role)
        .assume_role_policy_document(trust)
        .send()
        .await
        .map_err(|e| anyhow!("CreateRole {role}: {}", describe(&e)))?
        .role
        .map(|r| r.arn)
        .unwrap_or_default();
    let global_env = match template.global_env() {
        Some(v) => resolve(v, &ctx, template)?,
        None => Value::Null,
    };
    let mut functions = Vec::new();
    let mut mappings = Vec::new();
    let mut streams = Vec::new();
    let mut schedules = Vec::new();
    for (logical, res) in template.resources_of("AWS::Serverless::Function") {
        let fname = ctx.resources[&logical].reference.clone();
        let binary = res
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{logical}: Metadata.BuildProperties.Binary is missing"))?
            .to_owned();
        let mut env = BTreeMap::new();
        let own = prop(res, "Environment")
            .and_then(|e| e.get("Variables"))
            .map(|v| resolve(v, &ctx, template))
            .transpose()?;
        for vars in [Some(&global_env), own.as_ref()].into_iter().flatten() {
            if let Some(m) = vars.as_mapping() {
                for (k, v) in m {
                    env.insert(
                        k.as_str().unwrap_or_default().to_owned(),
                        as_string(v).unwrap_or_default(),
                    );
                }
            }
        }
        let timeout_s = string_prop(res, "Timeout", &ctx, template)?
            .or_else(|| {
                template
                    .root
                    .get("Globals")
                    .and_then(|g| g.get("Function"))
                    .and_then(|f| f.get("Timeout"))
                    .and_then(as_string)
            })
            .and_then(|t| t.parse().ok())
            .unwrap_or(30);
        emu.lambda
            .create_function()
            .function_name(&fname)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .role(&role_arn)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(placeholder_zip().into())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| anyhow!("CreateFunction {fname}: {}", describe(&e)))?;
        let function = Function {
            logical: logical.clone(),
            name: fname.clone(),
            binary,
            timeout_s,
            env,
        };
        if let Some(events) = prop(res, "Events").and_then(Value::as_mapping) {
            for (ename, ev) in events {
                let kind = ev.get("Type").and_then(Value::as_str).unwrap_or_default();
                let p = resolve(ev.get("Properties").unwrap_or(&Value::Null), &ctx, template)?;
                if kind == "ScheduleV2" || kind == "Schedule" {
                    let expression = as_string(&p["ScheduleExpression"]).ok_or_else(|| {
                        anyhow!("{logical}.{ename:?}: ScheduleExpression missing")
                    })?;
                    let every = parse_rate(&expression).ok_or_else(|| {
                        anyhow!("{logical}.{ename:?}: only rate(...) schedules run locally, not {expression}")
                    })?;
                    schedules.push(RateSchedule {
                        function: function.clone(),
                        expression,
                        every,
                        input: as_string(&p["Input"]),
                    });
                    continue;
                }
                if kind == "DynamoDB" {
                    streams.push(
                        create_stream_mapping(emu, &fname, &function, &p)
                            .await
                            .with_context(|| format!("{logical}.{ename:?}"))?,
                    );
                    continue;
                }
                if kind != "SQS" {
                    continue;
                }
                let queue_arn = as_string(&p["Queue"])
                    .ok_or_else(|| anyhow!("{logical}.{ename:?}: Queue missing"))?;
                let batch_size: i32 = as_string(&p["BatchSize"])
                    .and_then(|b| b.parse().ok())
                    .unwrap_or(10);
                let enabled = as_string(&p["Enabled"])
                    .map(|e| e != "false")
                    .unwrap_or(true);
                let batching_window_s: u64 = as_string(&p["MaximumBatchingWindowInSeconds"])
                    .and_then(|b| b.parse().ok())
                    .unwrap_or(0);
                let mut req = emu
                    .lambda
                    .create_event_source_mapping()
                    .function_name(&fname)
                    .event_source_arn(&queue_arn)
                    .batch_size(batch_size)
                    .maximum_batching_window_in_seconds(batching_window_s as i32)
                    .enabled(enabled);
                if let Some(max) = as_string(&p["ScalingConfig"]["MaximumConcurrency"])
                    .and_then(|m| m.parse::<i32>().ok())
                {
                    req = req.scaling_config(
                        aws_sdk_lambda::types::ScalingConfig::builder()
                            .maximum_concurrency(max)
                            .build(),
                    );
                }
                if p["FunctionResponseTypes"].as_sequence().is_some_and(|s| {
                    s.iter()
                        .any(|x| x.as_str() == Some("ReportBatchItemFailures"))
                }) {
                    req =
                        req.function_response_types(FunctionResponseType::ReportBatchItemFailures);
                }
                let uuid = req
                    .send()
                    .await
                    .map_err(|e| anyhow!("CreateEventSourceMapping {fname}: {}", describe(&e)))?
                    .uuid
                    .unwrap_or_default();
                let queue_url = queue_urls
                    .get(&queue_arn)
                    .cloned()
                    .ok_or_else(|| anyhow!("queue {queue_arn} not in stack"))?;
                mappings.push(Mapping {
                    uuid,
                    function: function.clone(),
                    queue_arn,
                    queue_url,
                    batch_size,
                    batching_window_s,
                });
            }
        }
        functions.push(function);
    }
    info!(
        stack = name,
        functions = functions.len(),
        mappings = mappings.len(),
        "stack provisioned"
    );
    Ok(Stack {
        name: name.to_owned(),
        ctx,
        functions,
        mappings,
        streams,
        schedules,
        queue_urls,
    })
}

/// A template `KeySchema` list (of a table or an index) as the SDK's elements.
fn key_schema(spec: &Value) -> Result<Vec<KeySchemaElement>> {
    spec.as_sequence()
        .into_iter()
        .flatten()
        .map(|k| {
            let kt = if k["KeyType"].as_str() == Some("RANGE") {
                KeyType::Range
            } else {
                KeyType::Hash
            };
            Ok(KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                .key_type(kt)
                .build()?)
        })
        .collect()
}

/// Creates a table with its keys, indexes, stream and TTL; returns its stream ARN, if any.
async fn create_table(
    emu: &Emulator,
    t: &Template,
    ctx: &Context,
    logical: &str,
    res: &Value,
) -> Result<Option<String>> {
    let name = ctx.resources[logical].reference.clone();
    let mut req = emu
        .dynamodb
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest);
    let p = resolve(res.get("Properties").unwrap_or(&Value::Null), ctx, t)?;
    for d in p["AttributeDefinitions"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let ty = match d["AttributeType"].as_str() {
            Some("N") => ScalarAttributeType::N,
            Some("B") => ScalarAttributeType::B,
            _ => ScalarAttributeType::S,
        };
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(d["AttributeName"].as_str().unwrap_or_default())
                .attribute_type(ty)
                .build()?,
        );
    }
    req = req.set_key_schema(Some(key_schema(&p["KeySchema"])?));
    for g in p["GlobalSecondaryIndexes"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let mut gsi =
            GlobalSecondaryIndex::builder().index_name(g["IndexName"].as_str().unwrap_or_default());
        gsi = gsi.set_key_schema(Some(key_schema(&g["KeySchema"])?));
        let pt = match g["Projection"]["ProjectionType"].as_str() {
            Some("KEYS_ONLY") => ProjectionType::KeysOnly,
            Some("INCLUDE") => ProjectionType::Include,
            _ => ProjectionType::All,
        };
        let mut projection = Projection::builder().projection_type(pt);
        for a in g["Projection"]["NonKeyAttributes"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            projection = projection.non_key_attributes(a.as_str().unwrap_or_default());
        }
        req = req.global_secondary_indexes(gsi.projection(projection.build()).build()?);
    }
    if let Some(view) = p["StreamSpecification"]["StreamViewType"].as_str() {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()?,
        );
    }
    let created = req
        .send()
        .await
        .map_err(|e| anyhow!("CreateTable {name}: {}", describe(&e)))?;
    let stream_arn = created.table_description.and_then(|d| d.latest_stream_arn);
    if let Some(attr) = p["TimeToLiveSpecification"]["AttributeName"].as_str() {
        emu.dynamodb
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow!("UpdateTimeToLive {name}: {}", describe(&e)))
            .context("table TTL")?;
    }
    Ok(stream_arn)
}

/// An EventBridge rule with its targets (and their dead-letter queues and retry policies).
async fn create_rule(
    emu: &Emulator,
    t: &Template,
    ctx: &Context,
    stack: &str,
    logical: &str,
    res: &Value,
) -> Result<()> {
    let p = resolve(res.get("Properties").unwrap_or(&Value::Null), ctx, t)?;
    let rule = as_string(&p["Name"]).unwrap_or_else(|| format!("{stack}-{logical}"));
    let bus = as_string(&p["EventBusName"]).unwrap_or_else(|| "default".into());
    let pattern = serde_json::to_string(&p["EventPattern"])?;
    emu.events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(pattern)
        .send()
        .await
        .map_err(|e| anyhow!("PutRule {rule}: {}", describe(&e)))?;
    for target in p["Targets"].as_sequence().into_iter().flatten() {
        let mut b = aws_sdk_eventbridge::types::Target::builder()
            .id(as_string(&target["Id"]).unwrap_or_else(|| "target".into()))
            .arn(as_string(&target["Arn"]).unwrap_or_default());
        if let Some(dlq) = as_string(&target["DeadLetterConfig"]["Arn"]) {
            b = b.dead_letter_config(
                aws_sdk_eventbridge::types::DeadLetterConfig::builder()
                    .arn(dlq)
                    .build(),
            );
        }
        let retry = &target["RetryPolicy"];
        if retry.is_mapping() {
            b = b.retry_policy(
                aws_sdk_eventbridge::types::RetryPolicy::builder()
                    .set_maximum_retry_attempts(
                        as_string(&retry["MaximumRetryAttempts"]).and_then(|v| v.parse().ok()),
                    )
                    .set_maximum_event_age_in_seconds(
                        as_string(&retry["MaximumEventAgeInSeconds"]).and_then(|v| v.parse().ok()),
                    )
                    .build(),
            );
        }
        emu.events
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus)
            .targets(b.build()?)
            .send()
            .await
            .map_err(|e| anyhow!("PutTargets {rule}: {}", describe(&e)))?;
    }
    Ok(())
}

/// The event source mapping of a `DynamoDB` stream event.
async fn create_stream_mapping(
    emu: &Emulator,
    fname: &str,
    function: &Function,
    p: &Value,
) -> Result<StreamMapping> {
    let stream_arn = as_string(&p["Stream"]).ok_or_else(|| anyhow!("Stream missing"))?;
    let batch_size: i32 = as_string(&p["BatchSize"])
        .and_then(|b| b.parse().ok())
        .unwrap_or(100);
    let starting_position =
        as_string(&p["StartingPosition"]).unwrap_or_else(|| "TRIM_HORIZON".into());
    let mut filters = Vec::new();
    let mut criteria = aws_sdk_lambda::types::FilterCriteria::builder();
    for f in p["FilterCriteria"]["Filters"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let pattern = as_string(&f["Pattern"]).unwrap_or_default();
        filters.push(
            serde_json::from_str(&pattern).with_context(|| format!("filter pattern {pattern}"))?,
        );
        criteria = criteria.filters(
            aws_sdk_lambda::types::Filter::builder()
                .pattern(pattern)
                .build(),
        );
    }
    let mut req = emu
        .lambda
        .create_event_source_mapping()
        .function_name(fname)
        .event_source_arn(&stream_arn)
        .batch_size(batch_size)
        .starting_position(aws_sdk_lambda::types::EventSourcePosition::from(
            starting_position.as_str(),
        ))
        .enabled(
            as_string(&p["Enabled"])
                .map(|e| e != "false")
                .unwrap_or(true),
        );
    if !filters.is_empty() {
        req = req.filter_criteria(criteria.build());
    }
    let uuid = req
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "CreateEventSourceMapping {fname} (stream): {}",
                describe(&e)
            )
        })?
        .uuid
        .unwrap_or_default();
    Ok(StreamMapping {
        uuid,
        function: function.clone(),
        stream_arn,
        batch_size,
        starting_position,
        filters,
    })
}

/// A valid zip holding one empty `bootstrap` file: the emulators need some code to create a
/// function; the real binary runs behind `cargo lambda watch`.
fn placeholder_zip() -> Vec<u8> {
    let name = b"bootstrap";
    let mut local = Vec::new();
    // local file header: stored, crc 0 and sizes 0 (empty file)
    local.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    local.extend_from_slice(&[0; 12]);
    local.extend_from_slice(&(name.len() as u16).to_le_bytes());
    local.extend_from_slice(&[0, 0]);
    local.extend_from_slice(name);
    let central_offset = local.len() as u32;
    let mut central = Vec::new();
    central.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    central.extend_from_slice(&[0; 12]);
    central.extend_from_slice(&(name.len() as u16).to_le_bytes());
    central.extend_from_slice(&[0; 8]);
    central.extend_from_slice(&0o100755u32.wrapping_shl(16).to_le_bytes());
    central.extend_from_slice(&0u32.to_le_bytes());
    central.extend_from_slice(name);
    let mut end = vec![0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0];
    end.extend_from_slice(&(central.len() as u32).to_le_bytes());
    end.extend_from_slice(&central_offset.to_le_bytes());
    end.extend_from_slice(&[0, 0]);
    [local, central, end].concat()
}
