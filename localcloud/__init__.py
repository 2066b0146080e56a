"""The local cloud: a local EC2 API (moto, extended) with real systemd-nspawn machines behind it.

The collection's playbooks run against it unchanged: they reach it only through the standard
endpoint variables (AWS_ENDPOINT_URL, AWS_URL) and credentials that `localcloud up` prints.
"""

__version__ = "0.1.0"
