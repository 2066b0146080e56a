# What the jupyterlab role needs to know about the host, read in one go and printed as JSON:
#   python3 -c "$(cat probe.py)" USER SERVICE PACKAGES PATH...
# USER is the Jupyter user (empty: the user who ran sudo, or the one running this), PACKAGES a
# comma-separated list of Debian packages, and each PATH a file to look for (a leading ~/ stands
# for the user's home). It reports the operating system, the user's passwd entry and primary
# group, which paths exist and the type, owner, group, mode (and a small file's SHA-1) of each,
# which packages are missing, whether apt's package lists are present, and whether the service is
# enabled and active. It changes nothing.
import glob
import grp
import hashlib
import json
import os
import pwd
import stat
import subprocess
import sys


def os_release():
    """The fields of /etc/os-release."""
    fields = {}
    try:
        with open("/etc/os-release") as stream:
            for line in stream:
                key, _, value = line.strip().partition("=")
                if key:
                    fields[key] = value.strip('"')
    except OSError:
        pass
    return fields


def name_of(lookup, number, field):
    """The name of a user or group ID (lookup: pwd.getpwuid or grp.getgrgid), or the ID itself."""
    try:
        return getattr(lookup(number), field)
    except KeyError:
        return str(number)


def user_entry(name):
    """The user's uid, primary group and home, or None when there is no such user."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return {"uid": entry.pw_uid, "group": name_of(grp.getgrgid, entry.pw_gid, "gr_name"), "home": entry.pw_dir}


def missing_packages(names):
    """The packages of names that dpkg does not have installed."""
    if not names:
        return []
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *names],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}
    return [name for name in names if name not in installed]


def systemctl(verb, unit):
    result = subprocess.run(["systemctl", verb, unit], capture_output=True, text=True, check=False)
    return result.stdout.strip()


def describe(path):
    """Whether path is a directory, its owner, group and permission bits (as "0750"), and for a
    regular file of at most 1 MiB the SHA-1 of its content; None when it does not exist."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    found = {
        "directory": stat.S_ISDIR(status.st_mode),
        "owner": name_of(pwd.getpwuid, status.st_uid, "pw_name"),
        "group": name_of(grp.getgrgid, status.st_gid, "gr_name"),
        "mode": f"{stat.S_IMODE(status.st_mode):04o}",
    }
    if stat.S_ISREG(status.st_mode) and status.st_size <= 1 << 20:
        try:
            with open(path, "rb") as stream:
                found["sha1"] = hashlib.sha1(stream.read()).hexdigest()
        except OSError:
            pass
    return found


def expand(path, user):
    if path.startswith("~/") and user:
        return user["home"].rstrip("/") + path[1:]
    return path


name, service, packages, paths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
login = os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name
user = user_entry(name or login)
release = os_release()
matches = [sorted(glob.glob(expand(path, user))) for path in paths]
print(
    json.dumps(
        {
            "os": {
                "id": release.get("ID", ""),
                "like": release.get("ID_LIKE", "").split(),
                "name": release.get("PRETTY_NAME", sys.platform),
                "systemd": os.path.isdir("/run/systemd/system"),
            },
            "login": login,
            "user": user,
            "exists": [bool(found) for found in matches],
            "stat": [describe(found[0]) if found else None for found in matches],
            "missing_packages": missing_packages([p for p in packages.split(",") if p]),
            "apt_lists": bool(glob.glob("/var/lib/apt/lists/*_Packages*")),
            "enabled": systemctl("is-enabled", service) == "enabled",
            "active": systemctl("is-active", service) == "active",
        }
    )
)
