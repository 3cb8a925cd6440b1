"""Where the local stack lives: ports, secret, region and names, from the environment.

`make run`, the CLI and the tests all read these, so a CLI started beside a stack on
other ports (FANOUT_PORT / FANOUT_AWS_PORT) finds it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fanout import PROJECT_ROOT

DEFAULT_SECRET = "fanout-local-dev-secret-not-for-production"
ACCOUNT_ID = "123456789012"  # moto's default account
HOST = "127.0.0.1"
# The rate(...) expressions the local scheduler runs (cron(...) is AWS-only).
RATE = re.compile(r"rate\(([1-9]\d*) (second|minute|hour|day)s?\)")


class LocalConfigError(ValueError):
    pass


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise LocalConfigError(f"{name} must be a TCP port (1-65535), got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class LocalEnv:
    port: int
    aws_port: int
    region: str
    stack: str
    jwt_secret: str
    state_dir: Path
    visibility_timeout: int
    log_level: str
    generator_schedule: str | None = None
    snapshot_seconds: float = 10.0

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://{HOST}:{self.aws_port}"

    def topic_arn(self, topic_name: str) -> str:
        return f"arn:aws:sns:{self.region}:{ACCOUNT_ID}:{topic_name}"

    def aws_environ(self) -> dict[str, str]:
        """boto3's standard configuration pointing at the emulated endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            # moto accepts any credentials; these are never real ones.
            "AWS_ACCESS_KEY_ID": "fanout-local",
            "AWS_SECRET_ACCESS_KEY": "fanout-local",
        }


def load() -> LocalEnv:
    secret = os.environ.get("FANOUT_JWT_SECRET") or DEFAULT_SECRET
    if len(secret.encode()) < 32:
        raise LocalConfigError("FANOUT_JWT_SECRET must be at least 32 bytes (HS256 keys shorter than that are weak)")
    vt = os.environ.get("FANOUT_VISIBILITY_TIMEOUT", "").strip() or "5"
    if not vt.isdigit() or not 1 <= int(vt) <= 43200:
        raise LocalConfigError(f"FANOUT_VISIBILITY_TIMEOUT must be seconds from 1 to 43200, got {vt!r}")
    port, aws_port = _port("FANOUT_PORT", 8000), _port("FANOUT_AWS_PORT", 4566)
    if port == aws_port:
        raise LocalConfigError("FANOUT_PORT and FANOUT_AWS_PORT must differ")
    schedule = os.environ.get("FANOUT_GENERATOR_SCHEDULE", "").strip() or None
    if schedule and not RATE.fullmatch(schedule):
        raise LocalConfigError(f"FANOUT_GENERATOR_SCHEDULE must look like rate(N seconds), got {schedule!r}")
    every = os.environ.get("FANOUT_SNAPSHOT_SECONDS", "").strip() or "10"
    if not every.isdigit() or not 1 <= int(every) <= 3600:
        raise LocalConfigError(f"FANOUT_SNAPSHOT_SECONDS must be seconds from 1 to 3600, got {every!r}")
    state = Path(os.environ.get("FANOUT_STATE_DIR", "").strip() or PROJECT_ROOT / ".fanout")
    return LocalEnv(
        port=port,
        aws_port=aws_port,
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        stack=os.environ.get("FANOUT_STACK", "").strip() or "dev",
        jwt_secret=secret,
        state_dir=state,
        visibility_timeout=int(vt),
        log_level=(os.environ.get("FANOUT_LOG_LEVEL", "").strip() or "WARNING").upper(),
        generator_schedule=schedule,
        snapshot_seconds=float(every),
    )
