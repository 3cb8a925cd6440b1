"""Where the stack runs (account, partition, region), asked of AWS once instead of hard-coded."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AwsContext:
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    region: pulumi.Output[str]
    dns_suffix: pulumi.Output[str]

    def root_principal(self) -> pulumi.Output[str]:
        return pulumi.Output.concat("arn:", self.partition, ":iam::", self.account_id, ":root")

    def arn(self, service: str, resource: str, *, regional: bool = True) -> pulumi.Output[str]:
        region = self.region if regional else ""
        return pulumi.Output.concat(
            "arn:", self.partition, ":", service, ":", region, ":", self.account_id, ":", resource
        )


def current() -> AwsContext:
    identity = aws.get_caller_identity_output()
    partition = aws.get_partition_output()
    region = aws.get_region_output()
    return AwsContext(
        account_id=identity.account_id,
        partition=partition.partition,
        region=region.region,
        dns_suffix=partition.dns_suffix,
    )
