# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Logic of labcloud.jupyter.image_hygiene: what on a host must not ship in a machine image.

Two lists come out of a host. Findings are secrets the module never removes by itself (AWS keys,
private keys, git credentials, and histories or Jupyter secrets in places the clean step does not
empty): an admin removes them or, once reviewed, allows them. The clean plan is what every image
loses before it is baked (host keys, authorized keys, histories, Jupyter runtime files and token,
temporary files, cloud-init state, the machine ID), in the order it is removed.

Every path is the host's, as seen from "/"; a Tree maps them below another root directory, so that
the rules run on a directory tree in the tests (or on an image's file system mounted elsewhere).
Nothing follows a symbolic link: files are opened, and removed, through descriptors of their
directories with O_NOFOLLOW, so a link planted in a user's directory never leads a root process
elsewhere. Python 3.6 syntax: this runs on the VM.
"""

import errno
import fnmatch
import os
import re
import stat
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

# How much of a file the private-key test reads, and the largest file it reads at all (keys are a
# few KiB; larger files are data, archives or databases).
READ_SIZE = 4096
MAX_FILE_SIZE = 1 << 20
# Directories deeper than this below a scanned tree are not entered (each level holds a descriptor).
MAX_DEPTH = 48

# Never scanned: kernel and runtime file systems.
PSEUDO = ("/proc", "/sys", "/dev", "/run")
# Scanned in full, with the homes of people (root and UIDs from 1000) and the extra paths given.
TREES = ("/root", "/home", "/srv", "/etc")
FIRST_UID = 1000
NOBODY_UID = 65534

# Directories of software, not of people: test keys shipped with packages live there.
SOFTWARE_NAMES = frozenset(("site-packages", "dist-packages", "node_modules", "__pycache__"))
# A directory holding one of these is a Python or conda environment, or a cache (CACHEDIR.TAG).
SOFTWARE_MARKERS = ("pyvenv.cfg", "conda-meta", "CACHEDIR.TAG")
# A Python installation's standard library (its test suite ships keys): lib/python3.12.
STDLIB = re.compile(r"^python\d+(\.\d+)?$")

PRIVATE_KEY = re.compile(rb"(?m)^-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")
PUTTY_KEY = re.compile(rb"^PuTTY-User-Key-File-\d+:")
# An AWS key set to a literal value (a shell expansion such as "$KEY" is not one), commented out or not.
AWS_KEY = re.compile(
    r"(?i)\b(aws_access_key_id|aws_secret_access_key|aws_session_token)\b\s*[=:]\s*[\"']?[A-Za-z0-9/+]"
)
# A URL with a password or token in it: https://user:token@host/...
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
STORE_HELPER = re.compile(r"(?im)^\s*helper\s*=\s*[\"']?store\b(.*)$")
STORE_FILE = re.compile(r"--file(?:=|\s+)[\"']?([^\s\"']+)")
NETRC_PASSWORD = re.compile(r"(?m)(^|\s)password\s+\S")
GLOB = re.compile(r"[*?\[]")

# Shell start-up and environment files read for AWS keys: in each home, and system-wide.
PROFILES = (".bashrc", ".profile", ".bash_profile", ".bash_login", ".zshrc", ".zshenv", ".zprofile")
SYSTEM_PROFILES = ("/etc/environment", "/etc/profile", "/etc/bash.bashrc", "/etc/zsh/zshenv")
SYSTEM_PROFILE_DIRS = ("/etc/profile.d",)
GIT_CONFIGS = (".gitconfig", ".config/git/config")
GIT_STORES = (".git-credentials", ".config/git/credentials")

# Histories the clean step empties in every home, and IPython's (in each profile).
HISTORIES = (
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".lesshst",
    ".viminfo",
    ".sqlite_history",
    ".psql_history",
    ".mysql_history",
    ".node_repl_history",
)
IPYTHON_HISTORY = "history.sqlite"
# Jupyter's per-user data: runtime files (server info with its token, cookie secret, kernel
# connection files with their keys) and the notebook-signing secret and database.
JUPYTER_DATA = (".local", "share", "jupyter")
JUPYTER_SECRETS = ("notebook_secret", "nbsignatures.db")
# Names of histories and Jupyter secrets: found anywhere else, they are findings.
STRAY_HISTORY = frozenset((*HISTORIES, IPYTHON_HISTORY))
STRAY_JUPYTER = re.compile(
    r"^(jpserver-\d+\.json|jpserver-\d+-open\.html|nbserver-\d+\.json|jupyter_cookie_secret|notebook_secret"
    r"|kernel-[0-9a-f-]{6,}\.json)$"
)

AUTHORIZED_KEYS = ("authorized_keys", "authorized_keys2")
HOST_KEYS = re.compile(r"^ssh_host_.*")
HOST_PRIVATE_KEY = re.compile(r"^/etc/ssh/ssh_host_[^/]*_key$")
TEMPORARY = ("/tmp", "/var/tmp")
# systemd's PrivateTmp= directories of running services: systemd removes them when the service stops.
SERVICE_TMP = re.compile(r"^systemd-private-")
CLOUD_DIR = "/var/lib/cloud"
CLOUD_KEEP = ("seed",)
CLOUD_LOGS = ("/var/log/cloud-init.log", "/var/log/cloud-init-output.log")
MACHINE_ID = "/etc/machine-id"
# What an emptied machine ID holds (cloud-init writes "uninitialized", systemd's own first-boot value).
UNSET_MACHINE_IDS = ("", "uninitialized")

# The order of the clean step: the authorized keys last, so the SSH session lasts until the end.
CLEAN_ORDER = (
    "jupyter_token",
    "jupyter_cookie_secret",
    "jupyter_runtime",
    "jupyter_secret",
    "history",
    "temporary",
    "cloud_init",
    "machine_id",
    "ssh_host_key",
    "authorized_keys",
)

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class Tree(object):
    """The host's file system as seen from a root directory ("/" on the host itself)."""

    def __init__(self, root: str = "/") -> None:
        self.root = os.path.abspath(root)

    def real(self, path: str) -> str:
        """The real path of a host path."""
        return os.path.join(self.root, path.lstrip("/")) if self.root != "/" else path

    def host(self, real: str) -> str:
        """The host path of a real path below the root."""
        if self.root == "/":
            return real
        relative = os.path.relpath(real, self.root)
        return "/" if relative == "." else "/" + relative


def join(base: str, *names: str) -> str:
    """A host path below base."""
    return "/".join([base.rstrip("/"), *names]) if base != "/" else "/" + "/".join(names)


def is_below(path: str, top: str) -> bool:
    """Whether path is top or lies below it."""
    top = top.rstrip("/") or "/"
    return path == top or path.startswith(top + "/") or top == "/"


def finding(path: str, kind: str, detail: str) -> Dict[str, str]:
    """One finding."""
    return {"path": path, "kind": kind, "detail": detail}


# Reading and removing without following links.


def open_directory(tree: Tree, base: str, names: Iterable[str]) -> Optional[int]:
    """A descriptor of the directory base/names..., or None when it is missing or a link on the way.

    base is trusted (a home from the user database, a system directory), and is resolved as the
    system resolves it; every name below it is opened with O_NOFOLLOW.
    """
    try:
        descriptor = os.open(os.path.realpath(tree.real(base)), DIRECTORY_FLAGS)
    except OSError:
        return None
    for name in names:
        try:
            inner = os.open(name, DIRECTORY_FLAGS, dir_fd=descriptor)
        except OSError:
            os.close(descriptor)
            return None
        os.close(descriptor)
        descriptor = inner
    return descriptor


def lstat_at(directory: int, name: str) -> Optional[os.stat_result]:
    """The status of a directory's entry (a link's own), or None."""
    try:
        return os.stat(name, dir_fd=directory, follow_symlinks=False)
    except OSError:
        return None


def read_at(directory: int, name: str, limit: int) -> Optional[bytes]:
    """Up to limit bytes of a regular file of a directory (not through a link), or None."""
    try:
        descriptor = os.open(name, FILE_FLAGS, dir_fd=directory)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(descriptor, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(descriptor)


def read_file(tree: Tree, path: str, limit: int = MAX_FILE_SIZE, base: Optional[str] = None) -> Optional[bytes]:
    """Up to limit bytes of the regular file at a host path, or None; below base nothing is followed."""
    base = base or os.path.dirname(path)
    names = [name for name in path[len(base) :].split("/") if name]
    if not names:
        return None
    directory = open_directory(tree, base, names[:-1])
    if directory is None:
        return None
    try:
        status = lstat_at(directory, names[-1])
        if status is None or not stat.S_ISREG(status.st_mode) or status.st_size > limit:
            return None
        return read_at(directory, names[-1], limit)
    finally:
        os.close(directory)


def entries_of(tree: Tree, base: str, names: List[str]) -> List[str]:
    """The sorted entries of the directory base/names... (none when it is missing or a link is on the way)."""
    directory = open_directory(tree, base, names)
    if directory is None:
        return []
    try:
        return sorted(os.listdir(directory))
    finally:
        os.close(directory)


def regular_files(tree: Tree, base: str, names: List[str]) -> Iterator[Tuple[int, str, os.stat_result]]:
    """(directory descriptor, name, status) of each regular file of the directory base/names..."""
    directory = open_directory(tree, base, names)
    if directory is None:
        return
    try:
        for name in sorted(os.listdir(directory)):
            status = lstat_at(directory, name)
            if status is not None and stat.S_ISREG(status.st_mode):
                yield directory, name, status
    finally:
        os.close(directory)


def text_of(data: Optional[bytes]) -> str:
    """Bytes as text (undecodable bytes replaced)."""
    return (data or b"").decode("utf-8", "replace")


def remove_at(directory: int, name: str) -> None:
    """Remove a directory's entry, a directory with everything in it, never following a link."""
    status = os.stat(name, dir_fd=directory, follow_symlinks=False)
    if not stat.S_ISDIR(status.st_mode):
        os.unlink(name, dir_fd=directory)
        return
    inner = os.open(name, DIRECTORY_FLAGS, dir_fd=directory)
    try:
        for child in os.listdir(inner):
            remove_at(inner, child)
    finally:
        os.close(inner)
    os.rmdir(name, dir_fd=directory)


def is_unset_machine_id(tree: Tree) -> bool:
    """Whether the machine ID is empty (or cloud-init's "uninitialized"): the next boot makes a new one."""
    return text_of(read_file(tree, MACHINE_ID, 4096)).strip() in UNSET_MACHINE_IDS


def remove(tree: Tree, entry: Dict[str, str]) -> None:
    """Make sure one entry of the clean plan is gone (a file, a link or a directory, never followed).

    The machine ID is emptied, not removed: systemd writes a new one at the next boot into an empty file.
    """
    path, base = entry["path"], entry["base"]
    names = [name for name in path[len(base) :].split("/") if name]
    directory = open_directory(tree, base, names[:-1])
    if directory is None:
        return
    try:
        if lstat_at(directory, names[-1]) is None:
            return
        if entry["kind"] == "machine_id":
            if not is_unset_machine_id(tree):
                os.close(os.open(names[-1], os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW, dir_fd=directory))
            return
        try:
            remove_at(directory, names[-1])
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise
    finally:
        os.close(directory)


# The users and the places to scan.


def passwd_entries(tree: Tree) -> List[Tuple[int, str]]:
    """(uid, home) of each entry of /etc/passwd."""
    entries = []
    for line in text_of(read_file(tree, "/etc/passwd")).splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[0] or line.startswith("#"):
            continue
        try:
            uid = int(fields[2])
        except ValueError:
            continue
        entries.append((uid, os.path.normpath(fields[5] or "/")))
    return entries


def is_directory(tree: Tree, path: str) -> bool:
    """Whether a host path is a directory (as the system resolves it)."""
    return os.path.isdir(tree.real(path))


def homes(tree: Tree) -> Tuple[List[str], List[str]]:
    """Every home (root's first; each user's from the user database, and each directory of /home),
    and those of people (root, UIDs from 1000), which are scanned in full."""
    every, people = ["/root"], ["/root"]
    for uid, home in passwd_entries(tree):
        if home == "/" or any(is_below(home, pseudo) for pseudo in PSEUDO) or not is_directory(tree, home):
            continue
        if home not in every:
            every.append(home)
        if (uid == 0 or FIRST_UID <= uid < NOBODY_UID) and home not in people:
            people.append(home)
    try:
        names = sorted(os.listdir(tree.real("/home")))
    except OSError:
        names = []
    for name in names:
        home = join("/home", name)
        if home not in every and os.path.isdir(tree.real(home)) and not os.path.islink(tree.real(home)):
            every.append(home)
    return [home for home in every if is_directory(tree, home)], people


def scan_roots(tree: Tree, people: List[str], paths: Iterable[str]) -> List[str]:
    """The trees scanned in full: /root, /home, /srv, /etc, the homes of people and the extra paths,
    without those inside another one."""
    wanted = []
    for path in list(TREES) + list(people) + [os.path.normpath(str(path)) for path in paths]:
        if path not in wanted and is_directory(tree, path) and not any(is_below(path, p) for p in PSEUDO):
            wanted.append(path)
    return [path for path in wanted if not any(other != path and is_below(path, other) for other in wanted)]


# What is a secret.


def private_key_kind(head: bytes) -> Optional[str]:
    """What private key a file's first bytes begin, or None."""
    match = PRIVATE_KEY.search(head)
    if match:
        label = match.group(1).decode("ascii").strip()
        if match.group(2):
            return "PGP private key block"
        if label == "OPENSSH":
            return "OpenSSH private key"
        return "%s private key (PEM)" % label if label else "private key (PEM, PKCS#8)"
    if PUTTY_KEY.match(head):
        return "PuTTY private key"
    return None


def aws_keys(text: str) -> List[str]:
    """Each AWS key set in a text, as "NAME on line N"."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in AWS_KEY.finditer(line):
            found.append("%s on line %d" % (match.group(1), number))
    return found


def git_url_passwords(text: str) -> int:
    """How many URLs of a git configuration carry a password or token."""
    return len(URL_PASSWORD.findall(text))


def store_files(text: str, home: Optional[str]) -> List[str]:
    """The files a git configuration's `credential.helper store` writes (~ is the home)."""
    files = []
    for match in STORE_HELPER.finditer(text):
        named = STORE_FILE.search(match.group(1))
        if named:
            path = named.group(1)
            if path.startswith("~/") and home:
                path = join(home, path[2:])
            if path.startswith("/"):
                files.append(os.path.normpath(path))
        elif home:
            files.extend(join(home, name) for name in GIT_STORES)
    return files


def is_allowed(path: str, allow: Iterable[str]) -> bool:
    """Whether a path matches the allow-list: a glob (* also matches /), or a plain path it is or lies below."""
    for pattern in allow:
        pattern = str(pattern)
        if fnmatch.fnmatchcase(path, pattern):
            return True
        if not GLOB.search(pattern) and is_below(path, pattern.rstrip("/") or "/"):
            return True
    return False


def split_allowed(
    findings: List[Dict[str, str]], allow: Iterable[str]
) -> Tuple[List[Dict[str, str]], List[Dict[str, str]]]:
    """The findings an allow-list leaves, and those it allows."""
    allow = list(allow)
    kept = [item for item in findings if not is_allowed(item["path"], allow)]
    allowed = [item for item in findings if is_allowed(item["path"], allow)]
    return kept, allowed


# The scan.


class Scan(object):
    """A scan of a host for secrets, bounded in what it reads."""

    def __init__(
        self,
        tree: Tree,
        paths: Iterable[str] = (),
        read_size: int = READ_SIZE,
        max_file_size: int = MAX_FILE_SIZE,
        cleaned_files: Iterable[str] = (),
    ) -> None:
        self.tree = tree
        self.read_size = read_size
        self.max_file_size = max_file_size
        self.homes, self.people = homes(tree)
        self.roots = scan_roots(tree, self.people, paths)
        # Files the clean step removes besides those in the homes (the service's token and cookie secret).
        self.cleaned_files = [os.path.normpath(path) for path in cleaned_files if path]
        self.found: Dict[Tuple[str, str], Dict[str, str]] = {}
        self.counts = {"files": 0, "read": 0, "too_large": 0, "directories": 0, "too_deep": 0}
        self.software: List[str] = []

    def add(self, path: str, kind: str, detail: str) -> None:
        """Record a finding (once per path and kind)."""
        self.found.setdefault((path, kind), finding(path, kind, detail))

    def run(self) -> Dict[str, Any]:
        """Scan, and return the findings (by path) and what was scanned."""
        for home in self.homes:
            self.scan_home(home)
        self.scan_system_files()
        for root in self.roots:
            directory = open_directory(self.tree, root, [])
            if directory is not None:
                try:
                    self.walk(directory, root, 0)
                finally:
                    os.close(directory)
        findings = sorted(self.found.values(), key=lambda item: (item["path"], item["kind"]))
        scanned = dict(self.counts, trees=self.roots, homes=self.homes, software=sorted(self.software))
        return {"findings": findings, "scanned": scanned}

    def scan_home(self, home: str) -> None:
        """The files of a home that hold credentials, whether or not the home is scanned in full."""
        for name in ("credentials", "config"):
            path = join(home, ".aws", name)
            keys = aws_keys(text_of(read_file(self.tree, path, self.max_file_size, base=home)))
            if keys:
                self.add(path, "aws_credentials", "AWS credentials file: %s" % ", ".join(keys))
        for cache in ("cli", "sso"):
            self.scan_listing(home, [".aws", cache, "cache"], "aws_credentials", "AWS CLI cached credentials")
        for name in PROFILES:
            self.scan_profile(join(home, name), home)
        for name in GIT_STORES:
            self.scan_git_store(join(home, name), home)
        for name in GIT_CONFIGS:
            self.scan_git_config(join(home, name), home, home)
        netrc = join(home, ".netrc")
        if NETRC_PASSWORD.search(text_of(read_file(self.tree, netrc, self.max_file_size, base=home))):
            self.add(netrc, "git_credentials", ".netrc with passwords (git and curl log in with them)")
        if not any(is_below(home, root) for root in self.roots):
            self.scan_keys_in(home, [".ssh"])  # a home scanned in full is read in its walk
        self.scan_listing(home, [".gnupg", "private-keys-v1.d"], "private_key", "GnuPG private key")
        if read_file(self.tree, join(home, ".gnupg", "secring.gpg"), self.max_file_size, base=home):
            self.add(join(home, ".gnupg", "secring.gpg"), "private_key", "GnuPG secret keyring")

    def scan_listing(self, home: str, names: List[str], kind: str, detail: str) -> None:
        """Each regular file of a directory below a home is a finding."""
        for entry in regular_files(self.tree, home, names):
            self.add(join(home, *names, entry[1]), kind, detail)

    def scan_keys_in(self, home: str, names: List[str]) -> None:
        """The private keys among the files of a directory below a home."""
        for directory, name, status in regular_files(self.tree, home, names):
            self.test_key(directory, name, join(home, *names, name), status)

    def scan_profile(self, path: str, base: str) -> None:
        """AWS keys set in a shell start-up or environment file."""
        keys = aws_keys(text_of(read_file(self.tree, path, self.max_file_size, base=base)))
        if keys:
            self.add(path, "aws_credentials", "AWS keys in a shell start-up or environment file: %s" % ", ".join(keys))

    def scan_git_store(self, path: str, base: str) -> None:
        """A git credential store (what `credential.helper store` writes) that holds anything."""
        text = text_of(read_file(self.tree, path, self.max_file_size, base=base))
        entries = [line for line in text.splitlines() if line.strip()]
        if entries:
            self.add(path, "git_credentials", "git credential store with %d saved login(s)" % len(entries))

    def scan_git_config(self, path: str, base: str, home: Optional[str]) -> None:
        """A git configuration: URLs with passwords, and the credential stores it names."""
        text = text_of(read_file(self.tree, path, self.max_file_size, base=base))
        count = git_url_passwords(text)
        if count:
            self.add(path, "git_credentials", "git configuration with %d URL(s) holding a password or token" % count)
        for store in store_files(text, home):
            # A store in the home is reached from it without following links; one elsewhere from its directory.
            self.scan_git_store(store, home if home and is_below(store, home) else os.path.dirname(store))

    def scan_system_files(self) -> None:
        """System-wide environment files and git configuration."""
        for path in SYSTEM_PROFILES:
            self.scan_profile(path, os.path.dirname(path))
        for directory in SYSTEM_PROFILE_DIRS:
            for name in entries_of(self.tree, directory, []):
                self.scan_profile(join(directory, name), directory)
        self.scan_git_config("/etc/gitconfig", "/etc", None)

    def test_key(self, directory: int, name: str, path: str, status: os.stat_result) -> None:
        """Read the head of a regular file and record it when it begins a private key."""
        if HOST_PRIVATE_KEY.match(path):
            return  # the clean step removes the host keys
        if status.st_size > self.max_file_size:
            self.counts["too_large"] += 1
            return
        head = read_at(directory, name, self.read_size)
        if head is None:
            return
        self.counts["read"] += 1
        kind = private_key_kind(head)
        if kind:
            self.add(path, "private_key", kind)

    def is_software(self, directory: int, name: str, path: str) -> bool:
        """Whether a directory holds software (an environment, a cache, a standard library)."""
        if name in SOFTWARE_NAMES or (
            STDLIB.match(name) and os.path.basename(os.path.dirname(path)) in ("lib", "lib64")
        ):
            return True
        return any(lstat_at(directory, marker) is not None for marker in SOFTWARE_MARKERS)

    def walk(self, directory: int, path: str, depth: int) -> None:
        """Scan a directory (a descriptor) and what is below it, never through a link."""
        self.counts["directories"] += 1
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            child = join(path, name)
            status = lstat_at(directory, name)
            if status is None:
                continue
            if stat.S_ISREG(status.st_mode):
                self.counts["files"] += 1
                self.test_stray(child, name)
                self.test_key(directory, name, child, status)
            elif stat.S_ISDIR(status.st_mode):
                self.enter(directory, name, child, depth)

    def enter(self, directory: int, name: str, path: str, depth: int) -> None:
        """Scan a subdirectory unless it is a pseudo file system, software, or a repository's store."""
        if any(is_below(path, pseudo) for pseudo in PSEUDO):
            return
        if depth >= MAX_DEPTH:
            self.counts["too_deep"] += 1
            return
        try:
            inner = os.open(name, DIRECTORY_FLAGS, dir_fd=directory)
        except OSError:
            return
        try:
            if name == ".git":
                # A repository's store: only its configuration is read (remote URLs, credential helper).
                self.scan_git_config(join(path, "config"), path, None)
            elif self.is_software(inner, name, path):
                self.software.append(path)
            else:
                self.walk(inner, path, depth + 1)
        finally:
            os.close(inner)

    def test_stray(self, path: str, name: str) -> None:
        """A history or Jupyter secret outside the places the clean step empties."""
        if is_cleaned_path(path, self.homes, self.cleaned_files):
            return
        if name in STRAY_HISTORY:
            self.add(path, "history", "history file outside the places the clean step empties")
        elif STRAY_JUPYTER.match(name):
            self.add(path, "jupyter_secret", "Jupyter secret or runtime file outside a Jupyter runtime directory")


# The clean plan.


def in_use_sockets(proc_net_unix: str) -> Set[str]:
    """The paths of the bound UNIX sockets /proc/net/unix lists (held by a running process)."""
    paths = set()
    for line in proc_net_unix.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7].startswith("/"):
            paths.add(os.path.normpath(fields[7]))
    return paths


class Plan(object):
    """What the clean step removes, in its order."""

    def __init__(
        self, tree: Tree, every_home: List[str], token_file: str, cookie_secret_file: str, keep: Iterable[str] = ()
    ) -> None:
        self.tree = tree
        self.homes = every_home
        self.token_file = os.path.normpath(token_file) if token_file else ""
        self.cookie_secret_file = os.path.normpath(cookie_secret_file) if cookie_secret_file else ""
        # Paths kept in the temporary directories: bound sockets, the module's own files.
        self.keep = set(keep)
        self.entries: List[Dict[str, str]] = []
        self.planned: Set[str] = set()
        self.skipped: List[str] = []

    def add(self, path: str, kind: str, base: str) -> None:
        """Plan to remove a path (reached from base without following links) when it exists."""
        names = [name for name in path[len(base) :].split("/") if name]
        directory = open_directory(self.tree, base, names[:-1])
        if directory is None:
            if os.path.lexists(self.tree.real(path)):
                self.skipped.append("%s: a symbolic link on the way, which is not followed" % path)
            return
        try:
            status = lstat_at(directory, names[-1])
        finally:
            os.close(directory)
        if status is not None and path not in self.planned:
            self.planned.add(path)
            self.entries.append({"path": path, "kind": kind, "base": base})

    def holds_kept(self, path: str) -> bool:
        """Whether a path is kept, or is a directory with something kept in it."""
        return any(is_below(kept, path) for kept in self.keep)

    def add_listing(
        self, base: str, names: List[str], kind: str, wanted: Optional[Callable[[str], bool]] = None
    ) -> None:
        """Plan to remove the entries of a directory below base (those wanted, and nothing kept)."""
        for name in entries_of(self.tree, base, names):
            path = join(base, *names, name)
            if (wanted is None or wanted(name)) and not self.holds_kept(path):
                self.add(path, kind, base)

    def build(self) -> List[Dict[str, str]]:
        """The plan, in the clean step's order."""
        if self.token_file:
            self.add(self.token_file, "jupyter_token", os.path.dirname(self.token_file))
        if self.cookie_secret_file:
            self.add(self.cookie_secret_file, "jupyter_cookie_secret", os.path.dirname(self.cookie_secret_file))
        for home in self.homes:
            self.add_listing(home, [*JUPYTER_DATA, "runtime"], "jupyter_runtime")
            for name in JUPYTER_SECRETS:
                self.add(join(home, *JUPYTER_DATA, name), "jupyter_secret", home)
        for home in self.homes:
            self.add_histories(home)
        for top in TEMPORARY:
            self.add_temporary(top)
        self.add_listing(CLOUD_DIR, [], "cloud_init", lambda name: name not in CLOUD_KEEP)
        for path in CLOUD_LOGS:
            self.add(path, "cloud_init", os.path.dirname(path))
        if not is_unset_machine_id(self.tree):
            self.add(MACHINE_ID, "machine_id", "/etc")
        self.add_listing("/etc/ssh", [], "ssh_host_key", HOST_KEYS.match)
        for home in self.homes:
            for name in AUTHORIZED_KEYS:
                self.add(join(home, ".ssh", name), "authorized_keys", home)
        order = dict((kind, index) for index, kind in enumerate(CLEAN_ORDER))
        return sorted(self.entries, key=lambda entry: order[entry["kind"]])

    def add_histories(self, home: str) -> None:
        """A home's histories (not a link: ~/.bash_history -> /dev/null holds none), IPython's too."""
        directory = open_directory(self.tree, home, [])
        if directory is None:
            return
        try:
            for name in HISTORIES:
                status = lstat_at(directory, name)
                if status is not None and not stat.S_ISLNK(status.st_mode):
                    self.add(join(home, name), "history", home)
        finally:
            os.close(directory)
        for name in entries_of(self.tree, home, [".ipython"]):
            if name.startswith("profile_"):
                self.add(join(home, ".ipython", name, IPYTHON_HISTORY), "history", home)

    def add_temporary(self, top: str, names: Optional[List[str]] = None) -> None:
        """Everything in a temporary directory but bound sockets, the module's own files and the
        private directories of running services (each kept entry's directory is emptied of the rest)."""
        names = names or []
        directory = open_directory(self.tree, top, names)
        if directory is None:
            return
        try:
            children = sorted(os.listdir(directory))
            kinds = dict((name, lstat_at(directory, name)) for name in children)
        finally:
            os.close(directory)
        here = join(top, *names) if names else top
        for name in children:
            path = join(here, name)
            status = kinds[name]
            if path in self.keep or status is None or (not names and SERVICE_TMP.match(name)):
                continue
            if not self.holds_kept(path):
                self.add(path, "temporary", top)
            elif stat.S_ISDIR(status.st_mode):
                self.add_temporary(top, [*names, name])


def check(
    tree: Tree,
    paths: Iterable[str] = (),
    allow: Iterable[str] = (),
    cleaned_files: Iterable[str] = (),
    read_size: int = READ_SIZE,
    max_file_size: int = MAX_FILE_SIZE,
) -> Dict[str, Any]:
    """Scan a host: the findings the allow-list leaves, those it allows, and what was scanned."""
    result = Scan(tree, paths, read_size, max_file_size, cleaned_files).run()
    findings, allowed = split_allowed(result["findings"], allow)
    return {"findings": findings, "allowed": allowed, "scanned": result["scanned"]}


def clean_plan(
    tree: Tree, every_home: List[str], token_file: str, cookie_secret_file: str, keep: Iterable[str] = ()
) -> Tuple[List[Dict[str, str]], List[str]]:
    """What the clean step removes, in order, and what it leaves because a link is on the way."""
    plan = Plan(tree, every_home, token_file, cookie_secret_file, keep)
    return plan.build(), plan.skipped


def is_cleaned_path(path: str, every_home: List[str], cleaned_files: Iterable[str] = ()) -> bool:
    """Whether the clean step empties this path (a history or Jupyter file there is no finding)."""
    if path in cleaned_files:
        return True
    for home in every_home:
        if path == home or not is_below(path, home):
            continue
        parts = path[len(home.rstrip("/")) + 1 :].split("/")
        if len(parts) == 1 and parts[0] in HISTORIES:
            return True
        if (
            len(parts) == 3
            and parts[0] == ".ipython"
            and parts[1].startswith("profile_")
            and parts[2] == IPYTHON_HISTORY
        ):
            return True
        runtime = len(parts) >= 5 and parts[3] == "runtime"
        secret = len(parts) == 4 and parts[3] in JUPYTER_SECRETS
        if tuple(parts[:3]) == JUPYTER_DATA and (runtime or secret):
            return True
    return False


def public(entries: List[Dict[str, str]]) -> List[Dict[str, str]]:
    """The plan as returned: path and kind of each entry."""
    return [{"path": entry["path"], "kind": entry["kind"]} for entry in entries]


def findings_message(findings: List[Dict[str, str]]) -> str:
    """What a failed check says: every finding, and how to remove or allow it."""
    lines = ["Image hygiene: %d secret(s) on this host must not ship in an image:" % len(findings)]
    lines.extend("  - %s: %s (%s)" % (item["path"], item["detail"], item["kind"]) for item in findings)
    lines.append(
        "Remove each of them from the VM (keep keys on your own computer; give the VM an instance profile "
        "instead of AWS keys; use an SSH agent or a deploy key for git) and run again, or, once an admin has "
        "reviewed a file that must stay in the image, list its path or a glob in allow (the "
        "labcloud.jupyter.image_hygiene role's image_hygiene_allow). Removing a file does not erase its blocks "
        "from the disk: a VM that held real credentials is safer rebuilt than cleaned."
    )
    return "\n".join(lines)
