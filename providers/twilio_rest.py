"""Outbound Twilio REST calls: the one client factory and the few actions supportline takes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode

from requests.exceptions import ChunkedEncodingError, Timeout
from requests.exceptions import ConnectionError as RequestsConnectionError
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from providers.twilio_status import person_unreachable

if TYPE_CHECKING:
    from settings import Settings

TWILIO_API_BASE_URL = "https://api.twilio.com"
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_RING_SECONDS = 30

SendErrorKind = Literal["rejected", "unavailable", "unreachable"]
MachineDetection = Literal["Enable", "DetectMessageEnd"]

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# Twilio puts these in From when the caller's number is withheld; they spell
# ANONYMOUS, RESTRICTED, UNAVAILABLE, BLOCKED and UNKNOWN on a phone keypad and
# look like valid E.164 numbers, so they need naming.
_WITHHELD_CALLER_IDS = frozenset({"+266696687", "+7378742833", "+86282452253", "+2562533", "+8656696"})


# The paging webhooks Twilio is told to request (served by ivr.paging).
PAGE_PATHS = {
    "call": "/twilio/page/call",
    "key": "/twilio/page/key",
    "connected": "/twilio/page/connected",
    "call-status": "/twilio/page/call-status",
    "sms-status": "/twilio/page/sms-status",
}


def page_url(settings: Settings, endpoint: str, **params: object) -> str:
    """Absolute public URL of a paging webhook (what Twilio is told to request, and signs)."""
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return settings.public_base_url + PAGE_PATHS[endpoint] + (f"?{urlencode(clean)}" if clean else "")


# What a Twilio REST call raises when Twilio says no or cannot be reached;
# anything else (a bad base URL, a bug) is left to propagate.
_TWILIO_FAILURES = (
    TwilioRestException,
    TwilioServiceException,
    Timeout,
    RequestsConnectionError,
    ChunkedEncodingError,
)


class TwilioSendError(Exception):
    """A Twilio REST call failed; ``kind`` tells callers whether a retry can help."""

    def __init__(
        self,
        kind: SendErrorKind,
        status: int | None,
        message: str,
        *,
        code: int | None = None,
    ) -> None:
        super().__init__(f"Twilio {kind} (status {status}, code {code}): {message}")
        self.kind: SendErrorKind = kind
        self.status = status
        self.message = message
        self.code = code

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed soon (Twilio down, slow or throttling)."""
        return self.kind == "unavailable"

    @property
    def person_unreachable(self) -> bool:
        """True when Twilio said the number itself cannot be reached (see providers.twilio_status)."""
        return self.kind == "unreachable"


class BaseUrlHttpClient(TwilioHttpClient):
    """TwilioHttpClient that sends api.twilio.com requests to another base URL, with a timeout."""

    def __init__(self, base_url: str = TWILIO_API_BASE_URL, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Rewrite the https://api.twilio.com prefix to the configured base URL, then send."""
        if self.base_url != TWILIO_API_BASE_URL and (
            url == TWILIO_API_BASE_URL or url.startswith(TWILIO_API_BASE_URL + "/")
        ):
            url = self.base_url + url[len(TWILIO_API_BASE_URL) :]
        return super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def make_twilio_client(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Client:
    """Build the Twilio REST client from TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_API_BASE_URL."""
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        from settings import ConfigError

        raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to use the Twilio REST API")
    sid, token = settings.twilio_account_sid, settings.twilio_auth_token
    return Client(
        sid,
        token,
        http_client=BaseUrlHttpClient(settings.twilio_api_base_url or TWILIO_API_BASE_URL, timeout),
        # A non-empty mapping keeps twilio-python from reading os.environ
        # (TWILIO_EDGE / TWILIO_REGION would silently change the host).
        environment={"TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": token},
    )


def send_sms(client: Client, *, from_: str, to: str, body: str, status_callback: str | None = None) -> str:
    """Ask Twilio to send an SMS and return its message SID (SM…)."""
    try:
        message = client.messages.create(to=to, from_=from_, body=body, status_callback=status_callback)
    except _TWILIO_FAILURES as exc:
        raise _as_send_error(exc) from exc
    return str(message.sid)


def place_call(
    client: Client,
    *,
    from_: str,
    to: str,
    url: str,
    status_callback: str | None = None,
    timeout: int = DEFAULT_RING_SECONDS,
    machine_detection: MachineDetection | None = None,
) -> str:
    """Ask Twilio to call ``to``, fetching the call's TwiML from our ``url``; return the call SID (CA…)."""
    try:
        call = client.calls.create(
            to=to,
            from_=from_,
            url=url,
            status_callback=status_callback,
            timeout=timeout,
            machine_detection=machine_detection,
        )
    except _TWILIO_FAILURES as exc:
        raise _as_send_error(exc) from exc
    return str(call.sid)


def delete_recording(client: Client, recording_sid: str) -> None:
    """Delete a recording (media and metadata) from Twilio; an already deleted one counts as done."""
    try:
        client.recordings(recording_sid).delete()
    except _TWILIO_FAILURES as exc:
        error = _as_send_error(exc)
        # Recording callbacks arrive at least once, so a second delete is normal.
        if error.status == 404:
            return
        raise error from exc


def can_receive_sms(number: str) -> bool:
    """True for an E.164 number that is not a withheld caller ID, a client: or a sip: address."""
    return bool(_E164.fullmatch(number)) and number not in _WITHHELD_CALLER_IDS


def is_withheld(number: str | None) -> bool:
    """True when the caller withheld their number: empty, 'anonymous', 'Restricted', or a keypad spelling of those."""
    text = (number or "").strip()
    return not text or not _E164.fullmatch(text) or text in _WITHHELD_CALLER_IDS


def _as_send_error(exc: Exception) -> TwilioSendError:
    """Map one of _TWILIO_FAILURES to TwilioSendError."""
    if isinstance(exc, (TwilioRestException, TwilioServiceException)):
        status = int(exc.status)
        message = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
        code = int(exc.code) if exc.code is not None else None
        # 429 is Twilio throttling us: the same request succeeds later.
        kind: SendErrorKind = "unavailable" if status >= 500 or status == 429 else "rejected"
        if person_unreachable(code):
            kind = "unreachable"
        return TwilioSendError(kind, status, str(message), code=code)
    if isinstance(exc, Timeout):
        # The request may have reached Twilio: a retry can send the SMS or call twice.
        return TwilioSendError("unavailable", None, f"no answer from Twilio in time: {exc}")
    return TwilioSendError("unavailable", None, f"could not reach Twilio: {exc}")
