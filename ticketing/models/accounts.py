"""Who signs in: console users and their sessions, API tokens, sign-in failures, the portal's links and sessions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Self

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.models.base import Base
from ticketing.models.tickets import Contact


class User(Base):
    """Someone who signs in to the coordinator console: a coordinator, an engineer or an admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))  # coordinator, engineer, admin
    email: Mapped[str | None] = mapped_column(String(200))  # where alerts to admins go (optional)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # Lock-out: failed sign-ins in a row, and until when the account refuses every password.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]


class _SignedInBrowser:
    """The columns of a signed-in browser's row, console or portal: the cookie's token (by its hash) and its life."""

    # sort_order: id and token_hash before the owner's column, as the migrations made the tables.
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-2)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, sort_order=-1)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_why: Mapped[str | None] = mapped_column(String(32))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))

    @classmethod
    def opened(
        cls, token_hash: str, *, now: datetime, remote_addr: str | None, user_agent: str | None, **owner: Any
    ) -> Self:
        """A new session row for ``owner`` (the user or contact), seen now; the request's address and agent cut to fit."""
        return cls(
            token_hash=token_hash,
            created_at=now,
            last_seen_at=now,
            remote_addr=(remote_addr or "")[:64] or None,
            user_agent=(user_agent or "")[:200] or None,
            **owner,
        )

    def end_if_lapsed(
        self,
        owner_gone: Callable[[], str | None],
        *,
        now: datetime,
        idle: timedelta,
        lifetime: timedelta,
        touch_every: timedelta,
        touch: bool = True,
    ) -> str | None:
        """End the session when idle too long, too old or its owner gone (``owner_gone`` says why) and return why.

        While it still counts, the visit is counted (``touch``), at most once per ``touch_every``, and None returned.
        """
        if now - self.last_seen_at > idle:
            why: str | None = "idle"
        elif now - self.created_at > lifetime:
            why = "expired"
        else:
            why = owner_gone()
        if why is not None:
            self.ended_at = now
            self.ended_why = why
        elif touch and now - self.last_seen_at >= touch_every:
            self.last_seen_at = now
        return why


class ConsoleSession(_SignedInBrowser, Base):
    """A signed-in browser: the cookie carries a random token, the row (by its hash) says whether it still counts.

    Server-side, so signing out ends the session for every copy of the cookie. ``ended_why``: signed out,
    idle, expired, disabled.
    """

    __tablename__ = "console_sessions"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A per-integration token for the JSON API (PSA sync); only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to recognise a token in a list
    # "read": GET only; "write": everything the API offers (tokens made before scopes existed are "write")
    scope: Mapped[str] = mapped_column(String(16), default="write", server_default="write")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(120))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class SignInFailure(Base):
    """Failed console sign-ins counted per key: ``address:<ip>`` (throttle) and ``user:<name>@<ip>`` (lock-out).

    Counted with one atomic UPDATE each, so parallel attempts are never lost.
    """

    __tablename__ = "sign_in_failures"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class PortalLink(Base):
    """A single-use sign-in link emailed to a contact.

    The mail job draws the random token itself and stores only its SHA-256, so the
    token exists nowhere but in the email; the link counts from ``created_at``.
    """

    __tablename__ = "portal_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    requested_by: Mapped[str] = mapped_column(String(120))  # "self" or the coordinator who invited
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    contact: Mapped[Contact] = relationship()


class PortalSession(_SignedInBrowser, Base):
    """A contact signed in to the portal: the ``__Host-portal`` cookie carries a token, the row its SHA-256.

    ``ended_why``: signed out, idle, expired, contact removed/changed.
    """

    __tablename__ = "portal_sessions"
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    contact: Mapped[Contact] = relationship()
    # The address the link went to: the session ends when the directory gives the contact another one.
    email: Mapped[str | None] = mapped_column(String(200), sort_order=1)  # after the shared columns


class PortalSignInEvent(Base):
    """Audit of portal sign-in: every link asked for (known address or not), sent, used, refused; also the rate limit's count."""

    __tablename__ = "portal_sign_in_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(String(32))  # requested, sent, send failed, signed in, refused, signed out
    email: Mapped[str | None] = mapped_column(String(200), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    remote_addr: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
