"""A contact sees their own tickets; a primary contact every ticket of their client; nobody another client's.

Two clients, every portal route, each way in: what may not be seen answers 404 (as a ticket that
does not exist), and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime import Runtime
from tests.web.portal.conftest import PortalClient
from ticketing import lifecycle, portal
from ticketing.db import transaction
from ticketing.models import Status

Make = Callable[[str | None], PortalClient]


@pytest.fixture
def world(client_ticket: Callable[..., int], portal_runtime: Runtime, tmp_path: Path) -> dict[str, int]:
    """One ticket per contact, each resolved (so every action applies) and with one attachment."""
    numbers = {
        "dana": client_ticket("dana", "Dana's scanner"),
        "luis": client_ticket("luis", "Luis's email"),
        "priya": client_ticket("priya", "Harbor's Wi-Fi"),
    }
    root = portal_runtime.settings.recordings_dir
    (root / "attachments").mkdir(parents=True, exist_ok=True)
    with transaction(portal_runtime.sessions) as s:
        for who, number in list(numbers.items()):
            t = lifecycle.get_ticket(s, number)
            (root / "attachments" / f"{who}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + who.encode())
            row = portal.add_attachment(
                s,
                t,
                filename=f"{who}.png",
                content_type="image/png",
                size=12,
                sha256="0" * 64,
                path=f"attachments/{who}.png",
                now=portal_runtime.now(),
                contact_id=None,
            )
            s.flush()
            numbers[f"{who}_file"] = row.id
            lifecycle.set_status(
                s, t, Status.RESOLVED, actor="tests", now=portal_runtime.now(), policy=portal_runtime.policy
            )
    return numbers


# (contact, ticket owner) -> may see
MAY_SEE = {
    ("dana", "dana"): True,
    ("dana", "luis"): True,  # Dana is Acme's primary contact
    ("dana", "priya"): False,
    ("luis", "luis"): True,
    ("luis", "dana"): False,  # a plain contact sees only their own
    ("luis", "priya"): False,
    ("priya", "priya"): True,
    ("priya", "dana"): False,
    ("priya", "luis"): False,
}


_CSRF_VALUE = re.compile(r'name="csrf_token" value="[^"]+"')


def audit_size(runtime: Runtime, number: int) -> tuple[int, str]:
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        return len(t.audit), t.status


@pytest.mark.parametrize(("who", "owner"), sorted(MAY_SEE))
def test_every_route_keeps_to_the_contacts_own_tickets(
    who: str, owner: str, portal_client: Make, world: dict[str, int], portal_runtime: Runtime
) -> None:
    c = portal_client(who)
    number = world[owner]
    allowed = MAY_SEE[(who, owner)]
    listing = c.get("/portal/").get_data(as_text=True)
    assert (f"#{number}" in listing) is allowed
    page = c.get(f"/portal/tickets/{number}")
    assert page.status_code == (200 if allowed else 404)
    if not allowed:
        assert "Harbor" not in page.get_data(as_text=True) or who == "priya"
    file = c.get(f"/portal/tickets/{number}/attachments/{world[owner + '_file']}")
    assert file.status_code == (200 if allowed else 404)
    if allowed:
        assert file.data.endswith(owner.encode()) and file.mimetype == "image/png"
    file.close()
    # The attachment of a ticket the contact may see, asked for under another ticket's number: 404.
    for other in ("dana", "luis", "priya"):
        if other != owner:
            wrong = c.get(f"/portal/tickets/{number}/attachments/{world[other + '_file']}")
            assert wrong.status_code == 404
            wrong.close()
    before = audit_size(portal_runtime, number)
    for action, data in (("reply", {"text": "any news?"}), ("still-broken", {"text": "no"}), ("resolved", {})):
        response = c.post(f"/portal/tickets/{number}/{action}", data)
        if not allowed:
            assert response.status_code == 404, action
    if not allowed:
        assert audit_size(portal_runtime, number) == before  # nothing changed


def test_nobody_signed_in_reaches_nothing(portal_client: Make, world: dict[str, int]) -> None:
    c = portal_client(None)
    number = world["dana"]
    for path in ("/portal/", f"/portal/tickets/{number}", "/portal/tickets/new"):
        response = c.get(path)
        assert response.status_code == 302 and "/portal/sign-in" in response.headers["Location"], path
    assert c.get(f"/portal/tickets/{number}/attachments/{world['dana_file']}").status_code == 401
    assert c.get("/portal/triage?risk=yes").status_code == 401
    token = c.csrf()
    for action in ("reply", "resolved", "still-broken"):
        assert c.client.post(f"/portal/tickets/{number}/{action}", data={"csrf_token": token}).status_code == 401
    assert c.client.post("/portal/tickets/new", data={"csrf_token": token}).status_code == 401


def test_a_ticket_number_that_does_not_exist_looks_like_one_that_is_not_yours(
    portal_client: Make, world: dict[str, int]
) -> None:
    c = portal_client("luis")
    missing = c.get("/portal/tickets/999999")
    hidden = c.get(f"/portal/tickets/{world['dana']}")
    assert missing.status_code == hidden.status_code == 404
    # The pages' CSRF tokens carry a timestamp, so they may differ by a second; everything else must not.
    assert _CSRF_VALUE.sub("", missing.get_data(as_text=True)) == _CSRF_VALUE.sub("", hidden.get_data(as_text=True))


def test_a_ticket_of_no_known_client_is_nobodys(portal_client: Make, portal_runtime: Runtime) -> None:
    with transaction(portal_runtime.sessions) as s:
        t = lifecycle.open_ticket(
            s,
            policy=portal_runtime.policy,
            now=portal_runtime.now(),
            priority="P3",
            source="voicemail",
            actor="tests",
            caller_number="+18055559999",
            summary="Unknown caller",
        )
        number = t.number
    for who in ("dana", "priya"):
        assert portal_client(who).get(f"/portal/tickets/{number}").status_code == 404


def test_the_primary_contact_sees_whose_ticket_each_one_is(portal_client: Make, world: dict[str, int]) -> None:
    html = portal_client("dana").get("/portal/").get_data(as_text=True)
    assert "for Luis Ortega" in html and "for Dana Whitfield" in html
    assert "for " not in portal_client("luis").get("/portal/").get_data(as_text=True).split('<ul class="tickets"')[1]
