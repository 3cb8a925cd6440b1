"""The harness drains the stack's output all its life: a stack logging far more than a pipe holds keeps serving."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.helpers import all_items, post, user, wait_for
from tests.support.stack import running_stack

PIPE_BUFFER = 64 * 1024  # Linux's default pipe capacity: what an unread stdout fills before writers block
POISON = 400


def test_a_stack_that_logs_far_more_than_a_pipe_holds_keeps_its_data_path(tmp_path: Path) -> None:
    with running_stack(tmp_path, FANOUT_LOG_LEVEL="DEBUG", FANOUT_VISIBILITY_TIMEOUT="1") as stack:
        status = json.loads(stack.cli("status", "--json").stdout)
        queue_url = status["consumers"]["persister"]["queue_url"]
        sqs = stack.boto("sqs")
        # Poison messages: each receive logs a traceback at DEBUG, three receives each before the DLQ.
        for start in range(0, POISON, 10):
            entries = [{"Id": str(i), "MessageBody": f"not an event {start + i}"} for i in range(10)]
            assert not sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
        started = time.monotonic()
        dlq = status["consumers"]["persister"]["dlq_url"]

        def in_dlq() -> int:
            attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
            return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

        # Each poison message is logged on each of its receives; an undrained pipe would stop the
        # persister (and every other thread that logs) long before the last one reached the DLQ.
        # 1,200 failed receives at one-second retries: about 75 s on a loaded 2-core machine.
        wait_for(lambda: in_dlq() >= POISON, timeout=180, interval=1)
        logged = len(stack.text().encode())
        # One line per failed attempt (about 200 KB for 1,200 of them): a pipe nobody read would have blocked
        # the stack after the first 64 KiB.
        assert logged > 2 * PIPE_BUFFER, f"only {logged} bytes logged: the test no longer overflows a pipe"
        # The persister, gateway and api all log; none of them is blocked: a new item still arrives.
        sub = user()
        r = post(stack, sub)
        assert r.status_code == 202, r.text
        wait_for(lambda: any(i["id"] == r.json()["id"] for i in all_items(stack, sub)), timeout=15, interval=0.5)
        print(f"logged {logged} bytes in {time.monotonic() - started:.1f} s; item arrived")
