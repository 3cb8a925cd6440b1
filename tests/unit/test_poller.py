"""The local event source mapping: a batch stays hidden while its invocation runs, a failed one comes back
after the queue's short timeout, code not known to load is never polled, and a stop charges nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fanout.local.environments import FunctionBroken, FunctionStopped
from fanout.local.poller import Poller


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        yield client


def _queue(sqs: Any, visibility: int = 1) -> str:
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"id": "e1"}')
    return url


def _receive_count(sqs: Any, url: str) -> int:
    got = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=0)
    messages = got.get("Messages", [])
    return int(messages[0]["Attributes"]["ApproximateReceiveCount"]) - 1 if messages else -1


class Function:
    """Stands in for a FunctionProcess: what the poller reads of it, and a handler the test controls."""

    def __init__(self, answer: Any = None) -> None:
        self.init_known = True
        self.broken: str | None = None
        self.answer = answer
        self.calls = 0

    def wait_init(self, timeout: float) -> bool:
        time.sleep(min(timeout, 0.01))
        return self.init_known

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls += 1
        if isinstance(self.answer, BaseException):
            raise self.answer
        if callable(self.answer):
            return self.answer(event)
        return self.answer


def _poller(sqs: Any, url: str, function: Function, timeout: int = 30, window: float = 0) -> Poller:
    return Poller(
        name="c-0",
        sqs=sqs,
        queue_url=url,
        queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        handler=function,
        batch_size=10,
        batching_window=window,
        region="us-east-1",
        timeout_seconds=timeout,
        stop=threading.Event(),
    )


def test_code_not_known_to_load_is_not_polled(sqs: Any) -> None:
    url = _queue(sqs)
    function = Function()
    function.init_known = False  # its init runs
    poller = _poller(sqs, url, function)
    assert poller.poll_once() == 0
    function.init_known, function.broken = True, "handlers/x.py line 1: SyntaxError"  # it does not load
    assert poller.poll_once() == 0
    assert function.calls == 0 and _receive_count(sqs, url) == 0


def test_a_batch_in_flight_stays_hidden_past_the_queues_timeout(sqs: Any) -> None:
    url = _queue(sqs, visibility=1)
    seen: list[int] = []

    def slow(event: dict[str, Any]) -> dict[str, Any]:
        time.sleep(2.5)  # longer than the queue's 1 s: another receive now must get nothing
        seen.append(len(sqs.receive_message(QueueUrl=url).get("Messages", [])))
        return {}

    assert _poller(sqs, url, Function(slow)).poll_once() == 1
    assert seen == [0]


def test_a_failed_batch_comes_back_after_the_queues_own_timeout(sqs: Any) -> None:
    url = _queue(sqs, visibility=1)
    poller = _poller(sqs, url, Function(ValueError("boom")))
    assert poller.poll_once() == 0
    time.sleep(1.5)  # not the 40 s hold of a batch in flight
    assert sqs.receive_message(QueueUrl=url).get("Messages")


def test_a_batch_received_as_the_code_broke_goes_back_uncounted_as_an_attempt(sqs: Any) -> None:
    url = _queue(sqs)
    reports: list[Any] = []
    poller = _poller(sqs, url, Function(FunctionBroken("does not load")))
    poller.on_batch = lambda *args: reports.append(args)
    assert poller.poll_once() == 0
    assert reports == [] and sqs.receive_message(QueueUrl=url).get("Messages")  # visible again at once


def test_a_batch_cut_short_by_the_stop_is_put_back_for_the_final_save(sqs: Any) -> None:
    url = _queue(sqs)
    reports: list[Any] = []
    poller = _poller(sqs, url, Function(FunctionStopped("the stack stopped")))
    poller.on_batch = lambda *args: reports.append(args)
    assert poller.poll_once() == 0
    assert reports == []
    returned = poller.put_back()
    assert len(returned) == 1 and _receive_count(sqs, url) == 1  # the one receive the final save gives back


def test_a_batch_received_as_its_poller_stops_is_back_at_once(sqs: Any) -> None:
    # A consumer changed in the stack config: its old pollers stop while a long poll may still return a batch.
    url = _queue(sqs)
    function = Function({})
    poller = _poller(sqs, url, function)
    poller.stop.set()
    poller._receive = lambda: sqs.receive_message(QueueUrl=url, VisibilityTimeout=40)["Messages"]  # type: ignore[method-assign]
    assert poller.poll_once() == 0
    assert function.calls == 0 and sqs.receive_message(QueueUrl=url).get("Messages")


def test_a_batching_window_gathers_what_arrives_within_it_as_lambda_does(sqs: Any) -> None:
    url = _queue(sqs)  # one message waits; two more arrive 0.4 s into the window
    sizes: list[int] = []
    later = threading.Timer(
        0.4, lambda: [sqs.send_message(QueueUrl=url, MessageBody=f'{{"id": "e{n}"}}') for n in (2, 3)]
    )
    later.start()
    assert (
        _poller(sqs, url, Function(lambda event: sizes.append(len(event["Records"])) or {}), window=1.5).poll_once()
        == 3
    )
    assert sizes == [3]  # one invocation with all three, not one with the first alone


def test_without_a_window_a_batch_is_what_the_first_receive_brings(sqs: Any) -> None:
    url = _queue(sqs)
    sizes: list[int] = []
    later = threading.Timer(0.4, lambda: sqs.send_message(QueueUrl=url, MessageBody='{"id": "e2"}'))
    later.start()
    assert _poller(sqs, url, Function(lambda event: sizes.append(len(event["Records"])) or {})).poll_once() == 1
    later.join()
    assert sizes == [1]
