"""Users and API tokens from the command line."""

from __future__ import annotations

from flask import Flask

from runtime import Runtime
from tests.web.conftest import Console
from ticketing import accounts


def test_the_first_admin_is_created_once_then_users_are_added(app: Flask, runtime: Runtime) -> None:
    cli = app.test_cli_runner()
    result = cli.invoke(args=["users", "create-admin", "root", "--password", "a long admin secret"])
    assert result.exit_code == 0 and "admin root created" in result.output
    again = cli.invoke(args=["users", "create-admin", "other", "--password", "a long admin secret"])
    assert again.exit_code != 0 and "an admin already exists" in again.output
    prompted = cli.invoke(
        args=["users", "add", "dana", "--role", "coordinator", "--name", "Dana Reyes"],
        input="correct horse battery\ncorrect horse battery\n",
    )
    assert prompted.exit_code == 0 and "user dana (coordinator) added" in prompted.output
    weak = cli.invoke(args=["users", "add", "eli", "--role", "engineer", "--password", "short"])
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    listing = cli.invoke(args=["users", "list"]).output
    assert "dana" in listing and "coordinator" in listing and "root" in listing
    signed_in = Console(app.test_client())
    assert signed_in.login("dana", "correct horse battery").status_code == 303
    assert cli.invoke(args=["users", "disable", "dana"]).exit_code == 0
    assert signed_in.get("/queue").status_code == 302  # disabling ends the session at once


def test_an_api_token_is_shown_once_and_works(app: Flask, runtime: Runtime) -> None:
    cli = app.test_cli_runner()
    result = cli.invoke(args=["api-token", "create", "connectwise"])
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    assert token.startswith(accounts.API_TOKEN_PREFIX)
    client = app.test_client()
    assert client.get("/api/tickets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert token not in cli.invoke(args=["api-token", "list"]).output
    assert cli.invoke(args=["api-token", "create", "connectwise"]).exit_code != 0
    assert cli.invoke(args=["api-token", "revoke", "connectwise"]).exit_code == 0
    assert client.get("/api/tickets", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert cli.invoke(args=["api-token", "create", "connectwise"]).exit_code == 0  # a revoked name can be reused
