"""The client directory: importing it (again and again), and which contacts anything new may match.

An import is an upsert: a client is matched by name, a contact by email address (case-insensitive), else by phone
number, so importing the same file twice leaves the directory as once, and an edited file updates the contacts
it names. Contacts the file does not name are left as they are.

A contact who left the client is disabled, not deleted: the tickets and history keep pointing at it, but a
disabled contact matches no caller ID, no sender's address and no portal sign-in (``matchable``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ticketing import phone
from ticketing.errors import InvalidInput
from ticketing.models import Client, Contact


def matchable() -> ColumnElement[bool]:
    """The condition a contact meets to be matched by a caller ID, an email sender or a portal sign-in."""
    return Contact.active.is_(True)


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    clients_added: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"imported {self.added + self.updated + self.unchanged} contacts: {self.added} added, "
            f"{self.updated} updated, {self.unchanged} unchanged ({self.clients_added} new clients)"
        )


def _email(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{where}.email: expected text")
    text = value.strip()
    if not text:
        return None
    if "@" not in text or any(c.isspace() for c in text) or len(text) > 200:
        raise InvalidInput(f"{where}.email: {value!r} is not an email address")
    return text


def _phone(value: object, where: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    e164 = phone.normalize(value) if isinstance(value, str) else None
    if e164 is None:
        raise InvalidInput(f"{where}.phone: {value!r} is not a phone number")
    return e164


def find_contact(session: Session, *, email: str | None = None, number: str | None = None) -> Contact | None:
    """The contact with this email address (case-insensitive), else with this phone number; disabled ones too."""
    if email:
        found = session.scalars(
            select(Contact).where(func.lower(Contact.email) == email.strip().lower()).order_by(Contact.id)
        ).first()
        if found is not None:
            return found
    if number:
        e164 = phone.normalize(number)
        if e164 is not None:
            return session.scalars(select(Contact).where(Contact.phone == e164).order_by(Contact.id)).first()
    return None


def contact_by_key(session: Session, key: str) -> Contact:
    """The contact named on a command line: its email address, phone number or ``#id``; InvalidInput otherwise."""
    text = (key or "").strip()
    if not text:
        raise InvalidInput("name a contact by email address, phone number or #id")
    if text.startswith("#") and text[1:].isdigit():
        found = session.get(Contact, int(text[1:]))
    elif "@" in text:
        found = find_contact(session, email=text)
    else:
        if phone.normalize(text) is None:
            raise InvalidInput(f"{text!r} is not an email address, a phone number or a #id")
        found = find_contact(session, number=text)
    if found is None:
        raise InvalidInput(f"no contact has {text!r}")
    return found


def import_directory(session: Session, data: Mapping[str, Any]) -> ImportResult:
    """Add or update the clients and contacts of a parsed directory file (see config/directory.example.toml).

    Raises InvalidInput naming the entry at fault; nothing is written then (the caller's transaction rolls back).
    """
    clients = data.get("clients", [])
    if not isinstance(clients, list):
        raise InvalidInput("clients: expected a list of [[clients]] tables")
    clients_added = added = updated = unchanged = 0
    for i, item in enumerate(clients):
        where = f"clients[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise InvalidInput(f"{where}: needs a name")
        name = item["name"].strip()
        number = _phone(item.get("number"), where)
        client = session.scalars(select(Client).where(Client.name == name)).first()
        if client is None:
            client = Client(name=name, main_number=number)
            session.add(client)
            clients_added += 1
        elif number is not None:
            client.main_number = number
        people = item.get("contacts", [])
        if not isinstance(people, list):
            raise InvalidInput(f"{where}.contacts: expected a list")
        for j, person in enumerate(people):
            at = f"{where}.contacts[{j}]"
            if not isinstance(person, dict) or not isinstance(person.get("name"), str) or not person["name"].strip():
                raise InvalidInput(f"{at}: needs a name")
            primary = person.get("primary", False)
            if not isinstance(primary, bool):
                raise InvalidInput(f"{at}.primary: expected true or false")
            fields = {
                "name": person["name"].strip(),
                "phone": _phone(person.get("phone"), at),
                "email": _email(person.get("email"), at),
                "primary": primary,
            }
            session.flush()  # earlier rows of this file are matched too
            contact = find_contact(session, email=fields["email"], number=fields["phone"])
            if contact is None:
                session.add(Contact(client=client, **fields))
                added += 1
                continue
            before = (contact.client_id, contact.name, contact.phone, contact.email, contact.primary)
            contact.client = client
            for key, value in fields.items():
                if value is not None or key == "primary":
                    setattr(contact, key, value)
            session.flush()
            after = (contact.client_id, contact.name, contact.phone, contact.email, contact.primary)
            if after == before:
                unchanged += 1
            else:
                updated += 1
    return ImportResult(clients_added=clients_added, added=added, updated=updated, unchanged=unchanged)


def set_active(session: Session, contact: Contact, active: bool) -> bool:
    """Enable or disable a contact; whether anything changed."""
    if contact.active == active:
        return False
    contact.active = active
    return True
