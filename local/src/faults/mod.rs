//! A fault-injecting HTTP proxy between the functions and the emulator, for every AWS service
//! they call.
//!
//! The local stack points the SDK's per-service endpoint variables of every function
//! (`AWS_ENDPOINT_URL_DYNAMODB`, `_SQS`, `_EVENTBRIDGE`, `_SCHEDULER`, `_LAMBDA`,
//! `_SECRETS_MANAGER`) at `http://127.0.0.1:<port>/fn/{function}`; the process executor fills
//! in the function's name, so the proxy knows the caller. The production code is untouched and
//! knows nothing of it. Requests pass through unchanged unless a [`Fault`] matches them by
//! service, operation, caller and body text; then the proxy
//! - answers with a real AWS error shape ([`AwsError`]: throttling, provisioned throughput,
//!   500/503, transaction conflict, request limit) without forwarding;
//! - delays the call;
//! - forwards it, then cuts the connection mid-answer (the ambiguous case: applied, but the
//!   caller sees a failure);
//! - or kills the calling process before forwarding (a crash between two writes): of the
//!   caller's processes (the executor keeps their pids under `<lambda log dir>/pids/<function>/`)
//!   the one that owns the other end of this very connection.
//!
//! EventBridge `PutEvents` also has entry-level faults ([`bus`]): partial failures, poison
//! entries, a bus down or throttled.

pub mod bus;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

pub use bus::{BusCounters, BusFaults};

/// An AWS error answer: its HTTP status and error code.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub status: u16,
    pub code: String,
}

impl AwsError {
    pub fn new(status: u16, code: &str) -> Self {
        AwsError {
            status,
            code: code.into(),
        }
    }
    pub fn throttling() -> Self {
        Self::new(400, "ThrottlingException")
    }
    pub fn provisioned_throughput_exceeded() -> Self {
        Self::new(400, "ProvisionedThroughputExceededException")
    }
    pub fn internal_server_error() -> Self {
        Self::new(500, "InternalServerError")
    }
    pub fn service_unavailable() -> Self {
        Self::new(503, "ServiceUnavailable")
    }
    pub fn transaction_conflict() -> Self {
        Self::new(400, "TransactionConflictException")
    }
    pub fn request_limit_exceeded() -> Self {
        Self::new(400, "RequestLimitExceeded")
    }
    /// Lambda's and Scheduler's throttling (REST services answer 429).
    pub fn too_many_requests() -> Self {
        Self::new(429, "TooManyRequestsException")
    }
}

/// What a matching call gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Error(AwsError),
    Delay(Duration),
    /// Forwarded (applied), then the connection is cut before the answer is complete.
    CutAfterApply,
    /// The calling process is killed before the call is forwarded.
    Crash,
}

/// One injected fault: which calls it matches and what they get.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Signing name: `dynamodb`, `sqs`, `events`, `scheduler`, `lambda`, `secretsmanager`.
    pub service: String,
    /// Operation name (`PutItem`, `SendMessage`, `UpdateEventSourceMapping`, …); any if `None`.
    pub operation: Option<String>,
    /// The calling function's binary (`processor`, `close`, …); any if `None`.
    pub caller: Option<String>,
    /// Only calls whose body contains this text.
    pub contains: Option<String>,
    pub action: Action,
    /// Share of the matching calls hit (0.0–1.0).
    pub ratio: f64,
    /// At most this many hits; unlimited if `None`.
    pub times: Option<u64>,
}

impl Fault {
    /// Every `operation` call of `service` gets `action`.
    pub fn on(service: &str, operation: &str, action: Action) -> Self {
        Fault {
            service: service.into(),
            operation: (!operation.is_empty()).then(|| operation.into()),
            caller: None,
            contains: None,
            action,
            ratio: 1.0,
            times: None,
        }
    }
    pub fn from(mut self, caller: &str) -> Self {
        self.caller = Some(caller.into());
        self
    }
    pub fn containing(mut self, text: &str) -> Self {
        self.contains = Some(text.into());
        self
    }
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }
}

struct Armed {
    fault: Fault,
    hits: u64,
}

/// A call as the proxy saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub caller: String,
    /// The fault's action if one hit it.
    pub injected: Option<String>,
    /// DynamoDB items this call writes (2 for a transaction of two; 0 for a read or another
    /// service).
    pub write_units: u32,
    /// The DynamoDB table it names (`TableName`), if any.
    pub table: Option<String>,
    /// The emulator refused it on a condition (ConditionalCheckFailed, a cancelled
    /// transaction).
    pub refused_condition: bool,
}

#[derive(Clone)]
struct Inner {
    upstream: String,
    http: reqwest::Client,
    faults: Arc<Mutex<Vec<Armed>>>,
    calls: Arc<Mutex<Vec<Call>>>,
    bus: Arc<Mutex<BusFaults>>,
    counters: Arc<BusCounters>,
    pids: PathBuf,
    kills: Arc<AtomicU64>,
    /// The proxy's own port (the far end of every caller's connection).
    port: u16,
}

/// The proxy; stops with [`FaultProxy::stop`].
pub struct FaultProxy {
    /// Its address; functions use `<url>/fn/{function}`.
    pub url: String,
    inner: Inner,
    /// EventBridge entry counters (see [`bus`]).
    pub counters: Arc<BusCounters>,
    shutdown: Arc<tokio::sync::Notify>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultProxy {
    /// Starts the proxy on a free loopback port, forwarding to `upstream`; `pids` is the
    /// folder where the process executor keeps the functions' pids.
    pub async fn start(upstream: &str, pids: PathBuf) -> Result<FaultProxy> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let url = format!("http://{}", listener.local_addr()?);
        let inner = Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: {
                steadfast_aws::tls::install();
                reqwest::Client::builder()
                    .pool_max_idle_per_host(8)
                    .build()?
            },
            faults: Arc::default(),
            calls: Arc::default(),
            bus: Arc::default(),
            counters: Arc::default(),
            pids,
            kills: Arc::default(),
            port,
        };
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let app = Router::new().fallback(handle).with_state(inner.clone());
        crate::serve_until(listener, app, shutdown.clone());
        Ok(FaultProxy {
            url,
            counters: inner.counters.clone(),
            inner,
            shutdown,
        })
    }

    /// The endpoint a function's SDK is given (`{function}` is filled in by the executor).
    pub fn endpoint(&self) -> String {
        format!("{}/fn/{{function}}", self.url)
    }

    /// Arms a fault (on top of those armed).
    pub fn inject(&self, fault: Fault) {
        lock(&self.inner.faults).push(Armed { fault, hits: 0 });
    }

    /// Disarms every fault, the bus's too; returns the hits of each, in arming order.
    pub fn clear(&self) -> Vec<u64> {
        *lock(&self.inner.bus) = BusFaults::default();
        lock(&self.inner.faults).drain(..).map(|a| a.hits).collect()
    }

    /// Hits so far of every armed fault, in arming order.
    pub fn hits(&self) -> Vec<u64> {
        lock(&self.inner.faults).iter().map(|a| a.hits).collect()
    }

    /// Every call seen so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.inner.calls).clone()
    }

    /// How many calls the proxy has seen so far.
    pub fn calls_seen(&self) -> usize {
        lock(&self.inner.calls).len()
    }

    /// Calls of `operation` by `caller` (binary name) seen so far.
    pub fn count(&self, caller: &str, operation: &str) -> usize {
        lock(&self.inner.calls)
            .iter()
            .filter(|c| c.caller == caller && c.operation == operation)
            .count()
    }

    /// Processes killed by [`Action::Crash`] so far.
    pub fn kills(&self) -> u64 {
        self.inner.kills.load(Ordering::Relaxed)
    }

    /// Sets the EventBridge entry faults.
    pub fn set_bus(&self, faults: BusFaults) {
        *lock(&self.inner.bus) = faults;
    }

    pub fn bus(&self) -> BusFaults {
        lock(&self.inner.bus).clone()
    }

    /// EventBridge entries refused by injection so far.
    pub fn refused(&self) -> u64 {
        self.counters.entries_refused.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.shutdown.notify_waiters();
    }
}

/// The signing name from the SigV4 credential scope (`.../us-east-1/dynamodb/aws4_request`).
fn service_of(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split(',').next())
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_owned()
}

/// The operation: `X-Amz-Target` for the JSON protocols, method and path for the REST ones.
fn operation_of(headers: &HeaderMap, method: &Method, path: &str) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let op = match (method.as_str(), parts.as_slice()) {
        ("POST", [_, "functions", _, "invocations"]) => "Invoke",
        ("PUT", [_, "event-source-mappings", _]) => "UpdateEventSourceMapping",
        ("GET", [_, "event-source-mappings", _]) => "GetEventSourceMapping",
        ("GET", [_, "event-source-mappings"]) => "ListEventSourceMappings",
        ("POST", ["schedules", _]) => "CreateSchedule",
        ("PUT", ["schedules", _]) => "UpdateSchedule",
        ("DELETE", ["schedules", _]) => "DeleteSchedule",
        ("GET", ["schedules", _]) => "GetSchedule",
        _ => "",
    };
    if op.is_empty() {
        format!("{method} {path}")
    } else {
        op.to_owned()
    }
}

/// `/fn/<function>/rest` → (`<function>`, `/rest`); other paths have no known caller.
fn split_caller(path: &str) -> (String, String) {
    match path
        .strip_prefix("/fn/")
        .and_then(|p| p.split_once('/').or(Some((p, ""))))
    {
        Some((caller, rest)) => (caller.to_owned(), format!("/{rest}")),
        None => (String::new(), path.to_owned()),
    }
}

/// Whether `caller` (a function name, `<stack>-<binary>`) is the binary `wanted`.
fn is_caller(caller: &str, wanted: &str) -> bool {
    caller == wanted || caller.ends_with(&format!("-{wanted}"))
}

/// Renders an AWS error the way `service`'s protocol does.
pub fn error_answer(service: &str, e: &AwsError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = format!("injected: {}", e.code);
    match service {
        // REST-JSON: the code travels in a header.
        "lambda" | "scheduler" => (
            status,
            [
                ("content-type", "application/json"),
                ("x-amzn-errortype", e.code.as_str()),
            ],
            json!({"message": message, "Message": message}).to_string(),
        )
            .into_response(),
        _ => (
            status,
            [
                // awsJson1.1 for EventBridge and Secrets Manager, 1.0 for DynamoDB and SQS
                (
                    "content-type",
                    if matches!(service, "events" | "secretsmanager") {
                        "application/x-amz-json-1.1"
                    } else {
                        "application/x-amz-json-1.0"
                    },
                ),
                ("x-amzn-query-error", &format!("{};Sender", e.code) as &str),
            ],
            json!({"__type": e.code, "message": message}).to_string(),
        )
            .into_response(),
    }
}

/// Kills the process of `caller` (as the executor has them on record) that holds the
/// connection from `peer`; whether one was found and killed.
fn kill_caller(
    pids: &std::path::Path,
    caller: &str,
    peer: std::net::SocketAddr,
    proxy_port: u16,
) -> bool {
    let Some(inode) = socket_inode(peer.port(), proxy_port) else {
        return false;
    };
    let Ok(dir) = std::fs::read_dir(pids.join(caller)) else {
        return false;
    };
    let wanted = format!("socket:[{inode}]");
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let owns = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == wanted));
        if owns {
            // The executor starts each process in a session of its own: end the whole group.
            return std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status()
                .is_ok_and(|s| s.success());
        }
    }
    false
}

/// The inode of the caller's end of a connection to the proxy: the live socket from `port`
/// to `proxy_port` (a closed one of an earlier connection on the same port has inode 0).
fn socket_inode(port: u16, proxy_port: u16) -> Option<String> {
    let (local, remote) = (format!(":{port:04X}"), format!(":{proxy_port:04X}"));
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let (l, r, inode) = (cols.get(1)?, cols.get(2)?, cols.get(9)?);
                (l.ends_with(&local) && r.ends_with(&remote) && *inode != "0")
                    .then(|| inode.to_string())
            })
        })
}

/// The first armed fault matching the call, counted as hit.
fn matching(inner: &Inner, call: &Call, body: &[u8]) -> Option<Action> {
    let mut armed = lock(&inner.faults);
    for a in armed.iter_mut() {
        let f = &a.fault;
        let hit = f.service == call.service
            && f.operation.as_ref().is_none_or(|o| *o == call.operation)
            && f.caller.as_ref().is_none_or(|c| is_caller(&call.caller, c))
            && f.times.is_none_or(|t| a.hits < t)
            && f.contains
                .as_ref()
                .is_none_or(|t| std::str::from_utf8(body).is_ok_and(|b| b.contains(t.as_str())));
        if hit && (f.ratio >= 1.0 || rand::random::<f64>() < f.ratio) {
            a.hits += 1;
            return Some(a.fault.action.clone());
        }
    }
    None
}

async fn handle(
    State(inner): State<Inner>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (caller, path) = split_caller(uri.path());
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let mut call = Call {
        service: service_of(&headers),
        operation: operation_of(&headers, &method, &path),
        caller,
        injected: None,
        write_units: 0,
        table: None,
        refused_condition: false,
    };
    call.write_units = write_units(&call, &body);
    if call.service == "dynamodb" {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        call.table = v["TableName"].as_str().map(str::to_owned);
    }
    let action = matching(&inner, &call, &body);
    call.injected = action.as_ref().map(|a| format!("{a:?}"));
    let service = call.service.clone();
    let is_put_events = call.operation == "PutEvents";
    let index = {
        let mut calls = lock(&inner.calls);
        calls.push(call.clone());
        calls.len() - 1
    };
    match action {
        Some(Action::Error(e)) => return error_answer(&service, &e),
        Some(Action::Delay(d)) => tokio::time::sleep(d).await,
        Some(Action::Crash) => {
            if kill_caller(&inner.pids, &call.caller, peer, inner.port) {
                inner.kills.fetch_add(1, Ordering::Relaxed);
            } else {
                tracing::warn!(caller = %call.caller, "crash asked, but the calling process was not found");
            }
            return error_answer(&service, &AwsError::service_unavailable());
        }
        Some(Action::CutAfterApply) => {
            let applied = forward(&inner, method, &path_and_query, &headers, body).await;
            return cut(applied).await;
        }
        None => {}
    }
    if is_put_events {
        return bus::put_events(&inner, method, &path_and_query, &headers, body).await;
    }
    match forward_raw(&inner, method, &path_and_query, &headers, body).await {
        Ok((status, out, bytes)) => {
            if status == StatusCode::BAD_REQUEST && refused_on_condition(&bytes) {
                if let Some(c) = lock(&inner.calls).get_mut(index) {
                    c.refused_condition = true;
                }
            }
            (status, out, bytes).into_response()
        }
        Err(broken) => broken,
    }
}

/// DynamoDB items a call writes: one per PutItem, UpdateItem or DeleteItem, one per item of a
/// TransactWriteItems or BatchWriteItem.
fn write_units(call: &Call, body: &[u8]) -> u32 {
    if call.service != "dynamodb" {
        return 0;
    }
    match call.operation.as_str() {
        "PutItem" | "UpdateItem" | "DeleteItem" => 1,
        "TransactWriteItems" | "BatchWriteItem" => {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let transact = v["TransactItems"].as_array().map_or(0, Vec::len);
            let batch: usize = v["RequestItems"].as_object().map_or(0, |m| {
                m.values().filter_map(|r| r.as_array()).map(Vec::len).sum()
            });
            (transact + batch) as u32
        }
        _ => 0,
    }
}

/// An answer that refuses a write on its condition.
fn refused_on_condition(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("ConditionalCheckFailed") || text.contains("TransactionCanceled")
}

/// An answer whose body breaks off: the status line and a first chunk, then the connection
/// ends with an error.
async fn cut(applied: Response) -> Response {
    let status = applied.status();
    let chunks: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from_static(b"{")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected: connection cut after the request was applied",
        )),
    ];
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Passes a call on to the emulator and its answer back, headers included.
async fn forward(
    inner: &Inner,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    match forward_raw(inner, method, path_and_query, headers, body).await {
        Ok(answer) => answer.into_response(),
        Err(broken) => broken,
    }
}

/// The emulator's answer to a call (status, headers, body), or the proxy's own answer when the
/// emulator could not be reached or broke off.
async fn forward_raw(
    inner: &Inner,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), Response> {
    let url = format!("{}{}", inner.upstream, path_and_query);
    let mut req = inner.http.request(method, url).body(body);
    for (k, v) in headers {
        if k == "host" || k == "content-length" {
            continue;
        }
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            let mut out = HeaderMap::new();
            for (k, v) in r.headers() {
                if !matches!(
                    k.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                ) {
                    out.append(k.clone(), v.clone());
                }
            }
            match r.bytes().await {
                Ok(bytes) => Ok((status, out, bytes)),
                Err(e) => Err((
                    StatusCode::BAD_GATEWAY,
                    format!("fault proxy: the emulator's answer broke off: {e}"),
                )
                    .into_response()),
            }
        }
        Err(e) => Err((
            StatusCode::BAD_GATEWAY,
            format!("fault proxy: upstream unreachable: {e}"),
        )
            .into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_and_the_rest_of_the_path_are_split() {
        assert_eq!(
            split_caller("/fn/st-1-processor/2015-03-31/functions/x/invocations"),
            (
                "st-1-processor".into(),
                "/2015-03-31/functions/x/invocations".into()
            )
        );
        assert_eq!(
            split_caller("/fn/st-1-close"),
            ("st-1-close".into(), "/".into())
        );
        assert_eq!(
            split_caller("/fn/st-1-close/"),
            ("st-1-close".into(), "/".into())
        );
        assert_eq!(split_caller("/"), (String::new(), "/".into()));
        assert!(is_caller("st-1-outbox-relay", "outbox-relay"));
        assert!(!is_caller("st-1-outbox-relay", "relay-x"));
    }

    #[test]
    fn rest_operations_are_named_from_method_and_path() {
        let h = HeaderMap::new();
        assert_eq!(
            operation_of(&h, &Method::PUT, "/2015-03-31/event-source-mappings/abc"),
            "UpdateEventSourceMapping"
        );
        assert_eq!(
            operation_of(&h, &Method::POST, "/schedules/s-1"),
            "CreateSchedule"
        );
        let mut j = HeaderMap::new();
        j.insert("x-amz-target", "DynamoDB_20120810.PutItem".parse().unwrap());
        assert_eq!(operation_of(&j, &Method::POST, "/"), "PutItem");
        let mut a = HeaderMap::new();
        a.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261129/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"
                .parse()
                .unwrap(),
        );
        assert_eq!(service_of(&a), "dynamodb");
    }
}
