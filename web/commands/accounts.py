"""Console accounts and API tokens from the command line: ``flask --app wsgi users|api-token ...``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from runtime.web import rt as _runtime
from ticketing import accounts
from web.commands.transactions import changing

users = AppGroup("users", help="Console users: coordinators, engineers, admins.")
api_token = AppGroup("api-token", help="Tokens of the JSON API, one per integration.")


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(accounts.ROLES), default=accounts.COORDINATOR, show_default=True)
@click.option("--name", "display_name", help="Name shown in the console and the audit log (default: the username).")
@click.option("--password", help="For scripts; prompted (hidden, twice) when left out.")
def add_user(username: str, role: str, display_name: str | None, password: str | None) -> None:
    """Add a console user."""
    runtime = _runtime()
    secret = _password(password)
    with changing(runtime.sessions) as s:
        user = accounts.create_user(
            s, username=username, password=secret, role=role, now=runtime.now(), display_name=display_name
        )
        click.echo(f"user {user.username} ({user.role}) added")


@users.command("create-admin")
@click.argument("username")
@click.option("--name", "display_name", help="Name shown in the console (default: the username).")
@click.option("--password", help="For scripts; prompted (hidden, twice) when left out.")
def create_admin(username: str, display_name: str | None, password: str | None) -> None:
    """Create the first admin; refused once an admin exists (then use `users add --role admin`)."""
    runtime = _runtime()
    with runtime.sessions() as s:
        if accounts.has_admin(s):
            raise click.ClickException("an admin already exists: use `users add NAME --role admin`")
    secret = _password(password)
    with changing(runtime.sessions) as s:
        accounts.create_user(
            s, username=username, password=secret, role=accounts.ADMIN, now=runtime.now(), display_name=display_name
        )
    click.echo(f"admin {username} created: sign in at {runtime.settings.public_base_url}/login")


@users.command("list")
def list_users() -> None:
    """Every user, role and state."""
    runtime = _runtime()
    now = runtime.now()
    with runtime.sessions() as s:
        for u in accounts.users(s):
            state = "active" if u.active else "disabled"
            places = accounts.locked_addresses(s, u, now=now)
            if places:
                state += f", locked at {len(places)} address(es)"
            last = u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "never"
            click.echo(f"{u.username:<20} {u.role:<12} {state:<16} last sign-in {last}  {u.display_name}")


@users.command("set-password")
@click.argument("username")
@click.option("--password", help="For scripts; prompted (hidden, twice) when left out.")
def set_password(username: str, password: str | None) -> None:
    """Change a password (ends the user's sessions, lifts a lock-out)."""
    runtime = _runtime()
    secret = _password(password)
    with changing(runtime.sessions) as s:
        accounts.set_password(s, accounts.get_user(s, username), secret, now=runtime.now())
    click.echo(f"password of {username} changed")


@users.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Disable an account; its sessions end at once."""
    _set_active(username, False)


@users.command("enable")
@click.argument("username")
def enable(username: str) -> None:
    """Enable a disabled account."""
    _set_active(username, True)


def _set_active(username: str, active: bool) -> None:
    runtime = _runtime()
    with changing(runtime.sessions) as s:
        accounts.set_active(s, accounts.get_user(s, username), active, now=runtime.now())
    click.echo(f"{username} {'enabled' if active else 'disabled'}")


@users.command("set-email")
@click.argument("username")
@click.argument("email")
def set_email(username: str, email: str) -> None:
    """Set the address alerts go to (an admin's: a webhook endpoint disabled); an empty EMAIL removes it."""
    runtime = _runtime()
    with changing(runtime.sessions) as s:
        accounts.set_email(accounts.get_user(s, username), email)
    click.echo(f"{username}: {'address set' if email.strip() else 'address removed'}")


@users.command("unlock")
@click.argument("username")
def unlock(username: str) -> None:
    """Lift a lock-out after repeated failed sign-ins."""
    runtime = _runtime()
    with changing(runtime.sessions) as s:
        accounts.unlock(s, accounts.get_user(s, username))
    click.echo(f"{username} unlocked")


@api_token.command("create")
@click.argument("name")
@click.option("--by", "created_by", default="cli", show_default=True, help="Who created it (kept with the token).")
@click.option(
    "--scope",
    type=click.Choice(accounts.TOKEN_SCOPES),
    default=accounts.WRITE,
    show_default=True,
    help="read: GET only (reports, dashboards); write: also open and change tickets (PSA sync).",
)
def create_token(name: str, created_by: str, scope: str) -> None:
    """Create a token for one integration; it is printed once, only its hash is stored."""
    runtime = _runtime()
    with changing(runtime.sessions) as s:
        _row, token = accounts.create_api_token(s, name, now=runtime.now(), created_by=created_by, scope=scope)
    access = "read-only" if scope == accounts.READ else "read and write"
    click.echo(f"API token {name} ({access}) created. Store it now, it is not shown again:")
    click.echo(token)


@api_token.command("list")
def list_tokens() -> None:
    """Every token: name, prefix, scope, created, last used, revoked."""
    runtime = _runtime()
    with runtime.sessions() as s:
        for t in accounts.api_tokens(s):
            used = t.last_used_at.isoformat(timespec="minutes") if t.last_used_at else "never"
            state = f"revoked {t.revoked_at.isoformat(timespec='minutes')}" if t.revoked_at else "live"
            click.echo(f"{t.name:<24} {t.prefix}…  {t.scope:<6} {state:<28} last used {used}")


@api_token.command("revoke")
@click.argument("name")
def revoke_token(name: str) -> None:
    """Revoke a token; requests with it are refused at once."""
    runtime = _runtime()
    with changing(runtime.sessions) as s:
        accounts.revoke_api_token(s, name, now=runtime.now())
    click.echo(f"API token {name} revoked")


def register(app: Flask) -> None:
    """Attach the users and api-token command groups."""
    app.cli.add_command(users)
    app.cli.add_command(api_token)
