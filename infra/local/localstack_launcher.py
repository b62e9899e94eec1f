"""Starts LocalStack without Docker, with its event-source-mapping pollers turned off.

Without Docker LocalStack cannot run Lambda functions, yet its ESM pollers still receive the
mapped queue's messages and fail to invoke, hiding them for a visibility timeout. Here the
local plumbing (tests/harness) does the polling and invokes the functions' real binaries, so
the pollers are made to see an empty source. Mapping states (Creating, Enabled, Disabling,
Disabled) and every API stay LocalStack's own.

For the same reason a function's version is not prepared for Docker (LocalStack would fetch
its runtime init from GitHub and pull a runtime image, and mark the function Failed when it
cannot, which fails a CloudFormation deployment): only its code is unpacked. Invoking a
function inside LocalStack fails; the local stack never does.
"""

from localstack.runtime import main as runtime_main
from localstack.services.lambda_.invocation.docker_runtime_executor import DockerRuntimeExecutor
from localstack.services.lambda_.event_source_mapping.pollers import poller as poller_mod
from localstack.services.lambda_.event_source_mapping.pollers import (
    dynamodb_poller,
    kinesis_poller,
    sqs_poller,
)


def _empty(self, *args, **kwargs):
    raise poller_mod.EmptyPollResultsException(service="local-plumbing", source_arn=getattr(self, "source_arn", ""))


for cls in (sqs_poller.SqsPoller, dynamodb_poller.DynamoDBPoller, kinesis_poller.KinesisPoller):
    cls.poll_events = _empty



def _code_only(cls, function_version):
    if function_version.config.code:
        function_version.config.code.prepare_for_execution()


DockerRuntimeExecutor.prepare_version = classmethod(_code_only)

if __name__ == "__main__":
    runtime_main.main()
