"""The deploy workflow as reviewers rely on it: prd previewed before approval, Pulumi secrets only
where Pulumi runs, and no smoke-test user left behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from infra.paths import ROOT
from tests.infra.smoke import stale_smoke_users

PULUMI_SECRETS = ("secrets.PULUMI_ACCESS_TOKEN", "secrets.PULUMI_CONFIG_PASSPHRASE")


def _jobs() -> dict[str, Any]:
    return yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text(encoding="utf-8"))["jobs"]


def _runs_pulumi(step: dict[str, Any]) -> bool:
    return str(step.get("uses", "")).startswith("pulumi/actions@") or str(step.get("run", "")).startswith("pulumi ")


def test_prd_is_previewed_without_approval_before_the_approved_deploy():
    jobs = _jobs()
    preview, deploy = jobs["prd-preview"], jobs["prd"]
    assert preview["needs"] == "dev" and deploy["needs"] == "prd-preview"
    # Its own environment (no reviewers, a read-only role), not prd's: the approval waits for the preview.
    assert preview["environment"] == "prd-preview" and deploy["environment"] == "prd"
    commands = [s["with"]["command"] for s in preview["steps"] if _runs_pulumi(s) and "with" in s]
    assert commands == ["preview"]
    (step,) = [s for s in preview["steps"] if _runs_pulumi(s)]
    assert step["with"]["stack-name"] == "prd" and step["with"]["comment-on-summary"] is True
    assert [s["with"]["command"] for s in deploy["steps"] if _runs_pulumi(s) and "with" in s] == ["up"]
    # Stacks are created once by hand (docs/deploy.md): CI never creates one.
    for job in jobs.values():
        assert all(not s.get("with", {}).get("upsert") for s in job["steps"])


def test_pulumi_secrets_reach_only_the_steps_that_run_pulumi():
    for name, job in _jobs().items():
        assert not any(secret in str(job.get("env", {})) for secret in PULUMI_SECRETS), name
        for step in job["steps"]:
            if any(secret in str(step) for secret in PULUMI_SECRETS):
                assert _runs_pulumi(step), (name, step.get("name"))
        # The smoke test talks to the stack, not to Pulumi: it gets no Pulumi secret.
        smoke = [s for s in job["steps"] if "tests.infra.smoke" in str(s.get("run", ""))]
        assert all("env" not in s for s in smoke), name


def test_every_smoke_test_is_followed_by_an_always_run_clean_up():
    for name in ("dev", "prd"):
        steps = _jobs()[name]["steps"]
        runs = [str(s.get("run", "")) for s in steps]
        smoke = next(i for i, r in enumerate(runs) if "tests.infra.smoke" in r)
        clean = next(i for i, r in enumerate(runs) if "--clean-up-only" in r)
        assert clean > smoke and steps[clean]["if"] == "always()", name


def test_smoke_users_older_than_the_ttl_are_the_ones_deleted():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    users = [
        {"Username": "smoke-a@example.com", "UserCreateDate": now - timedelta(hours=2)},
        {"Username": "smoke-b@example.com", "UserCreateDate": now - timedelta(minutes=5)},
        {"Username": "alice@example.com", "UserCreateDate": now - timedelta(days=30)},
    ]
    assert stale_smoke_users(users, now, timedelta(hours=1)) == ["smoke-a@example.com"]
    # The always-run clean-up: every smoke user, never anyone else.
    assert stale_smoke_users(users, now, timedelta(0)) == ["smoke-a@example.com", "smoke-b@example.com"]


def test_a_smoke_user_takes_its_items_with_it(monkeypatch):
    """Every item under the smoke user's key is deleted, and only those (moto's DynamoDB)."""
    import boto3
    from moto import mock_aws

    from tests.infra import smoke

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for var, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        monkeypatch.setenv(var, value)
    outputs = {"topic_arn": "arn:aws:sns:eu-west-1:123456789012:fanout-prd-data-events", "table_name": "data"}
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-west-1")
        ddb.create_table(
            TableName="data",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for user, n in (("smoke-sub", 3), ("alice", 2)):
            for i in range(n):
                ddb.put_item(TableName="data", Item={"pk": {"S": f"USER#{user}"}, "sk": {"S": f"DATA#{i}"}})
        assert smoke.delete_items_of(outputs, "smoke-sub") == 3
        left = {i["pk"]["S"] for i in ddb.scan(TableName="data")["Items"]}
        assert left == {"USER#alice"}
