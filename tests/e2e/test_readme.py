"""The README's shell snippets, pasted into a fresh shell, work against a running stack.

Every ```sh block of README.md that talks to the running stack (it names the local endpoints or
`.venv/bin/fanout`) runs as it is written, each in a shell of its own with nothing of ours in its
environment: no AWS variables, no AWS config files (HOME is empty). Only what a reader's default
setup would give is mapped to this test's stack: the default ports in the text become this stack's
free ports, and FANOUT_PORT / FANOUT_JWT_SECRET stand for the defaults `fanout` would use. The shell's
PATH starts with `.venv/bin`, as the README says to set it, so `aws` is the AWS CLI `make install` pins
(a block that uses it fails, never skips, when it is missing).
Blocks that start, test or deploy the project (`make`, `pulumi`) are not run here, nor a block
right after a `<!-- not run by tests/e2e/test_readme.py: REASON -->` line (e.g. one that runs
until Ctrl+C, or shows an example id that no fresh stack has).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import post, user, wait_for
from tests.support.stack import ROOT, SECRET, Stack, project_copy, running_stack

README = ROOT / "README.md"
DEFAULT_API, DEFAULT_AWS = "http://127.0.0.1:8000", "http://127.0.0.1:4566"


SKIP_MARK = "<!-- not run by tests/e2e/test_readme.py:"


def shell_blocks(text: str) -> list[str]:
    """Every ```sh block, except those marked as not runnable on the line before."""
    blocks = re.finditer(r"^(?P<before>[^\n]*)\n```sh\n(?P<body>.*?)^```", text, flags=re.S | re.M)
    return [m["body"] for m in blocks if not m["before"].strip().startswith(SKIP_MARK)]


def runs_against_the_stack(block: str) -> bool:
    talks = DEFAULT_API in block or DEFAULT_AWS in block or ".venv/bin/fanout" in block
    builds = re.search(r"^\s*(make|pulumi)\b", block, flags=re.M) is not None
    return talks and not builds


SNIPPETS = [b for b in shell_blocks(README.read_text(encoding="utf-8")) if runs_against_the_stack(b)]


def test_the_readme_has_the_snippets_this_test_runs() -> None:
    # If the README loses them (or this test stops finding them), say so rather than pass on nothing.
    assert len(SNIPPETS) >= 4
    assert sum("aws --endpoint-url" in b for b in SNIPPETS) >= 2
    # The AWS CLI those snippets use is a pinned dev dependency, not whatever the machine has.
    assert (ROOT / ".venv" / "bin" / "aws").is_file(), "`make install` should put the AWS CLI in .venv/bin"


@pytest.fixture(scope="module")
def readme_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Its own stack: the snippets subscribe consumers, which other tests must not see.
    with running_stack(tmp_path_factory.mktemp("readme-state")) as stack:
        # Something in the archive, so `aws s3 ls` lists objects (it exits 1 on an empty listing).
        sub = user()
        assert post(stack, sub).status_code == 202
        s3 = stack.boto("s3")
        wait_for(lambda: s3.list_objects_v2(Bucket="fanout-dev-archive").get("KeyCount", 0) > 0, timeout=20)
        yield stack


VENV_BIN = ROOT / ".venv" / "bin"


def fresh_shell(stack: Stack, home: Path) -> dict[str, str]:
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"  # the README's `export PATH=...`
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(FANOUT_PORT=stack.env["FANOUT_PORT"], FANOUT_JWT_SECRET=SECRET)  # this stack's "defaults"
    return env


@pytest.mark.parametrize("block", SNIPPETS, ids=[b.strip().splitlines()[-1][:60] for b in SNIPPETS])
def test_a_readme_snippet_works_pasted_into_a_fresh_shell(readme_stack: Stack, tmp_path: Path, block: str) -> None:
    env = fresh_shell(readme_stack, tmp_path)
    if re.search(r"(^|[\s;&|(])aws\s", block):
        assert shutil.which("aws", path=env["PATH"]), "the AWS CLI is missing: `make install` puts it in .venv/bin"
    script = block.replace(DEFAULT_API, readme_stack.api_url).replace(DEFAULT_AWS, readme_stack.aws_endpoint)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=project_copy(),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{block}\n--- exit {done.returncode}, stderr:\n{done.stderr[-2000:]}"
    for refusal in ("Unable to locate credentials", "You must specify a region", "Traceback", "error:"):
        assert refusal not in done.stderr, done.stderr[-2000:]
    if "s3 ls" in block:
        assert "events/dt=" in done.stdout
    if "dynamodb scan" in block:
        assert '"Items"' in done.stdout
