"""Console users, their sessions, API tokens and sign-in lock-out: persistence and service functions.

Passwords are hashed with scrypt (``hashlib``, in werkzeug's ``scrypt:N:r:p$salt$hex``
format, so either side can check the other's hashes). Sessions and API tokens
are random secrets of which only the SHA-256 is stored. Functions take the
session and "now" and leave the commit to the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ticketing.errors import DomainError, InvalidInput
from ticketing.models import ApiToken, ConsoleSession, SignInFailure, User

COORDINATOR = "coordinator"
ENGINEER = "engineer"
ADMIN = "admin"
ROLES = (COORDINATOR, ENGINEER, ADMIN)
MIN_PASSWORD_LENGTH = 10
API_TOKEN_PREFIX = "slt_"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
# Touch a session's last-seen time at most this often: one write per minute, not per request.
_TOUCH_EVERY = timedelta(seconds=60)


class LoginRefused(DomainError):
    """A sign-in was refused; the message is safe to show (it never says which part was wrong)."""


@dataclass(frozen=True)
class SessionCheck:
    """The user behind a console session token, or why there is none."""

    user: User | None
    ended_why: str | None = None


# --- passwords -----------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` (werkzeug-compatible format)."""
    salt = secrets.token_urlsafe(12)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt:{_SCRYPT_N}:{_SCRYPT_R}:{_SCRYPT_P}${salt}${digest}"


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the stored hash; constant-time comparison."""
    try:
        method, salt, digest = stored.split("$", 2)
        name, n, r, p = method.split(":")
        if name != "scrypt":
            return False
        candidate = _scrypt(password, salt, int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(candidate, digest)


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> str:
    return hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p).hex()


# Checked against when the username is unknown, so a miss takes as long as a wrong password.
_DUMMY_HASH = f"scrypt:{_SCRYPT_N}:{_SCRYPT_R}:{_SCRYPT_P}$timing-only$" + "0" * 128


def check_password_strength(password: str) -> None:
    """Raise InvalidInput for a password that is too short."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


# --- users ---------------------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    now: datetime,
    display_name: str | None = None,
) -> User:
    """Add a console user; raises InvalidInput for a taken or malformed name, unknown role or weak password."""
    name = (username or "").strip().lower()
    if not _USERNAME.match(name):
        raise InvalidInput("a username is 2-64 lower-case letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    check_password_strength(password)
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise InvalidInput(f"there is already a user called {name!r}")
    user = User(
        username=name,
        display_name=(display_name or "").strip()[:120] or name,
        role=role,
        password_hash=hash_password(password),
        active=True,
        created_at=now,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User:
    """The user called ``username``; raises InvalidInput."""
    user = session.scalars(select(User).where(User.username == (username or "").strip().lower())).first()
    if user is None:
        raise InvalidInput(f"no user called {username!r}")
    return user


def users(session: Session) -> Sequence[User]:
    """Every user, by name."""
    return session.scalars(select(User).order_by(User.username)).all()


def assignable(session: Session) -> Sequence[User]:
    """The console users a ticket may be assigned to: every active account, by display name."""
    return session.scalars(select(User).where(User.active.is_(True)).order_by(User.display_name, User.username)).all()


def assignee(session: Session, username: str) -> User:
    """The active console user called ``username``, whom a ticket may be assigned to; raises InvalidInput."""
    name = (username or "").strip().lower()
    user = session.scalars(select(User).where(User.username == name, User.active.is_(True))).first() if name else None
    if user is None:
        shown = " ".join((username or "").split())[:64]
        raise InvalidInput(f"{shown!r} is not a console user: choose someone from the list")
    return user


def has_admin(session: Session) -> bool:
    """True once an active admin exists."""
    return session.scalar(select(User.id).where(User.role == ADMIN, User.active.is_(True))) is not None


def set_password(session: Session, user: User, password: str, *, now: datetime) -> None:
    """Change a password; every session of the user ends and any lock-out is lifted."""
    check_password_strength(password)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    end_user_sessions(session, user, now=now, why="password changed")


def set_active(session: Session, user: User, active: bool, *, now: datetime) -> None:
    """Enable or disable an account; disabling ends its sessions."""
    user.active = active
    if not active:
        end_user_sessions(session, user, now=now, why="disabled")


def set_email(user: User, email: str | None) -> None:
    """Set (or, empty, remove) the address where alerts to this user go (admins: a disabled webhook endpoint)."""
    from ticketing.portal import normalize_email

    if not (email or "").strip():
        user.email = None
        return
    address = normalize_email(email)
    if address is None or any(c in (email or "") for c in "\r\n"):
        raise InvalidInput(f"{email!r} is not an email address")
    user.email = address


def unlock(session: Session, user: User) -> None:
    """Lift a lock-out, at every address."""
    user.failed_logins = 0
    user.locked_until = None
    session.execute(delete(SignInFailure).where(SignInFailure.key.like(f"user:{user.username}@%")))


def locked_addresses(session: Session, user: User, *, now: datetime) -> list[str]:
    """The addresses at which this account is locked out now."""
    keys = session.scalars(
        select(SignInFailure.key).where(
            SignInFailure.key.like(f"user:{user.username}@%"), SignInFailure.locked_until > now
        )
    ).all()
    return [k.split("@", 1)[1] for k in keys]


REFUSED = "Wrong username or password, or too many failed sign-ins: try again in a few minutes."


@dataclass(frozen=True)
class SignInLimits:
    """How many failed sign-ins lock an account at one address, and throttle one address for every account."""

    account_failures: int
    account_lockout: timedelta
    address_failures: int
    address_window: timedelta


def authenticate(
    session: Session, username: str, password: str, *, now: datetime, address: str | None, limits: SignInLimits
) -> User:
    """The user whose password this is; raises LoginRefused with one message for every refusal.

    An unknown name, a wrong password, an account locked at this address and a throttled
    address all read the same (and all check a password, so take as long): the answer
    never says which usernames exist. The lock-out is per account *and address*, so
    failures from one address cannot lock the account for everyone else; an address
    failing ``limits.address_failures`` times in the window is refused outright.
    """
    name = (username or "").strip().lower()
    where = address or "unknown"
    address_key, account_key = f"address:{where}", f"user:{name}@{where}"[:200]
    locked = session.scalar(
        select(func.count())
        .select_from(SignInFailure)
        .where(SignInFailure.key.in_((address_key, account_key)), SignInFailure.locked_until > now)
    )
    user = session.scalars(select(User).where(User.username == name)).first()
    matches = verify_password(user.password_hash if user is not None else _DUMMY_HASH, password or "")
    if locked:
        raise LoginRefused(REFUSED)
    if user is None or not matches:
        _count_failure(session, address_key, now, limits.address_window, limits.address_failures)
        if user is not None:
            _count_failure(session, account_key, now, limits.account_lockout, limits.account_failures)
            session.execute(
                update(User)
                .where(User.id == user.id)
                .values(failed_logins=User.failed_logins + 1)
                .execution_options(synchronize_session=False)
            )
        raise LoginRefused(REFUSED)
    if not user.active:
        raise LoginRefused("This account is disabled.")
    session.execute(delete(SignInFailure).where(SignInFailure.key == account_key))
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def _count_failure(session: Session, key: str, now: datetime, window: timedelta, limit: int) -> int:
    """Count one failure under ``key`` in one atomic UPDATE (exact under parallel attempts).

    The count restarts when its window has passed; at ``limit`` the key is locked for ``window``.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(SignInFailure)
        .values(key=key, failures=0, window_started_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    stale = SignInFailure.window_started_at <= now - window
    session.execute(
        update(SignInFailure)
        .where(SignInFailure.key == key)
        .values(
            failures=case((stale, 1), else_=SignInFailure.failures + 1),
            window_started_at=case(
                (stale, literal(now, SignInFailure.window_started_at.type)), else_=SignInFailure.window_started_at
            ),
        )
        .execution_options(synchronize_session=False)
    )
    failures = session.scalar(select(SignInFailure.failures).where(SignInFailure.key == key)) or 0
    if failures >= limit:
        session.execute(
            update(SignInFailure)
            .where(SignInFailure.key == key)
            .values(locked_until=now + window)
            .execution_options(synchronize_session=False)
        )
    return failures


# --- console sessions ----------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session, user: User, *, now: datetime, remote_addr: str | None = None, user_agent: str | None = None
) -> str:
    """A new console session for ``user``; returns the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession.opened(_digest(token), now=now, remote_addr=remote_addr, user_agent=user_agent, user_id=user.id)
    )
    return token


def check_session(
    session: Session,
    token: str | None,
    *,
    now: datetime,
    idle: timedelta,
    lifetime: timedelta,
    touch: bool = True,
) -> SessionCheck:
    """The signed-in user behind ``token``; ends the session when idle too long, too old or the user is disabled.

    ``touch`` False (a page polling by itself) checks without counting as activity.
    """
    if not token:
        return SessionCheck(None)
    row = session.scalars(select(ConsoleSession).where(ConsoleSession.token_hash == _digest(token))).first()
    if row is None or row.ended_at is not None:
        return SessionCheck(None, row.ended_why if row is not None else None)
    why = row.end_if_lapsed(
        lambda: None if row.user.active else "disabled",
        now=now,
        idle=idle,
        lifetime=lifetime,
        touch_every=_TOUCH_EVERY,
        touch=touch,
    )
    return SessionCheck(None, why) if why is not None else SessionCheck(row.user)


def end_session(session: Session, token: str | None, *, now: datetime, why: str = "signed out") -> None:
    """Sign out: the token no longer counts, whoever holds a copy of the cookie."""
    if not token:
        return
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == _digest(token), ConsoleSession.ended_at.is_(None))
        .values(ended_at=now, ended_why=why)
    )


def end_user_sessions(session: Session, user: User, *, now: datetime, why: str) -> None:
    """End every open session of ``user``."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == user.id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=now, ended_why=why)
    )


# --- API tokens ----------------------------------------------------------------------------------------


READ = "read"  # an API token that may only read (GET)
WRITE = "write"  # an API token that may also open and change tickets
TOKEN_SCOPES = (READ, WRITE)


def create_api_token(
    session: Session, name: str, *, now: datetime, created_by: str, scope: str = WRITE
) -> tuple[ApiToken, str]:
    """A new API token for one integration; returns the row and the token, which is shown only this once."""
    clean = (name or "").strip()
    if not _TOKEN_NAME.match(clean):
        raise InvalidInput("a token name is 1-64 letters, digits, '.', '_' or '-'")
    if scope not in TOKEN_SCOPES:
        raise InvalidInput(f"a token's scope is one of {', '.join(TOKEN_SCOPES)}, not {scope!r}")
    existing = session.scalars(select(ApiToken).where(ApiToken.name == clean)).first()
    if existing is not None:
        if existing.revoked_at is None:
            raise InvalidInput(f"there is already a live token called {clean!r} (revoke it first)")
        session.delete(existing)  # a revoked token's name may be reused
        session.flush()
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=clean,
        token_hash=_digest(token),
        prefix=token[:10],
        scope=scope,
        created_at=now,
        created_by=created_by[:120],
    )
    session.add(row)
    session.flush()
    return row, token


def api_token_for(session: Session, presented: str | None, *, now: datetime) -> ApiToken | None:
    """The live token matching a presented bearer token, or None; records when it was last used."""
    if not presented or not presented.startswith(API_TOKEN_PREFIX) or len(presented) > 200:
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _digest(presented))).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= _TOUCH_EVERY:
        row.last_used_at = now
    return row


def api_tokens(session: Session) -> Sequence[ApiToken]:
    """Every API token, by name."""
    return session.scalars(select(ApiToken).order_by(ApiToken.name)).all()


def revoke_api_token(session: Session, name: str, *, now: datetime) -> ApiToken:
    """Revoke a token by name; deleted from use at once. Raises InvalidInput for an unknown name."""
    row = session.scalars(select(ApiToken).where(ApiToken.name == (name or "").strip())).first()
    if row is None:
        raise InvalidInput(f"no API token called {name!r}")
    if row.revoked_at is None:
        row.revoked_at = now
    return row
