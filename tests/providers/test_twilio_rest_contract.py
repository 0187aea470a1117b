"""Contract tests: providers.twilio_rest against the local Twilio REST server that Prism validates."""

from __future__ import annotations

import base64
import io
import re
import threading
import wave

import pytest
import requests
from twilio.request_validator import RequestValidator

from providers.twilio_rest import (
    TwilioSendError,
    can_receive_sms,
    delete_recording,
    make_twilio_client,
    place_call,
    send_sms,
)
from settings import ConfigError, Settings
from testing.twilio_server import TwilioTestServer, free_port, new_sid, sign

SUPPORT_NUMBER = "+18055922500"
CALLER = "+18055550142"
ENGINEER = "+18055550199"
SMS_SID = re.compile(r"SM[0-9a-f]{32}")
CALL_SID = re.compile(r"CA[0-9a-f]{32}")


def settings_for(server: TwilioTestServer, **changes: object) -> Settings:
    return Settings().with_overrides(**{**server.settings_overrides(), **changes})


def tiny_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


def test_sms_sent_through_the_client_factory_passes_prism_and_returns_a_message_sid(
    twilio_api: TwilioTestServer,
) -> None:
    client = make_twilio_client(settings_for(twilio_api))

    sid = send_sms(
        client,
        from_=SUPPORT_NUMBER,
        to=CALLER,
        body="Ticket T-1042 opened",
        status_callback="https://example.test/sms-status",
    )

    assert SMS_SID.fullmatch(sid)
    (request,) = twilio_api.messages(to=CALLER)
    assert request.path == f"/2010-04-01/Accounts/{twilio_api.account_sid}/Messages.json"
    assert request.param("From") == SUPPORT_NUMBER
    assert "T-1042" in (request.param("Body") or "")
    assert request.param("StatusCallback") == "https://example.test/sms-status"
    assert request.status == 201


def test_each_sms_gets_its_own_sid_although_prism_answers_with_one_static_example(
    twilio_api: TwilioTestServer,
) -> None:
    client = make_twilio_client(settings_for(twilio_api))

    sids = {send_sms(client, from_=SUPPORT_NUMBER, to=CALLER, body=f"update {n}") for n in range(3)}

    assert len(sids) == 3


def test_a_call_placed_through_the_client_factory_passes_prism_and_returns_a_call_sid(
    twilio_api: TwilioTestServer,
) -> None:
    client = make_twilio_client(settings_for(twilio_api))

    sid = place_call(
        client,
        from_=SUPPORT_NUMBER,
        to=ENGINEER,
        url="https://supportline.example.test/voice/page/T-1042",
        status_callback="https://supportline.example.test/voice/page-status",
        timeout=20,
        machine_detection="Enable",
    )

    assert CALL_SID.fullmatch(sid)
    (request,) = twilio_api.calls(to=ENGINEER)
    assert request.param("Url") == "https://supportline.example.test/voice/page/T-1042"
    assert request.param("Timeout") == "20"
    assert request.param("MachineDetection") == "Enable"
    assert request.status == 201


def test_every_request_carries_basic_auth_with_the_account_sid_and_token(
    twilio_api: TwilioTestServer,
) -> None:
    send_sms(make_twilio_client(settings_for(twilio_api)), from_=SUPPORT_NUMBER, to=CALLER, body="hi")

    (request,) = twilio_api.messages()
    assert request.auth_user == twilio_api.account_sid
    expected = base64.b64encode(f"{twilio_api.account_sid}:{twilio_api.auth_token}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_a_request_prism_finds_invalid_surfaces_as_rejected(twilio_api: TwilioTestServer) -> None:
    client = make_twilio_client(settings_for(twilio_api))

    with pytest.raises(TwilioSendError) as caught:
        place_call(client, from_=SUPPORT_NUMBER, to=ENGINEER, url="/voice/page/T-1042")

    assert (caught.value.kind, caught.value.status) == ("rejected", 422)
    assert "Url" in caught.value.message
    assert not caught.value.retryable


def test_prism_answers_a_message_without_to_with_422_and_without_auth_with_401(
    twilio_api: TwilioTestServer,
) -> None:
    url = f"{twilio_api.base_url}/2010-04-01/Accounts/{twilio_api.account_sid}/Messages.json"
    credentials = (twilio_api.account_sid, twilio_api.auth_token)

    missing_to = requests.post(url, data={"From": SUPPORT_NUMBER, "Body": "hi"}, auth=credentials, timeout=5)
    no_auth = requests.post(url, data={"To": CALLER, "From": SUPPORT_NUMBER, "Body": "hi"}, timeout=5)

    assert missing_to.status_code == 422
    assert "required property 'To'" in missing_to.json()["message"]
    assert no_auth.status_code == 401


def test_a_wrong_auth_token_is_rejected_as_twilio_would(twilio_api: TwilioTestServer) -> None:
    client = make_twilio_client(settings_for(twilio_api, twilio_auth_token="0" * 32))

    with pytest.raises(TwilioSendError) as caught:
        send_sms(client, from_=SUPPORT_NUMBER, to=CALLER, body="hi")

    assert (caught.value.kind, caught.value.status, caught.value.code) == ("rejected", 401, 20003)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "rejected"), (404, "rejected"), (429, "unavailable"), (500, "unavailable"), (503, "unavailable")],
)
def test_twilio_error_statuses_map_to_rejected_or_unavailable(
    twilio_api: TwilioTestServer, status: int, kind: str
) -> None:
    client = make_twilio_client(settings_for(twilio_api))
    twilio_api.fail_next("/Messages.json", status=status)

    with pytest.raises(TwilioSendError) as caught:
        send_sms(client, from_=SUPPORT_NUMBER, to=CALLER, body="hi")

    assert (caught.value.kind, caught.value.status, caught.value.code) == (kind, status, 20000 + status)


def test_an_injected_500_is_unavailable_and_the_next_sms_goes_through(twilio_api: TwilioTestServer) -> None:
    client = make_twilio_client(settings_for(twilio_api))
    twilio_api.fail_next("/Messages.json", status=500, count=1)

    with pytest.raises(TwilioSendError) as caught:
        send_sms(client, from_=SUPPORT_NUMBER, to=CALLER, body="first try")
    sid = send_sms(client, from_=SUPPORT_NUMBER, to=CALLER, body="second try")

    assert caught.value.kind == "unavailable" and caught.value.retryable
    assert SMS_SID.fullmatch(sid)
    assert [r.status for r in twilio_api.messages(to=CALLER)] == [500, 201]


def test_a_twilio_timeout_is_unavailable_and_the_request_was_still_made(twilio_api: TwilioTestServer) -> None:
    client = make_twilio_client(settings_for(twilio_api), timeout=0.3)
    twilio_api.timeout_next("/Calls.json", seconds=3)

    with pytest.raises(TwilioSendError) as caught:
        place_call(client, from_=SUPPORT_NUMBER, to=ENGINEER, url="https://supportline.example.test/voice/page/T-1")

    assert (caught.value.kind, caught.value.status) == ("unavailable", None)
    assert [r.fault for r in twilio_api.calls(to=ENGINEER)] == ["timeout"]


def test_twilio_out_of_reach_is_unavailable() -> None:
    closed = Settings().with_overrides(
        twilio_account_sid=new_sid("AC"),
        twilio_auth_token="1" * 32,
        twilio_api_base_url=f"http://127.0.0.1:{free_port()}",
    )

    with pytest.raises(TwilioSendError) as caught:
        send_sms(make_twilio_client(closed), from_=SUPPORT_NUMBER, to=CALLER, body="hi")

    assert (caught.value.kind, caught.value.status) == ("unavailable", None)


def test_the_client_factory_needs_an_account_sid_and_auth_token() -> None:
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        make_twilio_client(Settings())


def test_wait_for_sees_an_sms_sent_from_another_thread(twilio_api: TwilioTestServer) -> None:
    client = make_twilio_client(settings_for(twilio_api))
    sender = threading.Thread(
        target=send_sms,
        kwargs={"client": client, "from_": SUPPORT_NUMBER, "to": CALLER, "body": "Ticket T-7 opened"},
    )
    sender.start()

    request = twilio_api.wait_for(lambda r: r.matches("/Messages.json", "POST") and r.param("To") == CALLER, timeout=5)
    sender.join()

    assert "T-7" in (request.param("Body") or "")


def test_recording_media_is_served_only_with_basic_auth(twilio_api: TwilioTestServer) -> None:
    recording_sid = new_sid("RE")
    audio = tiny_wav()
    twilio_api.add_recording(recording_sid, audio)
    media_url = twilio_api.recording_url(recording_sid) + ".wav"

    anonymous = requests.get(media_url, timeout=5)
    wrong = requests.get(media_url, auth=(twilio_api.account_sid, "0" * 32), timeout=5)
    right = requests.get(media_url, auth=(twilio_api.account_sid, twilio_api.auth_token), timeout=5)
    unknown = requests.get(
        twilio_api.recording_url(new_sid("RE")) + ".wav",
        auth=(twilio_api.account_sid, twilio_api.auth_token),
        timeout=5,
    )

    assert not twilio_api.recording_url(recording_sid).endswith((".wav", ".mp3"))
    assert (anonymous.status_code, wrong.status_code, unknown.status_code) == (401, 401, 404)
    assert right.status_code == 200
    assert right.headers["Content-Type"] == "audio/x-wav"
    assert right.content == audio


def test_delete_recording_asks_twilio_to_delete_it_and_the_media_is_gone(
    twilio_api: TwilioTestServer,
) -> None:
    recording_sid = new_sid("RE")
    twilio_api.add_recording(recording_sid, tiny_wav())

    delete_recording(make_twilio_client(settings_for(twilio_api)), recording_sid)

    (request,) = twilio_api.requests_for(f"/Recordings/{recording_sid}.json", "DELETE")
    assert request.status == 204
    assert not twilio_api.has_recording(recording_sid)


def test_deleting_a_recording_twilio_no_longer_has_is_not_an_error(twilio_api: TwilioTestServer) -> None:
    recording_sid = new_sid("RE")
    twilio_api.fail_next(f"/Recordings/{recording_sid}.json", status=404)

    delete_recording(make_twilio_client(settings_for(twilio_api)), recording_sid)

    assert [r.status for r in twilio_api.requests_for(f"/Recordings/{recording_sid}.json")] == [404]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+18055550142", True),
        ("+447700900123", True),
        ("8055550142", False),
        ("+1 805 555 0142", False),
        ("+266696687", False),  # ANONYMOUS
        ("+7378742833", False),  # RESTRICTED
        ("+86282452253", False),  # UNAVAILABLE
        ("client:coordinator", False),
        ("sip:helpdesk@example.test", False),
        ("", False),
        ("+18055550142\n", False),
    ],
)
def test_only_e164_numbers_that_are_not_withheld_can_receive_sms(number: str, expected: bool) -> None:
    assert can_receive_sms(number) is expected


def test_sign_reproduces_twilios_own_signature_test_vector() -> None:
    # The vector of twilio-python's tests/unit/test_request_validator.py: it needs these
    # five parameters; with none the same URL and token sign to zYQTYrRWXE7LtzbG4PfP7/bkkGo=.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }

    signature = sign(url, params, "12345")

    assert signature == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert RequestValidator("12345").validate(url, params, signature)
    assert sign(url, {}, "12345") != signature
