"""Make the collection importable as ansible_collections.labcloud.jupyter in unit tests.

collections/ansible_collections/labcloud/jupyter links back to the checkout, so putting
collections/ on sys.path is enough (ansible_collections is a namespace package, and amazon.aws
still resolves from the virtualenv's site-packages).
"""

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[2] / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
