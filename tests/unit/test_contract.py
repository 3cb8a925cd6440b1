"""The event contract: schemas are valid, producers emit only valid events, published versions only widen.

Publishing an event type means: its schema in schemas/, a copy in tests/contract/published/,
and accepted samples in tests/contract/fixtures/<type>/. From then on the type's schema may
change only in ways that reject nothing it accepted (checked structurally and against the
samples); anything else is a new version: a new type (`...v2`) in a new file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema.validators import validator_for
from unit_support import REGISTRY, SCHEMA_DIR, Aws, assert_valid, call_api, sqs_event

from fanout.schemas_check import BASE_URI, load_dir, narrowing, resolve
from fanout_kit import DataPersisted, events, schemas
from fanout_kit.models import MODELS
from handlers import archive, generator, persister
from handlers.core import archive as layout
from handlers.core import store

CONTRACT = Path(__file__).resolve().parents[1] / "contract"
PUBLISHED = CONTRACT / "published"
FIXTURES = CONTRACT / "fixtures"
EVENT_FILE = re.compile(r"^(fanout\.[a-z0-9.]+\.v(\d+))\.json$")
CURRENT = load_dir(SCHEMA_DIR)
OLD = load_dir(PUBLISHED)
EVENT_TYPES = sorted(m.group(1) for name in CURRENT if (m := EVENT_FILE.match(name)))
SAMPLES = sorted((t, p) for t in EVENT_TYPES for p in (FIXTURES / t).glob("*.json"))


def _jsonschema(schema: dict[str, Any]) -> Any:
    return validator_for(schema)(schema, registry=REGISTRY)


# ---------------------------------------------------------------- schemas


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_every_schema_is_valid_json_schema_with_its_own_id(name: str) -> None:
    schema = CURRENT[name]
    validator_for(schema).check_schema(schema)
    assert schema["$id"] == BASE_URI + name
    assert schema.get("$schema"), f"{name} must say which draft it is"
    # Every $ref resolves (resolve() raises on a dangling one).
    resolve(CURRENT, name)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_an_event_schema_is_named_after_its_type(event_type: str) -> None:
    specific = resolve(CURRENT, f"{event_type}.json")["allOf"][1]["properties"]
    assert specific["type"] == {"const": event_type}
    assert specific["dataschema"] == {"const": BASE_URI + f"{event_type}.json"}
    assert event_type in MODELS, f"{event_type} has a schema but no model in fanout_kit.models.MODELS"


# ---------------------------------------------------------------- published versions


@pytest.mark.parametrize("name", sorted(OLD))
def test_a_published_schema_is_never_removed_or_renamed(name: str) -> None:
    assert name in CURRENT, f"{name} was published; keep it (a new version is a new file)"


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_every_schema_is_published_with_samples(name: str) -> None:
    # A new type (a v2) is published explicitly: a copy in published/ and accepted samples in fixtures/.
    assert name in OLD, f"copy schemas/{name} to tests/contract/published/ when publishing it"
    if m := EVENT_FILE.match(name):
        assert list((FIXTURES / m.group(1)).glob("*.json")), f"add accepted samples to tests/contract/fixtures/{m[1]}/"


@pytest.mark.parametrize("name", sorted(OLD))
def test_a_published_schema_only_widens(name: str) -> None:
    problems = narrowing(resolve(OLD, name), resolve(CURRENT, name))
    assert not problems, f"{name} would reject events it accepted; make a new version instead:\n" + "\n".join(problems)


@pytest.mark.parametrize(("event_type", "path"), SAMPLES, ids=[f"{t}/{p.stem}" for t, p in SAMPLES])
def test_accepted_samples_stay_accepted(event_type: str, path: Path) -> None:
    sample = json.loads(path.read_text(encoding="utf-8"))
    assert sample["type"] == event_type
    # Valid under the version as published (the sample is honest) and as it is now (nothing narrowed),
    # by jsonschema and by the validator the handlers use.
    assert not list(_jsonschema(resolve(OLD, f"{event_type}.json")).iter_errors(sample))
    assert_valid(f"{event_type}.json", sample)
    events.validate(sample)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["properties"]["informationOne"].update(maxLength=10), "maxLength lowered"),
        (lambda s: s["properties"]["informationOne"].update(minLength=2), "minLength raised"),
        (lambda s: s["required"].append("informationThree"), "requires"),
        (lambda s: s["properties"].update(extra={"type": "string"}) or s.update(additionalProperties=True), None),
        (lambda s: s["properties"]["informationOne"].update(maxLength=4096), None),
        (lambda s: s["required"].remove("informationTwo"), None),
        (lambda s: s["properties"]["informationTwo"].update(pattern="^[a-z]+$"), "pattern"),
        (lambda s: s["properties"]["informationTwo"].update(type="integer"), "type"),
        (lambda s: s["properties"].pop("informationTwo"), "no longer allowed"),
        (lambda s: s["properties"]["informationTwo"].update(format="email"), "keyword 'format'"),
    ],
)
def test_the_compatibility_check_catches_narrowing_and_allows_widening(change: Any, expected: str | None) -> None:
    old = resolve(OLD, "data.v1.json")
    new = json.loads(json.dumps(old))
    change(new)
    problems = narrowing(old, new)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


# ---------------------------------------------------------------- producers


def test_the_generator_emits_valid_events() -> None:
    for seed in range(5):
        for event in (e.to_dict() for e in generator.synthesize(50, ["alice", "bob"], seed=seed)):
            assert_valid(f"{event['type']}.json", event)


def test_the_api_publishes_valid_events(aws: Aws, context: Any) -> None:
    body = {"informationOne": "Grüße 🚀", "informationTwo": "x" * 1024}
    assert call_api(context, "POST", "/data", body=body).status == 202
    (event,) = aws.published()
    assert_valid(f"{event['type']}.json", event)


def test_the_persister_announces_valid_events(aws: Aws, context: Any) -> None:
    source = [e.to_dict() for e in generator.synthesize(3, ["alice"], seed=1)]
    assert persister.handler(sqs_event(*source), context) == {"batchItemFailures": []}
    announced = aws.announced()
    assert len(announced) == 3
    for entry in announced:
        assert_valid(f"{entry['detail']['type']}.json", entry["detail"])
    record = store.Record("alice", source[0]["id"], "a", "b", source[0]["time"], correlation_id="c" * 300)
    assert_valid(f"{DataPersisted.TYPE}.json", persister.persisted_event(record).to_dict())


def test_archived_events_are_the_events_unchanged(aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # What replay publishes is what the archive stored: it must still be a valid event, byte for byte the original.
    import boto3

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="contract-archive")
    monkeypatch.setenv("ARCHIVE_BUCKET", "contract-archive")
    source = [e.to_dict() for e in generator.synthesize(4, ["alice"], seed=2)]
    assert archive.handler(sqs_event(*source), context) == {"batchItemFailures": []}
    s3 = boto3.client("s3", region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="contract-archive")["Contents"]]
    lines = [
        line
        for key in keys
        for line in layout.from_ndjson(s3.get_object(Bucket="contract-archive", Key=key)["Body"].read())
    ]
    assert lines == sorted(source, key=lambda e: e["id"])  # listed in key order: by date, then id
    for event in lines:
        events.validate(event)
        assert schemas.schema_uri(f"{event['type']}.json") == event["dataschema"]
