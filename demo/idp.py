"""A small OpenID Connect identity provider for the demo and the tests. DEMO ONLY: never use
it in production (no SSO session, no consent, no key rotation, accounts in a JSON file); point
the dashboard at your company's provider instead (README, "Signing in").

It speaks the standard authorization-code flow (discovery, PKCE S256, RS256 ID tokens signed
with Authlib's joserfc, end_session_endpoint), so the dashboard's st.login runs against it
exactly as against Okta, Entra ID, Google or Keycloak. Its state file (clients and accounts) is
read on every request, so an account or a redirect URI added while it runs counts at once:

    python -m demo.idp serve --port 59400 --state .stack/idp.json
    python -m demo.idp account --state .stack/idp.json jane@x.example --password-env PW \
        --claim dashboard_role=support
    python -m demo.idp client --state .stack/idp.json --issuer http://127.0.0.1:59400 \
        --redirect-uri http://127.0.0.1:8501/oauth2callback --secrets .stack/secrets.toml
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_TTL_S = 60
TOKEN_TTL_S = 3600
# Throttling: after this many failures in the window, each further try waits (doubling).
FREE_FAILURES = 3
FAILURE_WINDOW_S = 900
MAX_WAIT_S = 300


def hash_password(password: str) -> str:
    """scrypt: any length of password (bcrypt stops at 72 bytes)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


_DUMMY_HASH = hash_password("not-a-real-password")


def load_state(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"clients": {}, "accounts": {}}


def _save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def add_account(
    path: Path, email: str, password: str, name: str | None = None, claims: dict | None = None
) -> None:
    if not password:
        raise ValueError("an account needs a password")
    state = load_state(path)
    state["accounts"][email.lower()] = {
        "name": name or email.split("@")[0],
        "password_hash": hash_password(password),
        "claims": claims or {},
    }
    _save_state(path, state)


def add_client(path: Path, client_id: str, redirect_uri: str) -> str:
    """Register (or extend) a client; returns its secret."""
    state = load_state(path)
    client = state["clients"].setdefault(
        client_id, {"secret": secrets.token_urlsafe(24), "redirect_uris": []}
    )
    if redirect_uri not in client["redirect_uris"]:
        client["redirect_uris"].append(redirect_uri)
    _save_state(path, state)
    return client["secret"]


def secrets_toml(
    issuer: str, client_id: str, client_secret: str, redirect_uri: str, cookie_secret: str = ""
) -> str:
    """The dashboard's [auth] section for this provider."""
    return (
        "[auth]\n"
        f"redirect_uri = {json.dumps(redirect_uri)}\n"
        f"cookie_secret = {json.dumps(cookie_secret or secrets.token_urlsafe(32))}\n"
        f"client_id = {json.dumps(client_id)}\n"
        f"client_secret = {json.dumps(client_secret)}\n"
        f"server_metadata_url = {json.dumps(issuer + '/.well-known/openid-configuration')}\n"
    )


@dataclass
class Throttle:
    """Failures per account and per client address; a locked key says how long to wait."""

    failures: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, keys: list[str]) -> int:
        now = time.time()
        with self.lock:
            waits = []
            for key in keys:
                recent = [t for t in self.failures.get(key, []) if now - t < FAILURE_WINDOW_S]
                self.failures[key] = recent
                if len(recent) >= FREE_FAILURES:
                    delay = min(MAX_WAIT_S, 2 ** (len(recent) - FREE_FAILURES + 1))
                    waits.append(int(recent[-1] + delay - now) + 1)
            return max([0, *waits])

    def failed(self, keys: list[str]) -> None:
        with self.lock:
            for key in keys:
                self.failures.setdefault(key, []).append(time.time())

    def succeeded(self, key: str) -> None:
        with self.lock:
            self.failures.pop(key, None)


class Provider:
    def __init__(self, issuer: str, state_path: Path) -> None:
        self.issuer = issuer
        self.state_path = state_path
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8)})
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.throttle = Throttle()
        self.lock = threading.Lock()

    def metadata(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
        }

    def client(self, client_id: str) -> dict | None:
        return load_state(self.state_path)["clients"].get(client_id)

    def authenticate(self, email: str, password: str, address: str) -> tuple[dict | None, str]:
        """(claims, "") on success, else (None, the message for the form)."""
        keys = [f"account:{email}", f"address:{address}"]
        if wait := self.throttle.wait_s(keys):
            print(f"[idp] sign-in throttled: {email} from {address}", flush=True)
            return None, f"Too many failed attempts. Try again in {wait} s."
        account = load_state(self.state_path)["accounts"].get(email)
        matches = check_password(password, account["password_hash"] if account else _DUMMY_HASH)
        if not (account and matches):
            self.throttle.failed(keys)
            print(f"[idp] sign-in failed: {email} from {address}", flush=True)
            return None, "Email or password is not correct."
        self.throttle.succeeded(f"account:{email}")
        print(f"[idp] signed in: {email} from {address}", flush=True)
        claims = {
            **account.get("claims", {}),
            "sub": hashlib.sha256(email.encode()).hexdigest()[:24],
            "email": email,
            "email_verified": True,
            "name": account["name"],
        }
        return claims, ""

    def issue_code(self, claims: dict, request: dict[str, str]) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "claims": claims,
                "client_id": request["client_id"],
                "redirect_uri": request["redirect_uri"],
                "nonce": request.get("nonce"),
                "code_challenge": request.get("code_challenge"),
                "auth_time": int(time.time()),
                "expires": time.time() + CODE_TTL_S,
            }
        return code

    def exchange(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict | None:
        client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret"))
        client = self.client(client_id)
        if not client or not hmac.compare_digest(client["secret"], client_secret or ""):
            return None
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)  # a code is used once
        if (
            form.get("grant_type") != "authorization_code"
            or not grant
            or grant["expires"] < time.time()
            or grant["client_id"] != client_id
            or grant["redirect_uri"] != form.get("redirect_uri")
        ):
            return None
        if grant["code_challenge"]:
            verifier = form.get("code_verifier", "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if challenge.decode() != grant["code_challenge"]:
                return None
        now = int(time.time())
        id_claims = {
            **grant["claims"],
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_TTL_S,
            "auth_time": grant["auth_time"],
            "sid": secrets.token_urlsafe(16),
        }
        if grant["nonce"]:
            id_claims["nonce"] = grant["nonce"]
        header = {"alg": "RS256", "kid": self.key.kid}
        access_token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access_token] = {"claims": grant["claims"], "expires": now + TOKEN_TTL_S}
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_S,
            "id_token": jwt.encode(header, id_claims, self.key),
        }

    def registered(self, client_id: str, uri: str) -> bool:
        client = self.client(client_id)
        return bool(client and uri in client["redirect_uris"])


FORM = """<!doctype html><html><head><meta charset="utf-8"><title>Demo identity provider</title>
<style>body{{font-family:sans-serif;background:#eef1f6;display:flex;justify-content:center}}
form{{background:#fff;padding:2em 2.5em;margin-top:8vh;border-radius:8px;width:22em;
box-shadow:0 2px 12px #0002}}label{{display:block;margin:.8em 0 .2em}}
input{{width:100%;padding:.5em;box-sizing:border-box}}button{{margin-top:1.2em;width:100%;
padding:.6em;background:#1f5fbf;color:#fff;border:0;border-radius:4px;font-size:1em}}
.error{{color:#b00020}}.note{{color:#666;font-size:.85em}}</style></head><body>
<form method="post" action="/authorize"><h2>Demo identity provider</h2>
<p class="note">Sign in to continue to <b>{client}</b>. Demo only: not for production.</p>
<p class="error" role="alert">{error}</p>
<label for="email">Email</label><input id="email" name="email" autocomplete="username"
 value="{email}" required>
<label for="password">Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
{hidden}<button type="submit">Sign in</button></form></body></html>"""

AUTHORIZE_PARAMS = ("client_id", "redirect_uri", "state", "nonce", "code_challenge", "scope")


def make_handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # sign-in outcomes are printed by Provider.authenticate

        def _send(self, status: int, body: str, kind: str = "application/json") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, url: str) -> None:
            self.send_response(302)
            self.send_header("Location", url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length).decode()
            return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

        def _login_form(self, request: dict[str, str], error: str = "", email: str = "") -> None:
            hidden = "".join(
                f'<input type="hidden" name="{k}" value="{html.escape(request.get(k, ""))}">'
                for k in AUTHORIZE_PARAMS
            )
            page = FORM.format(
                client=html.escape(request["client_id"]),
                error=html.escape(error),
                email=html.escape(email),
                hidden=hidden,
            )
            self._send(200, page, "text/html")

        def _valid_request(self, request: dict[str, str]) -> bool:
            if not provider.registered(request.get("client_id", ""), request.get("redirect_uri")):
                self._send(400, "Unknown client or redirect URI.", "text/plain")
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._send(200, json.dumps(provider.metadata()))
            elif url.path == "/jwks":
                self._send(200, json.dumps({"keys": [provider.key.as_dict(private=False)]}))
            elif url.path == "/authorize":
                if self._valid_request(query):
                    if query.get("response_type") != "code":
                        self._send(400, "Only response_type=code is supported.", "text/plain")
                    else:
                        self._login_form(query)
            elif url.path == "/userinfo":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                grant = provider.tokens.get(token)
                if grant and grant["expires"] > time.time():
                    self._send(200, json.dumps(grant["claims"]))
                else:
                    self._send(401, json.dumps({"error": "invalid_token"}))
            elif url.path == "/logout":
                # No SSO session to end here: every sign-in asks for the password again.
                target = query.get("post_logout_redirect_uri", "")
                if provider.registered(query.get("client_id", ""), target):
                    self._redirect(target)
                else:
                    self._send(200, "<p>You are signed out.</p>", "text/html")
            elif url.path == "/health":
                self._send(200, "ok", "text/plain")
            else:
                self._send(404, "Not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            form = self._form()
            if url.path == "/authorize":
                if not self._valid_request(form):
                    return
                email = form.get("email", "").strip().lower()
                claims, error = provider.authenticate(
                    email, form.get("password", ""), self.client_address[0]
                )
                if claims is None:
                    self._login_form(form, error, email)
                    return
                code = provider.issue_code(claims, form)
                answer = {"code": code, "state": form.get("state", "")}
                self._redirect(f"{form['redirect_uri']}?{urlencode(answer)}")
            elif url.path == "/token":
                basic = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    from urllib.parse import unquote

                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    basic = (unquote(user), unquote(password))
                token = provider.exchange(form, basic)
                if token is None:
                    self._send(400, json.dumps({"error": "invalid_grant"}))
                else:
                    self._send(200, json.dumps(token))
            else:
                self._send(404, "Not found", "text/plain")

    return Handler


def serve(port: int, state_path: Path, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A running provider (in a thread of its own); .shutdown() stops it."""
    provider = Provider(f"http://{host}:{port}", state_path)
    server = ThreadingHTTPServer((host, port), make_handler(provider))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _claims(pairs: list[str]) -> dict:
    return dict(pair.split("=", 1) for pair in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description="Demo-only OpenID Connect provider.")
    parser.add_argument("--state", type=Path, required=True, help="clients and accounts (JSON)")
    sub = parser.add_subparsers(dest="command", required=True)
    serving = sub.add_parser("serve")
    serving.add_argument("--port", type=int, required=True)
    account = sub.add_parser("account", help="add or replace an account")
    account.add_argument("email")
    account.add_argument("--password-env", required=True)
    account.add_argument("--name")
    account.add_argument("--claim", action="append", default=[], help="NAME=VALUE")
    client = sub.add_parser("client", help="register a dashboard; write its [auth] secrets")
    client.add_argument("--issuer", required=True)
    client.add_argument("--client-id", default="support-dashboard")
    client.add_argument("--redirect-uri", required=True)
    client.add_argument("--secrets", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "serve":
        server = serve(args.port, args.state)
        print(f"[idp] demo identity provider on http://127.0.0.1:{args.port}", flush=True)
        try:
            threading.Event().wait()
        finally:
            server.shutdown()
    elif args.command == "account":
        password = os.environ[args.password_env]
        add_account(args.state, args.email, password, args.name, _claims(args.claim))
    else:
        secret = add_client(args.state, args.client_id, args.redirect_uri)
        args.secrets.parent.mkdir(parents=True, exist_ok=True)
        # The same cookie secret on every run, so a restarted demo keeps its sign-ins.
        old = tomllib.loads(args.secrets.read_text()) if args.secrets.exists() else {}
        cookie_secret = old.get("auth", {}).get("cookie_secret", "")
        text = secrets_toml(args.issuer, args.client_id, secret, args.redirect_uri, cookie_secret)
        args.secrets.write_text(text)
        args.secrets.chmod(0o600)


if __name__ == "__main__":
    main()
