"""Local state that outlives `make run`: moto keeps everything in memory, so we keep a copy on disk.

What is kept, under the state dir (FANOUT_STATE_DIR, default .fanout/):
  tables/<table>.jsonl       every item of the topology's tables, DynamoDB JSON, one per line
  s3/<bucket>/<key>          every object of the topology's buckets (the event archive), as files
  consumers.json             consumers added at run time (`fanout subscribe`): queue, DLQ, filter
  trace.json                 the trace ledger: what became of the last events (`fanout trace`)
  queues.json                messages waiting in queues and DLQs at a clean stop (body, attributes,
                             receive count), and the queues, DLQ and redrive settings of the consumers
                             that held them (a consumer removed from the stack config gets them back);
                             loaded once at the next start, then removed
  handlers.json              the handlers `fanout subscribe --handler` registered (module, directory)
  credentials.json           the emulated endpoint's keys for the current run (`fanout env`)
The dir is 0700 and must belong to the user who runs the stack; nothing in it is opened through a
link (fanout/local/safefs.py). A file that cannot be read at start (truncated by a crash, say) is
moved aside as `<name>.unreadable`, named in one line, and the stack starts without it.
What is not: messages in queues after a crash (they are saved on a clean stop only: reading a
queue while its pollers run would count as receives), SQS receipts, and anything created by
hand outside these resources.

Snapshots are taken periodically and on a clean stop, each file replaced atomically, so a
crash loses at most the last interval and never leaves a half-written file. A lock file
keeps two stacks from sharing one state dir; `fanout reset` refuses while it is held.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from fanout import consumers
from fanout.local import safefs
from fanout.local.ledger import Ledger
from fanout.localenv import CREDENTIALS, LocalEnv, new_credentials
from fanout.topology import Topology

log = logging.getLogger("fanout.local.state")
LOCK = ".lock"
TABLES, S3, CONSUMERS = "tables", "s3", "consumers.json"
TRACE = "trace.json"  # the trace ledger (fanout/local/ledger.py)
QUEUES = "queues.json"  # messages waiting in the consumers' queues and DLQs at the last clean stop
# In QUEUES, under a key no queue name can be: for each consumer whose queues held messages, its
# queue, DLQ and redrive settings, so a consumer removed from the stack config gets its kept queues back.
KEPT = "#consumers"
HANDLERS = "handlers.json"  # what `fanout subscribe --handler` registered: name -> module:function, directory
ENTRIES = (TABLES, S3, CONSUMERS, TRACE, QUEUES, HANDLERS, CREDENTIALS, "moto_recording", LOCK)
HIDE_SECONDS = 300  # restoring receive counts: messages already restored stay out of the way this long


class StateError(RuntimeError):
    pass


def _unreadable(path: Path, exc: Exception) -> None:
    """A state file that does not parse: kept aside, said in one line; the stack starts without it."""
    aside = safefs.set_aside(path)
    log.warning("state file %s is unreadable (%s); moved it to %s and started without it", path, exc, aside.name)


def _load_json(path: Path) -> Any:
    """A state file's JSON, or None when absent or unreadable (then set aside, see _unreadable)."""
    if not safefs.is_file(path):
        return None
    try:
        return json.loads(safefs.read_bytes(path))
    except (ValueError, UnicodeDecodeError) as exc:
        _unreadable(path, exc)
        return None


class _OutOfTime(Exception):
    """The snapshot's deadline passed; what was already written stays, the rest keeps its last copy."""


def _encode(value: Any) -> Any:
    # DynamoDB JSON holds bytes only under "B" / "BS"; everything else is already JSON.
    if isinstance(value, bytes | bytearray):
        return {"__b64__": base64.b64encode(value).decode()}
    raise TypeError(f"cannot snapshot {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    return base64.b64decode(obj["__b64__"]) if set(obj) == {"__b64__"} else obj


def _write_atomic(path: Path, write: Callable[[TextIO], None]) -> None:
    safefs.write_atomic(path, write)


def _safe_key_path(root: Path, key: str) -> Path | None:
    """Where an S3 key is mirrored, or None for a key that would escape the mirror (e.g. '../x')."""
    parts = key.split("/")
    if not key or key.endswith("/") or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    path = root.joinpath(*parts)
    # The directories are resolved (a link among them must not lead out); the file itself is never
    # followed: it is replaced by a rename or unlinked, both of which act on a link, not its target.
    parent = path.parent.resolve()
    return parent / path.name if parent.is_relative_to(root.resolve()) else None


def _read_pid(fd: int) -> int | None:
    """The pid a lock file names, or None (empty, or not a pid)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    # A killed run whose parent is gone too can stay a zombie (no reaper in a container): it holds nothing.
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _deadline(budget: float, cancel: threading.Event | None = None) -> Callable[[], None]:
    """A check to call between API calls: raises _OutOfTime after `budget` seconds or once `cancel` is set."""
    deadline = time.monotonic() + budget

    def check() -> None:
        if time.monotonic() > deadline or (cancel is not None and cancel.is_set()):
            raise _OutOfTime

    return check


@dataclass
class LocalState:
    root: Path
    topo: Topology
    env: LocalEnv
    _lock_fd: int | None = field(default=None, repr=False)
    _mirrored: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)  # bucket -> key -> ETag
    restored: bool = False
    _busy: threading.Lock = field(default_factory=threading.Lock, repr=False)
    ledger: Ledger | None = None  # saved with each snapshot when set

    # ------------------------------------------------------------------ lock

    def lock(self) -> None:
        """Hold the state dir's lock (an flock on .lock, which names our pid) for the life of the stack.

        A clean stop removes the file; one left behind is a run that was killed. Its flock died with
        it, so the lock is taken over with a one-line note. Should something still hold the flock
        while the pid in the file is gone (a stray child that inherited it), the file is replaced.
        """
        try:
            safefs.private_dir(self.root)
        except safefs.UnsafeStateError as exc:
            raise StateError(str(exc)) from None
        path = self.root / LOCK
        for attempt in range(4):
            try:
                fd = safefs.open_fd(path, os.O_RDWR | os.O_CREAT)
            except safefs.UnsafeStateError as exc:
                raise StateError(f"{exc}; remove it") from None
            previous = _read_pid(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if previous is not None and _alive(previous):
                    raise StateError(
                        f"another local stack (pid {previous}) is using the state dir {self.root}; "
                        "stop it or set FANOUT_STATE_DIR"
                    ) from None
                if attempt == 0:
                    time.sleep(0.5)  # perhaps a stack that has the flock but has not written its pid yet
                    continue
                log.warning("taking over the lock of %s: pid %s is gone, yet something still held it", path, previous)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            if not _same_file(fd, path):
                os.close(fd)  # removed or replaced between open and flock: lock the file that is there now
                continue
            if previous is not None and previous != os.getpid():
                log.warning(
                    "took over the state dir lock left by pid %s (%s); that run did not stop cleanly",
                    previous,
                    "still running but not holding it" if _alive(previous) else "no longer running",
                )
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            self._lock_fd = fd
            return
        raise StateError(f"could not take the lock {path}; stop the other stack or set FANOUT_STATE_DIR")

    def new_credentials(self) -> LocalEnv:
        """Fresh keys for this run's emulated endpoint, written 0600 to the state dir; the env that carries them."""
        key_id, secret = new_credentials()
        doc = {"access_key_id": key_id, "secret_access_key": secret}
        try:
            safefs.write_bytes_atomic(self.root / CREDENTIALS, json.dumps(doc).encode())
        except safefs.UnsafeStateError as exc:
            raise StateError(str(exc)) from None
        import dataclasses

        self.env = dataclasses.replace(self.env, access_key_id=key_id, secret_access_key=secret)
        return self.env

    def unlock(self) -> None:
        if self._lock_fd is not None:
            # Remove the file while still holding the flock (and only if it is ours), so that a .lock found
            # at start means a run that did not stop cleanly; lock() checks it locked the file on disk.
            if _same_file(self._lock_fd, self.root / LOCK):
                with contextlib.suppress(OSError):
                    (self.root / CREDENTIALS).unlink()  # this run's keys: no use once it stops
                with contextlib.suppress(OSError):
                    (self.root / LOCK).unlink()
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    # ------------------------------------------------------------------ restore

    def restore(self, session: Any) -> dict[str, int]:
        """Load the last snapshot into the freshly provisioned resources; returns what came back."""
        ddb, s3 = session.client("dynamodb"), session.client("s3")
        counts = {"items": 0, "objects": 0, "consumers": 0}
        for table in self._tables():
            counts["items"] += self._restore_table(ddb, table)
        for bucket in self._buckets():
            counts["objects"] += self._restore_bucket(s3, bucket)
        counts["consumers"] = self._restore_consumers(session)
        counts["messages"] = self._restore_queues(session.client("sqs"))
        self.restored = True
        return counts

    def _restore_table(self, ddb: Any, table: str) -> int:
        path = self.root / TABLES / f"{table}.jsonl"
        if not safefs.is_file(path):
            return 0
        try:
            items = [json.loads(line, object_hook=_decode) for line in safefs.read_text(path).splitlines() if line]
        except (ValueError, UnicodeDecodeError) as exc:
            _unreadable(path, exc)
            return 0
        for start in range(0, len(items), 25):
            pending = [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
            while pending:  # moto never throttles, but honour UnprocessedItems anyway
                response = ddb.batch_write_item(RequestItems={table: pending})
                pending = response.get("UnprocessedItems", {}).get(table, [])
        return len(items)

    def _restore_bucket(self, s3: Any, bucket: str) -> int:
        root = self.root / S3 / bucket
        mirrored = self._mirrored.setdefault(bucket, {})
        if not root.is_dir() or root.is_symlink():
            return 0
        for path in sorted(p for p in safefs.files_under(root) if not p.name.endswith(".tmp")):
            key = path.relative_to(root).as_posix()
            etag = s3.put_object(Bucket=bucket, Key=key, Body=safefs.read_bytes(path))["ETag"]
            mirrored[key] = etag
        return len(mirrored)

    def _restore_consumers(self, session: Any) -> int:
        saved = _load_json(self.root / CONSUMERS)
        if not saved:
            return 0
        sqs, sns = session.client("sqs"), session.client("sns")
        for c in saved:
            consumers.ensure(
                sqs,
                sns,
                self.env.topic_arn(self.topo.topic_name),
                name=c["name"],
                queue_name=c["queue_name"],
                dlq_name=c["dlq_name"],
                max_receive_count=c["max_receive_count"],
                visibility_timeout=self.env.visibility_timeout,
                filter_policy=c.get("filter_policy"),
                filter_scope=c.get("filter_scope", "MessageAttributes"),
                # Descriptive only: which code runs comes from HANDLERS, never from the emulator.
                tags=c.get("tags") or None,
            )
        return len(saved)

    # ------------------------------------------------------------------ snapshot

    def snapshot(
        self,
        session: Any,
        budget: float = 30.0,
        cancel: threading.Event | None = None,
        *,
        final: bool = False,
        returned: Collection[str] = (),
    ) -> bool:
        """Write what the stack holds now; False when out of time or cancelled (older copies stay).

        `final` (the clean stop, pollers already stopped) also saves the messages in queues and DLQs;
        those `returned` (message ids whose invocation the stop cut short) without that receive.
        """
        if not self.restored:
            return False  # never overwrite a snapshot that was not loaded: it would be lost
        check = _deadline(budget, cancel)
        with self._busy:
            try:
                if final:
                    self._snapshot_queues(session.client("sqs"), check, returned)  # first: nothing else keeps them
                if self.ledger is not None:
                    self.ledger.save(self.root / TRACE)  # first: local and cheap
                ddb, s3 = session.client("dynamodb"), session.client("s3")
                for table in self._tables():
                    self._snapshot_table(ddb, table, check)
                for bucket in self._buckets():
                    self._snapshot_bucket(s3, bucket, check)
                self._snapshot_consumers(session, check)
            except _OutOfTime:
                log.info("snapshot cut short; the previous copy of the rest is kept")
                return False
        return True

    def _snapshot_table(self, ddb: Any, table: str, check: Callable[[], None]) -> None:
        lines: list[str] = []
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            check()
            lines += [json.dumps(i, default=_encode, separators=(",", ":"), sort_keys=True) for i in page["Items"]]
        # Sorted, so an unchanged table writes the same bytes.
        _write_atomic(self.root / TABLES / f"{table}.jsonl", lambda fh: fh.writelines(f"{x}\n" for x in sorted(lines)))

    def _snapshot_bucket(self, s3: Any, bucket: str, check: Callable[[], None]) -> None:
        root = self.root / S3 / bucket
        safefs.subdir(self.root / S3)
        safefs.subdir(root)
        mirrored = self._mirrored.setdefault(bucket, {})
        listed: dict[str, str] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            listed |= {o["Key"]: o["ETag"] for o in page.get("Contents", [])}
        for key, etag in listed.items():
            if mirrored.get(key) == etag:
                continue  # archive keys derive from content: an unchanged ETag is an unchanged object
            check()
            path = _safe_key_path(root, key)
            if path is None:
                continue
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            safefs.subdir(path.parent)
            safefs.write_bytes_atomic(path, body)
            mirrored[key] = etag
        for key in set(mirrored) - set(listed):
            path = _safe_key_path(root, key)
            if path is not None:
                path.unlink(missing_ok=True)
            del mirrored[key]

    def _snapshot_consumers(self, session: Any, check: Callable[[], None]) -> None:
        sqs, sns = session.client("sqs"), session.client("sns")
        topic_arn = self.env.topic_arn(self.topo.topic_name)
        declared = {c.name for c in self.topo.consumers}
        subs = {}
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            subs |= {s["Endpoint"]: s["SubscriptionArn"] for s in page["Subscriptions"] if s["Protocol"] == "sqs"}
        saved = []
        for name, q in sorted(consumers.discover(sqs, sns, topic_arn).items()):
            check()
            if name in declared or not (q.dlq_url or q.missing):
                continue  # declared consumers come back from the stack config
            arn = consumers.queue_arn(sqs, q.queue_url)
            if arn not in subs:
                continue  # unsubscribed meanwhile
            attrs = sns.get_subscription_attributes(SubscriptionArn=subs[arn])["Attributes"]
            redrive = sqs.get_queue_attributes(QueueUrl=q.queue_url, AttributeNames=["RedrivePolicy"])
            policy = attrs.get("FilterPolicy")
            saved.append(
                {
                    "name": name,
                    "queue_name": q.queue_url.rsplit("/", 1)[-1],
                    # A deleted DLQ is made again at the next start.
                    "dlq_name": q.dlq_url.rsplit("/", 1)[-1] if q.dlq_url else q.missing[0],
                    "max_receive_count": int(json.loads(redrive["Attributes"]["RedrivePolicy"])["maxReceiveCount"]),
                    "filter_policy": json.loads(policy) if policy else None,
                    "filter_scope": attrs.get("FilterPolicyScope", "MessageAttributes"),
                    "tags": {
                        k: v
                        for k, v in sqs.list_queue_tags(QueueUrl=q.queue_url).get("Tags", {}).items()
                        if k in (consumers.HANDLER_TAG, consumers.PATH_TAG)
                    },
                }
            )
        _write_atomic(self.root / CONSUMERS, lambda fh: json.dump(saved, fh, indent=2))

    # ------------------------------------------------------------------ queues

    def _consumer_queues(self, sqs: Any, pool: ThreadPoolExecutor | None = None) -> dict[str, dict[str, str]]:
        """Every consumer queue and DLQ (tagged fanout:consumer) with its tags, never the trace or tail taps."""
        listed = [url for page in sqs.get_paginator("list_queues").paginate() for url in page.get("QueueUrls", [])]

        def tags(url: str) -> dict[str, str]:
            return consumers.queue_tags(sqs, url) or {}  # {}: deleted since it was listed

        tagged = zip(listed, pool.map(tags, listed) if pool is not None else map(tags, listed), strict=True)
        return {url: t for url, t in sorted(tagged) if consumers.TAG in t and t.get(consumers.ROLE_TAG) != "tap"}

    def _snapshot_queues(self, sqs: Any, check: Callable[[], None], returned: Collection[str] = ()) -> None:
        # At the stop, with every second counted: the queues are read side by side (moto serves each
        # request in a thread of its own), not one after the other.
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="save-queue") as pool:
            tagged = self._consumer_queues(sqs, pool)
            urls = list(tagged)
            read = pool.map(lambda url: self._read_queue(sqs, url, check, returned), urls)
            held = {url: messages for url, messages in zip(urls, read, strict=True) if messages}
            names = sorted({tagged[url][consumers.TAG] for url in held})
            about = dict(zip(names, pool.map(lambda n: _describe(sqs, n, tagged), names), strict=True))
        saved: dict[str, Any] = {url.rsplit("/", 1)[-1]: messages for url, messages in held.items()}
        if about:
            saved[KEPT] = about
        _write_atomic(self.root / QUEUES, lambda fh: json.dump(saved, fh))

    def _read_queue(
        self, sqs: Any, url: str, check: Callable[[], None], returned: Collection[str]
    ) -> list[dict[str, Any]]:
        """Every message of one queue, each once, with the receive count it had."""
        messages: dict[str, dict[str, Any]] = {}
        while True:
            check()
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=60,  # out of the way until the emulator stops, so each is read once
                WaitTimeSeconds=0,
                AttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            for m in batch:
                attributes = {}
                for k, v in m.get("MessageAttributes", {}).items():
                    value = {"DataType": v["DataType"]}
                    if "StringValue" in v:
                        value["StringValue"] = v["StringValue"]
                    if "BinaryValue" in v:
                        value["BinaryValue"] = base64.b64encode(v["BinaryValue"]).decode()
                    attributes[k] = value
                messages[m["MessageId"]] = {
                    "body": m["Body"],
                    "attributes": attributes,
                    # This read was a receive too: what it had before (and before a receive the stop cut short).
                    "receiveCount": max(
                        0,
                        int(m["Attributes"].get("ApproximateReceiveCount", 1))
                        - (2 if m["MessageId"] in returned else 1),
                    ),
                }
        return list(messages.values())

    def _restore_queues(self, sqs: Any) -> int:
        """Put the saved messages back, each once, with its receive count; then forget them.

        A consumer no longer in the stack config gets its queues made again (kept, nothing delivers to
        them), so the messages it held stay reachable by `fanout dlq` until they are dealt with.
        """
        path = self.root / QUEUES
        saved = _load_json(path)
        if saved is None:
            return 0
        described = saved.pop(KEPT, None)
        # Written by an older fanout (no such key) or edited by hand: the messages still come back.
        about: dict[str, dict[str, Any]] = (
            {n: a for n, a in described.items() if isinstance(a, dict)} if isinstance(described, dict) else {}
        )
        owners = {
            q: (name, role)
            for name, a in about.items()
            for role, q in (("queue", a.get("queue")), ("dlq", a.get("dlq")))
            if q
        }
        declared = {c.name for c in self.topo.consumers}
        for name, a in about.items():
            if name not in declared:
                self._recreate_kept(sqs, name, a)
        restored = 0
        for name, messages in saved.items():
            try:
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError:
                log.warning(
                    "queue %s is gone from the stack config; its %d saved messages are dropped", name, len(messages)
                )
                continue
            owner = owners.get(name)
            tags = consumers.queue_tags(sqs, url) or {}
            if owner is not None and (tags.get(consumers.TAG), tags.get(consumers.ROLE_TAG) or "queue") != owner:
                # Never pour one consumer's messages into a queue that now belongs to another.
                log.warning(
                    "queue %s now belongs to %s, not to consumer %s; its %d saved messages are dropped",
                    name,
                    f"consumer {tags[consumers.TAG]}" if consumers.TAG in tags else "something else",
                    owner[0],
                    len(messages),
                )
                continue
            restored += _put_back(sqs, url, messages)
        # Loaded once: a crash before the next clean stop must not bring them back a second time.
        path.unlink()
        return restored

    def _recreate_kept(self, sqs: Any, name: str, about: dict[str, Any]) -> None:
        """A removed consumer's queue and DLQ, as they were (tags, redrive policy), unless they exist already."""
        names = [q for q in (about.get("queue"), about.get("dlq")) if q]
        if not names or any(consumers.queue_exists(sqs, q) for q in names):
            return  # subscribed (restored from consumers.json), or taken by another: put back by ownership
        try:
            consumers.ensure_kept(
                sqs,
                name=name,
                queue_name=about.get("queue"),
                dlq_name=about.get("dlq"),
                max_receive_count=int(about.get("max_receive_count") or 3),
                visibility_timeout=int(about.get("visibility_timeout") or self.env.visibility_timeout),
                tags={k: v for k, v in (about.get("tags") or {}).items() if k == consumers.SOURCE_TAG},
            )
        except consumers.ConsumerError as exc:
            log.warning("removed consumer %s's queues are not kept: %s", name, exc)

    # ------------------------------------------------------------------ helpers

    def _tables(self) -> tuple[str, ...]:
        return (self.topo.table_name, self.topo.idempotency_table_name)

    def _buckets(self) -> tuple[str, ...]:
        return (self.topo.archive_bucket_name,)


def _put_back(sqs: Any, url: str, messages: list[dict[str, Any]]) -> int:
    """Send the messages again; a message that had been received N times is received N times here.

    SQS has no call to set a receive count, so it is rebuilt: each such message is sent, received
    N times (the last receive hides it for a while, so the next one sent is the only one visible),
    and all are made visible again at the end. Messages never received go last, untouched.
    """
    hidden: list[str] = []
    ordered = sorted(messages, key=lambda m: -int(m.get("receiveCount", 0)))
    for m in ordered:
        attributes = {}
        for k, v in m.get("attributes", {}).items():
            value = dict(v)
            if "BinaryValue" in value:
                value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
            attributes[k] = value
        kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": m["body"]}
        if attributes:
            kwargs["MessageAttributes"] = attributes
        sqs.send_message(**kwargs)
        count = int(m.get("receiveCount", 0))
        for n in range(count):
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=0,
                VisibilityTimeout=HIDE_SECONDS if n == count - 1 else 0,
            ).get("Messages", [])
            if not got:
                break  # at maxReceiveCount already: the emulator has moved it to the DLQ, as SQS would
            if n == count - 1:
                hidden.append(got[0]["ReceiptHandle"])
    for start in range(0, len(hidden), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(hidden[start : start + 10])
            ],
        )
    return len(messages)


def _describe(sqs: Any, name: str, tagged: dict[str, dict[str, str]]) -> dict[str, Any]:
    """One consumer's queues as the snapshot keeps them: names, redrive settings, where it was fed from."""
    mine = {t.get(consumers.ROLE_TAG) or "queue": url for url, t in tagged.items() if t[consumers.TAG] == name}
    about: dict[str, Any] = {"queue": None, "dlq": None, "max_receive_count": None, "visibility_timeout": None}
    if "dlq" in mine:
        about["dlq"] = mine["dlq"].rsplit("/", 1)[-1]
    if "queue" in mine:
        about["queue"] = mine["queue"].rsplit("/", 1)[-1]
        with contextlib.suppress(ClientError):  # deleted meanwhile: its name is enough
            attrs = sqs.get_queue_attributes(
                QueueUrl=mine["queue"], AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
            ).get("Attributes", {})
            if "RedrivePolicy" in attrs:
                policy = json.loads(attrs["RedrivePolicy"])
                about["dlq"] = about["dlq"] or policy["deadLetterTargetArn"].rsplit(":", 1)[-1]
                about["max_receive_count"] = int(policy["maxReceiveCount"])
            if "VisibilityTimeout" in attrs:
                about["visibility_timeout"] = int(attrs["VisibilityTimeout"])
        source = tagged[mine["queue"]].get(consumers.SOURCE_TAG)
        if source:
            about["tags"] = {consumers.SOURCE_TAG: source}
    return about


class Snapshotter(threading.Thread):
    """Takes a snapshot every `interval` seconds until stopped, so a crash loses little."""

    def __init__(self, state: LocalState, session: Any, interval: float, stop: threading.Event) -> None:
        super().__init__(name="snapshotter", daemon=True)
        self.state, self.session, self.interval, self.stop = state, session, interval, stop

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                # Cancelled by the stop event: the final snapshot at shutdown takes over.
                self.state.snapshot(self.session, budget=self.interval, cancel=self.stop)
            except (ClientError, BotoCoreError, OSError):
                if self.stop.is_set():
                    return
                log.exception("periodic snapshot failed; will try again")


def reset(root: Path) -> list[str]:
    """Delete the kept state (only what fanout writes there); refuses while a stack holds the lock."""
    if not root.exists():
        return []
    lock = root / LOCK
    if safefs.is_file(lock):
        fd = safefs.open_fd(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            if pid is None or _alive(pid):  # a held lock whose pid is gone is a stray holder, not a stack
                raise StateError(f"a local stack (pid {pid or '?'}) is using {root}; stop `make run` first") from None
        finally:
            os.close(fd)
    removed = []
    for entry in ENTRIES:
        path = root / entry
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()  # a link itself, never what it points to
        else:
            continue
        removed.append(entry)
    with contextlib.suppress(OSError):
        root.rmdir()  # only when empty: never remove what fanout did not put there
    return [e for e in removed if e != LOCK]
