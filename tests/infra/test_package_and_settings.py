"""Packaging reproducibility, the settings' typed defaults and validation, and the offline plan."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fanout.topology import TopologyError
from infra import package
from infra.settings import from_raw

ROOT = Path(__file__).resolve().parents[2]


def test_handler_zip_is_byte_identical_across_builds(tmp_path, monkeypatch):
    digests = []
    for attempt in ("a", "b"):
        monkeypatch.setattr(package, "HANDLER_ZIP", tmp_path / attempt / "handlers.zip")
        digests.append(package.build_handlers().sha256)
    assert digests[0] == digests[1]

    with zipfile.ZipFile(tmp_path / "a" / "handlers.zip") as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert "handlers/api.py" in names and "handlers/core/settings.py" in names
    # handlers/ + fanout_kit (its schemas as package data, its test helpers left out), nothing else.
    assert {n.split("/")[0] for n in names} == {"handlers", "fanout_kit"}
    assert "fanout_kit/kit.py" in names and "fanout_kit/testing.py" not in names
    schemas = sorted(n.removeprefix("fanout_kit/event_schemas/") for n in names if "/event_schemas/" in n)
    assert schemas == sorted(p.name for p in package.SCHEMAS.glob("*.json"))
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_layer_is_rebuilt_only_when_the_lock_or_recipe_changes(monkeypatch, tmp_path):
    lock = tmp_path / "requirements-lambda.lock"
    lock.write_text("six==1.17.0 --hash=sha256:00\n")
    monkeypatch.setattr(package, "LOCK", lock)
    first = package._layer_stamp()
    lock.write_text("six==1.17.1 --hash=sha256:00\n")
    assert package._layer_stamp() != first


def test_runtime_and_layer_target_agree():
    assert f"python{package.PYTHON_VERSION}" == package.RUNTIME
    assert package.ARCHITECTURE == "arm64" and all(p.endswith("_aarch64") for p in package.PLATFORMS)


def test_production_defaults_follow_the_stack_name():
    dev, prd = from_raw("dev", {}), from_raw("prd", {})
    assert not dev.production and prd.production
    assert prd.alarms and not dev.alarms
    assert prd.deletion_protection and prd.point_in_time_recovery
    assert not dev.deletion_protection and not dev.point_in_time_recovery
    assert prd.log_retention_days > dev.log_retention_days
    assert dev.identity.mode == "cognito"


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"logRetentionDays": 10}, "fanout:logRetentionDays"),
        ({"throttle": {"methods": {"DELETE /data": {"rateLimit": 1}}}}, "fanout:throttle"),
        ({"throttle": {"rateLimit": 0}}, "rateLimit"),
        ({"alarmEmail": "not-an-address"}, "fanout:alarmEmail"),
        ({"vpc": {"enabled": "yes"}}, r"fanout:vpc\.enabled"),
        ({"identity": {"mode": "external"}}, "jwksUrl"),
        ({"apiStageName": "v 1"}, "fanout:apiStageName"),
    ],
)
def test_bad_settings_name_the_key(raw, names):
    with pytest.raises(TopologyError, match=names):
        from_raw("dev", raw)


def test_hs256_is_refused_in_production():
    with pytest.raises(TopologyError, match="development stacks only"):
        from_raw("prd", {"token": {"algorithms": ["HS256"]}})
    assert from_raw("dev", {"token": {"algorithms": ["HS256"]}}).identity.mode == "hs256"


def test_external_issuer_is_trusted_when_configured():
    s = from_raw(
        "prd",
        {
            "token": {
                "algorithms": ["RS256"],
                "jwksUrl": "https://idp.example/jwks",
                "issuer": "https://idp.example/",
                "audience": "fanout-api",
            }
        },
    )
    assert s.identity.mode == "external" and s.identity.api_token == "access_token"
    with pytest.raises(TopologyError, match="apiToken"):
        from_raw("dev", {"identity": {"apiToken": "refresh_token"}})


def test_plan_runs_from_any_directory_and_lists_everything(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "infra.plan", "--stack", "prd"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for token in ("aws:lambda:Function", "aws:apigateway:Stage", "aws:cloudwatch:MetricAlarm", "resources to create"):
        assert token in out
    assert "fanout-prd-persister" in out


ENTRY_POINT = """
import json, runpy, sys
import pulumi
from infra import mocks, package

config, region = mocks.read_stack_file(sys.argv[1])
config.update(json.loads(sys.argv[3]))  # what `pulumi config set` would have added
recorded = mocks.install(sys.argv[1], config, region)
package.build_all = package.existing  # no pip in tests: the layer is the last one built, or a stand-in

@pulumi.runtime.test
def program():
    runpy.run_path(sys.argv[2], run_name="__main__")

program()
print(len([r for r in recorded.resources if not r.type.startswith("fanout:")]))
"""


def _entry_point(tmp_path, stack: str, extra: dict) -> subprocess.CompletedProcess:
    script = tmp_path / "entry.py"
    script.write_text(ENTRY_POINT)
    return subprocess.run(
        [sys.executable, str(script), stack, str(ROOT / "infra"), json.dumps(extra)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_pulumi_up_refuses_prd_until_a_real_alarm_address_is_set(tmp_path):
    """Pulumi.prd.yaml ships without an address: `pulumi up` says which key to set (the plan only warns)."""
    for extra in ({}, {"alarmEmail": "ops@example.com"}):
        result = _entry_point(tmp_path, "prd", extra)
        assert result.returncode != 0
        assert "fanout:alarmEmail" in result.stderr and "pulumi config set fanout:alarmEmail" in result.stderr


@pytest.mark.parametrize("stack", ["dev", "prd"])
def test_pulumi_entry_point_runs_like_the_language_host(tmp_path, stack):
    """Pulumi runs infra/ as a directory, from wherever: nothing may depend on the working directory."""
    # prd needs the alarm address a user sets with `pulumi config set` before the first deploy.
    extra = {"alarmEmail": "oncall@fanout-team.io"} if stack == "prd" else {}
    result = _entry_point(tmp_path, stack, extra)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.strip().splitlines()[-1]) > 100
