"""DataApi: the REST API in front of the api function, guarded by the TOKEN authorizer.

POST /data, GET /data and GET /data/{id} need a token; GET /openapi.json does not. An ANY method
without authorizer on /data, /data/{id} and /{proxy+} sends every other request to the api
function (API Gateway prefers the specific method), which answers 405 or 404 as the contract says.
The body limit (64 KiB, 413) and body validation stay in the handler, the one place that answers
the same way locally and on AWS; API Gateway validates the path parameters it can.

Built in two steps: the REST API first (the website's CDN and the sign-in client need its id),
then `connect()` adds the authorizer, methods, deployment and stage once the functions exist.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components.function import LambdaFunction
from infra.context import AwsContext
from infra.settings import Settings


@dataclass(frozen=True)
class Route:
    path: str  # as API Gateway writes it, e.g. "/data/{id}"
    method: str
    authorized: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = (
    Route("/data", "POST", True),
    Route("/data", "GET", True),
    Route("/data/{id}", "GET", True),
    Route("/openapi.json", "GET", False),
    Route("/data", "ANY", False),
    Route("/data/{id}", "ANY", False),
    Route("/{proxy+}", "ANY", False),
)

# Gateway-made errors keep the API's {"message": ...} shape. $context.error.messageString is
# already a quoted JSON string.
GATEWAY_RESPONSES = {
    "UNAUTHORIZED": (401, '{"message":"Unauthorized"}'),
    "ACCESS_DENIED": (403, '{"message":"Forbidden: this token lacks the role this request needs"}'),
    "MISSING_AUTHENTICATION_TOKEN": (404, '{"message":"no route for this path"}'),
    "DEFAULT_4XX": (None, '{"message":$context.error.messageString}'),
    "DEFAULT_5XX": (None, '{"message":$context.error.messageString}'),
}

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "path": "$context.path",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integration.latency",
        "principalId": "$context.authorizer.principalId",
        "authorizerError": "$context.authorizer.error",
        "error": "$context.error.message",
        "xrayTraceId": "$context.xrayTraceId",
    },
    separators=(",", ":"),
)


def method_path(route_key: str) -> str:
    """'GET /data/{id}' -> '~1data~1{id}/GET', the key of a stage's method settings.

    API Gateway keys method settings by the resource path with every "/" escaped as "~1" (a JSON
    Pointer token, API Gateway API reference, PatchOperation.path), the leading one included: it is
    what `get-stage` returns as the key, and what the provider compares on refresh, so any other
    form either misses the method or is re-created on every `up` (terraform-provider-aws#9738).
    """
    method, path = route_key.split(" ", 1)
    return f"{path.replace('/', '~1')}/{method}"


class DataApi(pulumi.ComponentResource):
    rest_api: aws.apigateway.RestApi
    resources: dict[str, aws.apigateway.Resource]
    gateway_responses: dict[str, aws.apigateway.Response]
    validator: aws.apigateway.RequestValidator
    access_logs: aws.cloudwatch.LogGroup
    account: aws.apigateway.Account | None = None
    cloudwatch_role: aws.iam.Role | None = None
    authorizer: aws.apigateway.Authorizer
    methods: dict[str, aws.apigateway.Method]
    integrations: dict[str, aws.apigateway.Integration]
    permissions: list[aws.lambda_.Permission]
    deployment_inputs: pulumi.Output[dict]
    deployment: aws.apigateway.Deployment
    stage: aws.apigateway.Stage
    method_settings: dict[str, aws.apigateway.MethodSettings]

    def __init__(
        self, name: str, settings: Settings, ctx: AwsContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fanout:aws:DataApi", name, None, opts)
        self._name = name
        self._settings = settings
        self._ctx = ctx
        child = pulumi.ResourceOptions(parent=self)
        self.rest_api = aws.apigateway.RestApi(
            f"{name}-rest-api",
            name=f"{settings.prefix}-api",
            description="fanout data API",
            # Regional: CloudFront is the edge, an edge-optimised API would add a second one.
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            opts=child,
        )
        root = self.rest_api.root_resource_id
        data = aws.apigateway.Resource(
            f"{name}-res-data", rest_api=self.rest_api.id, parent_id=root, path_part="data", opts=child
        )
        self.resources = {
            "/data": data,
            "/data/{id}": aws.apigateway.Resource(
                f"{name}-res-data-id", rest_api=self.rest_api.id, parent_id=data.id, path_part="{id}", opts=child
            ),
            "/openapi.json": aws.apigateway.Resource(
                f"{name}-res-openapi", rest_api=self.rest_api.id, parent_id=root, path_part="openapi.json", opts=child
            ),
            "/{proxy+}": aws.apigateway.Resource(
                f"{name}-res-proxy", rest_api=self.rest_api.id, parent_id=root, path_part="{proxy+}", opts=child
            ),
        }
        self.gateway_responses = {}
        for kind, (status, template) in GATEWAY_RESPONSES.items():
            self.gateway_responses[kind] = aws.apigateway.Response(
                f"{name}-gw-{kind.lower().replace('_', '-')}",
                rest_api_id=self.rest_api.id,
                response_type=kind,
                status_code=str(status) if status else None,
                response_templates={"application/json": template},
                opts=child,
            )
        self.validator = aws.apigateway.RequestValidator(
            f"{name}-validate-params",
            rest_api=self.rest_api.id,
            name="parameters",
            validate_request_parameters=True,
            validate_request_body=False,
            opts=child,
        )
        self.access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{settings.prefix}-api/access",
            retention_in_days=settings.log_retention_days,
            opts=child,
        )
        if settings.manage_api_gateway_account:
            # Access logs need the account-wide CloudWatch role of API Gateway (one per account and
            # region, shared by every API and stack there). pulumi-aws 7 resets that setting when the
            # Account resource is deleted (terraform-provider-aws#42226 removed reset_on_delete), so
            # `pulumi destroy --stack dev` would strip the logging role prd relies on. Both the setting
            # and its role are therefore retained on delete: destroying a stack leaves them in place
            # (docs/deploy.md says how to remove them once no stack needs them). Stacks that share an
            # account can also leave it to one of them with manageApiGatewayAccount: false.
            retained = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
            self.cloudwatch_role = aws.iam.Role(
                f"{name}-cloudwatch-role",
                # No aws:SourceAccount condition: API Gateway does not send it when it assumes the
                # account's CloudWatch role, and AWS's own trust policy for this role has none
                # (API Gateway developer guide, set-up-logging.html#set-up-access-logging-permissions;
                # the aws.apigateway.Account example in the Pulumi registry is the same); a condition
                # that never matches fails the Account resource and the first `pulumi up`.
                assume_role_policy=policies.assume_role("apigateway.amazonaws.com"),
                path=settings.role_path,
                description="API Gateway: write access logs to CloudWatch Logs (account setting)",
                opts=retained,
            )
            attachment = aws.iam.RolePolicyAttachment(
                f"{name}-cloudwatch-role-policy",
                role=self.cloudwatch_role.name,
                policy_arn=pulumi.Output.concat(
                    "arn:", ctx.partition, ":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                ),
                opts=retained,
            )
            self.account = aws.apigateway.Account(
                f"{name}-account",
                cloudwatch_role_arn=self.cloudwatch_role.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment], retain_on_delete=True),
            )

    @property
    def execute_api_domain(self) -> pulumi.Output[str]:
        return pulumi.Output.concat(self.rest_api.id, ".execute-api.", self._ctx.region, ".amazonaws.com")

    @property
    def invoke_url(self) -> pulumi.Output[str]:
        return pulumi.Output.concat("https://", self.execute_api_domain, "/", self._settings.api_stage_name)

    def connect(self, authorizer_fn: LambdaFunction, api_fn: LambdaFunction) -> None:
        name, settings = self._name, self._settings
        child = pulumi.ResourceOptions(parent=self)
        rest_api = self.rest_api

        self.authorizer = aws.apigateway.Authorizer(
            f"{name}-authorizer",
            name=f"{settings.prefix}-jwt",
            rest_api=rest_api.id,
            type="TOKEN",
            authorizer_uri=authorizer_fn.function.invoke_arn,
            identity_source="method.request.header.Authorization",
            # A header that is not "Bearer <jwt>" gets 401 without invoking (or paying for) the function.
            identity_validation_expression=r"^[Bb]earer [-0-9A-Za-z_=]+\.[-0-9A-Za-z_=]+\.[-0-9A-Za-z_=+/]*$",
            authorizer_result_ttl_in_seconds=settings.topology.auth.cache_ttl_seconds,
            opts=child,
        )
        self.permissions = [
            aws.lambda_.Permission(
                f"{name}-invoke-authorizer",
                action="lambda:InvokeFunction",
                function=authorizer_fn.function.name,
                principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.concat(rest_api.execution_arn, "/authorizers/", self.authorizer.id),
                opts=child,
            ),
            aws.lambda_.Permission(
                f"{name}-invoke-api",
                action="lambda:InvokeFunction",
                function=api_fn.function.name,
                principal="apigateway.amazonaws.com",
                # Any stage, method and path of this API only.
                source_arn=pulumi.Output.concat(rest_api.execution_arn, "/*/*"),
                opts=child,
            ),
        ]
        self.methods, self.integrations = {}, {}
        for route in ROUTES:
            slug = route.key.lower().replace(" /", "-").replace("/", "-").replace("{", "").replace("}", "")
            slug = slug.replace("+", "").replace(".", "-")
            params = {}
            if "{id}" in route.path:
                params["method.request.path.id"] = True
            if "{proxy+}" in route.path:
                params["method.request.path.proxy"] = True
            if route.authorized:
                params["method.request.header.Authorization"] = True
            method = aws.apigateway.Method(
                f"{name}-method-{slug}",
                rest_api=rest_api.id,
                resource_id=self.resources[route.path].id,
                http_method=route.method,
                authorization="CUSTOM" if route.authorized else "NONE",
                authorizer_id=self.authorizer.id if route.authorized else None,
                request_parameters=params or None,
                request_validator_id=self.validator.id if params else None,
                opts=child,
            )
            self.methods[route.key] = method
            self.integrations[route.key] = aws.apigateway.Integration(
                f"{name}-integration-{slug}",
                rest_api=rest_api.id,
                resource_id=self.resources[route.path].id,
                http_method=method.http_method,
                type="AWS_PROXY",
                integration_http_method="POST",
                uri=api_fn.function.invoke_arn,
                opts=child,
            )
        # A REST API serves a snapshot: API Gateway freezes resources, methods (authorization,
        # authorizer, request parameters, validator), integrations (type, URI), authorizers and
        # gateway responses into a deployment, so a new one is needed whenever any of them changes.
        # The hash is taken over those resources' own properties, so nothing can be left out.
        # Stage settings (method settings: throttling, metrics; access logs; tracing) are not part
        # of a deployment: UpdateStage applies them to the live stage without redeploying.
        self.deployment_inputs = pulumi.Output.all(
            resources={p: pulumi.Output.all(r.path_part, r.parent_id) for p, r in self.resources.items()},
            authorizer=pulumi.Output.all(
                self.authorizer.type,
                self.authorizer.authorizer_uri,
                self.authorizer.identity_source,
                self.authorizer.identity_validation_expression,
                self.authorizer.authorizer_result_ttl_in_seconds,
            ),
            methods={
                key: pulumi.Output.all(
                    m.http_method,
                    m.authorization,
                    m.authorizer_id,
                    m.request_parameters,
                    m.request_validator_id,
                    m.request_models,
                    m.api_key_required,
                )
                for key, m in self.methods.items()
            },
            integrations={
                key: pulumi.Output.all(
                    i.type,
                    i.uri,
                    i.integration_http_method,
                    i.request_parameters,
                    i.request_templates,
                    i.timeout_milliseconds,
                )
                for key, i in self.integrations.items()
            },
            responses={
                kind: pulumi.Output.all(r.status_code, r.response_templates, r.response_parameters)
                for kind, r in self.gateway_responses.items()
            },
            validator=pulumi.Output.all(
                self.validator.validate_request_parameters, self.validator.validate_request_body
            ),
        )
        self.deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=rest_api.id,
            triggers=self.deployment_inputs.apply(
                lambda frozen: {
                    "snapshot": hashlib.sha256(json.dumps(frozen, sort_keys=True, default=str).encode()).hexdigest()
                }
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*self.methods.values(), *self.integrations.values(), *self.gateway_responses.values()],
            ),
        )
        self.stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=rest_api.id,
            deployment=self.deployment.id,
            stage_name=settings.api_stage_name,
            xray_tracing_enabled=True,
            access_log_settings=aws.apigateway.StageAccessLogSettingsArgs(
                destination_arn=self.access_logs.arn, format=ACCESS_LOG_FORMAT
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.account] if self.account else None),
        )
        limits = {"*/*": settings.throttle} | {method_path(k): v for k, v in settings.method_throttles.items()}
        self.method_settings = {}
        for path, throttle in limits.items():
            readable = "all" if path == "*/*" else path.replace("~1", "/").strip("/")
            slug = readable.replace("/", "-").replace("{", "").replace("}", "").replace(".", "-")
            self.method_settings[path] = aws.apigateway.MethodSettings(
                f"{name}-settings-{slug.lower()}",
                rest_api=rest_api.id,
                stage_name=self.stage.stage_name,
                method_path=path,
                settings=aws.apigateway.MethodSettingsSettingsArgs(
                    # API-wide metrics (Count, 5XXError, Latency) come free; per-method ones cost per metric.
                    metrics_enabled=False,
                    throttling_rate_limit=throttle.rate_limit,
                    throttling_burst_limit=throttle.burst_limit,
                ),
                opts=child,
            )
        self.register_outputs({"url": self.invoke_url})
