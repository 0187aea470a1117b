"""On-call: the signed-in engineer's incidents first, then who is on call now and next, overrides, and the
escalation policies in force."""

from __future__ import annotations

from flask import render_template

from ticketing import paging
from ticketing.errors import DomainError
from ticketing.sla import calendar_for
from web.console import present
from web.console.auth import blueprint, rt, viewer


@blueprint.get("/oncall")
def oncall() -> tuple[str, int] | str:
    """My incidents (the P1s paging me or acknowledged by me), who is on call now and next, the policies."""
    runtime = rt()
    now = runtime.now()
    try:
        config = paging.oncall_from(runtime.settings.oncall_file)
    except DomainError as exc:
        return render_template("console/error.html", title="On-call file broken", message=str(exc)), 500
    cal = calendar_for(runtime.policy)
    business = cal.is_business_hours(now)
    holiday = cal.holiday_name(cal.local(now).date())
    if business:
        window = cal.window(cal.local(now).date())
        switch_at, switch_to = (window[1] if window else now), config.after_hours_policy
    else:
        switch_at, switch_to = cal.next_opening(now), config.business_hours_policy
    schedules = []
    for schedule in config.schedules.values():
        change_at, next_key = schedule.next_change(now)
        current = schedule.override_at(now)
        schedules.append(
            {
                "schedule": schedule,
                "now": config.people[schedule.on_call(now)],
                "override": current,
                "next_at": change_at,
                "next": config.people[next_key],
                "overrides": [o for o in schedule.overrides if o.end > now],
            }
        )
    in_force = config.policy_for(business)
    steps = [
        (position, config.people_for(position.target, now)) for position in in_force.positions() if position.round <= 1
    ]
    me = config.person_for_user(viewer().username, viewer().display_name)
    with runtime.sessions() as s:
        incidents = paging.incidents_for(s, me.key) if me is not None else []
        views = present.ticket_views(s, [i.ticket for i in incidents], runtime.policy, now)
        return render_template(
            "console/oncall.html",
            config=config,
            business=business,
            holiday=holiday,
            in_force=in_force,
            steps=steps,
            switch_at=switch_at,
            switch_to=config.policies[switch_to],
            schedules=schedules,
            oncall_file=runtime.settings.oncall_file,
            me=me,
            incidents=list(zip(incidents, views, strict=True)),
        )
