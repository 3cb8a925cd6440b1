"""The OIDC mode (as on AWS): Authorization Code with PKCE against a fake identity provider.

Playwright answers /config.json with an oidc configuration and plays the provider's
authorize, token and logout endpoints. The access token it hands out is one the local API
accepts, so the app runs against the real stack once signed in. The token endpoint sits on
the page's own origin here because the local CSP allows connect-src 'self' only (on AWS the
CSP must name the provider's token origin).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from playwright.sync_api import Route, expect

from tests.browser.conftest import App
from tests.support.stack import Stack

pytestmark = pytest.mark.browser

IDP = "http://idp.test"
CLIENT_ID = "fanout-web"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FakeProvider:
    def __init__(self, stack: Stack, user: str, *, refuse: bool = False) -> None:
        self.stack, self.user, self.refuse = stack, user, refuse
        self.authorize: dict[str, str] = {}
        self.token_form: dict[str, str] = {}
        self.logout: dict[str, str] = {}
        self.token_url = f"{stack.api_url}/_fake_idp/token"

    def config(self, route: Route) -> None:
        route.fulfill(
            json={
                "mode": "oidc",
                "authority": IDP,
                "clientId": CLIENT_ID,
                "authorizeUrl": f"{IDP}/authorize",
                "tokenUrl": self.token_url,
                "logoutUrl": f"{IDP}/logout",
                "scopes": ["openid", "profile"],
                "redirectPath": "/",
            }
        )

    def on_authorize(self, route: Route) -> None:
        q = {k: v[0] for k, v in parse_qs(urlsplit(route.request.url).query).items()}
        self.authorize = q
        if self.refuse:
            answer = {"error": "access_denied", "error_description": "the user cancelled", "state": q["state"]}
        else:
            answer = {"code": "one-time-code", "state": q["state"]}
        route.fulfill(status=302, headers={"Location": f"{q['redirect_uri']}?{urlencode(answer)}"})

    def on_token(self, route: Route) -> None:
        form = {k: v[0] for k, v in parse_qs(route.request.post_data or "").items()}
        self.token_form = form
        if s256(form.get("code_verifier", "")) != self.authorize.get("code_challenge"):
            route.fulfill(status=400, json={"error": "invalid_grant", "error_description": "PKCE check failed"})
            return
        now = int(time.time())
        id_token = jwt.encode(
            {
                "sub": self.user,
                "preferred_username": "Olivia",
                "nonce": self.authorize["nonce"],
                "aud": CLIENT_ID,
                "iss": IDP,
                "iat": now,
                "exp": now + 600,
            },
            "fake-provider-key-that-is-long-enough-0123",
            algorithm="HS256",
        )
        route.fulfill(
            json={
                "access_token": self.stack.token(self.user),
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": 600,
            }
        )

    def on_logout(self, route: Route) -> None:
        self.logout = {k: v[0] for k, v in parse_qs(urlsplit(route.request.url).query).items()}
        route.fulfill(status=302, headers={"Location": self.logout["logout_uri"]})

    def install(self, app: App) -> None:
        page = app.page
        page.route("**/config.json", self.config)
        page.route(f"{IDP}/authorize?*", self.on_authorize)
        page.route(self.token_url, self.on_token)
        page.route(f"{IDP}/logout?*", self.on_logout)


def test_oidc_sign_in_with_pkce_and_sign_out(open_app, stack: Stack) -> None:
    app: App = open_app()
    page = app.page
    idp = FakeProvider(stack, user=f"oidc-{time.time_ns()}")
    idp.install(app)
    app.goto()

    expect(page.get_by_text("For local use only.")).to_be_hidden()
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#session-user")).to_have_text("Olivia")
    expect(page.get_by_text("No data yet")).to_be_visible()

    a = idp.authorize
    assert a["response_type"] == "code"
    assert a["client_id"] == CLIENT_ID
    assert a["redirect_uri"] == f"{stack.api_url}/"
    assert a["scope"] == "openid profile"
    assert a["code_challenge_method"] == "S256"
    assert len(a["state"]) >= 16 and len(a["nonce"]) >= 16
    f = idp.token_form
    assert f["grant_type"] == "authorization_code"
    assert f["code"] == "one-time-code"
    assert f["client_id"] == CLIENT_ID
    assert f["redirect_uri"] == a["redirect_uri"]
    assert 43 <= len(f["code_verifier"]) <= 128
    assert "code=" not in page.url, "the one-time code must leave the address bar"
    session = json.loads(page.evaluate("sessionStorage.getItem('fanout.session')"))
    assert session["mode"] == "oidc"
    assert page.evaluate("sessionStorage.getItem('fanout.pkce')") is None

    # Signed in, the app uses the access token against the real API.
    page.get_by_label("Information one").fill("from oidc")
    page.get_by_label("Information two").fill("works")
    page.get_by_role("button", name="Add item").click()
    expect(app.rows().first.locator(".badge")).to_have_text("✓ Stored")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert idp.logout["client_id"] == CLIENT_ID
    assert idp.logout["logout_uri"] == f"{stack.api_url}/"
    # The ID token (the API credential in Cognito mode) never goes into a URL.
    assert "id_token_hint" not in idp.logout
    assert session.get("idToken") is None or session["idToken"] not in json.dumps(idp.logout)
    assert page.evaluate("sessionStorage.getItem('fanout.session')") is None


def test_oidc_refusal_is_explained(open_app, stack: Stack) -> None:
    app: App = open_app()
    page = app.page
    FakeProvider(stack, user="nobody", refuse=True).install(app)
    app.goto()
    page.get_by_role("button", name="Sign in").click()
    # A fixed text: the provider's error_description is never shown.
    expect(page.locator("#oidc-error")).to_have_text("The sign-in was cancelled or refused by the identity provider.")
    expect(page.get_by_text("the user cancelled")).to_have_count(0)
    assert "error=" not in page.url


def test_oidc_error_link_without_our_state_shows_nothing_of_it(open_app, stack: Stack) -> None:
    """A crafted link (?error=...&error_description=<phishing text>) is refused by the state check
    before any of its text is looked at."""
    app: App = open_app()
    page = app.page
    FakeProvider(stack, user="nobody").install(app)
    lure = "Your account is locked. Call +1 555 0100 now"
    for query in (
        f"/?{urlencode({'error': 'access_denied', 'error_description': lure})}",
        f"/?{urlencode({'error': 'server_error', 'error_description': lure, 'state': 'forged'})}",
    ):
        app.goto(query)
        expect(page.locator("#oidc-error")).to_have_text(
            "That sign-in answer does not belong to this browser tab. Please sign in again."
        )
        expect(page.get_by_text("Call +1 555")).to_have_count(0)
        assert "error=" not in page.url


def test_oidc_answer_for_another_tab_is_refused(open_app, stack: Stack) -> None:
    """A redirect carrying a state this tab never sent (a forged or replayed answer) signs nobody in."""
    app: App = open_app()
    page = app.page
    FakeProvider(stack, user="mallory").install(app)
    app.goto("/?code=stolen&state=not-ours")
    expect(page.locator("#oidc-error")).to_have_text(
        "That sign-in answer does not belong to this browser tab. Please sign in again."
    )
    assert page.evaluate("sessionStorage.getItem('fanout.session')") is None
