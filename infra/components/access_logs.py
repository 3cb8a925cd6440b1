"""CdnAccessLogs: CloudFront access logs (standard logging v2) in a private bucket.

Standard logging v2 goes through CloudWatch Logs' vended-log delivery (a delivery source for the
distribution, a destination for the bucket, a delivery joining them), which writes as the
`delivery.logs.amazonaws.com` service under a bucket policy. The legacy standard logs would need
ACLs enabled on the bucket (CloudFront writes them with an ACL grant); this bucket keeps
ObjectOwnership BucketOwnerEnforced, so ACLs stay off like on every fanout bucket. CloudFront is
global and its delivery source must be created in us-east-1, with the destination and delivery
in the same region; the bucket itself stays in the stack's region. Logs expire after
`fanout:logRetentionDays`.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components.buckets import private_bucket
from infra.components.firewall import EDGE_REGION
from infra.context import AwsContext
from infra.settings import Settings

# The standard log fields (the same names in v2 and legacy logging) minus two: cs-uri-query (the
# sign-in redirect carries the OIDC authorization code and state there) and cs(Cookie).
RECORD_FIELDS = (
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
)


class CdnAccessLogs(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    ownership: aws.s3.BucketOwnershipControls
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    lifecycle: aws.s3.BucketLifecycleConfiguration
    bucket_policy: aws.s3.BucketPolicy
    source: aws.cloudwatch.LogDeliverySource
    destination: aws.cloudwatch.LogDeliveryDestination
    delivery: aws.cloudwatch.LogDelivery

    def __init__(
        self,
        name: str,
        settings: Settings,
        ctx: AwsContext,
        distribution: aws.cloudfront.Distribution,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fanout:aws:CdnAccessLogs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = settings.prefix
        # SSE-S3: log delivery writes it without a key policy. The logs hold client IPs and paths, never
        # tokens: Authorization is not a log field, and the query string is left out (RECORD_FIELDS).
        private = private_bucket(
            name, bucket_prefix=f"{prefix}-cdnlog-", force_destroy=not settings.production, opts=child
        )
        self.bucket = private.bucket
        self.public_access_block = private.public_access_block
        self.ownership = private.ownership
        self.encryption = private.encryption
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-expiry",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=settings.log_retention_days),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=child,
        )
        # Only this account's log deliveries from us-east-1 (where CloudFront's source lives) may write.
        delivery_sources = pulumi.Output.concat(
            "arn:", ctx.partition, ":logs:", EDGE_REGION, ":", ctx.account_id, ":delivery-source:*"
        )
        from_this_account = {"StringEquals": {"aws:SourceAccount": ctx.account_id}}
        self.bucket_policy = aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=self.bucket.id,
            policy=policies.document(
                [
                    policies.allow(
                        ["s3:PutObject"],
                        [pulumi.Output.concat(self.bucket.arn, "/*")],
                        sid="AWSLogDeliveryWrite",
                        principal={"Service": "delivery.logs.amazonaws.com"},
                        condition={
                            "StringEquals": {
                                "aws:SourceAccount": ctx.account_id,
                                "s3:x-amz-acl": "bucket-owner-full-control",
                            },
                            "ArnLike": {"aws:SourceArn": delivery_sources},
                        },
                    ),
                    policies.allow(
                        ["s3:GetBucketAcl", "s3:ListBucket"],
                        [self.bucket.arn],
                        sid="AWSLogDeliveryAclCheck",
                        principal={"Service": "delivery.logs.amazonaws.com"},
                        condition={**from_this_account, "ArnLike": {"aws:SourceArn": delivery_sources}},
                    ),
                    policies.deny_insecure_transport(
                        "s3:*", [self.bucket.arn, pulumi.Output.concat(self.bucket.arn, "/*")]
                    ),
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
        )
        self.source = aws.cloudwatch.LogDeliverySource(
            f"{name}-source",
            name=f"{prefix}-cdn-access",
            log_type="ACCESS_LOGS",
            resource_arn=distribution.arn,
            region=EDGE_REGION,
            opts=child,
        )
        self.destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-destination",
            name=f"{prefix}-cdn-access-s3",
            output_format="json",
            delivery_destination_configuration=aws.cloudwatch.LogDeliveryDestinationDeliveryDestinationConfigurationArgs(
                destination_resource_arn=self.bucket.arn
            ),
            region=EDGE_REGION,
            opts=child,
        )
        self.delivery = aws.cloudwatch.LogDelivery(
            f"{name}-delivery",
            delivery_source_name=self.source.name,
            delivery_destination_arn=self.destination.arn,
            record_fields=list(RECORD_FIELDS),
            region=EDGE_REGION,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket_policy]),
        )
        self.register_outputs({"bucket": self.bucket.bucket})
