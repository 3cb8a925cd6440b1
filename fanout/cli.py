"""`fanout`: the developer tool for the running local stack.

Errors are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Any, NoReturn

from fanout import consumers, localenv, publish, tokens, topology
from fanout.consumers import ConsumerQueues  # the method Stack.consumers hides the module in the class body
from fanout.text import plural, printable, printable_json


class CliError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block.
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _session(env: localenv.LocalEnv) -> Any:
    import boto3
    from botocore.config import Config

    os.environ.update(env.aws_environ())
    session = boto3.session.Session()
    # Fail fast when no stack is running instead of retrying for a minute.
    config = Config(connect_timeout=2, read_timeout=30, retries={"mode": "standard", "max_attempts": 2})
    return session, config


class Stack:
    """The running local stack, as the CLI reaches it."""

    def __init__(self) -> None:
        self.env = localenv.for_cli()
        self.topo = topology.load(self.env.stack)
        session, config = _session(self.env)
        self.sqs = session.client("sqs", config=config)
        self.sns = session.client("sns", config=config)
        self.events = session.client("events", config=config)
        self.topic_arn = self.env.topic_arn(self.topo.topic_name)

    def consumers(self) -> dict[str, consumers.ConsumerQueues]:
        # Topic subscribers and the bus's consumers (source: bus) alike.
        return consumers.discover(
            self.sqs, self.sns, self.topic_arn, events=self.events, bus_name=self.topo.event_bus_name
        )

    def every_consumer(self) -> dict[str, ConsumerQueues]:
        """The consumers of `consumers()`, and the removed ones whose queues are kept (marked removed)."""
        found = self.consumers()
        declared = {c.name for c in self.topo.consumers}
        return {**found, **consumers.discover_kept(self.sqs, found, declared)}

    def name_uses(self) -> list[topology.NameUse]:
        found = self.consumers()
        kept = consumers.discover_kept(self.sqs, found, {c.name for c in self.topo.consumers})
        return consumers.name_uses(self.topo, found, kept)

    def consumer_with_dlq(self, name: str) -> tuple[str, str]:
        """(queue URL, DLQ URL) of a consumer (a removed one whose queues are kept too), or a one-line
        error naming what is missing."""
        found = self.every_consumer()
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            raise CliError(f"no consumer named {name!r} (consumers: {known})")
        q = found[name]
        if q.missing and not q.dlq_url:
            raise CliError(f"consumer {name!r}'s DLQ {q.missing[0]} does not exist (deleted?)")
        if not q.dlq_url:
            raise CliError(f"consumer {name!r} has no DLQ")
        return q.queue_url, str(q.dlq_url)


def cmd_token(args: argparse.Namespace) -> None:
    env = localenv.with_running_stack(localenv.load())  # the secret of the stack running on the state dir
    roles = [r.strip() for r in args.roles.split(",") if r.strip()] if args.roles is not None else list(tokens.ROLES)
    try:
        print(tokens.mint(env.jwt_secret, args.sub, roles, args.ttl))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _consumer_status(sqs: Any, q: consumers.ConsumerQueues) -> dict[str, Any]:
    """A consumer's line of `status --json`: the contract's queue_url and dlq_url, then what it holds."""
    doc: dict[str, Any] = {**q.as_json(), "messages": consumers.counts(sqs, q.queue_url)}
    doc["dlq_messages"] = consumers.counts(sqs, q.dlq_url)
    if q.removed:
        doc["removed"] = True
    if q.missing:
        doc["missing"] = list(q.missing)
    return doc


def cmd_status(args: argparse.Namespace) -> None:
    stack = Stack()
    found = stack.every_consumer()
    status: dict[str, Any] = {
        "api_url": stack.env.api_url,
        "aws_endpoint": stack.env.aws_endpoint,
        "region": stack.env.region,
        "stack": stack.env.stack,
        "topic_arn": stack.topic_arn,
        "table_name": stack.topo.table_name,
        "event_bus_name": stack.topo.event_bus_name,
        "consumers": {name: _consumer_status(stack.sqs, q) for name, q in sorted(found.items())},
    }
    if stack.env.access_key_id:
        # The emulated endpoint accepts only this run's keys (`fanout env` prints them as export lines).
        status["aws_credentials"] = {
            "access_key_id": stack.env.access_key_id,
            "secret_access_key": stack.env.secret_access_key,
        }
    if args.json:
        print(json.dumps(status, indent=2))
        return
    for key in ("api_url", "aws_endpoint", "region", "stack", "topic_arn", "table_name", "event_bus_name"):
        print(f"{key:<15} {status[key]}")
    print("consumers")
    for name, doc in status["consumers"].items():
        held = f"{doc['messages'] or 0} messages, DLQ {doc['dlq_messages'] or 0}"
        if doc.get("removed"):
            print(f"  {name:<20} removed from Pulumi.{stack.env.stack}.yaml; its queues are kept ({held})")
        else:
            print(f"  {name:<20} {held}")
        gone = ", ".join(doc.get("missing", []))
        print(f"  {'':<20} queue {doc['queue_url'] or f'MISSING: {gone} does not exist'}")
        dlq = doc["dlq_url"] or (f"MISSING: {gone} does not exist" if gone else None)
        print(f"  {'':<20} dlq   {dlq}")


def cmd_env(args: argparse.Namespace) -> None:
    """`eval "$(fanout env)"`: what a shell needs to reach the running stack's endpoint with the AWS CLI or an SDK."""
    import shlex

    env = localenv.for_cli()
    if not env.access_key_id:
        raise CliError(
            f"no credentials of a running stack in {env.state_dir} (start it with `make run`; "
            "FANOUT_STATE_DIR or FANOUT_PORT must point at it)"
        )
    for key, value in (
        ("AWS_ENDPOINT_URL", env.aws_endpoint),
        ("AWS_REGION", env.region),
        ("AWS_DEFAULT_REGION", env.region),
        ("AWS_ACCESS_KEY_ID", env.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", env.secret_access_key),
    ):
        print(f"export {key}={shlex.quote(value)}")


def _register_handler(env: localenv.LocalEnv, name: str, handler: str | None, path: str | None) -> None:
    """Tell the running stack which code a subscribed consumer runs (only this run's key holder may)."""
    import urllib.error
    import urllib.request

    body = json.dumps({"secret": env.secret_access_key, "name": name, "handler": handler, "path": path}).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback only)
        f"{env.api_url}/_local/handlers", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (loopback only)
            return
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message") or exc.reason
        except ValueError:
            message = exc.reason
        raise CliError(f"the local stack refused the handler: {message}") from None
    except OSError as exc:
        raise CliError(f"no local stack at {env.api_url} ({exc}); start it with `make run`") from None


def _policy_problem(policy: Any, where: str = "") -> str | None:
    """SNS's shape rule: every key maps to a non-empty list of conditions or to a nested object."""
    for key, value in policy.items():
        here = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            if not value:
                return f"{here} is an empty object"
            problem = _policy_problem(value, here)
            if problem:
                return problem
        elif not isinstance(value, list) or not value:
            return f'{here} must be a non-empty list of conditions, e.g. ["value"]'
    return None


def cmd_subscribe(args: argparse.Namespace) -> None:
    if not topology.CONSUMER_NAME.match(args.name):
        raise CliError(f"NAME must be {topology.CONSUMER_NAME_RULE}, got {args.name!r}")
    policy = None
    if args.filter_policy is not None:
        try:
            policy = json.loads(args.filter_policy)
        except ValueError as exc:
            raise CliError(f"--filter-policy is not valid JSON: {exc}") from None
        if not isinstance(policy, dict) or not policy:
            raise CliError("--filter-policy must be a non-empty JSON object")
        problem = _policy_problem(policy)
        if problem:
            raise CliError(f"--filter-policy: {problem}")
    tags = consumers.handler_tags(args.handler, args.path)  # checked before anything is created
    stack = Stack()
    # The one rule for names, as `new-consumer` and the stack config apply it: the name fits every AWS
    # name a consumer makes, and no consumer (declared, subscribed, or removed with its queues kept) or
    # queue of the stack has it.
    topology.check_consumer_name(stack.topo.prefix, args.name, handler=False, where="NAME")  # queues only
    queue_name, dlq_name = topology.subscribed_queue_names(args.name)
    problem = topology.name_problem(stack.topo.prefix, args.name, (queue_name, dlq_name), stack.name_uses())
    if problem:
        raise CliError(problem)
    for name in (queue_name, dlq_name):
        # Never adopt a queue that exists already (another consumer's queue or DLQ): create or refuse.
        if consumers.queue_exists(stack.sqs, name):
            raise CliError(f"a queue named {name} already exists; choose another NAME")
    if args.handler:
        # Registered with the stack first (it checks the directory is yours alone); the queue only then.
        _register_handler(stack.env, args.name, args.handler, tags.get(consumers.PATH_TAG))
    try:
        queues = consumers.ensure(
            stack.sqs,
            stack.sns,
            stack.topic_arn,
            name=args.name,
            queue_name=queue_name,
            dlq_name=dlq_name,
            max_receive_count=args.max_receive_count,
            visibility_timeout=stack.env.visibility_timeout,
            filter_policy=policy,
            filter_scope=args.filter_scope,
            tags=tags,
        )
    except Exception as exc:
        # Leave nothing half made: no queue without its subscription, no subscription without its filter.
        consumers.remove(stack.sqs, stack.sns, stack.topic_arn, queue_name, dlq_name)
        if args.handler:
            _register_handler(stack.env, args.name, None, None)
        if "FilterPolicy" in str(exc) or "Invalid parameter" in str(exc):
            raise CliError(f"the filter policy was refused: {exc}") from None
        raise
    print(f"subscribed {args.name} to {stack.topic_arn} (raw delivery, DLQ {queues.dlq_url})")
    print(queues.queue_url)


def cmd_generate(args: argparse.Namespace) -> None:
    env = localenv.for_cli()
    topo = topology.load(env.stack)
    from fanout.local.runtime import foreign_variables, function_environ

    # The generator's code runs here with the generator's variables only, as in its own process.
    for name in foreign_variables(env, topo, "generator"):
        os.environ.pop(name, None)
    os.environ.update(function_environ(env, topo, "generator"))
    from handlers import generator

    if args.sub is not None and not args.sub.strip():
        raise CliError("--sub must not be empty")
    users = [args.sub] if args.sub else list(topo.generator.users)
    started = time.perf_counter()
    try:
        ids = generator.generate(args.count, users, args.seed)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    elapsed = time.perf_counter() - started
    # The rate is the local publish throughput (moto's SNS fanning out to every queue), a useful figure.
    print(f"published {len(ids)} events for {', '.join(users)} in {elapsed:.1f} s ({len(ids) / elapsed:.0f} events/s)")


def _window(args: argparse.Namespace) -> tuple[Any, Any]:
    from datetime import UTC, datetime

    from fanout import replay

    try:
        since = replay.parse_time(args.since, name="--since")
        until = replay.parse_time(args.until, name="--until") if args.until else datetime.now(UTC)
    except replay.ReplayError as exc:
        raise CliError(str(exc)) from None
    if until <= since:
        raise CliError("--until must be after --since")
    return since, until


def cmd_replay(args: argparse.Namespace) -> None:
    from fanout import replay

    since, until = _window(args)
    if args.aws:
        # AWS: boto3's standard credentials and region; names come from the stack's outputs.
        if args.event_archive or args.event_bus:
            if args.consumer:
                raise CliError("--consumer replays from the S3 archive; it does not go with --event-archive")
            if not (args.event_archive and args.event_bus):
                raise CliError("--event-archive and --event-bus go together")
            import boto3

            try:
                name = replay.start_bus_replay(boto3.client("events"), args.event_archive, args.event_bus, since, until)
            except replay.ReplayError as exc:
                raise CliError(str(exc)) from None
            print(
                f"started EventBridge replay {name}; follow it with `aws events describe-replay --replay-name {name}`"
            )
            return
        if not (args.bucket and args.topic_arn):
            raise CliError("--aws needs --bucket and --topic-arn (or --event-archive and --event-bus)")
        os.environ["TOPIC_ARN"] = args.topic_arn
        bucket = args.bucket
    else:
        env = localenv.for_cli()
        topo = topology.load(env.stack)
        from fanout.local.runtime import publisher_environ

        os.environ.update(publisher_environ(env, topo))  # the topic, as --aws --topic-arn gives it
        bucket = args.bucket or topo.archive_bucket_name
    from handlers.core import clients, publisher

    publish = publisher.for_replay()
    if args.consumer:
        from fanout import observe

        publish = observe.replay_to_consumer(
            clients.client("sqs"), clients.client("sns"), os.environ["TOPIC_ARN"], args.consumer
        )
    skipped: list[str] = []

    def skip(line: str) -> None:  # an archive line that is not an event: named, and the replay goes on
        skipped.append(line)
        print(f"fanout: skipped {line}", file=sys.stderr, flush=True)

    count = replay.replay(clients.client("s3"), bucket, since, until, publish, args.type, skip)
    what = f" of type {args.type}" if args.type else ""
    what += f" to {args.consumer}'s queue only" if args.consumer else ""
    window = f"{since:%Y-%m-%dT%H:%M:%SZ} and {until:%Y-%m-%dT%H:%M:%SZ}"
    left = f"; skipped {len(skipped)} archive lines that are not events" if skipped else ""
    print(f"replayed {count} events{what} from s3://{bucket} between {window}{left}")


def cmd_reset(args: argparse.Namespace) -> None:
    from fanout.local import state

    env = localenv.load()
    try:
        removed = state.reset(env.state_dir)
    except state.StateError as exc:
        raise CliError(str(exc)) from None
    if removed:
        print(f"removed {', '.join(removed)} from {env.state_dir}; the next `make run` starts empty")
    else:
        print(f"no local state in {env.state_dir}; nothing to reset")


def _summary(message: dict[str, Any]) -> dict[str, Any]:
    body: Any = message["Body"]
    with contextlib.suppress(ValueError):
        body = json.loads(body)
    return {
        "messageId": message["MessageId"],
        "receiveCount": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
        "sentTimestamp": message.get("Attributes", {}).get("SentTimestamp"),
        "messageAttributes": {k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()},
        "body": body,
    }


def cmd_dlq_show(args: argparse.Namespace) -> None:
    stack = Stack()
    _, dlq_url = stack.consumer_with_dlq(args.consumer)
    from fanout import observe

    # From the running stack: its trace ledger knows each message's receive count on arrival and last error.
    _, messages = observe.dlq_messages(args.consumer)
    if args.json:
        print(printable_json(messages, indent=2))
        return
    print(f"{plural(len(messages), 'message')} in {dlq_url}")
    for m in messages:
        body = m["body"]
        what = (
            f"{body.get('type')} {body.get('id')} subject={body.get('subject')}"
            if isinstance(body, dict)
            else repr(body)[:80]
        )
        if m.get("bodyProblem"):  # shown as text: the stack could not read it as JSON
            what = f"(body is {m['bodyProblem']}) {what}"
        # Message fields are anyone's text: escaped, so they cannot drive the terminal.
        print(printable(f"  {m['messageId']}  {what}  receives={m['receiveCount']}"))
        if m.get("error"):
            print(printable(f"    last error: {m['error']}"))


def cmd_dlq_redrive(args: argparse.Namespace) -> None:
    stack = Stack()
    queue_url, dlq_url = stack.consumer_with_dlq(args.consumer)
    if not queue_url:
        raise CliError(f"consumer {args.consumer!r} has no queue left to move its DLQ's messages back to")
    moved = consumers.redrive(stack.sqs, dlq_url, queue_url)
    print(f"{plural(moved, 'message')} moved from {args.consumer}'s DLQ back to its queue")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _observe(name: str, args: argparse.Namespace) -> None:
    from fanout import observe  # tail, trace, dlq purge, unsubscribe: fanout/observe.py

    getattr(observe, name)(args)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fanout", description="Developer tool for the local fanout stack (start it with `make run`).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("token", help="print a token for the local stack")
    t.add_argument("--sub", required=True, help="the user id (sub claim)")
    t.add_argument("--roles", help="comma-separated roles (default: data.read,data.write)")
    t.add_argument("--ttl", type=_positive, default=3600, help="seconds until the token expires (default 3600)")
    t.set_defaults(func=cmd_token)

    s = sub.add_parser("status", help="endpoints, resources and consumers of the running stack")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_status)

    ev = sub.add_parser("env", help="print the export lines that point the AWS CLI or an SDK at the running stack")
    ev.set_defaults(func=cmd_env)

    sb = sub.add_parser("subscribe", help="add a queue (with its own DLQ) subscribed to the topic")
    sb.add_argument("name", metavar="NAME", help="queue name (letters, digits, '-', '_')")
    sb.add_argument(
        "--filter-policy", metavar="JSON", help='SNS filter policy, e.g. \'{"type": ["fanout.data.generated.v1"]}\''
    )
    sb.add_argument("--filter-scope", choices=("MessageAttributes", "MessageBody"), default="MessageAttributes")
    sb.add_argument("--max-receive-count", type=_positive, default=3, help="receives before a message goes to the DLQ")
    sb.add_argument(
        "--handler", metavar="MODULE:FUNCTION", help="the running `make run` invokes it with the queue's batches"
    )
    sb.add_argument("--path", metavar="DIR", help="with --handler: import MODULE from DIR (e.g. another repository)")
    sb.set_defaults(func=cmd_subscribe)

    g = sub.add_parser("generate", help="publish synthetic events through the scheduled generator's path")
    g.add_argument("--count", type=_positive, required=True, help="how many events")
    g.add_argument("--sub", help="the user to generate for (default: the stack's generator users)")
    g.add_argument("--seed", type=int, help="make the generated data deterministic")
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser(
        "replay",
        help="publish archived events of a time window again, same ids",
        description="Reads the S3 archive (events/dt=YYYY-MM-DD/), keeps events with since <= time < until, "
        "and publishes them again with their ids, so idempotent consumers change nothing they already have.",
    )
    r.add_argument("--since", required=True, metavar="ISO", help="start of the window, inclusive (UTC if no offset)")
    r.add_argument("--until", metavar="ISO", help="end of the window, exclusive (default: now)")
    r.add_argument("--type", help="only events of this type, e.g. fanout.data.generated.v1")
    r.add_argument("--aws", action="store_true", help="replay on AWS (standard credentials) instead of the local stack")
    r.add_argument("--bucket", help="the archive bucket (default: the local stack's)")
    r.add_argument("--topic-arn", help="with --aws: the topic to publish to")
    r.add_argument("--event-archive", metavar="ARN", help="with --aws: replay this EventBridge archive instead")
    r.add_argument("--event-bus", metavar="ARN", help="with --event-archive: the bus to replay onto")
    r.add_argument("--consumer", metavar="NAME", help="re-deliver to this consumer's queue only (through its filter)")
    r.set_defaults(func=cmd_replay)

    rs = sub.add_parser("reset", help="delete the local state kept between runs (stop `make run` first)")
    rs.set_defaults(func=cmd_reset)

    d = sub.add_parser("dlq", help="inspect or redrive a consumer's dead-letter queue")
    dsub = d.add_subparsers(dest="dlq_command", required=True, parser_class=_Parser)
    ds = dsub.add_parser("show", help="list the messages in a consumer's DLQ without consuming them")
    ds.add_argument("consumer", metavar="CONSUMER")
    ds.add_argument("--json", action="store_true", help="print a JSON list")
    ds.set_defaults(func=cmd_dlq_show)
    dr = dsub.add_parser("redrive", help="move a consumer's DLQ messages back to its queue")
    dr.add_argument("consumer", metavar="CONSUMER")
    dr.set_defaults(func=cmd_dlq_redrive)
    dp = dsub.add_parser("purge", help="delete every message of a consumer's DLQ")
    dp.add_argument("consumer", metavar="CONSUMER")
    dp.set_defaults(func=lambda a: _observe("cmd_dlq_purge", a))

    tr = sub.add_parser("trace", help="what became of one event: published, each consumer's state, stored, announced")
    tr.add_argument("id", metavar="ID", help="the event id (the id POST /data answered)")
    tr.add_argument("--json", action="store_true", help="print one JSON object")
    tr.add_argument("--aws", action="store_true", help="ask CloudWatch Logs Insights on AWS instead of the local stack")
    tr.add_argument("--stack", help="with --aws: the stack whose function log groups to search (default dev)")
    tr.add_argument("--log-group", action="append", metavar="NAME", help="with --aws: one more log group to search")
    tr.set_defaults(func=lambda a: _observe("cmd_trace", a))

    tl = sub.add_parser("tail", help="print the events published on the topic as they come, until Ctrl+C")
    tl.add_argument("--type", help="only events of this type")
    tl.add_argument("--subject", help="only events of this subject (user id)")
    tl.add_argument("--json", action="store_true", help="one CloudEvent JSON object per line")
    tl.add_argument("--count", type=_positive, help="exit after N events")
    tl.add_argument("--aws", action="store_true", help="tail a deployed stack's topic (standard AWS credentials)")
    tl.add_argument("--topic-arn", help="with --aws: the topic (stack output topic_arn)")
    tl.set_defaults(func=lambda a: _observe("cmd_tail", a))

    us = sub.add_parser("unsubscribe", help="remove a consumer added with `fanout subscribe` and its queues")
    us.add_argument("name", metavar="NAME")
    us.add_argument("--force", action="store_true", help="remove it even while its queue or DLQ holds messages")
    us.set_defaults(func=lambda a: _observe("cmd_unsubscribe", a))

    from fanout import schemas_check  # offline: needs no stack

    schemas_check.register(sub)
    from fanout import new_consumer  # offline: writes files, needs no stack

    new_consumer.register(sub)
    publish.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (
        CliError,
        localenv.LocalConfigError,
        topology.TopologyError,
        consumers.ConsumerError,
        publish.PublishError,
    ) as exc:
        # Errors can quote names and server answers: escaped like every other line for a person.
        print(printable(f"fanout: error: {exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl+C during generate, replay or redrive: what was published or moved so far stays so.
        print("fanout: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        if isinstance(exc, EndpointConnectionError):
            env = localenv.for_cli()
            print(f"fanout: error: no local stack at {env.aws_endpoint}; start it with `make run`", file=sys.stderr)
        elif isinstance(exc, ClientError | BotoCoreError):
            print(printable(f"fanout: error: {exc}"), file=sys.stderr)
        else:
            print(printable(f"fanout: error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
