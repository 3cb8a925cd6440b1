"""WebSite: the web app from a private bucket, and the API under the same origin, through CloudFront.

The bucket is reachable only by this distribution (Origin Access Control); `/data*` and
`/openapi.json` go to the API stage uncached with every viewer header but Host (so the
Authorization header arrives), which makes the API same-origin: no CORS. HTTPS only, with
security headers on every answer. No custom error pages: they would replace the API's JSON errors.

TLS: with `fanout:customDomain` the distribution serves those names with their ACM certificate and
accepts TLS 1.2 or later only (security policy TLSv1.2_2021). On the default *.cloudfront.net
certificate CloudFront fixes the policy at TLSv1 and offers no other choice; the doc says so.
With the WAF on, the edge web ACL guards the distribution and requests to the API origin carry
the firewall's secret header, which the stage's web ACL checks.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components.buckets import private_bucket
from infra.paths import WEB
from infra.settings import Settings

# AWS managed policies (fixed ids, the same in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"

API_PATHS = ("/data*", "/openapi.json")
ASYNCAPI_KEY = "asyncapi.json"  # generated per stack (fanout.asyncapi), never a file under web/
# The newest security policy CloudFront offers for custom certificates: TLS 1.2+, modern ciphers.
MINIMUM_TLS = "TLSv1.2_2021"
S3_ORIGIN, API_ORIGIN = "web-bucket", "api"


def content_security_policy(connect_origins: list[str]) -> str:
    connect = " ".join(["'self'", *connect_origins])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )


def web_files(root: Path = WEB) -> list[tuple[str, Path]]:
    """(key, path) of every file to publish, sorted; config.json is generated, never uploaded."""
    if not root.is_dir():
        return []
    files = []
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_file() and key != "config.json" and not any(p.startswith(".") for p in path.parts[-1:]):
            files.append((key, path))
    return files


class WebSite(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    ownership: aws.s3.BucketOwnershipControls
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    origin_access_control: aws.cloudfront.OriginAccessControl
    headers_policy: aws.cloudfront.ResponseHeadersPolicy
    distribution: aws.cloudfront.Distribution
    bucket_policy: aws.s3.BucketPolicy
    objects: dict[str, aws.s3.BucketObjectv2]
    config_object: aws.s3.BucketObjectv2 | None = None
    asyncapi_object: aws.s3.BucketObjectv2 | None = None
    asyncapi_url: pulumi.Output[str] | None = None

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        api_domain: pulumi.Input[str],
        csp_connect_origins: pulumi.Input[list[str]],
        web_acl_arn: pulumi.Input[str] | None = None,
        origin_header: tuple[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fanout:aws:WebSite", name, None, opts)
        self._name = name
        self._domain = settings.custom_domain
        child = pulumi.ResourceOptions(parent=self)
        prefix = settings.prefix
        # SSE-S3: CloudFront's OAC reads it without a key policy; the files are public via the CDN anyway.
        private = private_bucket(
            name, bucket_prefix=f"{prefix}-web-", force_destroy=not settings.production, opts=child
        )
        self.bucket = private.bucket
        self.public_access_block = private.public_access_block
        self.ownership = private.ownership
        self.encryption = private.encryption
        self.origin_access_control = aws.cloudfront.OriginAccessControl(
            f"{name}-oac",
            name=f"{prefix}-web",
            description="CloudFront reads the private web bucket",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=child,
        )
        self.headers_policy = aws.cloudfront.ResponseHeadersPolicy(
            f"{name}-security-headers",
            name=f"{prefix}-security-headers",
            security_headers_config=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigArgs(
                strict_transport_security=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurityArgs(
                    access_control_max_age_sec=63072000, include_subdomains=True, preload=False, override=True
                ),
                content_type_options=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigContentTypeOptionsArgs(
                    override=True
                ),
                frame_options=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigFrameOptionsArgs(
                    frame_option="DENY", override=True
                ),
                referrer_policy=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigReferrerPolicyArgs(
                    referrer_policy="strict-origin-when-cross-origin", override=True
                ),
                content_security_policy=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigContentSecurityPolicyArgs(
                    content_security_policy=pulumi.Output.from_input(csp_connect_origins).apply(
                        content_security_policy
                    ),
                    override=True,
                ),
            ),
            opts=child,
        )
        api_behaviours = [
            aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
                path_pattern=path,
                target_origin_id=API_ORIGIN,
                viewer_protocol_policy="https-only",
                allowed_methods=["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
                cached_methods=["GET", "HEAD"],
                cache_policy_id=CACHING_DISABLED,
                # With caching disabled, this managed policy forwards Authorization too; Host must not
                # be forwarded or API Gateway cannot tell which API is asked.
                origin_request_policy_id=ALL_VIEWER_EXCEPT_HOST_HEADER,
                response_headers_policy_id=self.headers_policy.id,
                compress=True,
            )
            for path in API_PATHS
        ]
        self.distribution = aws.cloudfront.Distribution(
            f"{name}-cdn",
            enabled=True,
            comment=f"{prefix}: web app and API",
            default_root_object="index.html",
            http_version="http2and3",
            is_ipv6_enabled=True,
            price_class=settings.price_class,
            origins=[
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=S3_ORIGIN,
                    domain_name=self.bucket.bucket_regional_domain_name,
                    origin_access_control_id=self.origin_access_control.id,
                ),
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=API_ORIGIN,
                    domain_name=api_domain,
                    origin_path=f"/{settings.api_stage_name}",
                    custom_headers=[
                        aws.cloudfront.DistributionOriginCustomHeaderArgs(name=origin_header[0], value=origin_header[1])
                    ]
                    if origin_header is not None
                    else None,
                    custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                        http_port=80,
                        https_port=443,
                        origin_protocol_policy="https-only",
                        origin_ssl_protocols=["TLSv1.2"],
                    ),
                ),
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=S3_ORIGIN,
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=["GET", "HEAD", "OPTIONS"],
                cached_methods=["GET", "HEAD"],
                cache_policy_id=CACHING_OPTIMIZED,
                response_headers_policy_id=self.headers_policy.id,
                compress=True,
            ),
            ordered_cache_behaviors=api_behaviours,
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
            ),
            aliases=list(self._domain.names) if self._domain else None,
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=self._domain.certificate_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version=MINIMUM_TLS,
            )
            if self._domain
            else aws.cloudfront.DistributionViewerCertificateArgs(cloudfront_default_certificate=True),
            web_acl_id=web_acl_arn,
            opts=child,
        )
        self.bucket_policy = aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=self.bucket.id,
            policy=policies.document(
                [
                    policies.allow(
                        ["s3:GetObject"],
                        [pulumi.Output.concat(self.bucket.arn, "/*")],
                        sid="CloudFrontReadsThroughOac",
                        principal={"Service": "cloudfront.amazonaws.com"},
                        condition={"StringEquals": {"AWS:SourceArn": self.distribution.arn}},
                    ),
                    policies.deny_insecure_transport(
                        "s3:*", [self.bucket.arn, pulumi.Output.concat(self.bucket.arn, "/*")]
                    ),
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
        )
        self.objects = {}
        for key, path in web_files():
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.objects[key] = aws.s3.BucketObjectv2(
                f"{name}-file-{key}",
                bucket=self.bucket.id,
                key=key,
                source=pulumi.FileAsset(str(path)),
                content_type=content_type,
                # index.html must be revalidated so a deploy shows at once; the rest may be cached briefly.
                cache_control="no-cache" if key.endswith(".html") else "public, max-age=300",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ownership]),
            )

    @property
    def url(self) -> pulumi.Output[str]:
        """Where users open the app: the first custom name when there is one (sign-in redirects go there)."""
        if self._domain:
            return pulumi.Output.from_input(f"https://{self._domain.names[0]}")
        return pulumi.Output.concat("https://", self.distribution.domain_name)

    def publish_config(self, config: pulumi.Input[dict]) -> None:
        """config.json, which tells the web app how to sign in; added once the sign-in client exists."""
        self.config_object = aws.s3.BucketObjectv2(
            f"{self._name}-file-config.json",
            bucket=self.bucket.id,
            key="config.json",
            content=pulumi.Output.json_dumps(config),
            content_type="application/json",
            cache_control="no-cache",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ownership]),
        )
        self.register_outputs({"url": self.url})

    def publish_asyncapi(self, document: pulumi.Input[str]) -> pulumi.Output[str]:
        """asyncapi.json next to the web app (the stack's published event contract); returns its URL."""
        self.asyncapi_object = aws.s3.BucketObjectv2(
            f"{self._name}-file-asyncapi.json",
            bucket=self.bucket.id,
            key=ASYNCAPI_KEY,
            content=document,
            content_type="application/json",
            # Revalidated on every read, so a deploy that adds a consumer shows at once.
            cache_control="no-cache",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ownership]),
        )
        self.asyncapi_url = pulumi.Output.concat(self.url, "/", ASYNCAPI_KEY)
        return self.asyncapi_url
