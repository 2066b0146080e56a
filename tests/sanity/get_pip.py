"""Stand-in for pypa's get-pip.py, which ansible-test downloads from a host this network cannot reach.

ansible-test runs it inside a fresh virtualenv with pip-install style arguments. It bootstraps
the pip that ships with Python (ensurepip) and then lets that pip install what was asked for
from the configured package index.
"""

import ensurepip
import os
import runpy
import ssl
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}

ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
# ansible-test runs this with a scrubbed environment; point pip at the system trust store (which
# holds any local CA) rather than the bundle pip carries.
system_bundle = ssl.get_default_verify_paths().openssl_cafile
for candidate in ("/etc/ssl/certs/ca-certificates.crt", system_bundle):
    if candidate and os.path.isfile(candidate):
        args = ["--cert", candidate, *args]
        break
sys.argv = ["pip", "install", *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
