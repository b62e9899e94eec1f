"""Starts moto server on loopback with DynamoDB requests applied one at a time.

moto's server is threaded, and its DynamoDB backend checks a condition expression and then
writes without a lock, so two concurrent conditional writes to one item can both succeed.
Real DynamoDB applies each request atomically; the gate's "exactly one trip wins" and the
outbox and inbox claims rely on that. This wrapper serialises DynamoDB requests (and only
them: SQS long polls and the other services stay concurrent), so conditional writes behave
as they do in AWS.

It also stops moto from invoking mapped functions itself. Without Docker it cannot run them,
yet on every SendMessage it receives up to ten messages of a mapped queue and puts them back,
raising their receive counts until the redrive policy moves them to the dead-letter queue; and
for a mapped table it drops the stream's records after trying. The event source mappings stay
moto's (created, listed, enabled, disabled): the adapters' contract tests use them.

Usage: python moto_launcher.py HOST PORT
"""

import sys
import threading

from werkzeug.serving import run_simple

from moto.dynamodb.models.table import Table
from moto.kinesis.models import Stream
from moto.sqs.models import Queue

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


class SerialDynamoDB:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # The whole answer is produced under the lock, not only the first byte.
            return list(self.app(environ, start_response))


class _NoMappings(dict):
    """The per-resource table moto invokes mapped functions from: always empty."""

    def __setitem__(self, key, value):
        pass


for _cls in (Queue, Table, Stream):
    _cls.lambda_event_source_mappings = property(lambda self: _NoMappings(), lambda self, value: None)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SerialDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
