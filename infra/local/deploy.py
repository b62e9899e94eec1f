"""Deploys infra/template.yaml to LocalStack through its CloudFormation (SAM transform), with
the functions' real code built by cargo-lambda, and prints what the stack holds as JSON.

    deploy.py NAME [--param Key=Value]... [--env VAR=value]... [--code dir|zip] [--out FILE]
    deploy.py --delete NAME

--code zip (the default) uploads each function's `bootstrap.zip` (from
target/lambda-local/<binary>/) to S3 and points `CodeUri` at it, as `sam deploy` does.
--code dir points `CodeUri` at LocalStack's hot-reload bucket with the built `bootstrap`'s
folder as key: the same binary, without copying it into every stack (the end-to-end tests
deploy one stack per test). The architecture is the host's, since the binaries are built for
it. --env sets local environment overrides for the stack's functions (a fault proxy, a log
level); LocalStack's process executor applies them (see process_executor.py).

The JSON: {"stack", "endpoint", "status", "outputs", "parameters", "resources": {logical:
{"type", "physical", "arn"}}, "functions": {binary: {"logical", "name", "timeout"}},
"mappings": [{"uuid", "binary", "source_arn", "kind", "batch_size"}]}.
"""

import argparse
import hashlib
import json
import os
import platform
import sys
import time

import boto3
import botocore.exceptions
from samtranslator.yaml_helper import yaml_parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
REGION = os.environ.get("AWS_REGION", "us-east-1")
BUCKET = "steadfast-local-artifacts"
LAMBDA_DIR = os.path.join(ROOT, "target", "lambda-local")
ENV_DIR = os.environ.get("STEADFAST_FUNCTION_ENV_DIR", os.path.join(ROOT, ".tools", "run", "function-env"))


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def code_for(binary, mode, s3):
    """Where a function's built code is: LocalStack's hot-reload folder or an uploaded zip."""
    folder = os.path.join(LAMBDA_DIR, binary)
    if mode == "dir":
        if not os.path.isfile(os.path.join(folder, "bootstrap")):
            sys.exit(f"{folder}/bootstrap is missing: run `make zips` first")
        return {"Bucket": "hot-reload", "Key": folder}
    path = os.path.join(folder, "bootstrap.zip")
    if not os.path.isfile(path):
        sys.exit(f"{path} is missing: run `make zips` first")
    with open(path, "rb") as f:
        data = f.read()
    key = f"code/{binary}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
    except s3.exceptions.ClientError:
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return f"s3://{BUCKET}/{key}"


def local_template(mode, s3):
    """infra/template.yaml with each function's CodeUri at its built code, for this host's
    architecture, as JSON. Nothing else changes: the stack is the one `sam deploy` creates."""
    with open(os.path.join(ROOT, "infra", "template.yaml")) as f:
        template = yaml_parse(f.read())
    binaries = []
    for logical, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if not binary:
            sys.exit(f"{logical} needs Metadata.BuildProperties.Binary (the binary cargo-lambda builds)")
        resource["Properties"]["CodeUri"] = code_for(binary, mode, s3)
        binaries.append(binary)
    arch = "x86_64" if platform.machine() in ("x86_64", "AMD64") else "arm64"
    template.setdefault("Globals", {}).setdefault("Function", {})["Architectures"] = [arch]
    return json.dumps(template), binaries


def set_env(name, env):
    os.makedirs(ENV_DIR, exist_ok=True)
    path = os.path.join(ENV_DIR, f"{name}.json")
    if env:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(env, f)
        os.replace(tmp, path)
    elif os.path.exists(path):
        os.remove(path)


def deploy(name, params, env, mode="zip"):
    s3, cfn = client("s3"), client("cloudformation")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    body, binaries = local_template(mode, s3)
    set_env(name, env)
    started = time.time()
    # Over CloudFormation's 51 200-byte inline limit: from S3, as `sam deploy` does.
    s3.put_object(Bucket=BUCKET, Key=f"templates/{name}.json", Body=body.encode())
    cfn.create_stack(
        StackName=name,
        TemplateURL=f"{ENDPOINT}/{BUCKET}/templates/{name}.json",
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith("IN_PROGRESS") or time.time() - started > 600:
            break
        time.sleep(0.5)
    info = {
        "stack": name,
        "endpoint": ENDPOINT,
        "status": status,
        "seconds": round(time.time() - started, 1),
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        "parameters": {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
        "failures": [],
        "resources": {},
        "functions": {},
        "mappings": [],
    }
    if status != "CREATE_COMPLETE":
        if stack.get("StackStatusReason"):
            info["failures"].append(f"{name}: {stack['StackStatusReason']}")
        for e in cfn.describe_stack_events(StackName=name)["StackEvents"]:
            failed = "FAILED" in e["ResourceStatus"] or "ROLLBACK" in e["ResourceStatus"]
            reason = e.get("ResourceStatusReason")
            line = f"{e['LogicalResourceId']}: {reason}"
            if failed and reason and line not in info["failures"]:
                info["failures"].append(line)
        return info
    sqs, lam, ddb = client("sqs"), client("lambda"), client("dynamodb")
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for r in page["StackResourceSummaries"]:
            kind, physical = r["ResourceType"], r.get("PhysicalResourceId", "")
            arn = None
            if kind == "AWS::SQS::Queue":
                arn = sqs.get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            elif kind == "AWS::DynamoDB::Table":
                t = ddb.describe_table(TableName=physical)["Table"]
                arn = t["TableArn"]
                if t.get("LatestStreamArn"):
                    info["resources"][r["LogicalResourceId"] + ".StreamArn"] = {
                        "type": "stream", "physical": t["LatestStreamArn"], "arn": t["LatestStreamArn"]}
            elif kind == "AWS::Lambda::Function":
                arn = lam.get_function_configuration(FunctionName=physical)["FunctionArn"]
            info["resources"][r["LogicalResourceId"]] = {"type": kind, "physical": physical, "arn": arn}
    functions = {k: v for k, v in info["resources"].items() if v["type"] == "AWS::Lambda::Function"}
    for binary in binaries:
        logical, res = next(
            ((k, v) for k, v in functions.items() if v["physical"] == f"{name}-{binary}"), (None, None))
        if res is None:
            continue
        conf = lam.get_function_configuration(FunctionName=res["physical"])
        info["functions"][binary] = {"logical": logical, "name": res["physical"], "timeout": conf["Timeout"]}
        for page in lam.get_paginator("list_event_source_mappings").paginate(FunctionName=res["physical"]):
            for m in page["EventSourceMappings"]:
                info["mappings"].append({
                    "uuid": m["UUID"],
                    "binary": binary,
                    "source_arn": m["EventSourceArn"],
                    "kind": "sqs" if ":sqs:" in m["EventSourceArn"] else "stream",
                    "batch_size": m.get("BatchSize"),
                })
    return info


def delete(name):
    set_env(name, {})
    client("cloudformation").delete_stack(StackName=name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--param", action="append", default=[], help="template parameter Key=Value")
    ap.add_argument("--env", action="append", default=[], help="local environment override VAR=value")
    ap.add_argument("--code", choices=["dir", "zip"], default="zip")
    ap.add_argument("--out", help="also write the JSON to this file")
    ap.add_argument("--delete", action="store_true", help="delete the stack NAME")
    a = ap.parse_args()
    if a.delete:
        delete(a.name)
        return
    pairs = lambda items: dict(i.split("=", 1) for i in items)
    try:
        info = deploy(a.name, pairs(a.param), pairs(a.env), a.code)
    except botocore.exceptions.ClientError as e:
        sys.exit(f"stack {a.name}: {e}")
    except botocore.exceptions.EndpointConnectionError as e:
        sys.exit(f"stack {a.name}: no emulator answers ({e}); start it with `infra/local/emulator.sh start`")
    text = json.dumps(info, indent=2)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)
    if info["status"] != "CREATE_COMPLETE":
        print(f"stack {a.name}: {info['status']}: " + "; ".join(info["failures"]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
