"""EventBridge Scheduler's schedule expressions: when `at(...)`, `rate(...)` and `cron(...)` fire.

Pure functions (no moto, no clock of their own), so that the runner in localcloud.api.scheduler
and the unit tests share them. The rules are Scheduler's:

- `at(yyyy-mm-ddThh:mm:ss)`: once, at that wall-clock time in the schedule's time zone.
- `rate(value unit)`: every value minutes, hours or days (`minute`/`hour`/`day` for 1), counted
  from the schedule's start (its StartDate, else when it was created).
- `cron(minutes hours day-of-month month day-of-week year)`: six fields in the time zone; `,`
  `-` `*` `/` everywhere, `?` in one of the two day fields (exactly one of them), month names
  JAN-DEC, weekday names SUN-SAT with 1 = Sunday, `L` (last day of the month; `5L` the last
  Thursday), `LW` and `nW` (the weekday nearest the nth), `n#k` (the kth weekday n of the month).

Wall-clock times that a daylight-saving change skips never fire; those it repeats fire once (at
their first occurrence).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
MONTHS = {name: index for index, name in enumerate(calendar.month_abbr) if name}
MONTH_NAMES = {name.upper(): index for name, index in MONTHS.items()}
# Scheduler's weekdays: 1 = SUN ... 7 = SAT.
WEEKDAY_NAMES = {name: index for index, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
# How far ahead a cron expression is searched for its next time (a year field may name a far year).
SEARCH_DAYS = 366 * 5
RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


class ExpressionError(ValueError):
    """A schedule expression or time zone Scheduler would refuse (its ValidationException)."""


def zone(name: str | None) -> dt.tzinfo:
    """The time zone of ScheduleExpressionTimezone (UTC when absent)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ExpressionError(f"Invalid time zone {name!r}: use an IANA name such as Europe/Berlin") from exc


def scheduler_weekday(day: dt.date) -> int:
    """A date's weekday as Scheduler numbers it (1 = Sunday)."""
    return (day.weekday() + 1) % 7 + 1


@dataclass(frozen=True)
class Cron:
    """A parsed cron(...) expression."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: str
    months: frozenset[int]
    weekdays: str
    years: frozenset[int]

    def day_matches(self, day: dt.date) -> bool:
        """Whether the expression fires on this (local) date."""
        if day.year not in self.years or day.month not in self.months:
            return False
        if self.days != "?":
            return day_of_month_matches(self.days, day)
        return weekday_matches(self.weekdays, day)


def number(text: str, names: dict[str, int], low: int, high: int, field: str) -> int:
    """One value of a field, by number or name, within its range."""
    value = names.get(text.upper()) if names else None
    if value is None:
        if not text.isdigit():
            raise ExpressionError(f"cron field {field}: {text!r} is not a value")
        value = int(text)
    if not low <= value <= high:
        raise ExpressionError(f"cron field {field}: {value} is outside {low}-{high}")
    return value


def values(text: str, low: int, high: int, field: str, names: dict[str, int] | None = None) -> frozenset[int]:
    """The values a cron field lists (`,` `-` `*` `/`)."""
    found: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ExpressionError(f"cron field {field}: bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            first, last = low, high
        elif "-" in part:
            start, end = part.split("-", 1)
            first, last = number(start, names or {}, low, high, field), number(end, names or {}, low, high, field)
            if first > last:
                raise ExpressionError(f"cron field {field}: range {part!r} runs backwards")
        else:
            first = number(part, names or {}, low, high, field)
            last = high if step > 1 else first
        found.update(range(first, last + 1, step))
    return frozenset(found)


def check_day_of_month(text: str) -> None:
    """Refuse a day-of-month field Scheduler would refuse."""
    if text in ("?", "L", "LW"):
        return
    if re.fullmatch(r"\d{1,2}W", text):
        number(text[:-1], {}, 1, 31, "day-of-month")
        return
    values(text, 1, 31, "day-of-month")


def check_weekday(text: str) -> None:
    """Refuse a day-of-week field Scheduler would refuse."""
    if text in ("?", "L"):
        return
    if re.fullmatch(r"\w+L", text):
        number(text[:-1], WEEKDAY_NAMES, 1, 7, "day-of-week")
        return
    if re.fullmatch(r"\w+#\d", text):
        day, nth = text.split("#")
        number(day, WEEKDAY_NAMES, 1, 7, "day-of-week")
        number(nth, {}, 1, 5, "day-of-week")
        return
    values(text, 1, 7, "day-of-week", WEEKDAY_NAMES)


def last_day(day: dt.date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def nearest_weekday(day: dt.date, wanted: int) -> int:
    """The day of the month nearest to `wanted` that is Monday to Friday, within the month (`nW`)."""
    target = day.replace(day=min(wanted, last_day(day)))
    if target.weekday() == 5:
        target = target - dt.timedelta(days=1) if target.day > 1 else target + dt.timedelta(days=2)
    elif target.weekday() == 6:
        target = target + dt.timedelta(days=1) if target.day < last_day(day) else target - dt.timedelta(days=2)
    return target.day


def day_of_month_matches(text: str, day: dt.date) -> bool:
    if text == "L":
        return day.day == last_day(day)
    if text == "LW":
        return day.day == nearest_weekday(day, last_day(day))
    if text.endswith("W"):
        return day.day == nearest_weekday(day, int(text[:-1]))
    return day.day in values(text, 1, 31, "day-of-month")


def weekday_matches(text: str, day: dt.date) -> bool:
    weekday = scheduler_weekday(day)
    if text == "L":
        return weekday == 7
    if text.endswith("L"):
        wanted = number(text[:-1], WEEKDAY_NAMES, 1, 7, "day-of-week")
        return weekday == wanted and day.day + 7 > last_day(day)
    if "#" in text:
        name, nth = text.split("#")
        wanted = number(name, WEEKDAY_NAMES, 1, 7, "day-of-week")
        return weekday == wanted and (day.day - 1) // 7 + 1 == int(nth)
    return weekday in values(text, 1, 7, "day-of-week", WEEKDAY_NAMES)


def parse_cron(body: str) -> Cron:
    """The six fields of cron(...), checked as Scheduler checks them."""
    fields = body.split()
    if len(fields) != 6:
        raise ExpressionError(
            f"cron({body}) has {len(fields)} fields; it needs six: minutes hours day-of-month month day-of-week year"
        )
    minutes, hours, days, months, weekdays, years = fields
    if (days == "?") == (weekdays == "?"):
        raise ExpressionError(f"cron({body}): exactly one of day-of-month and day-of-week must be '?'")
    check_day_of_month(days)
    check_weekday(weekdays)
    return Cron(
        minutes=values(minutes, 0, 59, "minutes"),
        hours=values(hours, 0, 23, "hours"),
        days=days,
        months=values(months, 1, 12, "month", MONTH_NAMES),
        weekdays=weekdays,
        years=values(years, 1970, 2199, "year"),
    )


def parse_at(body: str, tz: dt.tzinfo) -> dt.datetime:
    try:
        local = dt.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
    except ValueError as exc:
        raise ExpressionError(f"at({body}): use at(yyyy-mm-ddThh:mm:ss)") from exc
    return local.replace(tzinfo=tz).astimezone(UTC)


def parse_rate(body: str) -> dt.timedelta:
    match = re.fullmatch(r"(\d+) (\w+)", body.strip())
    if not match or match.group(2) not in RATE_UNITS or int(match.group(1)) == 0:
        raise ExpressionError(f"rate({body}): use rate(value unit) with unit minutes, hours or days")
    value, unit = int(match.group(1)), match.group(2)
    if (value == 1) != (unit in ("minute", "hour", "day")):
        raise ExpressionError(f"rate({body}): use the singular unit for 1 and the plural otherwise")
    return dt.timedelta(seconds=value * RATE_UNITS[unit])


def check(expression: str, timezone: str | None = None) -> None:
    """Refuse an expression or time zone that Scheduler would refuse (ExpressionError)."""
    tz = zone(timezone)
    kind, body = split(expression)
    if kind == "cron":
        parse_cron(body)
    elif kind == "at":
        parse_at(body, tz)
    else:
        parse_rate(body)


def split(expression: str) -> tuple[str, str]:
    match = re.fullmatch(r"(at|rate|cron)\((.*)\)", (expression or "").strip())
    if not match:
        raise ExpressionError(f"Invalid schedule expression {expression!r}: use at(...), rate(...) or cron(...)")
    return match.group(1), match.group(2).strip()


def wall_time_exists(local: dt.datetime) -> bool:
    """Whether a wall-clock time happens in its zone (a daylight-saving change skips some)."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def next_cron(cron: Cron, tz: dt.tzinfo, after: dt.datetime) -> dt.datetime | None:
    """The first time after `after` (UTC) at which the cron expression fires, within SEARCH_DAYS."""
    day = after.astimezone(tz).date()
    for _ in range(SEARCH_DAYS):
        if cron.day_matches(day):
            for hour in sorted(cron.hours):
                for minute in sorted(cron.minutes):
                    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz, fold=0)
                    if not wall_time_exists(local):
                        continue
                    moment = local.astimezone(UTC)
                    if moment > after:
                        return moment
        day += dt.timedelta(days=1)
    return None


def next_time(
    expression: str, timezone: str | None, after: dt.datetime, start: dt.datetime | None = None
) -> dt.datetime | None:
    """The first time strictly after `after` (aware, UTC) at which the expression fires, or None.

    `start` anchors rate(...) (the schedule's StartDate, else its creation time); at(...) fires
    only once, so None is returned once its time has passed.
    """
    tz = zone(timezone)
    kind, body = split(expression)
    if kind == "at":
        moment = parse_at(body, tz)
        return moment if moment > after else None
    if kind == "rate":
        period = parse_rate(body)
        anchor = start or after
        if anchor > after:
            return anchor + period
        periods = int((after - anchor) / period) + 1
        return anchor + periods * period
    return next_cron(parse_cron(body), tz, after)
