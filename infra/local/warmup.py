"""Wakes LocalStack's lazily started back ends before stacks are deployed: DynamoDB Local (a
Java process) and the Kinesis mock behind DynamoDB streams. A stack created while they are
still starting can fail to create its table streams."""

import os
import time

import boto3

kw = dict(
    endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
ddb, streams = boto3.client("dynamodb", **kw), boto3.client("dynamodbstreams", **kw)
name = f"steadfast-warmup-{os.getpid()}"
ddb.create_table(
    TableName=name,
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    BillingMode="PAY_PER_REQUEST",
    StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
)
arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
for _ in range(120):
    try:
        if streams.describe_stream(StreamArn=arn)["StreamDescription"]["StreamStatus"] == "ENABLED":
            break
    except Exception:  # the Kinesis mock is still starting
        pass
    time.sleep(0.5)
ddb.delete_table(TableName=name)
