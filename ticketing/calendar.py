"""The business-hours calendar: when the helpdesk is open, and business-time arithmetic.

Pure code: times come in as timezone-aware datetimes and go out the same way;
arithmetic is done in UTC so daylight-saving transitions cannot shift it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ticketing.policy import SupportPolicy

_MAX_DAYS = 3660  # ten years: any target ends long before, a config with no open day fails loudly


def require_aware(at: datetime, name: str = "time") -> None:
    """Raise ValueError for a naive datetime: wall-clock times without a zone are ambiguous."""
    if not isinstance(at, datetime):
        raise ValueError(f"{name} must be a datetime, not {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {at.isoformat()})")


class BusinessCalendar:
    """Business hours, business days and observed holidays of one support policy."""

    def __init__(self, policy: SupportPolicy) -> None:
        self.policy = policy
        self._holidays: dict[int, dict[date, str]] = {}

    def observed_holidays(self, year: int) -> dict[date, str]:
        """The holidays observed in ``year``, by date (weekend holidays moved to a weekday)."""
        cached = self._holidays.get(year)
        if cached is not None:
            return cached
        observed: dict[date, str] = {}
        # A holiday of the next year can be observed this year (New Year's Day on a Saturday).
        for rule_year in (year - 1, year, year + 1):
            for rule in self.policy.holiday_rules:
                day = rule.actual_date(rule_year)
                if self.policy.observe_weekends:
                    if day.weekday() == 5:
                        day -= timedelta(days=1)
                    elif day.weekday() == 6:
                        day += timedelta(days=1)
                if day.year == year:
                    observed[day] = rule.name
        for extra in self.policy.extra_dates:
            if extra.year == year:
                observed.setdefault(extra, "Office closed")
        self._holidays[year] = dict(sorted(observed.items()))
        return self._holidays[year]

    def holiday_name(self, day: date) -> str | None:
        """The observed holiday on ``day``, or None."""
        return self.observed_holidays(day.year).get(day)

    def is_business_day(self, day: date) -> bool:
        """True on a configured weekday that is not an observed holiday."""
        return day.weekday() in self.policy.business_days and self.holiday_name(day) is None

    def local(self, at: datetime) -> datetime:
        """``at`` in the policy's time zone."""
        require_aware(at)
        return at.astimezone(self.policy.timezone)

    def is_business_hours(self, at: datetime) -> bool:
        """True from opening (inclusive) to closing (exclusive) on a business day."""
        local = self.local(at)
        return self.is_business_day(local.date()) and self.policy.open <= local.time() < self.policy.close

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The business-hours window of ``day`` in UTC, or None when closed all day."""
        if not self.is_business_day(day):
            return None
        return self._utc(day, self.policy.open), self._utc(day, self.policy.close)

    def next_opening(self, at: datetime) -> datetime:
        """The first business-hours instant at or after ``at`` (``at`` itself when open)."""
        require_aware(at)
        start = at.astimezone(UTC)
        day = self.local(at).date()
        for _ in range(_MAX_DAYS):
            win = self.window(day)
            if win is not None and start < win[1]:
                return max(start, win[0]).astimezone(self.policy.timezone)
            day += timedelta(days=1)
        raise ValueError("the support policy has no business hours in the next ten years")

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when ``duration`` of business time has run from ``start``."""
        require_aware(start, "start")
        remaining = duration
        cursor = start.astimezone(UTC)
        day = self.local(start).date()
        for _ in range(_MAX_DAYS):
            win = self.window(day)
            if win is not None and cursor < win[1]:
                begin = max(cursor, win[0])
                available = win[1] - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(self.policy.timezone)
                remaining -= available
            day += timedelta(days=1)
        raise ValueError("the support policy has no business hours in the next ten years")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much business time lies between ``start`` and ``end`` (zero if end <= start)."""
        require_aware(start, "start")
        require_aware(end, "end")
        a, b = start.astimezone(UTC), end.astimezone(UTC)
        total = timedelta(0)
        if b <= a:
            return total
        day = self.local(start).date()
        last = self.local(end).date()
        while day <= last:
            win = self.window(day)
            if win is not None:
                overlap = min(b, win[1]) - max(a, win[0])
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total

    def advance(self, clock: str, start: datetime, duration: timedelta) -> datetime:
        """Run a clock ('24x7' or 'business') for ``duration`` from ``start``."""
        if clock == "24x7":
            require_aware(start, "start")
            return (start.astimezone(UTC) + duration).astimezone(self.policy.timezone)
        return self.add_business_time(start, duration)

    def elapsed(self, clock: str, start: datetime, end: datetime) -> timedelta:
        """Clock time ('24x7' or 'business') that runs between ``start`` and ``end``."""
        if clock == "24x7":
            require_aware(start, "start")
            require_aware(end, "end")
            return max(end - start, timedelta(0))
        return self.business_time_between(start, end)

    def _utc(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.policy.timezone).astimezone(UTC)
