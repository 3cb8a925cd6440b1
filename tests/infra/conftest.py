"""Builds the Pulumi program under mocks once per stack (dev, prd, and a variant exercising the options).

Each test is a `@pulumi.runtime.test` that RETURNS its `Output.all(...).apply(check)`: an assertion
in an apply that is not returned is never awaited and passes silently.
"""

from __future__ import annotations

import copy

import pytest

from fanout import topology
from infra import plan
from tests.support.checkout import STACK_CONFIGS

STACKS = ("dev", "prd")


def variant_config() -> dict:
    """dev (the tests' copy as shipped: the checkout's is its user's to edit) plus what the stack files do not
    switch on: more consumers, a VPC, HS256 tokens."""
    config = copy.deepcopy(topology.read_stack_config("dev", STACK_CONFIGS))
    config["consumers"] = [
        *config.get("consumers", []),
        {"name": "audit", "filterPolicy": {"informationOne": [{"prefix": "temp"}]}, "filterPolicyScope": "MessageBody"},
        {
            "name": "mirror",
            "handler": "handlers.persister:handler",
            "batchSize": 100,
            "batchingWindowSeconds": 5,
            "timeoutSeconds": 45,
            "maxConcurrency": 3,
            "maxReceiveCount": 7,
        },
        # A bus consumer: a rule on the stack's bus delivering to its queue.
        {
            "name": "notify",
            "source": "bus",
            "eventPattern": {"source": ["fanout.persister"], "detail-type": ["fanout.data.persisted.v1"]},
            "maxReceiveCount": 4,
        },
    ]
    config["vpc"] = {"enabled": True, "azCount": 3}
    config["token"] = {"algorithms": ["HS256"], "cacheTtlSeconds": 60}
    config["identity"] = {"mode": "hs256"}
    config["alarms"] = True
    config["alarmEmail"] = "oncall@fanout-team.io"
    # A nested route's method setting: its path must be escaped (~1data~1{id}/GET).
    config["throttle"] = {"rateLimit": 20, "burstLimit": 40, "methods": {"GET /data/{id}": {"rateLimit": 5}}}
    config["logRetentionDays"] = 30
    config["tracingSdk"] = True
    # The shared persisted-events queue, off in the stack files.
    config["persistedQueue"] = True
    return config


@pytest.fixture(scope="session")
def builds() -> dict:
    built = {name: plan.run(name) for name in STACKS}
    built["variant"] = plan.run_config("dev", variant_config(), "us-east-2")
    return built


@pytest.fixture(params=[*STACKS, "variant"])
def any_stack(request, builds):
    """Every build: the promises hold whatever the config says."""
    return builds[request.param][1]


@pytest.fixture(params=STACKS)
def stack_file(request, builds):
    """The real stacks, as their Pulumi.<stack>.yaml configure them."""
    return builds[request.param][1]


@pytest.fixture
def dev(builds):
    return builds["dev"][1]


@pytest.fixture
def prd(builds):
    return builds["prd"][1]


@pytest.fixture
def variant(builds):
    return builds["variant"][1]


def pytest_configure(config):
    # pulumi_aws warns about its own deprecated classes on import; none of them is ours.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")
