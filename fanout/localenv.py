"""Where the local stack lives: ports, secret, region and names, from the environment.

`make run`, the CLI and the tests all read these, so a CLI started beside a stack on
other ports (FANOUT_PORT / FANOUT_AWS_PORT) finds it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from fanout import PROJECT_ROOT
from fanout import schedule as schedules

DEFAULT_SECRET = "fanout-local-dev-secret-not-for-production"
ACCOUNT_ID = "123456789012"  # moto's default account
HOST = "127.0.0.1"
CREDENTIALS = "credentials.json"  # in the state dir, 0600: the emulated endpoint's keys for this run
# What the CLI sends when no stack's credentials are readable: the endpoint refuses it with a 403 that says why.
NO_CREDENTIALS = "fanout-no-stack-credentials"
# Written by a running `make run` into its state dir: how a CLI started in another shell finds it.
STACK_FILE = "stack.json"


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
    generator_on: bool = True
    # The emulated endpoint's credentials for this run (CREDENTIALS in the state dir); empty: no stack yet.
    access_key_id: str = ""
    secret_access_key: str = ""

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
            # The running stack's own per-run keys (its endpoint refuses any other); never real AWS ones.
            "AWS_ACCESS_KEY_ID": self.access_key_id or NO_CREDENTIALS,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key or NO_CREDENTIALS,
        }

    def with_credentials(self) -> LocalEnv:
        """This environment with the credentials its state dir holds (written by the running stack)."""
        found = read_credentials(self.state_dir)
        if found is None:
            return self
        return dataclasses.replace(self, access_key_id=found[0], secret_access_key=found[1])


def new_credentials() -> tuple[str, str]:
    """A fresh access key id and secret for one run of the emulated endpoint."""
    import secrets
    import string

    alphabet = string.ascii_uppercase + string.digits
    return "FANOUT" + "".join(secrets.choice(alphabet) for _ in range(14)), secrets.token_urlsafe(30)


def read_credentials(state_dir: Path) -> tuple[str, str] | None:
    """(access key id, secret) of the stack that uses `state_dir`, or None when there is none readable.

    Only the user who runs the stack can read the file (0600 in a 0700 dir): that is the point.
    """
    import json

    from fanout.local import safefs

    try:
        doc = json.loads(safefs.read_bytes(state_dir / CREDENTIALS))
        return str(doc["access_key_id"]), str(doc["secret_access_key"])
    except (OSError, ValueError, KeyError, TypeError, safefs.UnsafeStateError):
        return None


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
    if schedule:
        try:
            schedules.check(schedule)
        except schedules.ScheduleError as exc:
            raise LocalConfigError(f"FANOUT_GENERATOR_SCHEDULE: {exc}") from None
    every = os.environ.get("FANOUT_SNAPSHOT_SECONDS", "").strip() or "10"
    if not every.isdigit() or not 1 <= int(every) <= 3600:
        raise LocalConfigError(f"FANOUT_SNAPSHOT_SECONDS must be seconds from 1 to 3600, got {every!r}")
    state = Path(os.environ.get("FANOUT_STATE_DIR", "").strip() or default_state_dir())
    switch = (os.environ.get("FANOUT_GENERATOR", "").strip() or "on").lower()
    if switch not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
        raise LocalConfigError(f"FANOUT_GENERATOR must be on or off, got {switch!r}")
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
        generator_on=switch in ("on", "true", "1", "yes"),
    ).with_credentials()


def default_state_dir() -> Path:
    return PROJECT_ROOT / ".fanout"


def cli_command(env: LocalEnv) -> str:
    """How the banner spells the CLI so that, pasted into any shell in the checkout, it reaches this stack.

    The CLI finds the stack through the file it writes in its state dir; only a state dir other
    than the default has to be named.
    """
    import shlex

    if env.state_dir.resolve() == default_state_dir().resolve():
        return ".venv/bin/fanout"
    return f"FANOUT_STATE_DIR={shlex.quote(str(env.state_dir))} .venv/bin/fanout"


def write_stack_file(env: LocalEnv) -> None:
    """Say where this stack listens, in its state dir (owner-only: it holds the local JWT secret)."""
    doc = {
        "pid": os.getpid(),
        "port": env.port,
        "aws_port": env.aws_port,
        "region": env.region,
        "stack": env.stack,
        "jwt_secret": env.jwt_secret,
    }
    from fanout.local import safefs

    safefs.write_bytes_atomic(env.state_dir / STACK_FILE, json.dumps(doc).encode())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def running_stack(state_dir: Path) -> dict[str, object] | None:
    """What the stack running on this state dir wrote about itself, or None (none running)."""
    from fanout.local import safefs

    try:
        doc = json.loads(safefs.read_bytes(state_dir / STACK_FILE))
    except (OSError, ValueError, safefs.UnsafeStateError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("pid"), int) or not _pid_alive(doc["pid"]):
        return None
    if not isinstance(doc.get("port"), int) or not isinstance(doc.get("aws_port"), int):
        return None
    return doc


def with_running_stack(env: LocalEnv) -> LocalEnv:
    """The environment completed by the stack running on its state dir (FANOUT_STATE_DIR or .fanout/).

    A shell with no FANOUT_* variable reaches the stack `make run` started there, whatever its
    ports and secret; a variable that is set always wins, and FANOUT_PORT naming another port
    means another stack.
    """
    doc = running_stack(env.state_dir)
    if doc is None:
        return env
    port_set = bool(os.environ.get("FANOUT_PORT", "").strip())
    if port_set and env.port != doc["port"]:
        return env
    changes: dict[str, object] = {"port": doc["port"]}
    if not os.environ.get("FANOUT_AWS_PORT", "").strip():
        changes["aws_port"] = doc["aws_port"]
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")) and doc.get("region"):
        changes["region"] = str(doc["region"])
    if not os.environ.get("FANOUT_STACK", "").strip() and doc.get("stack"):
        changes["stack"] = str(doc["stack"])
    if not os.environ.get("FANOUT_JWT_SECRET") and doc.get("jwt_secret"):
        changes["jwt_secret"] = str(doc["jwt_secret"])
    return dataclasses.replace(env, **changes)


def for_cli() -> LocalEnv:
    """The environment plus what the running stack says about itself.

    The stack running on the state dir is found through the file it wrote there; otherwise, with
    only FANOUT_PORT set, the CLI asks the stack (GET /_local/stack) where its emulated AWS
    endpoint and region are. An explicit FANOUT_AWS_PORT or AWS_REGION always wins.
    """
    env = load()
    found = with_running_stack(env)
    if found is not env:
        return found
    port_set = bool(os.environ.get("FANOUT_AWS_PORT", "").strip())
    region_set = bool(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    if port_set and region_set:
        return env
    import urllib.request

    try:
        with urllib.request.urlopen(f"{env.api_url}/_local/stack", timeout=1) as response:  # noqa: S310 (loopback)
            info = json.loads(response.read())
    except (OSError, ValueError):
        return env  # no stack answering on FANOUT_PORT: keep the defaults, errors will say where we looked
    changes: dict[str, object] = {}
    endpoint = str(info.get("aws_endpoint", ""))
    if not port_set and endpoint.rsplit(":", 1)[-1].isdigit():
        changes["aws_port"] = int(endpoint.rsplit(":", 1)[-1])
    if not region_set and info.get("region"):
        changes["region"] = str(info["region"])
    if not os.environ.get("FANOUT_STACK", "").strip() and info.get("stack"):
        changes["stack"] = str(info["stack"])
    if not os.environ.get("FANOUT_STATE_DIR", "").strip() and info.get("state_dir"):
        # Its credentials are in its state dir, readable only by the user who runs it.
        changes["state_dir"] = Path(str(info["state_dir"]))
    return dataclasses.replace(env, **changes).with_credentials() if changes else env
