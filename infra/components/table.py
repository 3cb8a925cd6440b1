"""DataTable: the users' items and the API's idempotency records, encrypted with their own key.

On-demand billing (no capacity to guess); point-in-time recovery and deletion protection
where the settings ask (production by default). Idempotency records expire by TTL.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.context import AwsContext
from infra.settings import Settings

# The attribute Powertools' DynamoDBPersistenceLayer writes its expiry to.
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"


class DataTable(pulumi.ComponentResource):
    key: aws.kms.Key
    alias: aws.kms.Alias
    table: aws.dynamodb.Table
    idempotency_table: aws.dynamodb.Table

    def __init__(
        self, name: str, settings: Settings, ctx: AwsContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fanout:aws:DataTable", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topology = settings.topology
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{settings.prefix}: DynamoDB tables",
            enable_key_rotation=True,
            deletion_window_in_days=30 if settings.production else 7,
            tags=settings.tags,
            # DynamoDB uses the key through grants it creates; callers are granted via IAM (root statement).
            policy=policies.document(
                [policies.allow(["kms:*"], ["*"], sid="EnableIamPolicies", principal={"AWS": ctx.root_principal()})]
            ),
            opts=child,
        )
        self.alias = aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/{settings.prefix}-data", target_key_id=self.key.id, opts=child
        )
        encryption = aws.dynamodb.TableServerSideEncryptionArgs(enabled=True, kms_key_arn=self.key.arn)
        recovery = aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=settings.point_in_time_recovery)
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            name=topology.table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            range_key="sk",
            attributes=[
                aws.dynamodb.TableAttributeArgs(name="pk", type="S"),
                aws.dynamodb.TableAttributeArgs(name="sk", type="S"),
            ],
            server_side_encryption=encryption,
            point_in_time_recovery=recovery,
            deletion_protection_enabled=settings.deletion_protection,
            opts=child,
        )
        self.idempotency_table = aws.dynamodb.Table(
            f"{name}-idempotency",
            name=topology.idempotency_table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key="id",
            attributes=[aws.dynamodb.TableAttributeArgs(name="id", type="S")],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=IDEMPOTENCY_TTL_ATTRIBUTE, enabled=True),
            server_side_encryption=encryption,
            # Records live 24 h: losing them costs a possible duplicate, not data, so no PITR needed.
            deletion_protection_enabled=settings.deletion_protection,
            opts=child,
        )
        self.register_outputs({"table_name": self.table.name})

    def key_use(self, ctx: AwsContext) -> policies.Statement:
        """What a role needs of the table key to read and write items (only through DynamoDB)."""
        return policies.allow(
            ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
            [self.key.arn],
            sid="UseTableKeyThroughDynamoDb",
            condition={
                "StringEquals": {"kms:ViaService": pulumi.Output.concat("dynamodb.", ctx.region, ".amazonaws.com")}
            },
        )
