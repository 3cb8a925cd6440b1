"""The local stack against another user of the machine and against web pages (black-box, a started stack).

Another local user reaches 127.0.0.1 too: the emulated endpoint takes only this run's keys (kept 0600
in the state dir), code locations come only from what the developer registered through the stack,
and a `--path` someone else can write is refused. A web page's plain GETs (an <img>) carry no Origin
but do carry Sec-Fetch-* (and often Referer): refused, and moto's /moto-api/ routes are closed.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from tests.fuzz.live import log_path
from tests.support.stack import ROOT, Stack

HANDLER = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")

def handler(event, context):
    return {{"batchItemFailures": []}}
"""


def _status(stack: Stack) -> dict:
    return json.loads(stack.cli("status", "--json").stdout)


def _module_dir(tmp_path: Path, name: str, mode: int = 0o755) -> tuple[Path, Path]:
    """A directory holding module `name` whose import writes a marker file; returns (dir, marker)."""
    where = tmp_path / f"code-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    marker = tmp_path / f"{name}.imported"
    (where / f"{name}.py").write_text(HANDLER.format(marker=str(marker)))
    where.chmod(mode)
    return where, marker


# ------------------------------------------------------------------------------------ credentials
def test_emulator_refuses_other_credentials(stack: Stack) -> None:
    status = _status(stack)
    other = boto3.client(
        "sqs",
        endpoint_url=stack.aws_endpoint,
        region_name=status["region"],
        aws_access_key_id="AKIDSOMEONEELSE00000",
        aws_secret_access_key="whatever",
    )
    with pytest.raises(ClientError) as refused:
        other.list_queues()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "credentials of its own run" in str(refused.value)
    # The run's key id with any other secret (a guess, or the id alone) is refused too: the signature is verified.
    key_id, secret = stack.credentials()
    guessed = boto3.client(
        "sqs",
        endpoint_url=stack.aws_endpoint,
        region_name=status["region"],
        aws_access_key_id=key_id,
        aws_secret_access_key=secret[:-1] + ("x" if secret[-1] != "x" else "y"),
    )
    with pytest.raises(ClientError) as refused:
        guessed.list_queues()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "signature does not match" in str(refused.value)
    # Unsigned (no Authorization at all) is refused too; this run's keys are served.
    assert requests.get(f"{stack.aws_endpoint}/", timeout=10).status_code == 403
    assert "QueueUrls" in stack.boto("sqs").list_queues()
    # The keys are the ones `fanout status --json` and `fanout env` give, and only the user can read them.
    assert status["aws_credentials"] == {"access_key_id": key_id, "secret_access_key": secret}
    assert stat.S_IMODE((stack.state_dir / "credentials.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(stack.state_dir.stat().st_mode) == 0o700


def test_fanout_env_reaches_the_stack_with_the_aws_sdk(stack: Stack) -> None:
    printed = stack.cli("env").stdout
    key_id, secret = stack.credentials()
    assert f"export AWS_ACCESS_KEY_ID={key_id}\n" in printed
    assert f"export AWS_SECRET_ACCESS_KEY={secret}\n" in printed
    assert f"export AWS_ENDPOINT_URL={stack.aws_endpoint}\n" in printed
    # As a shell uses it: eval the lines, then a plain SDK client with no arguments reaches the stack.
    script = "eval \"$1\"; python -c \"import boto3; print(len(boto3.client('sqs').list_queues()['QueueUrls']))\""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    done = subprocess.run(["sh", "-c", script, "sh", printed], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 2


def test_a_tagged_queue_on_the_emulator_is_never_imported(stack: Stack, tmp_path: Path) -> None:
    """What another user did with two calls: a queue tagged with a handler and a path, subscribed to the topic.

    Done here with this run's own keys (the strongest case: whoever reaches the emulator), the runtime
    still never imports it: code locations come only from what `fanout subscribe --handler` registered.
    """
    where, marker = _module_dir(tmp_path, f"planted_{uuid.uuid4().hex[:6]}")
    module = next(where.glob("*.py")).stem
    sqs, sns = stack.boto("sqs"), stack.boto("sns")
    name = f"planted-{uuid.uuid4().hex[:6]}"
    url = sqs.create_queue(QueueName=name, tags={"fanout:handler": f"{module}:handler", "fanout:path": str(where)})[
        "QueueUrl"
    ]
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})}
    )
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = _status(stack)["topic_arn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    stack.cli("generate", "--count", "1")
    time.sleep(4)  # the runtime looked for subscribed consumers every second before
    assert not marker.exists(), "the runtime imported a module named by queue tags on the emulator"
    assert f"running {module}" not in log_path(stack).read_text(errors="replace")


def test_subscribe_refuses_a_path_others_can_write(stack: Stack, tmp_path: Path) -> None:
    where, marker = _module_dir(tmp_path, f"open_{uuid.uuid4().hex[:6]}", mode=0o777)
    module = next(where.glob("*.py")).stem
    name = f"open-{uuid.uuid4().hex[:6]}"
    done = stack.cli("subscribe", name, "--handler", f"{module}:handler", "--path", str(where), check=False)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "writable by group or others" in done.stderr
    assert name not in _status(stack)["consumers"]  # nothing created
    time.sleep(2)
    assert not marker.exists()


def test_registering_a_handler_needs_the_runs_secret(stack: Stack, tmp_path: Path) -> None:
    where, _ = _module_dir(tmp_path, f"reg_{uuid.uuid4().hex[:6]}")
    body = {"name": "intruder", "handler": "x:handler", "path": str(where)}
    for secret in (None, "guess", stack.credentials()[0]):
        r = requests.post(f"{stack.api_url}/_local/handlers", json={**body, "secret": secret}, timeout=10)
        assert r.status_code == 403, (secret, r.text)
    assert (
        not (stack.state_dir / "handlers.json").exists()
        or "intruder" not in (stack.state_dir / "handlers.json").read_text()
    )


# ------------------------------------------------------------------------------------ web pages
def test_moto_api_is_closed(stack: Stack) -> None:
    key_id = stack.credentials()[0]
    signed = {"Authorization": f"AWS4-HMAC-SHA256 Credential={key_id}/20260101/us-east-1/s3/aws4_request, x"}
    for path in ("/moto-api/recorder/start-recording", "/moto-api/recorder/replay-recording", "/moto-api/seed?a=1"):
        for headers in ({}, signed):  # what an <img> sends, and even with the run's key id
            r = requests.get(f"{stack.aws_endpoint}{path}", headers=headers, timeout=10)
            assert r.status_code == 403, (path, r.status_code, r.text[:200])
            assert "moto-api" in r.text or "credentials" in r.text
    stack.boto("sqs").list_queues()  # a request a recording would have kept
    for where in (ROOT, stack.state_dir, Path.cwd()):
        assert not (where / "moto_recording").exists(), where
    assert "moto_recording" in (ROOT / ".gitignore").read_text().split()


def test_browser_fetch_metadata_and_referer_are_refused(stack: Stack) -> None:
    url = f"{stack.aws_endpoint}/?Action=ListTopics"
    signed = stack.signed("GET", url, "sns")
    assert requests.get(url, headers=signed, timeout=10).status_code == 200
    for extra in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Mode": "no-cors"},
        {"Sec-Fetch-Dest": "image"},
        {"Referer": "https://evil.example/page"},
    ):
        r = requests.get(url, headers={**signed, **extra}, timeout=10)
        assert r.status_code == 403, (extra, r.status_code)
        assert "QueueUrl" not in r.text and not [k for k in r.headers if k.lower().startswith("access-control-")]
