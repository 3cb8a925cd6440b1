"""EventArchive: the private, encrypted bucket the archive consumer writes every event to as NDJSON.

Built only when a consumer runs `handlers.archive:handler`. Objects are encrypted with the data
key (the same one as the tables: it is the same users' data at rest), with an S3 bucket key so
KMS is called per bucket-key period rather than per object.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components.buckets import private_bucket
from infra.context import AwsContext
from infra.settings import Settings

OBJECT_PREFIX = "events/"  # handlers/core/archive.py writes under it


class EventArchive(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    ownership: aws.s3.BucketOwnershipControls
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    lifecycle: aws.s3.BucketLifecycleConfiguration
    bucket_policy: aws.s3.BucketPolicy

    def __init__(
        self,
        name: str,
        settings: Settings,
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fanout:aws:EventArchive", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._key_arn = key_arn
        # S3 names are global: a generated suffix; the handler learns the name from ARCHIVE_BUCKET.
        private = private_bucket(
            name,
            bucket_prefix=f"{settings.topology.archive_bucket_name}-",
            force_destroy=not settings.production,
            kms_key_arn=key_arn,
            opts=child,
        )
        self.bucket = private.bucket
        self.public_access_block = private.public_access_block
        self.ownership = private.ownership
        self.encryption = private.encryption
        # The archive keeps events as long as the stack's archive retention says (the bus archive too),
        # then S3 deletes them. No transition to Infrequent Access: S3 does not transition objects under
        # 128 KB (S3 user guide, "Transitioning objects using Amazon S3 Lifecycle"), and archive objects
        # are smaller than that.
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id=f"expire-after-{settings.archive_retention_days}-days",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=OBJECT_PREFIX),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=settings.archive_retention_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=child,
        )
        self.bucket_policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=policies.document(
                [
                    policies.deny_insecure_transport(
                        "s3:*", [self.bucket.arn, pulumi.Output.concat(self.bucket.arn, "/*")]
                    )
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
        )
        self.register_outputs({"bucket": self.bucket.bucket})

    def writer_statements(self, ctx: AwsContext) -> list[policies.Statement]:
        """What the archive consumer needs: put objects under events/, encrypting through S3."""
        return [
            policies.allow(
                ["s3:PutObject"], [pulumi.Output.concat(self.bucket.arn, "/", OBJECT_PREFIX, "*")], sid="WriteArchive"
            ),
            # Decrypt as well: S3 calls it for multipart uploads and to use the bucket key it
            # generated (S3 user guide, "Using SSE-KMS": PutObject needs kms:GenerateDataKey and,
            # for multipart uploads, kms:Decrypt), under the same only-through-S3 condition.
            policies.allow(
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [self._key_arn],
                sid="EncryptArchiveThroughS3",
                condition={
                    "StringEquals": {"kms:ViaService": pulumi.Output.concat("s3.", ctx.region, ".amazonaws.com")}
                },
            ),
        ]
