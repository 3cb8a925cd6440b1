"""Network (optional, `vpc.enabled`): private subnets without internet, reaching AWS through endpoints.

Only the functions that call AWS services run here (api, persister, generator, consumers). The
authorizer stays outside: it fetches the issuer's JWKS from the internet, and a NAT gateway
would cost more than the VPC is worth. Endpoints cover what those functions call: SNS,
EventBridge, X-Ray and Secrets Manager (interface: the api reads its cursor secret) and DynamoDB
and S3 (gateway, free: the archive consumer writes to S3, which would otherwise time out).
SQS needs none: Lambda's event source mapping polls the queues outside the VPC.
"""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_aws as aws

from infra.context import AwsContext
from infra.settings import Settings

INTERFACE_SERVICES = ("sns", "events", "xray", "secretsmanager")
GATEWAY_SERVICES = ("dynamodb", "s3")


class Network(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    subnets: list[aws.ec2.Subnet]
    route_table: aws.ec2.RouteTable
    function_sg: aws.ec2.SecurityGroup
    endpoint_sg: aws.ec2.SecurityGroup
    endpoints: dict[str, aws.ec2.VpcEndpoint]

    def __init__(
        self, name: str, settings: Settings, ctx: AwsContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fanout:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        net = settings.network
        prefix = settings.prefix
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=net.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # private DNS names of interface endpoints need both
            tags={"Name": f"{prefix}-vpc"},
            opts=child,
        )
        zones = aws.get_availability_zones_output(state="available")
        blocks = list(ipaddress.ip_network(net.cidr).subnets(prefixlen_diff=2))[: net.az_count]
        self.route_table = aws.ec2.RouteTable(
            f"{name}-private-routes", vpc_id=self.vpc.id, tags={"Name": f"{prefix}-private"}, opts=child
        )
        self.subnets = []
        for i, block in enumerate(blocks):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=self.vpc.id,
                cidr_block=str(block),
                availability_zone=zones.names[i],
                map_public_ip_on_launch=False,
                tags={"Name": f"{prefix}-private-{i}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}-routes", subnet_id=subnet.id, route_table_id=self.route_table.id, opts=child
            )
            self.subnets.append(subnet)
        self.function_sg = aws.ec2.SecurityGroup(
            f"{name}-functions",
            vpc_id=self.vpc.id,
            description="fanout functions: HTTPS out (only endpoints are reachable)",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"], description="HTTPS"
                )
            ],
            opts=child,
        )
        self.endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=self.vpc.id,
            description="fanout interface endpoints: HTTPS from the functions",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    security_groups=[self.function_sg.id],
                    description="HTTPS from functions",
                )
            ],
            opts=child,
        )
        self.endpoints = {}
        for service in INTERFACE_SERVICES:
            self.endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-endpoint-{service}",
                vpc_id=self.vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", ctx.region, ".", service),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in self.subnets],
                security_group_ids=[self.endpoint_sg.id],
                opts=child,
            )
        for service in GATEWAY_SERVICES:
            self.endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-endpoint-{service}",
                vpc_id=self.vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", ctx.region, ".", service),
                vpc_endpoint_type="Gateway",
                route_table_ids=[self.route_table.id],
                opts=child,
            )
        self.register_outputs({"vpc_id": self.vpc.id})

    @property
    def subnet_ids(self) -> pulumi.Output[list[str]]:
        return pulumi.Output.all(*[s.id for s in self.subnets])

    @property
    def security_group_ids(self) -> pulumi.Output[list[str]]:
        return pulumi.Output.all(self.function_sg.id)
