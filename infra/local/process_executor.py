"""A LocalStack runtime executor that runs a function's `bootstrap` as a local process.

LocalStack decides when an execution environment starts, which one serves an invocation, how
many run at once and when they stop; this executor only carries an environment out, without
Docker:

- start(env): spawns `<code>/bootstrap` with LocalStack's environment for the function
  (credentials, AWS_ENDPOINT_URL, function name, memory, timeout, log group), LAMBDA_TASK_ROOT
  pointing at the unpacked code, and AWS_LAMBDA_RUNTIME_API pointing at a Runtime API server of
  its own on 127.0.0.1. Local overrides for a stack's functions (a fault proxy's endpoint, a
  log level) come from `$STEADFAST_FUNCTION_ENV_DIR/<prefix>.json` for every function whose
  name starts with `<prefix>-`; `{function}` in a value becomes the function's name (a fault
  proxy then knows its caller). While a process runs, its pid is kept as a file under
  `$STEADFAST_LAMBDA_LOG_DIR/pids/<function>/`, so a test can crash it at a chosen call.
  The environment is ready when the process first asks for an
  invocation; its init duration is logged.
- invoke(payload): hands the event to the process through `GET .../invocation/next` (request
  id, deadline, function ARN and trace id headers) and waits for `.../response` or `.../error`.
  A process still busy at the function's timeout is ended and the invocation reports
  `Task timed out after N seconds`, as Lambda does; the next invocation starts it afresh.
  A process that exits during an invocation reports `Runtime.ExitError`.
- The process's output is the invocation's log (returned to LocalStack, which writes it to the
  function's log group, framed by START/END/REPORT lines; REPORT gives the duration and, as
  Lambda's Max Memory Used, the process's peak resident memory) and is appended to
  `$STEADFAST_LAMBDA_LOG_DIR/<function>.log`.
"""

import json
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from localstack.services.lambda_.invocation.executor_endpoint import StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor

LOG = logging.getLogger("steadfast.process_executor")

API = "/2018-06-01/runtime"
# How long a started process may take to ask for its first invocation.
STARTUP_SECONDS = 20


class _Invocation:
    def __init__(self, request_id, payload, arn, trace_id, deadline_ms):
        self.request_id = request_id
        self.payload = payload
        self.arn = arn
        self.trace_id = trace_id
        self.deadline_ms = deadline_ms
        self.done = threading.Event()
        self.body = b""
        self.is_error = False


class _RuntimeApi(BaseHTTPRequestHandler):
    """The Lambda Runtime API for one process."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        executor = self.server.executor
        if self.path != f"{API}/invocation/next":
            return self._reply(404)
        executor.ready.set()
        while True:
            if self.server.stopped:
                return self._reply(410)
            try:
                inv = self.server.pending.get(timeout=0.5)
                break
            except queue.Empty:
                continue
        executor.current = inv
        self._reply(
            200,
            inv.payload.encode(),
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": inv.arn,
                "Lambda-Runtime-Trace-Id": inv.trace_id,
            },
        )

    def do_POST(self):
        executor = self.server.executor
        body = self._body()
        parts = self.path[len(API):].strip("/").split("/")
        if parts == ["init", "error"]:
            executor.init_error = body
            return self._reply(202)
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            if self.server.stopped:
                return self._reply(410)
            inv = executor.current
            if inv is None or inv.request_id != parts[1]:
                return self._reply(400, b'{"errorMessage":"unknown request id"}')
            inv.body = body
            inv.is_error = parts[2] == "error"
            executor.current = None
            inv.done.set()
            return self._reply(202)
        return self._reply(404)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a process ended mid-request (killed at its timeout, or stopped)


def _overrides(function_name):
    """Local environment overrides for this function (see the module documentation)."""
    folder = os.environ.get("STEADFAST_FUNCTION_ENV_DIR")
    env = {}
    if not folder or not os.path.isdir(folder):
        return env
    for f in sorted(Path(folder).glob("*.json")):
        if function_name.startswith(f.stem + "-"):
            try:
                own = json.loads(f.read_text())
                env.update({k: str(v).replace("{function}", function_name) for k, v in own.items()})
            except (OSError, ValueError) as e:
                LOG.warning("function env file %s unreadable: %s", f, e)
    return env


class ProcessRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id, function_version):
        super().__init__(id, function_version)
        self.process = None
        self.server = None
        self.env = None
        self.current = None
        self.ready = threading.Event()
        self.init_error = None
        self.lock = threading.Lock()
        self.log_lines = []
        self.started_at = 0.0
        self.init_ms = None
        self.sink = None
        self.function_name = function_version.id.function_name
        self.peak_kb, self.peak_sampled_at = 0, 0.0

    # ---- the process ----
    def _log_file(self):
        folder = os.environ.get("STEADFAST_LAMBDA_LOG_DIR")
        if not folder:
            return None
        os.makedirs(folder, exist_ok=True)
        return open(os.path.join(folder, f"{self.function_name}.log"), "a", buffering=1)

    def _pid_file(self, pid):
        folder = os.environ.get("STEADFAST_LAMBDA_LOG_DIR")
        return Path(folder, "pids", self.function_name, str(pid)) if folder else None

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self.lock:
                self.log_lines.append(line)
            if sink:
                try:
                    sink.write(line)
                except ValueError:
                    pass

    def _serve(self):
        """A Runtime API server for the next process (a killed one's server is closed)."""
        self.server = _Server(("127.0.0.1", 0), _RuntimeApi)
        self.server.executor = self
        self.server.stopped = False
        # Each process has its own queue: one killed while waiting cannot take the next event.
        self.server.pending = queue.Queue()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _spawn(self):
        self._kill()  # whatever is left of an earlier process, and its server
        self._serve()
        code = Path(self.function_version.config.code.get_unzipped_code_location())
        env = dict(self.env)
        env.update(
            {
                "LAMBDA_TASK_ROOT": str(code),
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.server_address[1]}",
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            }
        )
        env.update(_overrides(self.function_name))
        env = {k: str(v) for k, v in env.items()}
        self.ready.clear()
        self.init_error = None
        self.peak_kb, self.peak_sampled_at = 0, 0.0
        self.started_at = time.monotonic()
        sink = self.sink = self._log_file()
        self.process = subprocess.Popen(
            [str(code / "bootstrap")],
            cwd=str(code),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pid_file = self._pid_file(self.process.pid)
        if pid_file:
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.touch()
        threading.Thread(
            target=self._pump, args=(self.process.stdout, sink), daemon=True
        ).start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                # As Lambda: the init failed, an Unhandled function error (not a service error).
                code = self.process.poll()
                detail = (self.init_error or b"").decode("utf-8", "replace")
                self._kill()
                LOG.warning("%s: init failed (%s)\n%s", self.function_name, detail, self.get_logs()[-2000:])
                raise StatusErrorException(
                    f"{self.function_name}: init failed",
                    payload=self.init_failure(code, detail),
                )
        self.init_ms = (time.monotonic() - self.started_at) * 1000
        line = f"INIT {self.function_name} pid {self.process.pid}: ready after {self.init_ms:.1f} ms\n"
        LOG.info(line.strip())
        if sink:
            sink.write(line)

    @staticmethod
    def _exit_text(code):
        if code is None:
            return "Runtime failed to start within 20 seconds"
        if code < 0:
            return f"Runtime exited with error: signal: {signal.Signals(-code).name.lower().removeprefix('sig')}"
        return f"Runtime exited with error: exit status {code}"

    def init_failure(self, code, detail):
        if detail:
            try:
                json.loads(detail)
                return detail.encode()  # the runtime's own init/error report
            except ValueError:
                pass
        return json.dumps({"errorType": "Runtime.ExitError", "errorMessage": self._exit_text(code)}).encode()

    def _kill(self):
        if self.server is not None and not self.server.stopped:
            self.server.stopped = True
            self.server.shutdown()
            self.server.server_close()
        p = self.process
        if p is None:
            return
        pid_file = self._pid_file(p.pid)
        if pid_file:
            pid_file.unlink(missing_ok=True)
        if p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=2)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)

    # ---- RuntimeExecutor ----
    def start(self, env_vars):
        self.env = env_vars
        self._spawn()

    def stop(self):
        self._kill()

    def get_address(self):
        return "127.0.0.1"

    def get_endpoint_from_executor(self):
        return "127.0.0.1"

    def get_runtime_endpoint(self):
        return f"http://127.0.0.1:{self.server.server_address[1] if self.server else 0}"

    def get_logs(self):
        with self.lock:
            return "".join(self.log_lines)

    def invoke(self, payload):
        request_id = payload["invoke-id"]
        timeout = int(self.function_version.config.timeout)
        init_ms = None
        if self.process is None or self.process.poll() is not None:
            try:
                self._spawn()  # a cold start after a timeout or a crash
            except StatusErrorException as e:
                return InvocationResult(request_id, e.payload, is_error=True, logs=self.get_logs()[-4000:])
            init_ms = self.init_ms
        elif self.init_ms is not None:
            init_ms, self.init_ms = self.init_ms, None
        with self.lock:
            first_line = len(self.log_lines)
        started = time.monotonic()
        self._frame(f"START RequestId: {request_id} Version: $LATEST\n")
        inv = _Invocation(
            request_id,
            payload["payload"],
            payload["invoked-function-arn"],
            payload.get("trace-id", ""),
            int((time.time() + timeout) * 1000),
        )
        self.server.pending.put(inv)
        while not inv.done.wait(0.05):
            self._sample_peak()
            if time.monotonic() - started > timeout:
                self._kill()
                self.current = None
                body = json.dumps(
                    {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
                    }
                ).encode()
                return self._result(request_id, body, True, first_line, started, init_ms)
            if self.process.poll() is not None:
                code = self.process.returncode
                self.current = None
                body = json.dumps(
                    {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"RequestId: {request_id} Error: {self._exit_text(code)}",
                    }
                ).encode()
                return self._result(request_id, body, True, first_line, started, init_ms)
        return self._result(request_id, inv.body, inv.is_error, first_line, started, init_ms)

    def _frame(self, line):
        if self.sink:
            try:
                self.sink.write(line)
            except ValueError:
                pass

    def _result(self, request_id, body, is_error, first_line, started, init_ms):
        time.sleep(0.01)  # the last log lines of the invocation
        duration = (time.monotonic() - started) * 1000
        with self.lock:
            lines = "".join(self.log_lines[first_line:])
            # Keep memory flat for long-lived environments.
            if len(self.log_lines) > 5000:
                self.log_lines = self.log_lines[-1000:]
        init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else ""
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Memory Size: {self.function_version.config.memory_size} MB\t"
            f"Max Memory Used: {self._peak_mb()} MB{init}\n"
        )
        self._frame(report)
        logs = (
            f"START RequestId: {request_id} Version: $LATEST\n{lines}"
            f"END RequestId: {request_id}\n{report}"
        )
        return InvocationResult(request_id, body, is_error=is_error, logs=logs)

    def _sample_peak(self):
        """Notes the process's peak resident memory so far (VmHWM), at most twice a second, so
        a process killed at its timeout or ended by a crash still has one."""
        now = time.monotonic()
        if now - self.peak_sampled_at < 0.5:
            return
        self.peak_sampled_at = now
        p = self.process
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
        except (OSError, AttributeError, ValueError, IndexError):
            pass

    def _peak_mb(self):
        """The process's peak resident memory, as Lambda's Max Memory Used."""
        self.peak_sampled_at = 0.0
        self._sample_peak()
        return self.peak_kb // 1024

    @classmethod
    def prepare_version(cls, function_version):
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version):
        pass

    @classmethod
    def validate_environment(cls):
        return True
