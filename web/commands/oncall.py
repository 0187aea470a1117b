"""On-call commands: ``flask --app wsgi oncall now|next|ack|page-again|escalate-now|pages|check``."""

from __future__ import annotations

from datetime import datetime

import click
from flask import Flask
from flask.cli import AppGroup

from runtime import Runtime
from runtime.web import rt as _runtime
from ticketing import lifecycle, paging, phone
from ticketing.calendar import BusinessCalendar
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.oncall import OnCall
from ticketing.sla import calendar_for

oncall = AppGroup("oncall", help="Who is on call now and next; acknowledge a P1 page.")
AT_HELP = "A local time 'YYYY-MM-DD HH:MM' (on-call time zone) instead of now."


def _config(runtime: Runtime) -> OnCall:
    try:
        return paging.oncall_from(runtime.settings.oncall_file)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None


def _asked(text: str | None) -> tuple[OnCall, datetime, BusinessCalendar]:
    """The on-call file, the moment asked about (``--at``, else now) and the business calendar."""
    runtime = _runtime()
    config = _config(runtime)
    cal = calendar_for(runtime.policy)
    if not text:
        return config, runtime.now(), cal
    try:
        at = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise click.BadParameter("expected 'YYYY-MM-DD HH:MM'", param_hint="--at") from None
    return config, at.replace(tzinfo=config.timezone), cal


def _when(at: datetime, config: OnCall) -> str:
    return f"{at.astimezone(config.timezone):%a %Y-%m-%d %H:%M %Z}"


def _who(config: OnCall, key: str) -> str:
    person = config.people[key]
    return f"{person.name} ({phone.mask(person.mobile)})"


@oncall.command("now")
@click.option("--at", "at_text", help=AT_HELP)
def now(at_text: str | None) -> None:
    """Which escalation policy a P1 would page now, whom each step reaches, and who holds each rotation."""
    config, at, cal = _asked(at_text)
    business = cal.is_business_hours(at)
    holiday = cal.holiday_name(cal.local(at).date())
    hours = "business hours" if business else "after hours" + (f" ({holiday})" if holiday else "")
    policy = config.policy_for(business)
    click.echo(f"{_when(at, config)}: {hours}")
    click.echo(f"policy {policy.key}: {policy.name}; {policy.rounds} round(s), then fallback")
    for position in policy.positions():
        if position.round > 1:
            continue
        people = ", ".join(_who(config, p.key) for p in config.people_for(position.target, at))
        if position.is_fallback:
            click.echo(f"  fallback: {people}")
        else:
            wait = int(position.wait.total_seconds() // 60)
            click.echo(f"  step {position.step} ({position.target.label}, wait {wait} min): {people}")
    for schedule in config.schedules.values():
        override = schedule.override_at(at)
        note = " (override)" if override is not None else ""
        click.echo(f"schedule {schedule.key}: {_who(config, schedule.on_call(at))}{note}")


@oncall.command("next")
@click.option("--at", "at_text", help=AT_HELP)
def next_(at_text: str | None) -> None:
    """The next hand-off of every rotation, and when the policy next switches between business and after hours."""
    config, at, cal = _asked(at_text)
    if cal.is_business_hours(at):
        window = cal.window(cal.local(at).date())
        assert window is not None
        click.echo(f"after hours from {_when(window[1], config)}: policy {config.after_hours_policy}")
    else:
        click.echo(f"business hours from {_when(cal.next_opening(at), config)}: policy {config.business_hours_policy}")
    for schedule in config.schedules.values():
        when, key = schedule.next_change(at)
        click.echo(
            f"schedule {schedule.key}: {_who(config, schedule.on_call(at))} until {_when(when, config)}, "
            f"then {_who(config, key)}"
        )


@oncall.command("ack")
@click.argument("ticket")
@click.option(
    "--by", "by", required=True, help="Who acknowledges (a person's key or name from the on-call file, or any name)."
)
def ack(ticket: str, by: str) -> None:
    """Acknowledge a ticket's page: every pending escalation step stops."""
    runtime = _runtime()
    config = _config(runtime)
    person = config.find_person(by)
    name = person.name if person is not None else by.strip()
    try:
        with transaction(runtime.sessions) as session:
            result = paging.acknowledge(
                session,
                ticket,
                name,
                runtime.now(),
                "cli",
                person=person.key if person is not None else None,
                counts_as_first_response=runtime.settings.ack_counts_as_first_response,
            )
    except (DomainError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if result.already:
        click.echo(
            f"ticket {result.ticket} was already acknowledged by {result.by} via {result.via} at {_when(result.at, config)}"
        )
    else:
        click.echo(f"ticket {result.ticket} acknowledged by {result.by}; escalation stopped")


def _paging_action(ticket: str, by: str, act: str) -> None:
    from workers.paging import run_step

    runtime = _runtime()
    try:
        with transaction(runtime.sessions) as session:
            t = lifecycle.get_ticket(session, ticket)
            escalation = (paging.page_again if act == "again" else paging.escalate_now)(
                session, t, by=by.strip() or "cli", now=runtime.now()
            )
            number, position = int(t.number or 0), escalation.next_position
    except (DomainError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    outcome = run_step(runtime, number, position)
    click.echo(f"ticket {number}: {'paging restarted' if act == 'again' else 'escalated now'}: {outcome}")


@oncall.command("page-again")
@click.argument("ticket")
@click.option("--by", "by", required=True, help="Who restarts the paging (audited).")
def page_again(ticket: str, by: str) -> None:
    """Restart a ticket's escalation from its first step now (audited)."""
    _paging_action(ticket, by, "again")


@oncall.command("escalate-now")
@click.argument("ticket")
@click.option("--by", "by", required=True, help="Who escalates (audited).")
def escalate_now(ticket: str, by: str) -> None:
    """Page a ticket's next escalation step now instead of after its wait (audited)."""
    _paging_action(ticket, by, "now")


@oncall.command("pages")
@click.argument("ticket")
def pages(ticket: str) -> None:
    """Every page sent for a ticket: step, person, channel, Twilio SID and delivery status."""
    runtime = _runtime()
    config = _config(runtime)
    with runtime.sessions() as session:
        try:
            t = lifecycle.get_ticket(session, ticket)
        except DomainError as exc:
            raise click.ClickException(str(exc)) from None
        escalation = paging.escalation_of(session, t)
        if escalation is None:
            click.echo(f"ticket {t.number} was not paged")
            return
        counts = paging.delivery_of(escalation)
        nobody = " - PAGING FAILED, NOBODY REACHED" if escalation.unreached_since and not counts.delivered else ""
        click.echo(
            f"ticket {t.number}: {escalation.state}, policy {escalation.policy or '-'}, "
            f"{counts.delivered} of {counts.total} pages delivered{nobody}"
        )
        if escalation.acknowledged_at is not None:
            click.echo(
                f"acknowledged by {escalation.acknowledged_by} via {escalation.acknowledged_via} at {_when(escalation.acknowledged_at, config)}"
            )
        for p in escalation.pages:
            where = (
                "follow-up"
                if p.channel == paging.FOLLOW_UP
                else ("fallback" if p.round == 0 else f"r{p.round}s{p.step}")
            )
            click.echo(
                f"  {_when(p.claimed_at, config)}  {where:<9} {p.person_name:<24} {p.channel:<9} {p.state:<9} "
                f"{p.delivery_status or '-':<11} {p.twilio_sid or p.to_address or '-'}"
                f"{'  ' + p.error[:60] if p.error else ''}"
            )


@oncall.command("check")
def check() -> None:
    """Validate the on-call file and summarise it."""
    runtime = _runtime()
    config = _config(runtime)
    click.echo(
        f"{runtime.settings.oncall_file}: {len(config.people)} people, {len(config.teams)} teams, "
        f"{len(config.schedules)} schedules, policies {', '.join(config.policies)}; "
        f"business hours -> {config.business_hours_policy}, after hours -> {config.after_hours_policy}"
    )


def register(app: Flask) -> None:
    """Attach the oncall command group to the app."""
    app.cli.add_command(oncall)
