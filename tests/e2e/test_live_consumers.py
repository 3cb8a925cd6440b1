"""Writing a consumer while `make run` runs: scaffold and first event, handler reload without
loss, config reload (add, change filter, remove), an invalid edit, an import error, a bus consumer of
fanout.data.persisted.v1, and a handler from another directory via `fanout subscribe --handler --path`.

The stack runs from a copy of the repository (the tests edit its handlers and stack config), started
with `make run` as a user would. Each consumer's handler appends what it received to a file, so the
tests see exactly which events each one handled, and how often.
"""

from __future__ import annotations

import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.checkout import repo_copy
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e
DEADLINE = 15.0  # generous on a loaded machine; the figures themselves are printed (pytest -s) and reported


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return repo_copy(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="module")
def live(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("state")
    with running_stack(state, cwd=repo, FANOUT_VISIBILITY_TIMEOUT="1", FANOUT_LOG_LEVEL="INFO") as s:
        yield s


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "handled.txt"


def fanout(stack: Stack, repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The repository copy's own CLI (new-consumer writes into the checkout it runs from)."""
    done = subprocess.run(
        [str(repo / ".venv" / "bin" / "python"), "-m", "fanout.cli", *args],
        cwd=repo,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"fanout {' '.join(args)} failed: {done.stderr}")
    return done


def post(stack: Stack, user: str = "alice", text: str = "hello") -> str:
    r = requests.post(
        f"{stack.api_url}/data",
        json={"informationOne": text, "informationTwo": "live"},
        headers=stack.auth(user),
        timeout=30,
    )
    assert r.status_code == 202, r.text
    return r.json()["id"]


def wait_for(check: Callable[[], Any], timeout: float = DEADLINE, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            return got
        time.sleep(every)


def logged(stack: Stack, message: str, event_id: str, timeout: float) -> str | None:
    """The event id, once a line of the stack's output carries both the message and the id."""
    found = wait_for(lambda: any(message in ln and event_id in ln for ln in list(stack.output)), timeout)
    return event_id if found else None


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def recording_handler(name: str, model: str, out: Path, tag: str) -> str:
    """A kit consumer that appends '<tag> <type> <id>' per event to `out`."""
    return textwrap.dedent(
        f'''\
        """Consumer {name} (rewritten by the e2e test)."""

        from __future__ import annotations

        from fanout_kit.kit import consumer
        from fanout_kit.models import {model}


        @consumer({model}, name="{name}")
        def handler(event: {model}) -> None:
            with open({str(out)!r}, "a", encoding="utf-8") as fh:
                fh.write("{tag} " + event.type + " " + event.id + "\\n")
        '''
    )


def module(name: str) -> str:
    return name.replace("-", "_")


def scaffold(stack: Stack, repo: Path, name: str, *flags: str) -> float:
    """`fanout new-consumer`; returns when it finished (time.monotonic())."""
    printed = fanout(stack, repo, "new-consumer", name, *flags).stdout.splitlines()
    assert printed[:2] == [f"handlers/{module(name)}.py", f"tests/unit/test_{module(name)}.py"]
    return time.monotonic()


def status_consumers(stack: Stack, repo: Path) -> dict[str, Any]:
    import json

    return json.loads(fanout(stack, repo, "status", "--json").stdout)["consumers"]


def test_scaffold_then_first_event_then_an_edit_shows(live: Stack, repo: Path) -> None:
    def first_handled(marker: str) -> Callable[[], bool]:
        # An event every 0.2 s until one reaches the handler: the time is measured to within that.
        def check() -> bool:
            post(live, text="probe")
            return any(marker in ln for ln in list(live.output))

        return check

    started = time.monotonic()
    done = scaffold(live, repo, "audit")
    # The scaffold's own handler logs at INFO (the stack runs with FANOUT_LOG_LEVEL=INFO, as the README says).
    assert wait_for(first_handled("audit received an event"), DEADLINE, every=0.2), "no event reached audit"
    reached = time.monotonic()
    print(f"\nnew-consumer to first event handled: {reached - started:.2f} s (command itself {done - started:.2f} s)")

    handler = repo / "handlers" / "audit.py"
    handler.write_text(handler.read_text().replace("audit received an event", "audit saw it, edited"))
    saved = time.monotonic()
    assert wait_for(first_handled("audit saw it, edited"), DEADLINE, every=0.2), "the edited handler never ran"
    print(f"save to new code running: {time.monotonic() - saved:.2f} s")


def test_events_posted_while_the_handler_changes_are_each_handled_once(live: Stack, repo: Path, out: Path) -> None:
    scaffold(live, repo, "counter")
    path = repo / "handlers" / "counter.py"
    path.write_text(recording_handler("counter", "DataGenerated", out, "v0"))
    assert wait_for(lambda: (eid := post(live)) and wait_for(lambda: eid in out.read_text() if out.exists() else 0, 3))
    before = len(lines(out))
    posted: list[str] = []

    def keep_posting() -> None:
        for i in range(40):
            posted.append(post(live, text=f"n{i}"))
            time.sleep(0.05)

    poster = threading.Thread(target=keep_posting)
    poster.start()
    for version in range(1, 5):
        time.sleep(0.4)
        path.write_text(recording_handler("counter", "DataGenerated", out, f"v{version}"))
    poster.join(120)
    assert len(posted) == 40
    handled = wait_for(lambda: {ln.split()[-1] for ln in lines(out)[before:]} >= set(posted) and lines(out)[before:])
    ids = [ln.split()[-1] for ln in handled]
    assert sorted(i for i in ids if i in posted) == sorted(posted), "each event handled exactly once"
    print(f"\nversions that handled the 40 events: {sorted({ln.split()[0] for ln in handled})}")
    # And the last save is what runs from then on.

    def handled_by_the_last_version() -> bool:
        e = post(live)
        got = wait_for(lambda: [ln for ln in lines(out) if ln.endswith(e)], 10)
        return bool(got) and got[0].startswith("v4 ")

    assert wait_for(handled_by_the_last_version, 30), [ln for ln in live.output if " INFO " not in ln][-30:]


def _entry(name: str, *extra: str) -> str:
    body = [f"    - name: {name}", f"      handler: handlers.{module(name)}:handler", *extra]
    return "\n".join(body) + "\n"


def _insert(config: Path, block: str) -> None:
    text = config.read_text()
    at = text.index("  fanout:generator:")
    config.write_text(text[:at] + block + text[at:])


def test_config_reload_adds_changes_the_filter_and_removes(live: Stack, repo: Path, out: Path) -> None:
    config = repo / "Pulumi.dev.yaml"
    original = config.read_text()
    (repo / "handlers" / "picky.py").write_text(recording_handler("picky", "DataGenerated", out, "picky"))
    try:
        _insert(config, _entry("picky", "      filterPolicy:", "        type: [fanout.data.generated.v1]"))
        assert wait_for(lambda: "picky" in status_consumers(live, repo), timeout=5 + 5)
        alice = post(live, "alice")
        assert wait_for(lambda: any(alice in ln for ln in lines(out)))

        config.write_text(
            config.read_text().replace(
                "        type: [fanout.data.generated.v1]\n  fanout:gen",
                "        type: [fanout.data.generated.v1]\n        subject: [bob]\n  fanout:gen",
            )
        )
        assert wait_for(lambda: "applied: changed picky" in live.text(), timeout=10)
        alice2, bob = post(live, "alice"), post(live, "bob")
        assert wait_for(lambda: any(bob in ln for ln in lines(out)))
        time.sleep(1.5)
        assert not any(alice2 in ln for ln in lines(out)), "the changed filter lets alice's event through"

        config.write_text(original)
        assert wait_for(lambda: "picky" not in status_consumers(live, repo), timeout=10)
        assert "applied: removed picky" in live.text()
        gone = post(live, "bob")
        time.sleep(2)
        assert not any(gone in ln for ln in lines(out)), "a removed consumer still receives events"
    finally:
        config.write_text(original)


def test_an_invalid_edit_is_reported_with_the_key_and_changes_nothing(live: Stack, repo: Path) -> None:
    config = repo / "Pulumi.dev.yaml"
    original = config.read_text()
    before = status_consumers(live, repo)
    subscribed = subscriptions(live)
    try:
        config.write_text(original.replace("      batchSize: 50\n", "      batchSize: 5000\n", 1))
        said = wait_for(lambda: [ln for ln in live.output if "the running topology is unchanged" in ln], 10)
        assert said, live.text()[-2000:]
        assert "Pulumi.dev.yaml" in said[-1] and "consumer 'archive'" in said[-1] and "batchSize" in said[-1]
        # Still running as before: the same subscriptions, and events still stored.
        assert subscriptions(live) == subscribed
        eid = post(live)
        assert wait_for(
            lambda: (
                requests.get(f"{live.api_url}/data/{eid}", headers=live.auth("alice"), timeout=10).status_code == 200
            )
        )
    finally:
        config.write_text(original)
    assert wait_for(lambda: status_consumers(live, repo) == before, 10)


def subscriptions(stack: Stack) -> set[tuple[str, str]]:
    sns = stack.boto("sns")
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith("-data-events"))
    return {
        (s["Endpoint"], s["SubscriptionArn"]) for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    }


def test_a_module_that_does_not_import_is_reported_once_and_its_messages_wait(
    live: Stack, repo: Path, out: Path
) -> None:
    scaffold(live, repo, "fragile")
    path = repo / "handlers" / "fragile.py"
    good = recording_handler("fragile", "DataGenerated", out, "ok")
    path.write_text(good)
    assert wait_for(lambda: (eid := post(live)) and wait_for(lambda: eid in out.read_text() if out.exists() else 0, 3))
    path.write_text(good + "\nthis line is not python(\n")
    assert wait_for(lambda: "consumer fragile does not load" in live.text(), timeout=10)
    waiting = [post(live, text=f"w{i}") for i in range(3)]
    time.sleep(3)
    reports = [ln for ln in live.output if "consumer fragile does not load" in ln]
    assert len(reports) == 1, reports
    assert "handlers/fragile.py line" in reports[0] and "SyntaxError" in reports[0]
    assert not any(w in ln for w in waiting for ln in lines(out))
    # The console shows it too, from the topology it polls.
    lane = _console_lane(live, "fragile")
    assert "handlers/fragile.py line" in lane["loadError"] and "SyntaxError" in lane["loadError"], lane
    path.write_text(good)
    assert wait_for(lambda: all(any(w in ln for ln in lines(out)) for w in waiting)), "fixing the file resumes"
    assert _console_lane(live, "fragile")["loadError"] is None


def _console_lane(live: Stack, name: str) -> dict[str, Any]:
    import requests

    doc = requests.get(f"{live.api_url}/_local/topology", timeout=10).json()
    return next(c for c in doc["consumers"] if c["name"] == name)


def test_a_bus_consumer_receives_persisted_events(live: Stack, repo: Path, out: Path) -> None:
    scaffold(live, repo, "on-persisted", "--source", "bus")
    (repo / "handlers" / "on_persisted.py").write_text(recording_handler("on-persisted", "DataPersisted", out, "bus"))
    assert wait_for(lambda: "on-persisted" in status_consumers(live, repo), timeout=10)
    eid = wait_for(lambda: (e := post(live)) and wait_for(lambda: any(e in ln for ln in lines(out)), 4) and e)
    assert eid, "no fanout.data.persisted.v1 reached the bus consumer"
    assert f"bus fanout.data.persisted.v1 {eid}" in lines(out)


def test_a_handler_from_another_directory(live: Stack, repo: Path, tmp_path: Path, out: Path) -> None:
    other = tmp_path / "other-team"
    (other / "team").mkdir(parents=True)
    (other / "team" / "__init__.py").write_text("")
    code = other / "team" / "react.py"
    source = textwrap.dedent(
        f"""\
        import json
        import os


        def handler(event, context):
            with open({str(out)!r}, "a", encoding="utf-8") as fh:
                for record in event["Records"]:
                    body = json.loads(record["body"])
                    fh.write("VERSION " + os.environ["POWERTOOLS_SERVICE_NAME"] + " " + body["id"] + "\\n")
            return {{"batchItemFailures": []}}
        """
    )
    code.write_text(source.replace("VERSION", "v1"))
    name = f"ext-{uuid.uuid4().hex[:6]}"
    printed = fanout(live, repo, "subscribe", name, "--handler", "team.react:handler", "--path", str(other))
    assert printed.stdout.strip().splitlines()[-1].endswith(f"/{name}")
    first = wait_for(lambda: (e := post(live)) and wait_for(lambda: any(e in ln for ln in lines(out)), 3) and e)
    assert f"v1 {name} {first}" in lines(out)
    code.write_text(source.replace("VERSION", "v2"))
    second = wait_for(lambda: (e := post(live)) and wait_for(lambda: f"v2 {name} {e}" in lines(out), 3) and e)
    assert second, "the edited handler never ran"
    refused = fanout(
        live, repo, "subscribe", "nope", "--handler", "team.missing:handler", "--path", str(other), check=False
    )
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1


def test_a_subscribed_handler_is_kept_across_restarts(repo: Path, tmp_path: Path, out: Path) -> None:
    other = tmp_path / "team-b"
    other.mkdir()
    (other / "keeper.py").write_text(
        textwrap.dedent(
            f"""\
            import json


            def handler(event, context):
                with open({str(out)!r}, "a", encoding="utf-8") as fh:
                    for record in event["Records"]:
                        fh.write(json.loads(record["body"])["id"] + "\\n")
                return {{"batchItemFailures": []}}
            """
        )
    )
    state = tmp_path / "state"
    with running_stack(state, cwd=repo, FANOUT_VISIBILITY_TIMEOUT="1") as first:
        fanout(first, repo, "subscribe", "keeper", "--handler", "keeper:handler", "--path", str(other))
        assert wait_for(lambda: (e := post(first)) and wait_for(lambda: e in lines(out), 3) and e)
    with running_stack(state, cwd=repo, FANOUT_VISIBILITY_TIMEOUT="1") as again:
        assert "keeper" in status_consumers(again, repo)
        after = wait_for(lambda: (e := post(again)) and wait_for(lambda: e in lines(out), 3) and e)
        assert after, "the subscribed handler did not run after the restart"
