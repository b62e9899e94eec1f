"""Starts LocalStack without Docker, its Lambda functions run as local processes.

How LocalStack executes a function is pluggable (its runtime executor); the default needs
Docker and a runtime init downloaded from the internet. Here `process_executor.py` runs each
execution environment's `bootstrap` as a local process and serves it the Lambda Runtime API.
Everything else stays LocalStack's own: event source mappings (SQS, DynamoDB streams) and their
Disable/Enable, async invocations with their retries and DLQs, environment reuse and
concurrency, CloudFormation. `get_runtime_executor` is imported by name where it is used, so it
is replaced in each of those modules.

One fix to LocalStack: its SAM transform sets and then removes AWS_DEFAULT_REGION in the
process environment around each run, so two stacks created at once can see the region vanish
mid-transform and fail with an empty reason. Transforms run one at a time here.
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from localstack.runtime import main as runtime_main  # noqa: E402
from localstack.services.lambda_ import provider  # noqa: E402
from localstack.services.lambda_.invocation import (  # noqa: E402
    execution_environment,
    runtime_executor,
    version_manager,
)

from localstack.services.cloudformation.engine.v2 import (  # noqa: E402
    change_set_model_transform,
)

from process_executor import ProcessRuntimeExecutor  # noqa: E402


def _process_executor():
    return ProcessRuntimeExecutor


for module in (runtime_executor, execution_environment, version_manager, provider):
    module.get_runtime_executor = _process_executor

_transform = change_set_model_transform.ChangeSetModelTransform._apply_global_serverless_transformation
_transform_lock = threading.Lock()


def _one_transform_at_a_time(region_name, template, parameters):
    with _transform_lock:
        return _transform(region_name, template, parameters)


change_set_model_transform.ChangeSetModelTransform._apply_global_serverless_transformation = staticmethod(
    _one_transform_at_a_time
)

if __name__ == "__main__":
    runtime_main.main()
