"""The consumer kit on AWS: every function's environment is the one the local runtime gives it (one function,
fanout/environment.py, computes both), and kit consumers (idempotent, or reading the bus) deploy with
roles that reach their own queue and what the kit needs, nothing more."""

from __future__ import annotations

import copy
import dataclasses

import pulumi
import pytest

from fanout import localenv
from fanout.local.live import declared_environment
from infra import mocks, plan
from tests.infra.helpers import as_list, statements

# Variables whose value names a resource: the emulated one locally, the deployed one on AWS.
RESOURCE_VARS = {
    "TOPIC_ARN",
    "TABLE_NAME",
    "IDEMPOTENCY_TABLE_NAME",
    "EVENT_BUS_NAME",
    "ARCHIVE_BUCKET",
    "CURSOR_SECRET_ARN",
}
# The authorizer's token settings: JWKS/issuer/audience (or the HS256 secret's ARN) on AWS, the local
# HS256 secret locally. Every other function has exactly the same variable names in both places.
TOKEN_VARS = {"JWT_ALGORITHMS", "JWT_SECRET", "JWT_SECRET_ARN", "JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE"}


def _local(stack, name: str) -> dict[str, str]:
    settings = stack.settings
    # FANOUT_LOG_LEVEL is the local knob for POWERTOOLS_LOG_LEVEL; at the stack's level both are the same.
    env = dataclasses.replace(localenv.load(), log_level=settings.log_level)
    return declared_environment(env, settings.topology, name)


@pulumi.runtime.test
def test_every_function_has_locally_the_environment_pulumi_declares(stack_file):
    functions = stack_file.functions
    assert {"api", "authorizer", "generator", "persister", "archive"} <= set(functions)

    def check(rows):
        for name, declared in rows:
            local = _local(stack_file, name)
            if name == "authorizer":
                # ROLES_CLAIM is there in both; its value follows the identity (cognito:groups with Cognito).
                assert set(declared) - TOKEN_VARS == set(local) - TOKEN_VARS, name
                continue
            assert set(declared) == set(local), (name, sorted(set(declared) ^ set(local)))
            for key, value in declared.items():
                if key not in RESOURCE_VARS:
                    assert local[key] == value, (name, key, local[key], value)
            # Its own, not the union: no function sees another's variables.
            if name != "api":
                assert "CURSOR_SECRET_ARN" not in local
            if name != "persister":
                assert "EVENT_BUS_NAME" not in local

    return pulumi.Output.all(
        *[
            pulumi.Output.all(name, f.function.environment.apply(lambda e: e["variables"]))
            for name, f in functions.items()
        ]
    ).apply(check)


def _kit_config() -> dict:
    config, _ = mocks.read_stack_file("dev")
    config = copy.deepcopy(config)
    config["consumers"] = [
        *config["consumers"],
        {"name": "ledger", "handler": "handlers.persister:handler", "idempotent": True},
        {
            "name": "on-persisted",
            "handler": "handlers.archive:handler",
            "source": "bus",
            "eventPattern": {"source": ["fanout.persister"], "detail-type": ["fanout.data.persisted.v1"]},
        },
    ]
    return config


@pytest.fixture(scope="module")
def kit_stack():
    return plan.run_config("dev", _kit_config(), "eu-west-1")[1]


def _grants(doc: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for s in statements(doc):
        assert s["Effect"] == "Allow"
        for action in as_list(s["Action"]):
            assert "*" not in action
            found.setdefault(action, set()).update(as_list(s["Resource"]))
    return found


QUEUE_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}
IDEMPOTENCY_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


@pulumi.runtime.test
def test_an_idempotent_kit_consumer_gets_its_queue_and_the_idempotency_table_only(kit_stack):
    ledger, persister = kit_stack.consumers["ledger"], kit_stack.consumers["persister"]

    def check(args):
        policy, persister_policy, queue, idem, env = args
        grants = _grants(policy)
        for action in QUEUE_ACTIONS:
            assert grants[action] == {queue}
        for action in IDEMPOTENCY_ACTIONS:
            assert grants[action] == {idem}
        assert not IDEMPOTENCY_ACTIONS & set(_grants(persister_policy)), "only idempotent consumers get the table"
        assert env["FANOUT_IDEMPOTENT"] == "true" and "IDEMPOTENCY_TABLE_NAME" in env
        local = _local(kit_stack, "ledger")
        assert set(local) == set(env) and local["FANOUT_IDEMPOTENT"] == "true"

    return pulumi.Output.all(
        ledger.function.policy.policy,
        persister.function.policy.policy,
        ledger.queue.arn,
        kit_stack.table.idempotency_table.arn,
        ledger.function.function.environment.apply(lambda e: e["variables"]),
    ).apply(check)


@pulumi.runtime.test
def test_a_bus_consumer_reads_its_queue_only_fed_by_its_rule(kit_stack):
    bus_consumer = kit_stack.consumers["on-persisted"]
    assert bus_consumer.spec.source == "bus"
    queue_arns = [c.queue.arn for n, c in kit_stack.consumers.items() if n != "on-persisted"]

    def check(args):
        policy, queue, others, env = args[0], args[1], set(args[2:-1]), args[-1]
        grants = _grants(policy)
        for action in QUEUE_ACTIONS:
            assert grants[action] == {queue}
        assert not any(others & resources for resources in grants.values()), "another consumer's queue"
        assert not any(a.startswith(("sns:", "events:", "dynamodb:")) for a in grants)
        assert set(_local(kit_stack, "on-persisted")) == set(env)

    return pulumi.Output.all(
        bus_consumer.function.policy.policy,
        bus_consumer.queue.arn,
        *queue_arns,
        bus_consumer.function.function.environment.apply(lambda e: e["variables"]),
    ).apply(check)
