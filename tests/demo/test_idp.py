"""The demo identity provider speaks the authorization-code flow strictly enough that the
dashboard's sign-in is tested for real: registered clients and redirect URIs only, PKCE,
codes used once, signed ID tokens, throttled wrong passwords, passwords of any length."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from demo import idp
from tests.conftest import free_port

pytestmark = pytest.mark.unit

REDIRECT = "http://127.0.0.1:1/oauth2callback"
LONG_PASSWORD = "correct horse battery staple " * 10  # 290 bytes: past bcrypt's 72


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


@pytest.fixture
def provider(tmp_path):
    state = tmp_path / "idp.json"
    idp.add_account(state, "jane@x.example", LONG_PASSWORD, claims={"dashboard_role": "support"})
    secret = idp.add_client(state, "dash", REDIRECT)
    port = free_port()
    server = idp.serve(port, state)
    yield f"http://127.0.0.1:{port}", secret
    server.shutdown()


def post(url: str, form: dict[str, str]):
    request = urllib.request.Request(url, urlencode(form).encode(), method="POST")
    try:
        return opener.open(request, timeout=10)
    except urllib.error.HTTPError as exc:
        return exc


VERIFIER = "v" * 50
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")


def sign_in(base: str, password: str, redirect: str = REDIRECT):
    return post(
        f"{base}/authorize",
        {
            "client_id": "dash",
            "redirect_uri": redirect,
            "state": "s1",
            "nonce": "n1",
            "code_challenge": CHALLENGE.decode(),
            "email": "Jane@X.example",
            "password": password,
        },
    )


def token(base: str, secret: str, code: str, verifier: str = VERIFIER):
    return post(
        f"{base}/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "dash",
            "client_secret": secret,
            "code_verifier": verifier,
        },
    )


def test_code_flow_gives_a_signed_id_token_once(provider):
    base, secret = provider
    answer = sign_in(base, LONG_PASSWORD)
    assert answer.status == 302
    location = urlparse(answer.headers["Location"])
    query = parse_qs(location.query)
    assert location.geturl().startswith(REDIRECT) and query["state"] == ["s1"]
    code = query["code"][0]

    assert token(base, secret, code, verifier="w" * 50).status == 400  # PKCE mismatch
    code = parse_qs(urlparse(sign_in(base, LONG_PASSWORD).headers["Location"]).query)["code"][0]
    issued = json.loads(token(base, secret, code).read())
    keys = KeySet.import_key_set(json.loads(urllib.request.urlopen(f"{base}/jwks").read()))
    claims = jwt.decode(issued["id_token"], keys).claims
    assert claims["iss"] == base and claims["aud"] == "dash" and claims["nonce"] == "n1"
    assert claims["email"] == "jane@x.example" and claims["dashboard_role"] == "support"
    assert token(base, secret, code).status == 400  # a code is used once
    assert token(base, "wrong-secret", code).status == 400


def test_unregistered_redirect_uri_is_refused(provider):
    base, _ = provider
    assert sign_in(base, LONG_PASSWORD, redirect="http://evil.example/cb").status == 400


def test_wrong_passwords_are_throttled_with_the_wait_shown(provider):
    base, _ = provider
    assert sign_in(base, LONG_PASSWORD[:72]).status == 200  # bcrypt would have accepted this
    pages = [sign_in(base, "wrong").read().decode() for _ in range(idp.FREE_FAILURES)]
    assert all("not correct" in p for p in pages[:-1])
    throttled = sign_in(base, LONG_PASSWORD).read().decode()  # even the right one waits now
    assert "Too many failed attempts. Try again in" in throttled
