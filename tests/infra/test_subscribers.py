"""What a subscribing team gets from a stack: its outputs and the AsyncAPI document published beside the web app."""

from __future__ import annotations

import fnmatch
import json

import pulumi

from infra.stack import subscriber_outputs
from tests.support.asyncapi_spec import errors

# Contract §8: the outputs a subscriber's project reads through a StackReference.
CONTRACT_OUTPUTS = {"topic_arn", "event_bus_name", "event_bus_arn", "asyncapi_url", "region"}


@pulumi.runtime.test
def test_the_stack_outputs_what_a_subscriber_needs(builds):
    checks = []
    for name, (_, stack) in builds.items():
        outputs = subscriber_outputs(stack)
        assert set(outputs) >= CONTRACT_OUTPUTS
        checks.append(
            pulumi.Output.all(
                name,
                pulumi.Output.all(**outputs),
                stack.topic.topic.arn,
                stack.bus.bus.arn,
                stack.bus.bus.name,
                stack.website.url,
            )
        )

    def check(rows):
        for name, out, topic_arn, bus_arn, bus_name, web_url in rows:
            assert out["topic_arn"] == topic_arn and out["event_bus_arn"] == bus_arn
            assert out["event_bus_name"] == bus_name
            assert out["asyncapi_url"] == f"{web_url}/asyncapi.json"
            assert out["region"] == ("us-east-2" if name == "variant" else "eu-west-1")
            assert out["event_types"] == ["fanout.data.generated.v1", "fanout.data.persisted.v1"]
            secretish = [k for k in out if any(w in k for w in ("secret", "token", "password"))]
            assert not secretish

    return pulumi.Output.all(*checks).apply(check)


@pulumi.runtime.test
def test_each_stack_publishes_its_asyncapi_document_next_to_the_web_app(any_stack):
    web = any_stack.website
    assert web.asyncapi_object is not None
    topology = any_stack.settings.topology

    def check(args):
        key, ctype, bucket, web_bucket, content, topic_arn, bus_arn = args
        assert key == "asyncapi.json" and ctype == "application/json" and bucket == web_bucket
        doc = json.loads(content)
        assert errors(doc) == []
        assert doc["channels"]["topic"]["x-arn"] == topic_arn
        assert doc["channels"]["bus"]["x-eventbridge"]["busArn"] == bus_arn
        receive = {n for n, op in doc["operations"].items() if op["action"] == "receive"}
        assert receive == {c.name for c in topology.consumers}

    o = web.asyncapi_object
    return pulumi.Output.all(
        o.key, o.content_type, o.bucket, web.bucket.id, o.content, any_stack.topic.topic.arn, any_stack.bus.bus.arn
    ).apply(check)


@pulumi.runtime.test
def test_the_document_is_served_from_the_bucket_not_the_api(any_stack):
    def check(behaviours):
        for b in behaviours or []:
            assert not fnmatch.fnmatch("/asyncapi.json", b["path_pattern"]), b["path_pattern"]

    return any_stack.website.distribution.ordered_cache_behaviors.apply(check)
