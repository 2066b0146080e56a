#!/usr/bin/python3
# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Idle auto-stop of a JupyterLab VM (installed by the labcloud.jupyter.autostop role).

`autostop.py check` (run by labcloud-autostop.timer as root) powers the VM off when JupyterLab and
interactive logins have been idle for longer than the configured time: no kernel busy, no activity
of JupyterLab (kernels, terminals, API requests of an open, visible JupyterLab tab), no input on
an interactive login's terminal, no snooze. A warning goes to every logged-in terminal first.
Every decision is printed for the journal with its reason.
`autostop.py snooze [MINUTES|off|status]` (the labcloud-snooze command) postpones the stop.

It uses the standard library only, talks to JupyterLab on 127.0.0.1 only, and never follows a
symbolic link or reads more than a few bytes from files that a notebook can write. The decision is
made by pure functions (decide() and the parsers) that the collection's unit tests import.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import stat
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.client import HTTPConnection
from typing import Any

CONFIG_FILE = "/etc/labcloud/autostop.json"
# glibc's struct utmp on Linux (x86_64 and aarch64): type, pid, line, id, user, host, exit,
# session, tv_sec, tv_usec, addr_v6, unused.
UTMP = struct.Struct("<hxxi32s4s32s256shhiii16s20x")
USER_PROCESS = 7
TOKEN = re.compile(r"^[A-Za-z0-9._~-]{32,512}$")
TERMINAL_LINE = re.compile(r"^(pts/[0-9]+|tty[A-Za-z0-9]+|console)$")
SNOOZE_BYTES = 32


@dataclass
class Settings:
    """What the role configured (the JSON file it writes, which names JupyterLab's port, service,
    user and token file as the collection's roles define them)."""

    idle_minutes: float
    warn_minutes: float
    snooze_minutes: float
    snooze_max_minutes: float
    jupyter_port: int
    jupyter_service: str
    jupyter_user: str
    token_file: str
    snooze_file: str
    state_dir: str

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Settings:
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)


@dataclass
class Session:
    """An interactive login (a utmp entry with a terminal): who, from where, and when last used."""

    user: str
    line: str
    host: str
    last_used: float


@dataclass
class Jupyter:
    """What JupyterLab's API said: its busy kernels, its latest activity and start."""

    busy: list[str] = field(default_factory=list)
    last_activity: float = 0.0
    started: float = 0.0
    kernels: int = 0
    terminals: int = 0
    connections: int = 0


@dataclass
class Observation:
    """Everything one check saw. jupyter is None when the server is not running; error says why
    JupyterLab could not be asked while it runs."""

    now: float
    booted: float
    jupyter: Jupyter | None
    sessions: list[Session]
    snoozed_until: float = 0.0
    error: str = ""


@dataclass
class Decision:
    """keep, warn or stop; the reason for the journal; when the VM powers off (0: not planned)."""

    action: str
    reason: str
    stop_at: float = 0.0


def parse_time(text: str | None) -> float:
    """Seconds since the epoch of an ISO 8601 time as Jupyter writes it (0 when absent)."""
    if not text:
        return 0.0
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # noqa: UP017 (the VM may run Python 3.10)
    return value.timestamp()


def clock(seconds: float) -> str:
    """HH:MM:SS UTC of a time."""
    return time.strftime("%H:%M:%S UTC", time.gmtime(seconds))


def minutes(seconds: float) -> int:
    """Whole minutes of a duration (never negative)."""
    return max(0, int(seconds // 60))


def read_jupyter(status: dict[str, Any], kernels: list[dict[str, Any]], terminals: list[dict[str, Any]]) -> Jupyter:
    """What /api/status, /api/kernels and /api/terminals say about activity."""
    busy = [
        f"{kernel.get('name', 'kernel')} {str(kernel.get('id', ''))[:8]}"
        for kernel in kernels
        if kernel.get("execution_state") == "busy"
    ]
    times = [parse_time(status.get("last_activity"))]
    times += [parse_time(kernel.get("last_activity")) for kernel in kernels]
    times += [parse_time(terminal.get("last_activity")) for terminal in terminals]
    return Jupyter(
        busy=busy,
        last_activity=max(times),
        started=parse_time(status.get("started")),
        kernels=len(kernels),
        terminals=len(terminals),
        connections=int(status.get("connections") or 0),
    )


def parse_utmp(data: bytes) -> list[dict[str, Any]]:
    """The login entries (USER_PROCESS) of a utmp file: pid, user, line (terminal), host."""
    entries = []
    for offset in range(0, len(data) - UTMP.size + 1, UTMP.size):
        kind, pid, line, _id, user, host, *_rest = UTMP.unpack_from(data, offset)
        if kind != USER_PROCESS:
            continue
        entries.append(
            {
                "pid": pid,
                "line": line.split(b"\0")[0].decode("utf-8", "replace"),
                "user": user.split(b"\0")[0].decode("utf-8", "replace"),
                "host": host.split(b"\0")[0].decode("utf-8", "replace"),
            }
        )
    return entries


def snooze_end(modified: float, content: bytes, now: float, default_minutes: float, max_minutes: float) -> float:
    """When a snooze file touched at `modified` ends: its content is a number of minutes (empty:
    the default), counted from when it was last written; never more than max_minutes from now."""
    text = content.decode("ascii", "replace").strip()
    wanted = float(text) if re.fullmatch(r"[0-9]{1,6}(\.[0-9]+)?", text) else default_minutes
    wanted = min(max(wanted, 0.0), max_minutes)
    return min(min(modified, now) + wanted * 60, now + max_minutes * 60)


def root_snooze_end(content: bytes, now: float, max_minutes: float) -> float:
    """When the snooze written by `sudo labcloud-snooze` ends (its file holds the end, in seconds)."""
    text = content.decode("ascii", "replace").strip()
    if not re.fullmatch(r"[0-9]{1,12}(\.[0-9]+)?", text):
        return 0.0
    return min(float(text), now + max_minutes * 60)


def decide(observation: Observation, settings: Settings, warned: dict[str, float] | None) -> Decision:
    """Keep the VM up, warn that it will stop, or stop it; with the reason.

    A busy kernel, or a JupyterLab that runs but cannot be asked, always keeps it up. Otherwise the
    VM has been idle since the latest of its boot, JupyterLab's start and activity, and the last use
    of an interactive login's terminal; it stops idle_minutes after that, or when the snooze ends if
    that is later, and never before a warning given warn_minutes earlier (and after a minute of
    idleness). A warning counts when nothing was used since, and when it was given no earlier than
    warn_minutes before that time.
    """
    now = observation.now
    if observation.error:
        return Decision("keep", f"JupyterLab runs but could not be asked ({observation.error}); keeping the VM up")
    jupyter = observation.jupyter
    if jupyter and jupyter.busy:
        return Decision("keep", f"busy kernel: {', '.join(jupyter.busy)} running code")
    sources = [(observation.booted, "the boot")]
    if jupyter:
        sources.append((jupyter.started, "JupyterLab's start"))
        sources.append((jupyter.last_activity, "JupyterLab activity"))
    for session in observation.sessions:
        where = f" from {session.host}" if session.host else ""
        sources.append((session.last_used, f"SSH session of {session.user}{where} on {session.line}"))
    idle_since, source = max(sources, key=lambda pair: pair[0])
    idle = now - idle_since
    stop_at = idle_since + settings.idle_minutes * 60
    snoozed = observation.snoozed_until > now and observation.snoozed_until >= stop_at
    if snoozed:
        stop_at = observation.snoozed_until
    # Not while something was used within the last minute: a warning then says nothing true.
    warn_at = max(stop_at - settings.warn_minutes * 60, idle_since + 60)
    warned_at = (warned or {}).get("at", 0.0)
    warning_valid = warned_at >= idle_since and warned_at >= warn_at - 1
    if warning_valid:
        stop_at = max(stop_at, warned_at + settings.warn_minutes * 60)
    state = f"idle {minutes(idle)} minutes (stop after {settings.idle_minutes:g})"
    if now < warn_at or (warning_valid and now < stop_at):
        if snoozed:
            reason = f"snoozed until {clock(observation.snoozed_until)}; {state}"
        elif source.startswith("SSH session") and idle < settings.idle_minutes * 60:
            reason = f"{source}, last used {minutes(idle)} minutes ago"
        else:
            reason = f"{state}, since {source} at {clock(idle_since)}"
        if warning_valid:
            reason += f"; warned, powering off at {clock(stop_at)}"
        return Decision("keep", reason, stop_at)
    if not warning_valid and settings.warn_minutes > 0:
        stop_at = now + settings.warn_minutes * 60
        return Decision("warn", f"warning: {state}; powering off at {clock(stop_at)}", stop_at)
    return Decision("stop", f"stopping: {state}, no busy kernel, no SSH session in use, no snooze", stop_at)


def warning_text(decision: Decision, settings: Settings) -> str:
    """The message written to terminals before a stop."""
    return (
        f"\r\n*** labcloud auto-stop: this VM powers off at {clock(decision.stop_at)} because JupyterLab and the\r\n"
        f"*** logins have been idle for {settings.idle_minutes:g} minutes. Use it, or postpone with\r\n"
        f"*** `labcloud-snooze` ({settings.snooze_minutes:g} minutes; `labcloud-snooze 240` for 4 hours).\r\n"
    )


# Everything below reads the machine or acts on it.


def open_no_symlinks(path: str, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """Open an absolute path without following a symbolic link at any step (a file a notebook can
    write must not lead root elsewhere); returns the descriptor."""
    parts = [part for part in path.split("/") if part]
    descriptor = os.open("/", os.O_PATH | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            following = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = following
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, mode, dir_fd=descriptor)
    finally:
        os.close(descriptor)


def read_small(path: str, limit: int, owners: tuple[int, ...] | None = None) -> tuple[bytes, float] | None:
    """The first bytes and modification time of a regular file, opened without following links;
    None when it is missing, not a regular file or owned by someone else."""
    try:
        descriptor = open_no_symlinks(path)
    except OSError:
        return None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or (owners is not None and info.st_uid not in owners):
            return None
        return os.read(descriptor, limit), info.st_mtime
    finally:
        os.close(descriptor)


def boot_time() -> float:
    """When the VM (its init, PID 1) started: /proc/stat's btime is the host's in a container."""
    with open("/proc/stat") as stream:
        btime = next(int(line.split()[1]) for line in stream if line.startswith("btime "))
    with open("/proc/1/stat") as stream:
        started_ticks = int(stream.read().rsplit(")", 1)[1].split()[19])
    return btime + started_ticks / os.sysconf("SC_CLK_TCK")


def service_running(name: str) -> bool:
    """Whether a systemd unit is active (or starting)."""
    state = subprocess.run(["systemctl", "is-active", name], capture_output=True, text=True, check=False)
    return state.stdout.strip() in ("active", "activating", "reloading")


def api(port: int, token: str, path: str) -> Any:
    """GET a JupyterLab API path on 127.0.0.1, not counted as activity (no_track_activity)."""
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", f"{path}?no_track_activity=1", headers={"Authorization": f"token {token}"})
        response = connection.getresponse()
        body = response.read(4 * 1024 * 1024)
    finally:
        connection.close()
    if response.status != 200:
        raise OSError(f"GET {path}: HTTP {response.status}")
    return json.loads(body)


def ask_jupyter(settings: Settings, user: pwd.struct_passwd | None) -> tuple[Jupyter | None, str]:
    """JupyterLab's view (None when its service is not running), or why it could not be asked."""
    if not service_running(settings.jupyter_service):
        return None, ""
    owners = (0, user.pw_uid) if user else (0,)
    found = read_small(settings.token_file, 1024, owners)
    token = found[0].decode("ascii", "replace").strip() if found else ""
    if not TOKEN.match(token):
        return None, f"no token in {settings.token_file}: password authentication, or the server is starting"
    try:
        status = api(settings.jupyter_port, token, "/api/status")
        kernels = api(settings.jupyter_port, token, "/api/kernels")
        terminals = api(settings.jupyter_port, token, "/api/terminals")
    except (OSError, ValueError) as e:
        return None, f"127.0.0.1:{settings.jupyter_port}: {e}"
    return read_jupyter(status, kernels, terminals), ""


def terminal_last_used(line: str) -> float | None:
    """When a terminal last had input (its device's access time, as `w` reads it; output, the
    warning included, changes only its modification time), or None."""
    if not TERMINAL_LINE.match(line):
        return None
    try:
        info = os.stat(f"/dev/{line}", follow_symlinks=False)
    except OSError:
        return None
    return info.st_atime if stat.S_ISCHR(info.st_mode) else None


def interactive_sessions() -> list[Session]:
    """Logins with a terminal (what sshd records in utmp for a session with a pty, and console
    logins) whose process lives. A tunnel (ssh -N) or a command without a terminal is not one."""
    try:
        with open("/run/utmp", "rb") as stream:
            entries = parse_utmp(stream.read(4 * 1024 * 1024))
    except OSError:
        return []
    sessions = []
    for entry in entries:
        last_used = terminal_last_used(entry["line"])
        if last_used is not None and entry["pid"] > 0 and os.path.exists(f"/proc/{entry['pid']}"):
            sessions.append(Session(entry["user"], entry["line"], entry["host"], last_used))
    return sessions


def snoozed_until(settings: Settings, user: pwd.struct_passwd | None, now: float) -> float:
    """The end of the latest snooze: the root one (sudo labcloud-snooze) and the Jupyter user's file."""
    ends = [0.0]
    root = read_small(os.path.join(settings.state_dir, "snooze"), SNOOZE_BYTES, (0,))
    if root:
        ends.append(root_snooze_end(root[0], now, settings.snooze_max_minutes))
    if settings.snooze_file and user:
        found = read_small(settings.snooze_file, SNOOZE_BYTES, (0, user.pw_uid))
        if found:
            content, modified = found
            ends.append(snooze_end(modified, content, now, settings.snooze_minutes, settings.snooze_max_minutes))
    return max(ends)


def jupyter_user(settings: Settings) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(settings.jupyter_user) if settings.jupyter_user else None
    except KeyError:
        return None


def observe(settings: Settings) -> Observation:
    """Look at JupyterLab, the logins and the snoozes."""
    now = time.time()
    user = jupyter_user(settings)
    jupyter, error = ask_jupyter(settings, user)
    return Observation(now, boot_time(), jupyter, interactive_sessions(), snoozed_until(settings, user, now), error)


def write_to_terminal(path: str, text: str) -> None:
    """Write a message to a terminal device, never blocking and never following a link."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        if stat.S_ISCHR(os.fstat(descriptor).st_mode):
            os.write(descriptor, text.encode())
    except OSError:
        pass
    finally:
        os.close(descriptor)


def warn_terminals(text: str, sessions: list[Session]) -> int:
    """Write the warning to every login's terminal, as wall does; returns how many got it."""
    paths = sorted({f"/dev/{session.line}" for session in sessions})
    for path in paths:
        write_to_terminal(path, text)
    return len(paths)


def load_settings(path: str = CONFIG_FILE) -> Settings:
    with open(path) as stream:
        return Settings.from_dict(json.load(stream))


def load_warning(settings: Settings) -> dict[str, float] | None:
    found = read_small(os.path.join(settings.state_dir, "warned.json"), 256, (0,))
    try:
        return json.loads(found[0]) if found else None
    except ValueError:
        return None


def write_root_file(settings: Settings, name: str, content: str) -> None:
    """Replace a file of the state directory (root's only) at once."""
    path = os.path.join(settings.state_dir, name)
    with open(path + ".new", "w") as stream:
        stream.write(content)
    os.replace(path + ".new", path)


def check(settings: Settings) -> int:
    """One check: decide, say why, and act."""
    observation = observe(settings)
    decision = decide(observation, settings, load_warning(settings))
    if decision.action == "warn":
        reached = warn_terminals(warning_text(decision, settings), observation.sessions)
        write_root_file(settings, "warned.json", json.dumps({"at": observation.now}))
        print(f"{decision.reason} (told {reached} terminal(s))", flush=True)
        return 0
    print(decision.reason, flush=True)
    if decision.action == "stop":
        subprocess.run(["systemctl", "poweroff"], check=True)
    return 0


def snooze(settings: Settings, argument: str) -> int:
    """labcloud-snooze: postpone the stop (root: the state directory; the Jupyter user: the snooze file)."""
    if argument == "status":
        observation = observe(settings)
        print(decide(observation, settings, load_warning(settings)).reason)
        return 0
    user = jupyter_user(settings)
    is_root = os.geteuid() == 0
    if not is_root and not (user and os.geteuid() == user.pw_uid):
        os.execvp("sudo", ["sudo", "-n", sys.executable, os.path.abspath(__file__), "snooze", argument])
    if argument == "off":
        wanted = 0.0
    elif re.fullmatch(r"[0-9]{1,6}", argument or "x"):
        wanted = min(float(argument), settings.snooze_max_minutes)
    elif not argument:
        wanted = settings.snooze_minutes
    else:
        print("usage: labcloud-snooze [MINUTES | off | status]", file=sys.stderr)
        return 2
    if is_root:
        write_root_file(settings, "snooze", f"{time.time() + wanted * 60:.0f}\n")
    else:
        descriptor = open_no_symlinks(settings.snooze_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(f"{wanted:g}\n")
    if wanted:
        print(f"auto-stop snoozed for {wanted:g} minutes, until {clock(time.time() + wanted * 60)}")
    else:
        print("snooze ended" + ("" if is_root else " (a snooze given with sudo still holds until it ends)"))
    return 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    settings = load_settings(os.environ.get("LABCLOUD_AUTOSTOP_CONFIG", CONFIG_FILE))
    if command == "check":
        return check(settings)
    if command == "snooze":
        return snooze(settings, argv[2] if len(argv) > 2 else "")
    print("usage: autostop.py check | snooze [MINUTES | off | status]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
