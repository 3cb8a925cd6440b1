"""`make run` on a stack whose config says `fanout:ordering: fifo` is refused in one line before anything starts
(the local emulation of ordered fan-out is not built yet), instead of failing part-way in provisioning."""

from __future__ import annotations

from pathlib import Path

import pytest

from fanout import topology
from fanout.local import __main__ as local_main

FIFO_STACK = """\
config:
  fanout:prefix: fanout-ordered
  fanout:ordering: fifo
  fanout:consumers:
    - name: persister
      handler: handlers.persister:handler
"""


def test_make_run_refuses_a_fifo_stack_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.ordered.yaml").write_text(FIFO_STACK, encoding="utf-8")
    monkeypatch.setenv("FANOUT_STACK", "ordered")
    monkeypatch.setenv("FANOUT_STATE_DIR", str(tmp_path / "state"))
    load = topology.load
    monkeypatch.setattr(local_main.topology, "load", lambda stack: load(stack, root=tmp_path))
    started: list[object] = []
    monkeypatch.setattr(local_main, "Runtime", lambda *a: started.append(a))

    assert local_main.main() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fanout:ordering fifo" in err[0] and "FANOUT_STACK=dev" in err[0], err
    assert not started and not (tmp_path / "state").exists()
