"""Stack config read the same everywhere: unknown `fanout:` keys refused, names that fit AWS's limits."""

from __future__ import annotations

import copy

import pytest

from fanout import topology
from fanout.topology import TopologyError, check_consumer_name, from_config
from infra import mocks, plan
from infra.settings import from_raw


def _dev() -> tuple[dict, str]:
    config, region = mocks.read_stack_file("dev")
    return copy.deepcopy(config), region


# ---------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"consumer": []}, r"fanout:consumer is not a known key \(did you mean fanout:consumers\?\)"),
        ({"alarmEmails": "a@b.io"}, r"fanout:alarmEmails is not a known key \(did you mean fanout:alarmEmail\?\)"),
        ({"generator": {"countPerrun": 3}}, r"fanout:generator\.countPerrun .*fanout:generator\.countPerRun"),
        ({"token": {"audiense": "x"}}, r"fanout:token\.audiense .*fanout:token\.audience"),
        ({"consumers": [{"name": "x", "batchsize": 3}]}, r"batchsize .*batchSize"),
    ],
)
def test_unknown_keys_are_refused_by_both_readers_naming_the_closest_key(raw, message):
    with pytest.raises(TopologyError, match=message):
        from_config("dev", raw)  # make run, the CLI
    with pytest.raises(TopologyError, match=message):
        from_raw("dev", raw)  # the Pulumi program


def test_nested_infra_keys_are_checked_too():
    with pytest.raises(TopologyError, match=r"fanout:vpc\.azcount .*fanout:vpc\.azCount"):
        from_raw("dev", {"vpc": {"azcount": 3}})
    with pytest.raises(TopologyError, match=r"fanout:throttle\.burst .*burstLimit"):
        from_raw("dev", {"throttle": {"burst": 3}})


def test_every_known_key_is_accepted_by_the_local_reader():
    """The local runtime reads the whole stack file: AWS-only keys must not trip it."""
    for name in ("dev", "prd"):
        config, _ = mocks.read_stack_file(name)
        assert set(config) <= set(topology.KNOWN_KEYS)
        from_config(name, config)


def test_stack_file_with_a_typo_is_refused_by_make_run(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  fanout:prefix: fanout-dev\n  fanout:consumer: []\n")
    with pytest.raises(TopologyError, match=r"Pulumi\.dev\.yaml: fanout:consumer is not a known key"):
        topology.load("dev", tmp_path)


def test_pulumi_program_refuses_an_unknown_key_before_declaring_anything():
    config, region = _dev()
    config["consumer"] = [{"name": "typo"}]
    recorded = mocks.AwsMocks()
    with pytest.raises(TopologyError, match="fanout:consumer is not a known key"):
        recorded, _ = plan.run_config("dev", config, region)
    assert recorded.resources == []


# ---------------------------------------------------------------- names and AWS limits


def test_a_prefix_that_overflows_the_bucket_prefix_limit_is_refused():
    check_prefix_ok = "a" * 28  # "-archive-" makes 37, S3's bucket_prefix limit
    from_config("dev", {"prefix": check_prefix_ok})
    with pytest.raises(TopologyError, match=r"fanout:prefix 'a{29}' is too long: .*S3 bucket prefix.* at most 37"):
        from_config("dev", {"prefix": "a" * 29})


def test_consumer_names_are_checked_against_lambda_sqs_and_iam_limits():
    prefix = "p" * 28
    # A queue-only consumer may be longer than one with a function (no Lambda or role name to fit).
    check_consumer_name(prefix, "q" * 38, handler=False)
    # SQS allows 80 characters; 5 stay free for the ".fifo" a FIFO stack appends.
    with pytest.raises(TopologyError, match=r"SQS queue name .*-sub-dlq.* at most 75 fit \(SQS allows 80"):
        check_consumer_name(prefix, "q" * 39, handler=False)
    with pytest.raises(TopologyError, match=r"Lambda function name .* at most 64"):
        check_consumer_name(prefix, "f" * 36)
    with pytest.raises(TopologyError, match=r"IAM role name .* at most 64"):
        check_consumer_name("ab", "r" * 40)
    with pytest.raises(TopologyError, match="letters, digits"):
        check_consumer_name("ab", "bad name")
    with pytest.raises(TopologyError, match=r"fanout:consumers name 'f{36}' is too long"):
        from_config("dev", {"prefix": prefix, "consumers": [{"name": "f" * 36, "handler": "handlers.x:y"}]})


def _longest_name(prefix: str, **kwargs) -> str:
    name = "n"
    while True:
        try:
            check_consumer_name(prefix, name + "n", **kwargs)
        except TopologyError:
            return name
        name += "n"


# What AWS allows per resource type, for every name the program declares (inputs as sent to AWS).
NAME_LIMITS = {
    "aws:lambda/function:Function": ("name", 64),
    "aws:sqs/queue:Queue": ("name", 80),
    "aws:s3/bucket:Bucket": ("bucketPrefix", 37),
    "aws:cloudwatch/logGroup:LogGroup": ("name", 512),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", 255),
    "aws:cloudwatch/eventRule:EventRule": ("name", 64),
    "aws:cloudwatch/eventArchive:EventArchive": ("name", 48),
    "aws:scheduler/schedule:Schedule": ("name", 64),
    "aws:lambda/layerVersion:LayerVersion": ("layerName", 140),
    "aws:kms/alias:Alias": ("name", 256),
    "aws:dynamodb/table:Table": ("name", 255),
    "aws:sns/topic:Topic": ("name", 256),
    "aws:iam/role:Role": ("name", 64),
}


def test_at_the_longest_names_config_allows_every_declared_name_fits():
    prefix = "x" * 28
    config, region = _dev()
    config["prefix"] = prefix
    handler_name = _longest_name(prefix)
    queue_name = _longest_name(prefix, handler=False)
    bus_name = _longest_name(prefix, source="bus")
    config["consumers"] = [
        *config["consumers"],
        {"name": handler_name, "handler": "handlers.persister:handler"},
        {"name": queue_name},
        {
            "name": bus_name[:-1] + "b",
            "source": "bus",
            "eventPattern": {"source": ["fanout.persister"]},
            "handler": "handlers.persister:handler",
        },
    ]
    config["alarms"] = True
    config["alarmEmail"] = "oncall@fanout-team.io"
    config["vpc"] = {"enabled": True}
    recorded, _ = plan.run_config("dev", config, region)

    too_long = []
    for res in recorded.resources:
        if res.type not in NAME_LIMITS:
            continue
        key, limit = NAME_LIMITS[res.type]
        # Without an explicit name Pulumi auto-names: the logical name, "-" and 7 random characters.
        name = res.inputs.get(key) or f"{res.name}-abcdefg"
        if len(name) > limit:
            too_long.append((res.type, name, len(name), limit))
    assert not too_long, too_long
    assert any(handler_name in r.name for r in recorded.resources if r.type == "aws:iam/role:Role")


def test_the_language_hosts_config_is_read_whole(monkeypatch):
    """`pulumi up` passes config as PULUMI_CONFIG: every fanout: key in it is seen, known or not."""
    import json

    import pulumi

    from infra import settings

    pulumi.runtime.set_all_config({})
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"fanout:consumer": "[]", "aws:region": "eu-west-1"}))
    assert settings._namespace_keys() == {"consumer"}
