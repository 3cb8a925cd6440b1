"""The settings every fanout bucket shares: no public access, owner-enforced objects, encryption at rest."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class PrivateBucket:
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    ownership: aws.s3.BucketOwnershipControls
    encryption: aws.s3.BucketServerSideEncryptionConfiguration


def private_bucket(
    name: str,
    *,
    bucket_prefix: str,
    force_destroy: bool,
    opts: pulumi.ResourceOptions,
    kms_key_arn: pulumi.Input[str] | None = None,
) -> PrivateBucket:
    """A private bucket: SSE-KMS with a bucket key when a key is given, SSE-S3 otherwise."""
    bucket = aws.s3.Bucket(f"{name}-bucket", bucket_prefix=bucket_prefix, force_destroy=force_destroy, opts=opts)
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-private",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=opts,
    )
    by_default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs
    default = (
        by_default(sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn)
        if kms_key_arn is not None
        else by_default(sse_algorithm="AES256")
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=default,
                # A bucket key makes KMS calls per bucket-key period, not per object.
                bucket_key_enabled=kms_key_arn is not None,
            )
        ],
        opts=opts,
    )
    return PrivateBucket(bucket, public_access_block, ownership, encryption)
