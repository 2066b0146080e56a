"""The idle checker's decisions and parsers (roles/autostop's autostop.py), imported from the role."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles/autostop/files/usr/local/lib/labcloud/autostop.py"
spec = importlib.util.spec_from_file_location("autostop", SCRIPT)
autostop = importlib.util.module_from_spec(spec)
sys.modules["autostop"] = autostop
spec.loader.exec_module(autostop)

NOW = 1_800_000_000.0
MINUTE = 60.0
ROLE = {
    "idle_minutes": 60,
    "warn_minutes": 5,
    "snooze_minutes": 120,
    "snooze_max_minutes": 1440,
    "jupyter_port": 8887,
    "jupyter_service": "jupyterlab",
    "jupyter_user": "admin",
    "token_file": "/var/lib/jupyterlab/token",
    "snooze_file": "/home/admin/notebooks/.autostop-snooze",
    "state_dir": "/var/lib/labcloud-autostop",
}
SETTINGS = autostop.Settings.from_dict(ROLE)


def iso(seconds: float) -> str:
    return autostop.datetime.fromtimestamp(seconds, autostop.timezone.utc).isoformat().replace("+00:00", "Z")


def seen(
    idle_minutes: float,
    *,
    busy: bool = False,
    sessions: list | None = None,
    snoozed_until: float = 0.0,
    error: str = "",
    jupyter: bool = True,
) -> autostop.Observation:
    """What a check sees when the last activity was idle_minutes ago (the boot long before)."""
    state = autostop.Jupyter(
        busy=["python3 1234abcd"] if busy else [],
        last_activity=NOW - idle_minutes * MINUTE,
        started=NOW - 600 * MINUTE,
    )
    return autostop.Observation(
        now=NOW,
        booted=NOW - 900 * MINUTE,
        jupyter=state if jupyter else None,
        sessions=sessions or [],
        snoozed_until=snoozed_until,
        error=error,
    )


def test_recent_activity_keeps_the_vm_up_and_says_for_how_long_it_was_idle() -> None:
    decision = autostop.decide(seen(12), SETTINGS, None)
    assert decision.action == "keep"
    assert decision.reason.startswith("idle 12 minutes (stop after 60), since JupyterLab activity")
    assert decision.stop_at == NOW + 48 * MINUTE


def test_idle_past_the_limit_warns_first_then_stops_warn_minutes_later() -> None:
    first = autostop.decide(seen(61), SETTINGS, None)
    assert first.action == "warn" and first.reason.startswith("warning: idle 61 minutes")
    assert first.stop_at == NOW + 5 * MINUTE
    warned = {"at": NOW}
    assert autostop.decide(seen(61), SETTINGS, warned).action == "keep"
    later = autostop.Observation(**{**seen(66).__dict__, "now": NOW + 5 * MINUTE})
    later.jupyter.last_activity = NOW - 61 * MINUTE
    stop = autostop.decide(later, SETTINGS, warned)
    assert stop.action == "stop" and stop.reason.startswith("stopping: idle 66 minutes")


def test_the_warning_comes_warn_minutes_before_the_limit() -> None:
    assert autostop.decide(seen(54), SETTINGS, None).action == "keep"
    assert autostop.decide(seen(55), SETTINGS, None).action == "warn"


def test_activity_after_a_warning_calls_for_a_new_one() -> None:
    warned = {"at": NOW - 10 * MINUTE}
    # Used again since: a later stop is due, so the old warning does not count for it.
    assert autostop.decide(seen(58), SETTINGS, warned).action == "warn"


def test_a_warning_given_before_a_snooze_ends_holds_when_it_ends() -> None:
    warned = {"at": NOW - 2 * MINUTE}
    ended = autostop.decide(seen(300, snoozed_until=NOW - MINUTE), SETTINGS, warned)
    assert ended.action == "keep" and ended.stop_at == NOW + 3 * MINUTE
    # A warning given long before the end of a snooze is no warning for that end.
    long_ago = {"at": NOW - 100 * MINUTE}
    assert autostop.decide(seen(300, snoozed_until=NOW + 4 * MINUTE), SETTINGS, long_ago).action == "warn"


def test_no_warning_before_a_minute_of_idleness_even_when_it_is_as_long_as_the_timeout() -> None:
    settings = autostop.Settings.from_dict({**ROLE, "idle_minutes": 1, "warn_minutes": 1})
    assert autostop.decide(seen(0.5), settings, None).action == "keep"
    warned = autostop.decide(seen(1), settings, None)
    assert warned.action == "warn" and warned.stop_at == NOW + MINUTE


def test_no_warning_when_warn_minutes_is_zero() -> None:
    settings = autostop.Settings.from_dict({**ROLE, "idle_minutes": 1, "warn_minutes": 0})
    assert autostop.decide(seen(1), settings, None).action == "stop"


def test_a_busy_kernel_never_lets_it_stop() -> None:
    decision = autostop.decide(seen(10_000, busy=True), SETTINGS, {"at": NOW - 3600})
    assert decision.action == "keep" and decision.reason == "busy kernel: python3 1234abcd running code"


def test_a_jupyterlab_that_cannot_be_asked_keeps_it_up() -> None:
    decision = autostop.decide(seen(500, error="HTTP 403", jupyter=False), SETTINGS, None)
    assert decision.action == "keep" and "could not be asked (HTTP 403)" in decision.reason


def test_a_stopped_jupyterlab_counts_as_idle_since_the_boot() -> None:
    assert autostop.decide(seen(0, jupyter=False), SETTINGS, None).action == "warn"
    fresh = autostop.Observation(now=NOW, booted=NOW - 2 * MINUTE, jupyter=None, sessions=[])
    decision = autostop.decide(fresh, SETTINGS, None)
    assert decision.action == "keep" and "since the boot" in decision.reason


def test_an_ssh_session_in_use_keeps_it_up_and_is_named() -> None:
    session = autostop.Session("admin", "pts/0", "169.254.1.1", NOW - 2 * MINUTE)
    decision = autostop.decide(seen(300, sessions=[session]), SETTINGS, None)
    assert decision.action == "keep"
    assert decision.reason == "SSH session of admin from 169.254.1.1 on pts/0, last used 2 minutes ago"


def test_a_forgotten_ssh_session_does_not_keep_it_up() -> None:
    session = autostop.Session("admin", "pts/0", "169.254.1.1", NOW - 90 * MINUTE)
    assert autostop.decide(seen(300, sessions=[session]), SETTINGS, None).action == "warn"


def test_a_snooze_postpones_the_stop_until_it_ends() -> None:
    decision = autostop.decide(seen(300, snoozed_until=NOW + 30 * MINUTE), SETTINGS, None)
    assert decision.action == "keep" and decision.reason.startswith("snoozed until ")
    assert decision.stop_at == NOW + 30 * MINUTE
    # Five minutes before its end, the warning.
    assert autostop.decide(seen(300, snoozed_until=NOW + 4 * MINUTE), SETTINGS, None).action == "warn"
    # An ended snooze does not hold.
    assert autostop.decide(seen(300, snoozed_until=NOW - MINUTE), SETTINGS, None).action == "warn"


def test_a_snooze_shorter_than_the_idle_time_left_changes_nothing() -> None:
    decision = autostop.decide(seen(10, snoozed_until=NOW + 5 * MINUTE), SETTINGS, None)
    assert decision.reason.startswith("idle 10 minutes") and decision.stop_at == NOW + 50 * MINUTE


def test_read_jupyter_takes_busy_kernels_and_the_latest_activity() -> None:
    status = {"last_activity": iso(NOW - 600), "started": iso(NOW - 7200), "connections": 2, "kernels": 2}
    kernels = [
        {"id": "0123456789", "name": "python3", "execution_state": "idle", "last_activity": iso(NOW - 300)},
        {"id": "abcdef0123", "name": "ir", "execution_state": "busy", "last_activity": iso(NOW - 900)},
    ]
    terminals = [{"name": "1", "last_activity": iso(NOW - 60)}]
    found = autostop.read_jupyter(status, kernels, terminals)
    assert found.busy == ["ir abcdef01"]
    assert found.last_activity == pytest.approx(NOW - 60)
    assert found.started == pytest.approx(NOW - 7200)
    assert (found.kernels, found.terminals, found.connections) == (2, 1, 2)


def test_parse_time_reads_jupyters_timestamps() -> None:
    assert autostop.parse_time("2027-01-15T08:00:00.123456Z") == pytest.approx(1_800_000_000.123456)
    assert autostop.parse_time("2027-01-15T08:00:00+00:00") == 1_800_000_000
    assert autostop.parse_time(None) == 0


def utmp_record(kind: int, pid: int, line: bytes, user: bytes, host: bytes) -> bytes:
    return autostop.UTMP.pack(kind, pid, line, b"ts/0", user, host, 0, 0, 0, 0, 0, b"")


def test_parse_utmp_keeps_login_entries_only() -> None:
    data = (
        utmp_record(2, 0, b"~", b"reboot", b"6.1.0")
        + utmp_record(7, 4242, b"pts/0", b"admin", b"169.254.1.1")
        + utmp_record(8, 4000, b"pts/1", b"", b"")
    )
    assert autostop.UTMP.size == 384
    assert autostop.parse_utmp(data) == [{"pid": 4242, "line": "pts/0", "user": "admin", "host": "169.254.1.1"}]


def test_snooze_file_counts_from_its_last_write_with_its_minutes() -> None:
    assert autostop.snooze_end(NOW - 10 * MINUTE, b"", NOW, 120, 1440) == NOW + 110 * MINUTE
    assert autostop.snooze_end(NOW, b"240\n", NOW, 120, 1440) == NOW + 240 * MINUTE
    assert autostop.snooze_end(NOW, b"999999", NOW, 120, 1440) == NOW + 1440 * MINUTE
    assert autostop.snooze_end(NOW, b"0\n", NOW, 120, 1440) == NOW
    # Anything else in it is no length: the default applies.
    assert autostop.snooze_end(NOW, b"$(reboot)", NOW, 120, 1440) == NOW + 120 * MINUTE


def test_a_snooze_file_dated_in_the_future_cannot_snooze_longer_than_the_maximum() -> None:
    assert autostop.snooze_end(NOW + 10**9, b"", NOW, 120, 1440) == NOW + 120 * MINUTE
    assert autostop.root_snooze_end(b"%d" % (NOW + 10**9), NOW, 1440) == NOW + 1440 * MINUTE
    assert autostop.root_snooze_end(b"junk", NOW, 1440) == 0


def test_read_small_refuses_symlinks_at_any_step_and_non_files(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_text("1440")
    real = tmp_path / "real"
    real.mkdir()
    (real / "snooze").write_text("30")
    assert autostop.read_small(str(real / "snooze"), 32)[0] == b"30"
    (tmp_path / "link").symlink_to(target)
    assert autostop.read_small(str(tmp_path / "link"), 32) is None
    (tmp_path / "linked-dir").symlink_to(real)
    assert autostop.read_small(str(tmp_path / "linked-dir" / "snooze"), 32) is None
    os.mkfifo(tmp_path / "fifo")
    assert autostop.read_small(str(tmp_path / "fifo"), 32) is None
    assert autostop.read_small(str(real / "snooze"), 32, owners=(os.getuid() + 1,)) is None
    assert autostop.read_small(str(tmp_path / "missing"), 32) is None


def test_settings_ignore_unknown_keys() -> None:
    settings = autostop.Settings.from_dict({**ROLE, "comment": "Ansible managed", "idle_minutes": 3})
    assert (settings.idle_minutes, settings.jupyter_port) == (3, 8887)
