"""The client directory from the command line and the console: imports update, contacts are disabled and enabled."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from runtime import Runtime
from settings import ROOT
from tests.web.conftest import Console
from ticketing import conversation, directory, lifecycle, portal
from ticketing.models import Client, Contact

EXAMPLE = ROOT / "config" / "directory.example.toml"


def _count(runtime: Runtime) -> int:
    with runtime.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Contact)) or 0)


def test_importing_the_directory_twice_leaves_each_contact_once_and_an_edit_updates_it(
    app: Flask, runtime: Runtime, tmp_path: Path
) -> None:
    cli = app.test_cli_runner()
    first = cli.invoke(args=["directory", "import", str(EXAMPLE)])
    assert first.exit_code == 0, first.output
    assert "3 added, 0 updated, 0 unchanged (2 new clients)" in first.output
    second = cli.invoke(args=["directory", "import", str(EXAMPLE)])
    assert second.exit_code == 0 and "0 added, 0 updated, 3 unchanged (0 new clients)" in second.output
    assert _count(runtime) == 3
    # The portal finds the one contact with the address, as it could not with duplicates.
    with runtime.sessions() as s:
        assert portal.contact_by_email(s, "dana@acme-dental.example") is not None

    # An edited file: Dana matched by email (new number), Luis by phone (new, upper-case email), one new contact.
    edited = tmp_path / "directory.toml"
    edited.write_text(
        """
[[clients]]
name = "Acme Dental"
contacts = [
  { name = "Dana Whitfield-Reyes", phone = "+1 805 555 0199", email = "DANA@acme-dental.example", primary = true },
  { name = "Luis Ortega", phone = "(805) 555-0143", email = "luis.ortega@acme-dental.example" },
  { name = "Mina Park", email = "mina@acme-dental.example" },
]
""",
        encoding="utf-8",
    )
    third = cli.invoke(args=["directory", "import", str(edited)])
    assert third.exit_code == 0 and "1 added, 2 updated, 0 unchanged" in third.output, third.output
    assert _count(runtime) == 4
    with runtime.sessions() as s:
        dana = directory.find_contact(s, email="dana@acme-dental.example")
        assert dana is not None and dana.name == "Dana Whitfield-Reyes" and dana.phone == "+18055550199"
        luis = directory.find_contact(s, number="+18055550143")
        assert luis is not None and luis.email == "luis.ortega@acme-dental.example"
        acme = s.scalars(select(Client).where(Client.name == "Acme Dental")).one()
        assert acme.main_number == "+18055550100"  # not named in the edit: kept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[clients]]\nnumber = "+18055550100"\n', "clients[1]: needs a name"),
        ('[[clients]]\nname = "A"\ncontacts = [{ name = "B", phone = "not a number" }]\n', "contacts[0].phone"),
        ('[[clients]]\nname = "A"\ncontacts = [{ name = "B", email = "two words@x.example" }]\n', "contacts[0].email"),
        ('[[clients]]\nname = "A"\ncontacts = [{ name = "B", primary = "yes" }]\n', "expected true or false"),
        ('[[clients]]\nname = "A"\ncontacts = [{ phone = "+18055550101" }]\n', "clients[1].contacts[0]: needs a name"),
        ("clients = 3\n", "expected a list"),
        ("[[clients]\n", "not a TOML file"),
    ],
)
def test_a_broken_directory_file_is_refused_whole_with_the_entry_named(
    app: Flask, runtime: Runtime, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "broken.toml"
    first = '[[clients]]\nname = "First"\ncontacts = [{ name = "Kept out", phone = "+18055550177" }]\n'
    path.write_text(first + text if text.startswith("[[clients]]\n") else text)
    result = app.test_cli_runner().invoke(args=["directory", "import", str(path)])
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output
    assert _count(runtime) == 0  # nothing of the file was written


def test_a_disabled_contact_keeps_its_tickets_but_matches_no_call_mail_or_sign_in(app: Flask, runtime: Runtime) -> None:
    cli = app.test_cli_runner()
    assert cli.invoke(args=["directory", "import", str(EXAMPLE)]).exit_code == 0
    opened = cli.invoke(args=["ticket", "open", "--caller", "+18055550142", "--summary", "Printer offline"])
    assert opened.exit_code == 0
    result = cli.invoke(args=["directory", "disable", "Dana@Acme-Dental.example"])
    assert result.exit_code == 0 and "contact Dana Whitfield disabled" in result.output
    again = cli.invoke(args=["directory", "disable", "+1 805 555 0142"])
    assert again.exit_code == 0 and "already disabled" in again.output
    assert "DISABLED" in cli.invoke(args=["directory", "list"]).output
    with runtime.sessions() as s:
        client, contact = lifecycle.find_caller(s, "+18055550142")
        assert contact is None and client is None
        assert conversation.find_sender(s, "dana@acme-dental.example")[1] is None
        assert portal.contact_by_email(s, "dana@acme-dental.example") is None
        # History kept: the ticket opened before still names her.
        ticket = lifecycle.get_ticket(s, int(opened.output.split()[1]))
        assert ticket.contact is not None and ticket.contact.name == "Dana Whitfield"
    # A second import does not bring her back on its own, nor duplicate her.
    assert "3 unchanged" in cli.invoke(args=["directory", "import", str(EXAMPLE)]).output
    with runtime.sessions() as s:
        assert portal.contact_by_email(s, "dana@acme-dental.example") is None
    assert cli.invoke(args=["directory", "enable", "dana@acme-dental.example"]).exit_code == 0
    with runtime.sessions() as s:
        assert lifecycle.find_caller(s, "+18055550142")[1] is not None
        assert portal.contact_by_email(s, "dana@acme-dental.example") is not None


@pytest.mark.parametrize("key", ["", "nobody@acme-dental.example", "+18055550000", "#99999", "not a key"])
def test_disabling_an_unknown_contact_says_so(app: Flask, runtime: Runtime, key: str) -> None:
    result = app.test_cli_runner().invoke(args=["directory", "disable", key])
    assert result.exit_code != 0 and "Error:" in result.output and "Traceback" not in result.output


def test_the_console_contacts_page_disables_and_enables_a_contact(
    app: Flask, runtime: Runtime, console: Console, users: dict[str, str]
) -> None:
    assert app.test_cli_runner().invoke(args=["directory", "import", str(EXAMPLE)]).exit_code == 0
    with runtime.sessions() as s:
        luis = directory.find_contact(s, email="luis@acme-dental.example")
        assert luis is not None
        luis_id = luis.id
    page = console.get("/contacts").get_data(as_text=True)
    assert f'data-contact="{luis_id}">' in page
    done = console.post(f"/contacts/{luis_id}/active", {"active": "false"}, follow_redirects=True)
    assert done.status_code == 200 and "Luis Ortega disabled" in done.get_data(as_text=True)
    assert f'data-contact="{luis_id}" class="disabled" data-disabled>' in done.get_data(as_text=True)
    with runtime.sessions() as s:
        assert lifecycle.find_caller(s, "+18055550143")[1] is None
    back = console.post(f"/contacts/{luis_id}/active", {"active": "true"}, follow_redirects=True)
    assert "Luis Ortega enabled" in back.get_data(as_text=True)
    assert console.post("/contacts/99999/active", {"active": "false"}).status_code == 404
    # An engineer may look but not change the directory.
    engineer = Console(app.test_client())
    assert engineer.login("eli").status_code == 303
    assert engineer.post(f"/contacts/{luis_id}/active", {"active": "false"}).status_code in (302, 303, 403)
    with runtime.sessions() as s:
        assert s.get(Contact, luis_id).active  # type: ignore[union-attr]
