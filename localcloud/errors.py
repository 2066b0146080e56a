"""The local cloud's own error: a message for the user, naming the fix."""


class LocalCloudError(Exception):
    """Something the user can fix (a missing tool, a busy port, an unwritable directory)."""
