"""What `make run` prints while it runs: one line per failed attempt (the DLQ named on the last one) with
its traceback once, one line per save of the stack config or of code, as a person reads the terminal.

Runs in a copy of the checkout (it adds a consumer and edits files there).
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.helpers import wait_for
from tests.support.checkout import repo_copy
from tests.support.stack import Stack, running_stack

FLAKY = textwrap.dedent(
    """\
    from fanout_kit import DataGenerated, consumer


    @consumer(DataGenerated, name="flaky")
    def handler(event: DataGenerated) -> None:
        if event.data.information_one.startswith("fail"):
            raise ValueError("flaky refuses " + event.id)
    """
)
ENTRY = """\
    - name: flaky
      handler: handlers.flaky:handler
      maxReceiveCount: 3
      maxConcurrency: 2
      filterPolicy:
        type: [fanout.data.generated.v1]
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = repo_copy(tmp_path_factory.mktemp("checkout"))
    (repo / "handlers" / "flaky.py").write_text(FLAKY)
    config = repo / "Pulumi.dev.yaml"
    text = config.read_text()
    config.write_text(text.replace("  fanout:generator:\n", ENTRY + "  fanout:generator:\n", 1))
    return repo


@pytest.fixture(scope="module")
def live(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("state"), timeout=180, cwd=repo, FANOUT_VISIBILITY_TIMEOUT="1") as s:
        yield s


def _post(stack: Stack, text: str) -> str:
    r = requests.post(
        f"{stack.api_url}/data",
        json={"informationOne": text, "informationTwo": "x"},
        headers=stack.auth("terminal"),
        timeout=30,
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _after(stack: Stack, start: int) -> list[str]:
    return "".join(stack.output[start:]).splitlines()


def test_each_failed_attempt_is_one_line_and_the_last_names_the_dlq(live: Stack) -> None:
    ids = [_post(live, "fail a"), _post(live, "fail b")]

    def moved(event_id: str) -> bool:
        return any("DLQ" in ln and f"event={event_id}" in ln for ln in live.text().splitlines())

    wait_for(lambda: all(moved(e) for e in ids), 90)
    lines = live.text().splitlines()
    for event_id in ids:
        mine = [ln for ln in lines if f"event={event_id}" in ln]
        assert len(mine) == 3, mine  # one per attempt, nothing from the kit beside it
        assert [re.findall(r"attempt (\d) of 3 failed", ln) for ln in mine] == [["1"], ["2"], ["3"]], mine
        assert all("will be retried" in ln for ln in mine[:2]), mine
        assert "will be retried" not in mine[2] and "goes to flaky's DLQ" in mine[2], mine
    # The same error raised by the same line: its traceback once, however many messages and attempts.
    text = live.text()
    assert text.count('handlers/flaky.py", line 7, in handler') == 1, text[-3000:]
    assert "flaky failed: ValueError" not in text  # the kit's own line is left to the attempt lines


def test_a_save_of_the_stack_config_prints_one_line(live: Stack, repo: Path) -> None:
    config = repo / "Pulumi.dev.yaml"
    original = config.read_text()
    bad = original.replace("      batchSize: 50\n", "      batchSize: 5000\n", 1)
    start = len(live.output)
    try:
        # An editor that truncates the file, then writes it: the empty file in between is not applied.
        with config.open("w") as fh:
            fh.flush()
            time.sleep(0.4)
            fh.write(bad)
        wait_for(lambda: any("batchSize" in ln for ln in _after(live, start)), 20)
        time.sleep(3)  # anything a second event from the same save would print
        said = [ln for ln in _after(live, start) if ln.startswith("fanout: ")]
        assert len(said) == 1 and "the running topology is unchanged" in said[0], said
        assert "flaky" in live.cli("status", "--json").stdout  # nothing was removed meanwhile
    finally:
        config.write_text(original)
    wait_for(lambda: any("applied" in ln for ln in _after(live, start)), 20)


def test_a_save_of_code_prints_one_line(live: Stack, repo: Path) -> None:
    shared = repo / "handlers" / "core" / "clients.py"  # imported by the persister, the archive, api, generator
    good = shared.read_text()
    start = len(live.output)
    shared.write_text(good + "\nthis is not python(\n")
    try:
        said = wait_for(lambda: [ln for ln in _after(live, start) if ln.startswith("fanout: ")], 90)
        time.sleep(3)
        said = [ln for ln in _after(live, start) if ln.startswith("fanout: ")]
        # Every function importing the module fails the same way: one line names them all.
        assert len(said) == 1, said
        assert said[0].startswith("fanout: handlers/core/clients.py saved: ") and "do not load" in said[0], said
        assert "persister" in said[0] and "archive" in said[0] and "SyntaxError" in said[0]
    finally:
        shared.write_text(good)
    start = len(live.output)
    said = wait_for(lambda: [ln for ln in _after(live, start) if ln.startswith("fanout: ")], 90)
    time.sleep(3)
    said = [ln for ln in _after(live, start) if ln.startswith("fanout: ")]
    assert len(said) == 1 and said[0].endswith(" reloaded") and "persister" in said[0], said
