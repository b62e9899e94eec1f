"""Deploys infra/template.yaml to LocalStack's CloudFormation and reads the stack back.

The template is deployed as a user deploys it, through the SAM transform, with each function's
real `bootstrap.zip` uploaded to S3 (`infra/local/deploy.py --code zip`), and one function is
invoked through the Lambda Invoke API. Then the created tables, queues, event source mappings,
roles, schedules and alarms are checked against what the functions expect: names, keys,
indexes, streams, redrive, mapping settings, encryption, least privilege.

Run by `make test` against LocalStack (infra/local/with-emulator.sh provides it). Exit 0 when
every check passes; otherwise every failed check is printed and the exit code is 1.
"""

import json
import os
import random
import sys

import boto3
from botocore.config import Config

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "us-east-1"

FUNCTIONS = [
    "processor", "close", "open", "backoff",
    "outbox-writer", "outbox-relay", "inbox-receiver", "inbox-processor",
]

failures = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)


def client(name):
    return boto3.client(
        name,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 3}),
    )


def deploy(name):
    """The stack deployed with the real zips, through the project's one deploy path."""
    sys.path.insert(0, os.path.join(ROOT, "infra", "local"))
    import deploy as local_deploy

    params = {
        "TargetUrl": "https://portal.example.com/orders",
        "PortalUrl": "https://portal.example.com",
        "PortalProbeUrl": "https://portal.example.com/health",
    }
    info = local_deploy.deploy(name, params, {}, "zip")
    print(f"  stack {name}: {info['status']} after {info['seconds']} s")
    for f in info["failures"]:
        print(f"    {f}"[:300])
    stack = client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return stack, info["status"]


def main():
    name = f"sfdeploy-{random.randrange(16**6):06x}"
    print(f"Deploying infra/template.yaml to LocalStack CloudFormation at {ENDPOINT} as {name}")
    stack, status = deploy(name)
    check(status == "CREATE_COMPLETE", f"stack created ({status})")
    cfn = client("cloudformation")
    resources = {}
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=name):
        for r in page["StackResourceSummaries"]:
            resources[r["LogicalResourceId"]] = r
    not_created = [k for k, r in resources.items()
                   if r["ResourceStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE")]
    check(not not_created, f"{len(resources)} resources created; not created: {not_created}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    processed = cfn.get_template(StackName=name, TemplateStage="Processed")["TemplateBody"]
    if isinstance(processed, str):
        processed = json.loads(processed)
    phys = lambda logical: resources.get(logical, {}).get("PhysicalResourceId", "")

    # ---- tables: the keys, indexes, streams and TTL the adapters rely on ----
    ddb = client("dynamodb")
    expect_tables = {
        "GateTable": ("target", None, None, None),
        "LedgerTable": ("identity", None, None, "expires_at"),
        "ApplicationsTable": ("id", None, None, None),
        "OutboxTable": ("id", "due", "KEYS_ONLY", "expires_at"),
        "InboxTable": ("id", "due", "NEW_IMAGE", None),
    }
    for logical, (hash_key, index, stream, ttl) in expect_tables.items():
        t = ddb.describe_table(TableName=phys(logical))["Table"]
        keys = {k["AttributeName"]: k["KeyType"] for k in t["KeySchema"]}
        check(keys == {hash_key: "HASH"}, f"{logical}: key {hash_key}")
        check(t.get("BillingModeSummary", {}).get("BillingMode", "PAY_PER_REQUEST") == "PAY_PER_REQUEST",
              f"{logical}: on demand")
        check(t.get("SSEDescription", {}).get("Status") in ("ENABLED", "ENABLING"), f"{logical}: encrypted at rest")
        if index:
            gsis = {g["IndexName"]: g for g in t.get("GlobalSecondaryIndexes", [])}
            g = gsis.get(index, {})
            gkeys = {k["AttributeName"]: k["KeyType"] for k in g.get("KeySchema", [])}
            check(gkeys == {"due_shard": "HASH", "due_at": "RANGE"}
                  and g.get("Projection", {}).get("ProjectionType") == "KEYS_ONLY",
                  f"{logical}: sparse index {index} (due_shard, due_at), keys only")
        if stream:
            check(t.get("StreamSpecification", {}).get("StreamViewType") == stream,
                  f"{logical}: stream {stream}")
        if ttl:
            d = ddb.describe_time_to_live(TableName=phys(logical))["TimeToLiveDescription"]
            check(d.get("AttributeName") == ttl and d.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"),
                  f"{logical}: TTL on {ttl}")
        b = ddb.describe_continuous_backups(TableName=phys(logical))["ContinuousBackupsDescription"]
        pitr = b.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
        declared = (processed.get("Resources", {}).get(logical, {}).get("Properties", {})
                    .get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"))
        # LocalStack creates the table but does not apply PITR from CloudFormation: then the
        # deployed (processed) template must declare it.
        check(pitr == "ENABLED" or declared in (True, "true"),
              f"{logical}: point-in-time recovery ({'on' if pitr == 'ENABLED' else 'declared; LocalStack does not apply it'})")

    # ---- queues: retention, encryption, redrive ----
    sqs = client("sqs")
    def attrs(logical):
        return sqs.get_queue_attributes(QueueUrl=phys(logical), AttributeNames=["All"])["Attributes"]
    redrive = {"OrdersQueue": ("OrdersDLQ", 1000), "TimersQueue": ("TimersDLQ", 5),
               "ApplicationsQueue": ("ApplicationsDLQ", None), "ApprovalQueue": ("ApprovalDLQ", None),
               "ErpRecordsQueue": ("ErpRecordsDLQ", 20)}
    queues = [k for k, r in resources.items() if r["ResourceType"] == "AWS::SQS::Queue"]
    for q in queues:
        a = attrs(q)
        check(a.get("MessageRetentionPeriod") == "1209600", f"{q}: keeps messages 14 days")
        check(a.get("SqsManagedSseEnabled") == "true" or "KmsMasterKeyId" in a, f"{q}: encrypted at rest")
    for q, (dlq, count) in redrive.items():
        p = json.loads(attrs(q).get("RedrivePolicy", "{}"))
        dlq_arn = attrs(dlq)["QueueArn"]
        check(p.get("deadLetterTargetArn") == dlq_arn, f"{q}: redrives to {dlq}")
        if count:
            check(int(p.get("maxReceiveCount", 0)) == count, f"{q}: maxReceiveCount {count}")

    # ---- functions, their settings, roles and mappings ----
    lam, iam, logs = client("lambda"), client("iam"), client("logs")
    fn_names = {}
    for logical, r in resources.items():
        if r["ResourceType"] == "AWS::Lambda::Function":
            fn_names[logical] = r["PhysicalResourceId"]
    check(sorted(n.split(name + "-", 1)[-1] for n in fn_names.values()) == sorted(FUNCTIONS),
          f"the {len(FUNCTIONS)} functions exist")
    table_names = {phys(t) for t in expect_tables}
    queue_urls = {phys(q) for q in queues}
    roles = set()
    for logical, fname in fn_names.items():
        c = lam.get_function_configuration(FunctionName=fname)
        env = c.get("Environment", {}).get("Variables", {})
        check(c.get("Runtime") == "provided.al2023" and c.get("Handler") == "bootstrap",
              f"{fname}: provided.al2023, handler bootstrap (built for this host: {c.get('Architectures')})")
        for k, v in env.items():
            if k.endswith("_TABLE"):
                check(v in table_names, f"{fname}: {k}={v} is a table of the stack")
            if k.endswith("_QUEUE_URL"):
                check(v in queue_urls, f"{fname}: {k} is a queue of the stack")
        check("TARGET_TOKEN" not in env, f"{fname}: no plaintext token in its settings")
        groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{fname}")["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == f"/aws/lambda/{fname}"), None)
        # LocalStack creates the group but does not apply its retention from CloudFormation:
        # then the deployed template must declare it.
        declared = (processed.get("Resources", {}).get(logical.replace("Function", "LogGroup"), {})
                    .get("Properties", {}).get("RetentionInDays"))
        check(group is not None and bool(group.get("retentionInDays") or declared),
              f"{fname}: its own log group, with a retention")
        roles.add(c["Role"])
    check(len(roles) == len(fn_names), f"one role per function ({len(roles)} roles)")
    for role_arn in roles:
        role = role_arn.rsplit("/", 1)[-1]
        docs = [iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"]
                for p in iam.list_role_policies(RoleName=role)["PolicyNames"]]
        actions = []
        for d in docs:
            if isinstance(d, str):
                d = json.loads(d)
            for st in d.get("Statement", []):
                a = st.get("Action", [])
                actions += a if isinstance(a, list) else [a]
                res = st.get("Resource", [])
                res = res if isinstance(res, list) else [res]
                if "*" in res:
                    only_list = all(x in ("lambda:ListEventSourceMappings",) for x in (a if isinstance(a, list) else [a]))
                    check(only_list, f"{role}: '*' resource only where AWS allows no other ({a})")
        check(actions and all("*" not in x for x in actions), f"{role}: no wildcard actions")
        attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        check(not attached, f"{role}: no managed policies (their resources are '*'): {attached}")

    def mapping_of(fn_suffix):
        pages = lam.get_paginator("list_event_source_mappings").paginate(
            FunctionName=f"{name}-{fn_suffix}")
        return [m for page in pages for m in page["EventSourceMappings"]]
    for fn, queue, size in [("processor", "OrdersQueue", 10), ("close", "TimersQueue", 1),
                            ("outbox-writer", "ApplicationsQueue", 10), ("inbox-receiver", "ErpRecordsQueue", 10)]:
        ms = mapping_of(fn)
        arn = attrs(queue)["QueueArn"]
        m = next((m for m in ms if m.get("EventSourceArn") == arn), None)
        check(m is not None, f"{fn}: mapped to {queue}")
        if m:
            check(m.get("BatchSize") == size, f"{fn}: batch size {size}")
            check("ReportBatchItemFailures" in m.get("FunctionResponseTypes", []),
                  f"{fn}: reports batch item failures")
    for fn, table in [("outbox-relay", "OutboxTable"), ("inbox-processor", "InboxTable")]:
        stream_arn = ddb.describe_table(TableName=phys(table))["Table"].get("LatestStreamArn")
        m = next((m for m in mapping_of(fn) if m.get("EventSourceArn") == stream_arn), None)
        check(m is not None, f"{fn}: mapped to the stream of {table}")
        if m:
            patterns = [json.loads(f["Pattern"]) for f in m.get("FilterCriteria", {}).get("Filters", [])]
            check(bool(patterns), f"{fn}: stream filter {patterns}")

    # ---- the real code runs: one function through the Invoke API ----
    opened = lam.invoke(FunctionName=f"{name}-open", Payload=json.dumps({"target": "no-such-target"}))
    answer = opened["Payload"].read().decode()
    check(opened.get("FunctionError") == "Unhandled" and "not a guarded target" in answer,
          f"{name}-open invoked through LocalStack answers as its code does: {answer[:120]}")

    # ---- schedules, alarms, outputs ----
    sched = client("scheduler")
    schedules = [s["Name"] for s in sched.list_schedules()["Schedules"]]
    for fn, what in [("OutboxRelayFunction", "sweep"), ("InboxProcessorFunction", "sweep"),
                     ("CloseFunction", "watchdog")]:
        check(any(s.startswith(name) or fn in s for s in schedules) or
              any(r["ResourceType"] == "AWS::Scheduler::Schedule" and k.startswith(fn) for k, r in resources.items()),
              f"{fn}: its {what} schedule exists")
    watchdog = (processed.get("Resources", {}).get("CloseFunctionWatchdog", {})
                .get("Properties", {}).get("Target", {}).get("Input"))
    check(watchdog is not None and json.loads(watchdog).get("kind") == "watchdog",
          f"the watchdog schedule sends {{\"kind\": \"watchdog\"}} to close ({watchdog})")
    alarms = [k for k, r in resources.items() if r["ResourceType"] == "AWS::CloudWatch::Alarm"]
    cw = client("cloudwatch")
    described = cw.describe_alarms(AlarmNamePrefix=name)["MetricAlarms"]
    topic = phys("AlarmTopic")
    check(len(described) == len(alarms) >= 20, f"{len(alarms)} alarms created")
    check(all(topic in a.get("AlarmActions", []) for a in described), "every alarm notifies the alarm topic")
    sns, kms = client("sns"), client("kms")
    topic_key = sns.get_topic_attributes(TopicArn=topic)["Attributes"].get("KmsMasterKeyId", "")
    check(topic_key == phys("AlarmTopicKey") or topic_key.endswith(phys("AlarmTopicKey")),
          f"the alarm topic is encrypted with the stack's own key ({topic_key})")
    check(kms.get_key_rotation_status(KeyId=phys("AlarmTopicKey")).get("KeyRotationEnabled") is True,
          "the alarm topic's key rotates")
    events = client("events")
    alert_targets = {t["Id"]: t for t in events.list_targets_by_rule(
        Rule=phys("AlertsRule").split("|")[-1].split("/")[-1], EventBusName=phys("EventBus"))["Targets"]}
    check(set(alert_targets) == {"alerts-queue", "alarm-topic"},
          f"alert events go to the alerts queue and the alarm topic ({sorted(alert_targets)})")
    check(all(t.get("DeadLetterConfig", {}).get("Arn") == attrs("AlertsRuleDLQ")["QueueArn"]
              for t in alert_targets.values()), "both alert targets dead-letter to AlertsRuleDLQ")
    for key in ["OrdersQueueUrl", "ErpRecordsQueueUrl", "ApplicationsQueueUrl", "InboxTableName",
                "OutboxTableName", "GateTableName", "EventBusName", "AlarmTopicArn", "AlertsQueueUrl"]:
        check(bool(outputs.get(key)), f"output {key}")

    if os.environ.get("KEEP_STACK") != "1":
        cfn.delete_stack(StackName=name)
    print(f"\n{len(failures)} failed check(s)" if failures else "\nall checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
