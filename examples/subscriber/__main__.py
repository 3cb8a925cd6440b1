"""A consumer team's Pulumi project: its own consumer of a fanout stack's events, in its own account.

It reads the fanout stack's outputs through a StackReference (topic_arn, region, ...) and builds,
with fanout's consumer component (the one fanout builds its own consumers with): a queue, its DLQ
and a subscription DLQ, all under a key of its own that only that topic may encrypt into, a
raw-delivery subscription with a filter policy, the function in subscriber_app/ (fanout's consumer
kit) with a least-privilege role, and DLQ-depth alarms. `python plan.py` prints what it declares,
offline, without an account.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

import pulumi
import pulumi_aws as aws

import fanout_subscriber as fs

HERE = Path(__file__).resolve().parent
NAME = "audit"
# Pure-Python packages the kit imports, copied from this environment into the function's code
# (boto3 is in the Lambda runtime). The versions are the ones fanout pins.
VENDORED = ("aws_lambda_powertools", "fastjsonschema", "jmespath", "typing_extensions")


def _located(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{module} is not installed here: pip install -r requirements.txt")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def kit_archive() -> pulumi.AssetArchive:
    """fanout_kit as a function needs it: its modules and its schemas (package data), not its test helpers."""
    kit = resources.files("fanout_kit")
    modules = {e.name: pulumi.FileAsset(str(e)) for e in kit.iterdir() if e.name.endswith(".py")}
    modules.pop("testing.py", None)
    schemas = {e.name: pulumi.FileAsset(str(e)) for e in (kit / "event_schemas").iterdir() if e.name.endswith(".json")}
    if "cloudevent.v1.json" not in schemas:
        raise RuntimeError(
            f"fanout_kit at {kit} has no schemas: pip install -r requirements.txt (the fanout-kit wheel)"
        )
    return pulumi.AssetArchive({**modules, "event_schemas": pulumi.AssetArchive(schemas)})


def code_archive() -> pulumi.AssetArchive:
    """subscriber_app/ plus fanout's consumer kit (fanout_kit, from the fanout-kit wheel) and its deps."""
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {
        "subscriber_app": pulumi.FileArchive(str(HERE / "subscriber_app")),
        "fanout_kit": kit_archive(),
    }
    for module in VENDORED:
        path = _located(module)
        assets[path.name] = pulumi.FileArchive(str(path)) if path.is_dir() else pulumi.FileAsset(str(path))
    return pulumi.AssetArchive(assets)


config = pulumi.Config()
fanout = pulumi.StackReference(config.require("fanoutStack"))
event_types = config.get_object("eventTypes") or ["fanout.data.generated.v1"]
alarm_topics = config.get_object("alarmTopicArns") or []

# Where the handler keeps what it receives: private, encrypted at rest (S3's default), this account's.
received = aws.s3.Bucket("received", bucket_prefix="fanout-received-", force_destroy=True)
aws.s3.BucketPublicAccessBlock(
    "received-public-access",
    bucket=received.id,
    block_public_acls=True,
    block_public_policy=True,
    ignore_public_acls=True,
    restrict_public_buckets=True,
)

consumer = fs.Consumer(
    NAME,
    fs.TopicSource(fanout.require_output("topic_arn"), filter_policy={"type": event_types}),
    function=fs.FunctionArgs(
        code=code_archive(),
        handler="subscriber_app.handler.handler",
        timeout_seconds=30,
        environment={
            "RECEIVED_BUCKET": received.bucket,
            "FANOUT_CONSUMER": NAME,
            "POWERTOOLS_SERVICE_NAME": NAME,
            "POWERTOOLS_METRICS_NAMESPACE": "fanout-subscriber",
            # Active tracing stays on in Lambda; the X-Ray SDK is not vendored.
            "POWERTOOLS_TRACE_DISABLED": "true",
        },
        statements=[
            {
                "Sid": "StoreReceivedEvents",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [pulumi.Output.concat(received.arn, "/received/*")],
            }
        ],
    ),
    max_receive_count=5,
    dlq_alarm=fs.DlqAlarm(actions=alarm_topics),
)

pulumi.export("queue_url", consumer.queue.url)
pulumi.export("dlq_url", consumer.dlq.url)
pulumi.export("function_name", consumer.function.function.name if consumer.function else None)
pulumi.export("received_bucket", received.bucket)
pulumi.export("fanout_topic_arn", fanout.require_output("topic_arn"))
pulumi.export("fanout_asyncapi_url", fanout.get_output("asyncapi_url"))
