"""`fanout new-consumer NAME`: a working consumer, its unit test, and its entry in the stack config(s).

Everything is checked before anything is written: a name that is invalid, taken (by a consumer
of any target stack, or by an existing module or test file) or too long for an AWS name built
from it is refused with one line, and no file changes. The stack config is the user's file: the
entry is inserted as new lines after the last consumer, every other byte stays as it was
(comments, order, quoting); ruamel.yaml's round-trip parser finds where the list ends.
"""

from __future__ import annotations

import argparse
import io
import json
import keyword
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout import PROJECT_ROOT, topology
from fanout_kit.models import MODELS, DataGenerated, DataPersisted

ROOT = PROJECT_ROOT  # where the files go; tests point it at a copy of the repository
DEFAULT_TYPE = {"topic": DataGenerated.TYPE, "bus": DataPersisted.TYPE}
MODEL_NAMES = {event_type: model.__name__ for event_type, model in MODELS.items()}
BUS_SOURCE = "fanout.persister"  # the only producer on the bus today (contract §6)
SUBSCRIBED_FILE = "consumers.json"  # in the state dir: the consumers `fanout subscribe` added, saved by make run


class NewConsumerError(topology.TopologyError):
    """Why nothing was written; one line (the CLI prints it as it prints config errors)."""


@dataclass(frozen=True)
class Plan:
    name: str
    module: str
    source: str
    types: tuple[str, ...]
    files: dict[Path, str]  # path -> full new content

    def write(self, root: Path) -> list[str]:
        for path, text in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="")  # no newline translation: CRLF stays CRLF
        return [str(p.relative_to(root)) for p in self.files]


def module_name(name: str) -> str:
    return name.replace("-", "_")


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()  # round-trip: keeps comments, order and each line's position
    y.preserve_quotes = True
    return y


def _scalar(value: str) -> str:
    """A plain YAML scalar when it reads back as the same string (`yes`, `123`, `null` would not)."""
    import yaml

    try:
        plain = yaml.safe_load(value) == value and ":" not in value and "#" not in value
    except yaml.YAMLError:
        plain = False
    return value if plain else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def entry_lines(
    name: str, module: str, source: str, types: tuple[str, ...], indent: int, newline: str = "\n"
) -> list[str]:
    listed = "[" + ", ".join(_scalar(t) for t in types) + "]"
    lines = [
        f"# {name}: added by `fanout new-consumer`; its code is handlers/{module}.py.",
        f"- name: {_scalar(name)}",
        f"  handler: handlers.{module}:handler",
    ]
    if source == "bus":
        lines += ["  source: bus", "  eventPattern:", f"    source: [{BUS_SOURCE}]", f"    detail-type: {listed}"]
    else:
        lines += ["  filterPolicy:", f"    type: {listed}"]
    pad = " " * indent
    return [pad + line + newline for line in lines]


def add_entry(text: str, name: str, module: str, source: str, types: tuple[str, ...], file: str) -> str:
    """The stack config with the consumer's entry appended to `fanout:consumers`, nothing else changed."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import YAMLError

    try:
        doc = _yaml().load(text)
    except YAMLError as exc:
        raise NewConsumerError(topology.yaml_problem(file, exc)) from None
    config = doc.get("config") if isinstance(doc, CommentedMap) else None
    if not isinstance(config, CommentedMap):
        raise NewConsumerError(f"{file} has no `config:` mapping")
    newline = "\r\n" if "\r\n" in text else "\n"  # the file's own line ending
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += newline
    key = f"{topology.NAMESPACE}:consumers"
    consumers = config.get(key)
    keys = list(config)
    if isinstance(consumers, CommentedSeq) and len(consumers) and not consumers.fa.flow_style():
        # The new item goes where the list ends: before the next key of `config:` (and the comment
        # lines above that key, which are about it), or at the end of the file.
        after = keys.index(key) + 1
        if after < len(keys):
            end = config.lc.key(keys[after])[0]
        else:  # the last key of `config:`: its list ends where the next top-level key starts, if any
            top = list(doc)
            following = top.index("config") + 1
            end = doc.lc.key(top[following])[0] if following < len(top) else len(lines)
        key_col = config.lc.key(key)[1]
        while end > 0 and (not lines[end - 1].strip() or _comment_at_most(lines[end - 1], key_col)):
            end -= 1
        dash = consumers.lc.item(0)[1] - 2  # the column of the first item's "- "
        new = entry_lines(name, module, source, types, dash, newline)
        return "".join(lines[:end] + new + lines[end:])
    if consumers is None:
        # No list yet: the persister is implicit (topology.DEFAULT_PERSISTER); declaring a list keeps it so.
        indent = config.lc.key(keys[0])[1] if keys else 2
        at = config.lc.key(keys[-1])[0] + 1 if keys else len(lines)
        # After the last key's value: the next line at or left of the key's indentation.
        while at < len(lines) and (lines[at].strip() == "" or len(lines[at]) - len(lines[at].lstrip()) > indent):
            at += 1
        new = [" " * indent + f"{key}:{newline}", *entry_lines(name, module, source, types, indent + 2, newline)]
        return "".join(lines[:at] + new + lines[at:])
    raise NewConsumerError(f"{file}: {key} must be a non-empty block list to add to (one `- name: ...` per line)")


def _comment_at_most(line: str, col: int) -> bool:
    stripped = line.lstrip()
    return stripped.startswith("#") and len(line) - len(stripped) <= col


def _render_handler(name: str, module: str, source: str, types: tuple[str, ...], stacks: list[str]) -> str:
    models = [MODEL_NAMES[t] for t in types]
    annotation = " | ".join(models)
    origin = "the EventBridge bus (rule on source fanout.persister)" if source == "bus" else "the topic"
    configs = ", ".join(f"Pulumi.{s}.yaml" for s in stacks)
    return f'''"""Consumer {name}: receives {", ".join(types)} from {origin}.

Written by `fanout new-consumer`; its entry is in fanout:consumers of {configs}.
While `make run` runs, a saved change here is used from the next event. INFO logs show with
`FANOUT_LOG_LEVEL=INFO make run` (the default level, WARNING, hides them).
"""

from __future__ import annotations

from fanout_kit import {", ".join(sorted(models))}, consumer
from fanout_kit.kit import logger_for

logger = logger_for("{name}")


@consumer({", ".join(models)}, name="{name}")
def handler(event: {annotation}) -> None:
    """One event at a time. Raise to have it retried; after maxReceiveCount it goes to the DLQ."""
    logger.info("{name} received an event", extra={{"type": event.type, "subject": event.subject}})
'''


def _render_test(name: str, module: str, source: str, types: tuple[str, ...]) -> str:
    model = MODEL_NAMES[types[0]]
    bus = ", bus=True" if source == "bus" else ""
    shape = "as the bus delivers it (EventBridge envelope)" if source == "bus" else "as the topic delivers it"
    return f'''"""Unit test of the {name} consumer (written by `fanout new-consumer`; offline, in-process)."""

from __future__ import annotations

from typing import Any

from fanout_kit import {model}
from fanout_kit.testing import failures, new_event, sqs_event
from handlers.{module} import handler


def test_{module}_handles_an_event(context: Any) -> None:
    # One {types[0]} event, {shape}.
    batch = sqs_event(new_event({model}, subject="alice"){bus})
    assert failures(handler(batch, context)) == set()


def test_{module}_reports_an_invalid_message_for_retry(context: Any) -> None:
    batch = sqs_event("not an event")
    assert failures(handler(batch, context)) == {{batch["Records"][0]["messageId"]}}
'''


def plan(
    name: str,
    types: list[str] | None,
    source: str,
    stacks: list[str] | None,
    root: Path = PROJECT_ROOT,
    in_use: dict[str, list[topology.NameUse]] | None = None,
) -> Plan:
    """Check everything and prepare every file's new content; raises NewConsumerError, writes nothing.

    `in_use`: per stack, the names the running local stack has besides its declared consumers.
    """
    import yaml

    if not isinstance(name, str) or not topology.CONSUMER_NAME.match(name):
        raise NewConsumerError(f"invalid name {name!r}: use {topology.CONSUMER_NAME_RULE}")
    module = module_name(name)
    if not module.isidentifier() or keyword.iskeyword(module) or module.startswith("_") or module == "core":
        raise NewConsumerError(
            f"invalid name {name!r}: it must start with a letter and make a Python module name (handlers/{module}.py)"
        )
    chosen = tuple(dict.fromkeys(types or [DEFAULT_TYPE[source]]))
    for t in chosen:
        if t not in MODEL_NAMES:
            raise NewConsumerError(f"unknown event type {t!r} (known: {', '.join(sorted(MODEL_NAMES))})")
    stacks = list(dict.fromkeys(stacks or ["dev"]))
    handler_path = root / "handlers" / f"{module}.py"
    test_path = root / "tests" / "unit" / f"test_{module}.py"
    for path in (handler_path, root / "handlers" / module):
        if path.exists():
            raise NewConsumerError(f"name {name!r} is taken: {path.relative_to(root)} exists")
    clash = sorted((root / "tests").rglob(f"test_{module}.py"))
    if clash:
        raise NewConsumerError(f"name {name!r} is taken: {clash[0].relative_to(root)} exists")
    files: dict[Path, str] = {}
    for stack in stacks:
        file = f"Pulumi.{stack}.yaml"
        current = topology.load(stack, root)  # the config must be valid before we touch it
        try:
            topology.check_consumer_name(current.prefix, name, handler=True, source=source, where="name")
        except topology.TopologyError as exc:
            raise NewConsumerError(f"{exc} (stack {stack}, prefix {current.prefix})") from None
        # The one namespace: declared here, or (on the running stack) subscribed or removed with queues kept.
        problem = topology.name_problem(
            current.prefix,
            name,
            topology.consumer_queue_names(current.prefix, name),
            current.name_uses() + list((in_use or {}).get(stack, [])),
            handler=True,
            source=source,
        )
        if problem:
            raise NewConsumerError(problem)
        path = root / file
        # Bytes as they are: the file's line endings (CRLF on a Windows checkout) are kept.
        with path.open(encoding="utf-8", newline="") as fh:
            text = fh.read()
        updated = add_entry(text, name, module, source, chosen, file)
        # What we wrote must read back as the same topology plus exactly this consumer.
        try:
            raw = (yaml.safe_load(io.StringIO(updated)) or {}).get("config", {})
        except yaml.YAMLError as exc:
            raise NewConsumerError(
                f"{file}: could not add the entry ({topology.yaml_problem(file, exc)}); add it by hand"
            ) from None
        ns = f"{topology.NAMESPACE}:"
        after = topology.from_config(stack, {k[len(ns) :]: v for k, v in raw.items() if k.startswith(ns)})
        added = after.consumer(name)
        if [c for c in after.consumers if c.name != name] != list(current.consumers) or added.source != source:
            raise NewConsumerError(f"{file}: could not add the entry without changing other keys; add it by hand")
        files[path] = updated
    files = {
        handler_path: _render_handler(name, module, source, chosen, stacks),
        test_path: _render_test(name, module, source, chosen),
        **files,
    }
    return Plan(name, module, source, chosen, files)


def running_names(stacks: list[str]) -> dict[str, list[topology.NameUse]]:
    """Consumer names the local stack has besides its stack config: subscribed ones, and removed ones whose
    queues are kept. From the running stack when one answers; otherwise from its saved state."""
    from fanout import localenv, tracing

    env = localenv.load()
    uses: dict[str, list[topology.NameUse]] = {}
    try:
        doc = tracing.local_get(env.api_url, "/_local/topology", timeout=5)
    except tracing.TraceError:
        doc = None
    if isinstance(doc, dict) and doc.get("stack") in stacks:
        for row in doc.get("consumers", []):
            if row.get("declared"):
                continue
            where = (
                f"removed from Pulumi.{doc['stack']}.yaml, its queues are kept while they hold messages"
                if row.get("removed")
                else "subscribed with `fanout subscribe` on the running stack"
            )
            queues = tuple(q for q in (row.get("queue"), row.get("dlq"), *row.get("missing", [])) if q)
            uses.setdefault(doc["stack"], []).append(topology.NameUse(str(row["name"]), where, queues))
        return uses
    # No stack running: the consumers `fanout subscribe` added come back at the next `make run`.
    saved = env.state_dir / SUBSCRIBED_FILE
    try:
        rows = json.loads(saved.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return uses
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("name"), str):
            queues = tuple(str(row[k]) for k in ("queue_name", "dlq_name") if row.get(k))
            where = f"subscribed with `fanout subscribe` (kept in {saved})"
            for stack in stacks:
                uses.setdefault(stack, []).append(topology.NameUse(row["name"], where, queues))
    return uses


def cmd_new_consumer(args: argparse.Namespace) -> None:
    stacks = list(dict.fromkeys(args.stack or ["dev"]))
    made = plan(args.name, args.type, args.source, stacks, ROOT, running_names(stacks))
    for path in made.write(ROOT):
        sys.stdout.write(path + "\n")


def register(sub: Any) -> None:
    """Adds `new-consumer` to the CLI's subcommands."""
    p = sub.add_parser(
        "new-consumer",
        help="write a consumer (handler, unit test) and add it to the stack config",
        description="Writes handlers/<NAME>.py and tests/unit/test_<NAME>.py ('-' becomes '_') and adds the "
        "consumer to Pulumi.<STACK>.yaml, keeping the file's comments. A running `make run` picks it up.",
    )
    p.add_argument("name", metavar="NAME", help="consumer name (letters, digits, '-', '_'; starts with a letter)")
    p.add_argument(
        "--type",
        action="append",
        metavar="TYPE",
        help=f"event type to receive, repeatable (default {DEFAULT_TYPE['topic']}, "
        f"or {DEFAULT_TYPE['bus']} with --source bus)",
    )
    p.add_argument("--source", choices=("topic", "bus"), default="topic", help="the topic (default) or the bus")
    p.add_argument(
        "--stack", action="append", metavar="STACK", help="stack config to add it to, repeatable (default dev)"
    )
    p.set_defaults(func=cmd_new_consumer)
