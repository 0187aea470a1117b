"""Development mode's simulated time from the command line: ``bin/supportline time show|reset``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from redis.exceptions import RedisError

from runtime import system_clock
from runtime.devclock import SharedOffsetClock
from runtime.web import rt as _runtime

time_group = AppGroup("time", help="Development mode's simulated time (moved by `ivr.simulate --at` and `make demo`).")


def _shared_clock() -> SharedOffsetClock:
    settings = _runtime().settings
    if not (settings.dev_mode and settings.allow_simulated_time):
        raise click.ClickException(
            "simulated time is off here (not the development mode of `make run`): every process uses the real clock"
        )
    return SharedOffsetClock(system_clock, settings.redis_url)


@time_group.command("show")
def show() -> None:
    """The service's present: the real time, or the simulated time and its offset."""
    clock = _shared_clock()
    tz = _runtime().policy.timezone
    real = system_clock()
    if not clock.simulating():
        click.echo(f"real time: {real.astimezone(tz):%a %Y-%m-%d %H:%M:%S %Z} (no simulated time set)")
        return
    offset = clock.offset()
    hours = offset.total_seconds() / 3600
    click.echo(f"SIMULATED {clock().astimezone(tz):%a %Y-%m-%d %H:%M:%S %Z} ({hours:+.2f} h from the real clock)")
    click.echo(f"real time: {real.astimezone(tz):%a %Y-%m-%d %H:%M:%S %Z}; back to it: bin/supportline time reset")


@time_group.command("reset")
def reset() -> None:
    """Back to the real clock for every process of the development service."""
    clock = _shared_clock()
    try:
        removed = clock.reset()
    except RedisError as exc:
        raise click.ClickException(f"Redis is unreachable ({exc}): is `make run` running?") from None
    click.echo("simulated time removed: the real clock again" if removed else "no simulated time was set")


def register(app: Flask) -> None:
    """Attach the time command group."""
    app.cli.add_command(time_group)
