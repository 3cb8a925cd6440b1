"""Identity: who signs the tokens the authorizer trusts.

- cognito: the stack creates a user pool with groups `data.read` and `data.write`; Cognito puts a
  user's groups in the `cognito:groups` claim, so that is the roles claim the authorizer reads.
  The web app signs in through the hosted UI (authorization code + PKCE) and sends the ID token,
  whose `aud` is the app client: the audience the authorizer checks.
- external: trust an issuer from config (`token.issuer`, `token.jwksUrl`, `token.audience`).
- hs256 (development stacks only): a random shared secret kept in Secrets Manager, never in config.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from fanout.topology import Auth
from infra.context import AwsContext
from infra.settings import Settings

ROLES = ("data.read", "data.write")
COGNITO_ROLES_CLAIM = "cognito:groups"


@dataclass(frozen=True)
class TokenSettings:
    """What the authorizer is told (its JWT_* environment)."""

    algorithms: str
    jwks_url: pulumi.Input[str] | None
    issuer: pulumi.Input[str] | None
    audience: pulumi.Input[str] | None
    roles_claim: str
    secret_arn: pulumi.Input[str] | None = None


class Identity(pulumi.ComponentResource):
    mode: str
    user_pool: aws.cognito.UserPool | None = None
    domain: aws.cognito.UserPoolDomain | None = None
    groups: dict[str, aws.cognito.UserGroup]
    client: aws.cognito.UserPoolClient | None = None
    secret: aws.secretsmanager.Secret | None = None
    secret_version: aws.secretsmanager.SecretVersion | None = None
    issuer: pulumi.Output[str] | None = None
    hosted_ui: pulumi.Output[str] | None = None

    def __init__(
        self, name: str, settings: Settings, ctx: AwsContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fanout:aws:Identity", name, None, opts)
        self._name = name
        self._settings = settings
        self.mode = settings.identity.mode
        self.groups = {}
        auth: Auth = settings.topology.auth
        child = pulumi.ResourceOptions(parent=self)

        if self.mode == "cognito":
            ident = settings.identity
            threats = ident.threat_protection.upper()
            self.user_pool = aws.cognito.UserPool(
                f"{name}-pool",
                name=f"{settings.prefix}-users",
                username_attributes=["email"],
                auto_verified_attributes=["email"],
                # Users are invited, not self-registered: a role is a grant, not a sign-up.
                admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(
                    allow_admin_create_user_only=True
                ),
                password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                    minimum_length=12,
                    require_lowercase=True,
                    require_numbers=True,
                    require_symbols=False,
                    require_uppercase=True,
                    temporary_password_validity_days=3,
                ),
                # TOTP (an authenticator app) for every user who sets it up, or for all (identity.mfa: required).
                # No SMS factor: it needs an SNS role and spending limits, and is the weaker one.
                mfa_configuration="ON" if ident.mfa == "required" else "OPTIONAL",
                software_token_mfa_configuration=aws.cognito.UserPoolSoftwareTokenMfaConfigurationArgs(enabled=True),
                # Threat protection (compromised credentials, adaptive authentication) needs the Plus plan,
                # billed per monthly active user: off unless identity.threatProtection says audit or enforced.
                user_pool_tier="PLUS" if threats != "OFF" else None,
                user_pool_add_ons=aws.cognito.UserPoolUserPoolAddOnsArgs(advanced_security_mode=threats)
                if threats != "OFF"
                else None,
                deletion_protection="ACTIVE" if settings.deletion_protection else "INACTIVE",
                opts=child,
            )
            for role in ROLES:
                self.groups[role] = aws.cognito.UserGroup(
                    f"{name}-group-{role.replace('.', '-')}",
                    name=role,
                    user_pool_id=self.user_pool.id,
                    description=f"members' tokens carry {role} in {COGNITO_ROLES_CLAIM}",
                    opts=child,
                )
            # Hosted UI domain prefixes are global per region: a random suffix avoids someone else's.
            if settings.identity.domain_prefix:
                domain_prefix: pulumi.Input[str] = settings.identity.domain_prefix
            else:
                suffix = random.RandomString(f"{name}-domain-suffix", length=8, special=False, upper=False, opts=child)
                domain_prefix = pulumi.Output.concat(settings.prefix, "-", suffix.result)
            self.domain = aws.cognito.UserPoolDomain(
                f"{name}-domain", domain=domain_prefix, user_pool_id=self.user_pool.id, opts=child
            )
            self.issuer = pulumi.Output.concat("https://cognito-idp.", ctx.region, ".amazonaws.com/", self.user_pool.id)
            self.hosted_ui = pulumi.Output.concat(
                "https://", self.domain.domain, ".auth.", ctx.region, ".amazoncognito.com"
            )
        elif self.mode == "external":
            self.issuer = pulumi.Output.from_input(auth.issuer or "")
        else:
            password = random.RandomPassword(f"{name}-hs256", length=48, special=False, opts=child)
            self.secret = aws.secretsmanager.Secret(
                f"{name}-hs256-secret",
                name_prefix=f"{settings.prefix}-jwt-hs256-",
                description="fanout development stack: HS256 JWT signing secret (not for production)",
                recovery_window_in_days=0,
                opts=child,
            )
            self.secret_version = aws.secretsmanager.SecretVersion(
                f"{name}-hs256-secret-value", secret_id=self.secret.id, secret_string=password.result, opts=child
            )
        self.register_outputs({})

    def web_client(self, site_url: pulumi.Input[str]) -> None:
        """The web app's public client; needs the site URL, so it is added once the site exists."""
        if self.user_pool is None:
            return
        self.client = aws.cognito.UserPoolClient(
            f"{self._name}-web-client",
            name=f"{self._settings.prefix}-web",
            user_pool_id=self.user_pool.id,
            generate_secret=False,  # a browser cannot keep a secret: authorization code with PKCE
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=["code"],
            allowed_oauth_scopes=list(self._settings.identity.scopes),
            supported_identity_providers=["COGNITO"],
            callback_urls=[pulumi.Output.concat(site_url, "/")],
            logout_urls=[pulumi.Output.concat(site_url, "/")],
            # ADMIN_USER_PASSWORD_AUTH needs AWS credentials, never reachable from a browser: the
            # post-deploy smoke test uses it to get a token for a throwaway user.
            explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            id_token_validity=60,
            access_token_validity=60,
            refresh_token_validity=12,
            token_validity_units=aws.cognito.UserPoolClientTokenValidityUnitsArgs(
                id_token="minutes", access_token="minutes", refresh_token="hours"
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def token_settings(self) -> TokenSettings:
        auth = self._settings.topology.auth
        algorithms = ",".join(auth.algorithms)
        if self.mode == "cognito":
            assert self.issuer is not None and self.client is not None, "call web_client() first"
            return TokenSettings(
                algorithms=algorithms,
                jwks_url=pulumi.Output.concat(self.issuer, "/.well-known/jwks.json"),
                issuer=self.issuer,
                audience=self.client.id,
                roles_claim=COGNITO_ROLES_CLAIM,
            )
        if self.mode == "external":
            return TokenSettings(algorithms, auth.jwks_url, auth.issuer, auth.audience, auth.roles_claim)
        assert self.secret is not None
        return TokenSettings(algorithms, None, auth.issuer, auth.audience, auth.roles_claim, self.secret.arn)

    def web_config(self) -> pulumi.Output[dict]:
        """The web app's config.json: how to sign in."""
        ident = self._settings.identity
        scopes = list(ident.scopes)
        if self.mode == "cognito":
            assert self.client is not None and self.hosted_ui is not None
            ui = self.hosted_ui
            return pulumi.Output.all(self.issuer, self.client.id, ui).apply(
                lambda a: {
                    "mode": "oidc",
                    "authority": a[0],
                    "clientId": a[1],
                    "authorizeUrl": f"{a[2]}/oauth2/authorize",
                    "tokenUrl": f"{a[2]}/oauth2/token",
                    "logoutUrl": f"{a[2]}/logout",
                    "scopes": scopes,
                    "redirectPath": "/",
                    # Which token the web app sends to the API: Cognito access tokens carry no `aud`,
                    # the ID token's `aud` is this client, the audience the authorizer checks.
                    "apiToken": "id_token",
                }
            )
        if self.mode == "external":
            auth = self._settings.topology.auth
            return pulumi.Output.from_input(
                {
                    "mode": "oidc",
                    "authority": auth.issuer,
                    "clientId": ident.client_id,
                    "authorizeUrl": ident.authorize_url,
                    "tokenUrl": ident.token_url,
                    "logoutUrl": ident.logout_url,
                    "scopes": scopes,
                    "redirectPath": "/",
                    "apiToken": ident.api_token,
                }
            )
        # hs256: there is no sign-in page to point at; the web app reports the mode as unsupported and the
        # API is used with tokens minted from the secret in Secrets Manager (`fanout token` with FANOUT_JWT_SECRET).
        return pulumi.Output.from_input({"mode": "manual"})

    def csp_origins(self) -> pulumi.Output[list[str]]:
        """Origins the browser must reach to sign in (CSP connect-src)."""
        if self.mode == "cognito":
            assert self.hosted_ui is not None
            return pulumi.Output.all(self.hosted_ui, self.issuer).apply(lambda a: [a[0], a[1].rsplit("/", 1)[0]])
        origins = []
        for url in (self._settings.topology.auth.issuer, self._settings.identity.token_url):
            if url and url.startswith("https://"):
                origins.append("https://" + url.removeprefix("https://").split("/", 1)[0])
        return pulumi.Output.from_input(sorted(set(origins)))
