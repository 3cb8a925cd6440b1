"""Unit-test fixtures: offline, in-process AWS (moto's mock_aws), no network.

Every test gets dummy credentials, the handlers' environment and fresh caches. Tests that
touch AWS ask for the `aws` fixture: a data table, an idempotency table, an SNS topic with
an SQS queue subscribed (raw delivery) so tests can read what was published, and an
EventBridge bus with a rule sending everything to an SQS queue so tests can read what the
persister announced.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from unit_support import BUCKET, ENV, REGION, Aws  # noqa: E402

from handlers.core import clients, settings  # noqa: E402

# Anything that would send boto3 or the authorizer somewhere else than the mocks.
UNSET = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_EVENTBRIDGE",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "JWT_SECRET_ARN",
    "JWKS_URL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "ROLES_CLAIM",
    "GENERATOR_USERS",
    "GENERATOR_COUNT",
    "POWERTOOLS_IDEMPOTENCY_DISABLED",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_LOGGER_LOG_EVENT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)

# Speed only: every boto3 Session builds its own botocore Loader and re-reads the service models
# (about 100 ms a client). The handlers build fresh clients in every test (clients.reset()), so
# let all loaders share one cache of the (read-only) model files.
_SHARED_LOADER_CACHE: dict[Any, Any] = {}
_real_loader_init = botocore.loaders.Loader.__init__


def _shared_cache_loader_init(self: botocore.loaders.Loader, *args: Any, **kwargs: Any) -> None:
    _real_loader_init(self, *args, **kwargs)
    self._cache = _SHARED_LOADER_CACHE


botocore.loaders.Loader.__init__ = _shared_cache_loader_init  # type: ignore[method-assign]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _allowed(sock: socket.socket, address: Any) -> bool:
    if sock.family == socket.AF_UNIX:
        return True
    return isinstance(address, tuple) and address[0] == "127.0.0.1"


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _allowed(self, address):
        raise ConnectionRefusedError(f"unit tests are offline: connect to {address!r} blocked")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _allowed(self, address):
        raise ConnectionRefusedError(f"unit tests are offline: connect to {address!r} blocked")
    return _real_connect_ex(self, address)


def _clear_caches() -> None:
    for name in ("auth_settings", "topic_arn", "table_name", "idempotency_table_name", "event_bus_name", "cursor_key"):
        getattr(settings, name).cache_clear()
    clients.reset()
    clients._config.cache_clear()
    from handlers.core import auth, idempotency

    auth._jwks_client.cache_clear()
    auth._secret_from_arn.cache_clear()
    idempotency._runner.cache_clear()


def pytest_configure(config: pytest.Config) -> None:
    # handlers.api silences this at import, but pytest restores warning filters after each test.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # A state dir of the test's own: the CLI finds a running stack through the state dir's stack.json, and
    # the user's `make run` (.fanout/) must not be it.
    monkeypatch.setenv("FANOUT_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    _clear_caches()
    yield
    _clear_caches()


@dataclass
class LambdaContext:
    function_name: str = "fanout-unit"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:fanout-unit"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/fanout-unit"
    log_stream_name: str = "unit"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


_TEST_CLIENTS: dict[str, Any] = {}


def _test_client(service: str) -> Any:
    """The tests' own clients, built once: moto intercepts them in every later mock_aws context."""
    if service not in _TEST_CLIENTS:
        _TEST_CLIENTS[service] = boto3.client(service, region_name=REGION)
    return _TEST_CLIENTS[service]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        ddb = _test_client("dynamodb")
        sns = _test_client("sns")
        sqs = _test_client("sqs")
        eb = _test_client("events")
        for name, keys in (
            (ENV["TABLE_NAME"], (("pk", "HASH"), ("sk", "RANGE"))),
            (ENV["IDEMPOTENCY_TABLE_NAME"], (("id", "HASH"),)),
        ):
            ddb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
                AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        topic_arn = sns.create_topic(Name="data-events")["TopicArn"]
        assert topic_arn == ENV["TOPIC_ARN"]
        topic_queue = sqs.create_queue(QueueName="topic-tap")["QueueUrl"]
        topic_queue_arn = sqs.get_queue_attributes(QueueUrl=topic_queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=topic_queue_arn,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )
        eb.create_event_bus(Name=ENV["EVENT_BUS_NAME"])
        bus_queue = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
        bus_queue_arn = sqs.get_queue_attributes(QueueUrl=bus_queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        eb.put_rule(
            Name="everything",
            EventBusName=ENV["EVENT_BUS_NAME"],
            EventPattern=json.dumps({"source": [{"prefix": "fanout"}]}),
        )
        eb.put_targets(
            Rule="everything", EventBusName=ENV["EVENT_BUS_NAME"], Targets=[{"Id": "tap", "Arn": bus_queue_arn}]
        )
        yield Aws(
            ddb=ddb,
            sns=sns,
            sqs=sqs,
            events=eb,
            topic_arn=topic_arn,
            table=ENV["TABLE_NAME"],
            idempotency_table=ENV["IDEMPOTENCY_TABLE_NAME"],
            bus=ENV["EVENT_BUS_NAME"],
            topic_queue_url=topic_queue,
            bus_queue_url=bus_queue,
        )


@pytest.fixture
def s3(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The archive consumer's bucket, named to it through ARCHIVE_BUCKET."""
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    return client
