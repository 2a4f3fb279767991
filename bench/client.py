"""A protocol-level client of the dashboard: signs in over HTTP, then speaks Streamlit's websocket
protocol (protobuf BackMsg / ForwardMsg from `streamlit.proto`), without a browser.

- `sign_in(app_url, email, password)`: st.login's OIDC flow with the demo identity provider
  (demo/idp.py) over plain HTTP: /auth/login, the provider's form, /oauth2callback. Returns the
  cookies the app set: its signed `_streamlit_user` and the `_streamlit_xsrf` token.
- `Session`: one websocket session; `run(page, query)` asks for a script run of a page, as the
  browser does on a click, and waits for `script_finished`. `clear_caches()` sends the same
  BackMsg as the developer menu's "Clear caches" (st.cache_data and st.cache_resource, for
  every session: the server's caches are global).

Plain blocking sockets (requests, websocket-client), so it runs as it is under Locust's gevent.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlparse

import requests
import websocket
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

SIGN_IN_BUTTON = "Sign in with your company account"  # ui/sign_in.py
USER_COOKIE = "_streamlit_user"
# The dashboard's own fault messages (ui.common.guard, services.errors), as opposed to a page's
# content shown as an error (a failed run's diagnosis in the investigation).
FAULTS = (
    r"Something went wrong while loading ",
    r" is not available: ",
    r" did not answer in time",
    r"the access record was refused",
)
XSRF_COOKIE = "_streamlit_xsrf"


class SignInFailed(RuntimeError):
    pass


def sign_in(app_url: str, email: str, password: str, timeout_s: float = 30) -> dict[str, str]:
    """The app's cookies after signing in at the identity provider as `email`: the sign-in
    page's button is clicked over the websocket (st.login answers with the provider's URL),
    then the provider's form is posted and its redirect followed back to /oauth2callback."""
    http = requests.Session()
    # The frontend asks for the health endpoint first: its answer sets the XSRF cookie.
    http.get(f"{app_url}/_stcore/health", timeout=timeout_s).raise_for_status()
    with Session(app_url, _cookies(http), timeout_s) as ws:
        page = ws.run("")
        button = page.buttons.get(SIGN_IN_BUTTON)
        if button is None:
            raise SignInFailed(f"no sign-in button on the page (buttons: {list(page.buttons)})")
        login = ws.click(button).redirect
    if not login:
        raise SignInFailed("the sign-in button sent no redirect to the identity provider")
    form = http.get(urljoin(app_url, login), timeout=timeout_s)
    authorize = urlparse(form.url)
    if form.status_code != 200 or not authorize.path.endswith("/authorize"):
        raise SignInFailed(f"no sign-in form at {form.url} (HTTP {form.status_code})")
    fields = {**dict(parse_qsl(authorize.query)), "email": email, "password": password}
    back = http.post(form.url.split("?", 1)[0], data=fields, timeout=timeout_s)
    cookies = _cookies(http)
    if back.status_code != 200 or USER_COOKIE not in cookies:
        raise SignInFailed(f"the app set no sign-in cookie (ended at {back.url})")
    return cookies


def _cookies(http: requests.Session) -> dict[str, str]:
    return {c.name: c.value for c in http.cookies if c.name.startswith("_streamlit")}


@dataclass
class RunResult:
    page: str
    seconds: float
    status: str  # FINISHED_SUCCESSFULLY, ... or "timeout"
    deltas: int = 0
    errors: list[str] = field(default_factory=list)  # exceptions and faults shown
    buttons: dict[str, str] = field(default_factory=dict)  # label: widget id
    text_inputs: dict[str, str] = field(default_factory=dict)  # label: widget id
    # selectbox id: the option the server set (None: cleared), or its default if first seen
    selected: dict[str, str | None] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    redirect: str = ""  # where st.login sent the browser
    markdown: list[str] = field(default_factory=list)  # the bodies of markdown and captions

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED_SUCCESSFULLY" and not self.errors


class Session:
    """One websocket session of a signed-in user (the cookies from `sign_in`)."""

    def __init__(self, app_url: str, cookies: dict[str, str], timeout_s: float = 60) -> None:
        parts = urlparse(app_url)
        self.timeout_s = timeout_s
        self.ws = websocket.create_connection(
            f"ws://{parts.netloc}/_stcore/stream",
            timeout=timeout_s,
            origin=app_url,
            cookie="; ".join(f"{k}={v}" for k, v in cookies.items()),
            subprotocols=["streamlit", cookies.get(XSRF_COOKIE, "")],
        )
        self.page, self.query = "", ""
        self.texts: dict[str, str] = {}  # widget id: text typed in, sent with every run
        # widget id: each selectbox's current option, sent with every run as the browser does
        # (a widget state left out of a run can be lost: the sidebar's tenant, say)
        self.choices: dict[str, str | None] = {}

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(self, msg: BackMsg) -> None:
        self.ws.send_binary(msg.SerializeToString())

    def run(self, page: str, query: dict[str, str] | None = None) -> RunResult:
        """A script run of `page` (its url path: "" for the default page, "investigation",
        ...) with `query` as its query string, until the script finished."""
        msg = BackMsg()
        msg.rerun_script.page_name = page
        msg.rerun_script.query_string = urlencode(query or {})
        self.page, self.query = page, msg.rerun_script.query_string
        return self._until_finished(msg)

    def type_text(self, widget_id: str, text: str) -> RunResult:
        """Text typed into a text input of the current page (kept for the runs after)."""
        self.texts[widget_id] = text
        msg = BackMsg()
        msg.rerun_script.page_name = self.page
        msg.rerun_script.query_string = self.query
        return self._until_finished(msg)

    def click(self, button_id: str) -> RunResult:
        """A click on a button of the current page (a trigger widget state)."""
        msg = BackMsg()
        msg.rerun_script.page_name = self.page
        msg.rerun_script.query_string = self.query
        msg.rerun_script.widget_states.widgets.add(id=button_id, trigger_value=True)
        return self._until_finished(msg)

    def _until_finished(self, msg: BackMsg) -> RunResult:
        for widget_id, text in self.texts.items():
            msg.rerun_script.widget_states.widgets.add(id=widget_id, string_value=text)
        for widget_id, option in self.choices.items():
            if option is not None:
                msg.rerun_script.widget_states.widgets.add(id=widget_id, string_value=option)
        page = self.page
        start = time.perf_counter()
        self._send(msg)
        result = RunResult(page, 0.0, "timeout")
        deadline = start + self.timeout_s
        while time.perf_counter() < deadline:
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                break
            forward = ForwardMsg()
            forward.ParseFromString(raw)
            kind = forward.WhichOneof("type")
            if kind == "delta":
                result.deltas += 1
                _read_element(forward, result)
            elif kind == "auth_redirect":
                result.redirect = forward.auth_redirect.url
            elif kind == "page_not_found":
                result.errors.append(f"page not found: {page}")
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(forward.script_finished)
                if status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY":
                    continue  # the session-check fragment, not this run
                if status == "FINISHED_EARLY_FOR_RERUN":
                    continue  # the page reran itself (st.rerun): its next run finishes
                result.status = status
                break
        result.seconds = time.perf_counter() - start
        self.choices = {**result.defaults, **self.choices, **result.selected}
        return result

    def clear_caches(self) -> None:
        """Clear the server's caches; returns once the server handled it (a heartbeat sent
        after it was answered: one session's messages are handled in order)."""
        msg = BackMsg()
        msg.clear_cache = True
        self._send(msg)
        beat = BackMsg()
        beat.app_heartbeat = True
        self._send(beat)
        deadline = time.perf_counter() + self.timeout_s
        while time.perf_counter() < deadline:
            forward = ForwardMsg()
            forward.ParseFromString(self.ws.recv())
            if forward.WhichOneof("type") == "heartbeat_ack":
                return
        raise TimeoutError("the server did not confirm clearing its caches")


def _read_element(forward: ForwardMsg, result: RunResult) -> None:
    """What a run's element tells: an exception or error shown, a button's widget id."""
    delta = forward.delta
    if delta.WhichOneof("type") != "new_element":
        return
    element = delta.new_element
    kind = element.WhichOneof("type")
    if kind == "exception":
        result.errors.append(f"exception: {element.exception.type}: {element.exception.message}")
    elif kind == "alert" and element.alert.format == element.alert.ERROR:
        if any(re.search(fault, element.alert.body) for fault in FAULTS):
            result.errors.append(f"fault shown: {element.alert.body[:200]}")
    elif kind == "markdown":
        result.markdown.append(element.markdown.body)
    elif kind == "button":
        result.buttons[element.button.label] = element.button.id
    elif kind == "text_input":
        result.text_inputs[element.text_input.label] = element.text_input.id
    elif kind == "selectbox":
        box = element.selectbox
        if box.set_value:
            result.selected[box.id] = box.raw_value if box.HasField("raw_value") else None
        elif box.HasField("default"):
            result.defaults[box.id] = box.options[box.default]
