"""Create the topology's resources on the emulated endpoint (idempotent)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from fanout import consumers
from fanout.localenv import LocalEnv
from fanout.topology import Consumer, Topology


def _create_table(ddb: Any, name: str, keys: list[tuple[str, str]], ttl_attribute: str | None = None) -> None:
    try:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    if ttl_attribute:
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
        )


def _create_bucket(s3: Any, name: str, region: str) -> None:
    # us-east-1 is the one region that refuses an explicit LocationConstraint.
    kwargs: dict[str, Any] = (
        {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    try:
        s3.create_bucket(Bucket=name, **kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def cursor_secret_id(topology: Topology) -> str:
    """Where the api finds its cursor key locally: a Secrets Manager secret, as on AWS (CURSOR_SECRET_ARN
    takes an ARN or a name), so both read it through the same code."""
    return f"{topology.prefix}-cursor"


def _ensure_cursor_secret(sm: Any, topology: Topology, env: LocalEnv) -> None:
    # Derived from the local JWT secret, so cursors stay valid across restarts of the same stack.
    value = "local-cursor:" + env.jwt_secret
    try:
        sm.create_secret(Name=cursor_secret_id(topology), SecretString=value)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceExistsException":
            raise
        sm.put_secret_value(SecretId=cursor_secret_id(topology), SecretString=value)


def provision(topology: Topology, env: LocalEnv, session: Any) -> dict[str, consumers.ConsumerQueues]:
    _ensure_cursor_secret(session.client("secretsmanager"), topology, env)
    sns = session.client("sns")
    ddb, events = session.client("dynamodb"), session.client("events")
    sns.create_topic(Name=topology.topic_name)
    _create_table(ddb, topology.table_name, [("pk", "HASH"), ("sk", "RANGE")])
    _create_table(ddb, topology.idempotency_table_name, [("id", "HASH")], ttl_attribute="expiration")
    _create_bucket(session.client("s3"), topology.archive_bucket_name, env.region)
    try:
        events.create_event_bus(Name=topology.event_bus_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    return {c.name: provision_consumer(topology, c, env, session) for c in topology.consumers}


def provision_consumer(topology: Topology, c: Consumer, env: LocalEnv, session: Any) -> consumers.ConsumerQueues:
    """One consumer's queue, DLQ and source: its topic subscription, or its rule on the bus (idempotent)."""
    sqs = session.client("sqs")
    if c.source == "bus":
        return consumers.ensure_bus(
            sqs,
            session.client("events"),
            topology.event_bus_name,
            name=c.name,
            queue_name=topology.queue_name(c),
            dlq_name=topology.dlq_name(c),
            event_pattern=c.event_pattern or {},
            max_receive_count=c.max_receive_count,
            visibility_timeout=env.visibility_timeout,
        )
    return consumers.ensure(
        sqs,
        session.client("sns"),
        env.topic_arn(topology.topic_name),
        name=c.name,
        queue_name=topology.queue_name(c),
        dlq_name=topology.dlq_name(c),
        max_receive_count=c.max_receive_count,
        # Locally a short timeout makes retries and DLQ moves visible in seconds.
        visibility_timeout=env.visibility_timeout,
        filter_policy=c.filter_policy,
        filter_scope=c.filter_policy_scope,
    )
