"""Offline plan of this project: run __main__.py under Pulumi mocks and print what it would create.

No account and no Pulumi CLI: the fanout stack's outputs come from fanout-outputs.example.json
(the shape of `pulumi stack output --json` of a fanout stack) through a mocked StackReference.

    python plan.py [--stack dev] [--outputs fanout-outputs.json]
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

HERE = Path(__file__).resolve().parent
ACCOUNT = "999988887777"  # the subscriber's own account, never the fanout stack's
OUTPUTS = HERE / "fanout-outputs.example.json"


@dataclass
class Declared:
    type: str
    name: str
    inputs: dict[str, Any]


@dataclass
class SubscriberMocks(Mocks):
    stack_outputs: dict[str, Any]
    region: str = "eu-west-1"
    resources: list[Declared] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # the stacks read through StackReference

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            self.references.append(args.inputs.get("name", args.name))
            return args.name, {"name": args.name, "outputs": self.stack_outputs, "secretOutputNames": []}
        self.resources.append(Declared(args.typ, args.name, dict(args.inputs)))
        physical = args.inputs.get("name") or f"{args.name}-0000000"
        service = args.typ.split(":")[1].split("/")[0]
        arn = f"arn:aws:{service}:{self.region}:{ACCOUNT}:{physical}"
        state = dict(args.inputs)
        if args.typ == "aws:sqs/queue:Queue":
            state |= {"url": f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{physical}", "name": physical}
        elif args.typ == "aws:kms/key:Key":
            arn = f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{physical}"
        elif args.typ == "aws:iam/role:Role":
            arn = f"arn:aws:iam::{ACCOUNT}:role/{physical}"
        elif args.typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{physical}"
            state["name"] = physical
        elif args.typ == "aws:s3/bucket:Bucket":
            physical = f"{args.inputs.get('bucketPrefix', 'bucket-')}mock"
            arn = f"arn:aws:s3:::{physical}"
            state["bucket"] = physical
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            arn = f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{physical}"
        if args.typ != "aws:cloudwatch/eventTarget:EventTarget":  # a target's `arn` is its destination
            state["arn"] = arn
        return f"{physical}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/mock", "userId": "M", "id": ACCOUNT}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
                "reverseDnsPrefix": "com.amazonaws",
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": self.region, "name": self.region, "id": self.region}, []
        return {}, []


def stack_config(stack: str) -> tuple[str, dict[str, str]]:
    """The project name and Pulumi's config map (namespaced keys, JSON for anything but strings)."""
    project = yaml.safe_load((HERE / "Pulumi.yaml").read_text(encoding="utf-8"))["name"]
    path = HERE / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no stack file {path.name} in {HERE}")
    config = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {}
    return project, {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def run(stack: str = "dev", outputs: Path = OUTPUTS) -> tuple[SubscriberMocks, dict[str, Any]]:
    """Run __main__.py under mocks; returns what it declared and the program's globals (its components)."""
    project, config = stack_config(stack)
    mocks = SubscriberMocks(
        json.loads(outputs.read_text(encoding="utf-8")), region=config.get("aws:region", "eu-west-1")
    )
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(config)
    program: dict[str, Any] = {}

    @pulumi.runtime.test
    def build() -> None:
        program.update(runpy.run_path(str(HERE / "__main__.py"), run_name="__pulumi_main__"))

    build()
    return mocks, program


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python plan.py", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="reads Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--outputs", type=Path, default=OUTPUTS, help="the fanout stack's outputs as JSON")
    args = parser.parse_args(argv)
    try:
        mocks, _ = run(args.stack, args.outputs)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"plan: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    project, _ = stack_config(args.stack)
    lines = [f"{project} stack {args.stack!r}: offline plan (Pulumi mocks; nothing is contacted)", ""]
    keys = ("name", "topic", "protocol", "rawMessageDelivery", "filterPolicy", "handler", "eventPattern", "metricName")
    for res in sorted(mocks.resources, key=lambda r: (r.type, r.name)):
        if res.type.startswith("fanout:"):
            continue
        detail = ", ".join(f"{k}={res.inputs[k]}" for k in keys if res.inputs.get(k) not in (None, "", [], {}))
        lines.append(f"+ {res.type:<48} {res.name}  {detail}".rstrip())
    print("\n".join(lines))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
