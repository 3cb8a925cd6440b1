"""The API's shape, the authorizer's settings, the website and the identity wiring."""

from __future__ import annotations

import json

import pulumi

from infra.components.api import ROUTES, method_path
from infra.components.website import ALL_VIEWER_EXCEPT_HOST_HEADER, CACHING_DISABLED


@pulumi.runtime.test
def test_routes_authorizer_and_fallbacks(any_stack):
    api = any_stack.api
    assert set(api.methods) == {r.key for r in ROUTES}

    def check(args):
        authorizer_id, kind, source, ttl, rows = args
        assert kind == "TOKEN" and source == "method.request.header.Authorization"
        assert ttl == any_stack.settings.topology.auth.cache_ttl_seconds
        by_key = {key: (auth, auth_id, integ_type, uri) for key, auth, auth_id, integ_type, uri in rows}
        for key in ("POST /data", "GET /data", "GET /data/{id}"):
            assert by_key[key][:2] == ("CUSTOM", authorizer_id), key
        for key in ("GET /openapi.json", "ANY /data", "ANY /data/{id}", "ANY /{proxy+}"):
            assert by_key[key][0] == "NONE" and by_key[key][1] is None, key
        uris = {uri for _, _, integ_type, uri in by_key.values()}
        assert {t for _, _, t, _ in by_key.values()} == {"AWS_PROXY"}
        assert len(uris) == 1 and "fanout-" in uris.pop()  # one api function answers every route

    rows = [
        pulumi.Output.all(key, m.authorization, m.authorizer_id, api.integrations[key].type, api.integrations[key].uri)
        for key, m in api.methods.items()
    ]
    return pulumi.Output.all(
        api.authorizer.id,
        api.authorizer.type,
        api.authorizer.identity_source,
        api.authorizer.authorizer_result_ttl_in_seconds,
        pulumi.Output.all(*rows),
    ).apply(check)


@pulumi.runtime.test
def test_gateway_errors_keep_the_message_shape(any_stack):
    responses = any_stack.api.gateway_responses

    def check(rows):
        got = {kind: (status, templates) for kind, status, templates in rows}
        assert got["UNAUTHORIZED"] == ("401", {"application/json": '{"message":"Unauthorized"}'})
        assert got["ACCESS_DENIED"][0] == "403"
        assert got["MISSING_AUTHENTICATION_TOKEN"][0] == "404"
        for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
            assert got[kind][1]["application/json"].startswith('{"message":')
        for kind in ("UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN"):
            assert "message" in json.loads(got[kind][1]["application/json"])

    return pulumi.Output.all(
        *[pulumi.Output.all(kind, r.status_code, r.response_templates) for kind, r in responses.items()]
    ).apply(check)


@pulumi.runtime.test
def test_stage_throttles_traces_and_logs_json(any_stack):
    api = any_stack.api
    settings = any_stack.settings

    def check(args):
        tracing, access, log_arn, rows = args
        assert tracing is True
        assert access["destination_arn"] == log_arn
        assert json.loads(access["format"])["requestId"] == "$context.requestId"
        limits = {path: s for path, s in rows}
        assert limits["*/*"]["throttling_rate_limit"] == settings.throttle.rate_limit
        assert limits["*/*"]["throttling_burst_limit"] == settings.throttle.burst_limit
        for route, throttle in settings.method_throttles.items():
            assert limits[method_path(route)]["throttling_rate_limit"] == throttle.rate_limit
        assert all(s["throttling_rate_limit"] > 0 and s["throttling_burst_limit"] > 0 for s in limits.values())

    return pulumi.Output.all(
        api.stage.xray_tracing_enabled,
        api.stage.access_log_settings,
        api.access_logs.arn,
        pulumi.Output.all(*[pulumi.Output.all(m.method_path, m.settings) for m in api.method_settings.values()]),
    ).apply(check)


def test_per_method_limits_exist_in_the_real_stacks(stack_file):
    assert "POST /data" in stack_file.settings.method_throttles


@pulumi.runtime.test
def test_cdn_serves_the_bucket_and_routes_the_api_uncached_with_authorization(any_stack):
    web = any_stack.website

    def check(args):
        behaviours, default, origins, api_domain, viewer_cert = args
        api_origin = next(o for o in origins if o["origin_id"] == "api")
        assert api_origin["domain_name"] == api_domain
        assert api_origin["origin_path"] == f"/{any_stack.settings.api_stage_name}"
        assert api_origin["custom_origin_config"]["origin_protocol_policy"] == "https-only"
        s3_origin = next(o for o in origins if o["origin_id"] == "web-bucket")
        assert s3_origin["origin_access_control_id"]
        by_path = {b["path_pattern"]: b for b in behaviours}
        assert set(by_path) == {"/data*", "/openapi.json"}
        for b in by_path.values():
            assert b["target_origin_id"] == "api"
            assert b["cache_policy_id"] == CACHING_DISABLED
            assert b["origin_request_policy_id"] == ALL_VIEWER_EXCEPT_HOST_HEADER
            assert b["viewer_protocol_policy"] == "https-only"
            assert {"POST", "GET"} <= set(b["allowed_methods"])
        assert default["viewer_protocol_policy"] == "redirect-to-https"
        assert viewer_cert["cloudfront_default_certificate"] is True

    d = web.distribution
    return pulumi.Output.all(
        d.ordered_cache_behaviors,
        d.default_cache_behavior,
        d.origins,
        any_stack.api.execute_api_domain,
        d.viewer_certificate,
    ).apply(check)


@pulumi.runtime.test
def test_security_headers_and_csp(any_stack):
    web = any_stack.website
    mode = any_stack.identity.mode

    def check(cfg):
        assert cfg["strict_transport_security"]["access_control_max_age_sec"] >= 31536000
        assert cfg["frame_options"]["frame_option"] == "DENY"
        assert cfg["content_type_options"]["override"] is True
        assert cfg["referrer_policy"]["referrer_policy"]
        csp = cfg["content_security_policy"]["content_security_policy"]
        for directive in (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ):
            assert directive in csp, directive
        connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
        if mode == "cognito":
            assert ".amazoncognito.com" in connect and "https://cognito-idp." in connect
        assert "'unsafe-inline'" not in csp and "*" not in connect

    return web.headers_policy.security_headers_config.apply(check)


@pulumi.runtime.test
def test_web_config_and_authorizer_environment_agree(any_stack):
    fns = any_stack.functions
    identity = any_stack.identity
    web = any_stack.website

    def check(args):
        env, content, site = args
        config = json.loads(content)
        assert env["JWT_ALGORITHMS"] == ",".join(any_stack.settings.topology.auth.algorithms)
        if identity.mode == "cognito":
            assert config["mode"] == "oidc" and config["authority"] == env["JWT_ISSUER"]
            assert config["clientId"] == env["JWT_AUDIENCE"]
            assert env["JWKS_URL"] == env["JWT_ISSUER"] + "/.well-known/jwks.json"
            assert env["ROLES_CLAIM"] == "cognito:groups"
            assert config["authorizeUrl"].endswith("/oauth2/authorize")
            assert config["tokenUrl"].endswith("/oauth2/token") and config["redirectPath"] == "/"
            assert config["logoutUrl"].endswith("/logout") and config["apiToken"] == "id_token"
            assert "JWT_SECRET_ARN" not in env
        if identity.mode == "hs256":
            assert env["JWT_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
            assert "JWKS_URL" not in env
        assert site.startswith("https://")

    return pulumi.Output.all(
        fns["authorizer"].function.environment.apply(lambda e: e["variables"]),
        web.config_object.content,
        web.url,
    ).apply(check)


@pulumi.runtime.test
def test_cognito_groups_are_the_roles_and_the_client_calls_back_to_the_site(stack_file):
    identity = stack_file.identity
    assert identity.mode == "cognito"
    assert set(identity.groups) == {"data.read", "data.write"}

    def check(args):
        callbacks, logouts, site, flows, secret, group_names = args
        assert callbacks == [f"{site}/"] and logouts == [f"{site}/"]
        assert flows == ["code"] and secret is False
        assert sorted(group_names) == ["data.read", "data.write"]

    c = identity.client
    return pulumi.Output.all(
        c.callback_urls,
        c.logout_urls,
        stack_file.website.url,
        c.allowed_oauth_flows,
        c.generate_secret,
        pulumi.Output.all(*[g.name for g in identity.groups.values()]),
    ).apply(check)


@pulumi.runtime.test
def test_hs256_secret_lives_in_secrets_manager_only(variant):
    identity = variant.identity
    assert identity.mode == "hs256" and identity.secret is not None

    def check(args):
        secret_arn, env = args
        assert env["JWT_SECRET_ARN"] == secret_arn
        assert "JWT_SECRET" not in env  # never the secret itself in the function's configuration

    return pulumi.Output.all(
        identity.secret.arn, variant.functions["authorizer"].function.environment.apply(lambda e: e["variables"])
    ).apply(check)
