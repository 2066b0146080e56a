#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection's plugins. ansible-test wants the collection at
# .../ansible_collections/labcloud/jupyter, so the tracked files are copied into such a tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# The tree lives outside the checkout: inside it, ansible-test would list files with git and
# find the copy ignored.
work=$(mktemp -d /tmp/labcloud-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT
tree="$work/ansible_collections/labcloud/jupyter"
mkdir -p "$tree"
cd "$root"
git ls-files -z --cached --others --exclude-standard -- galaxy.yml meta plugins tests/sanity roles playbooks README.md \
  | xargs -0 -I{} cp --parents {} "$tree"/
# ansible-test only sees collections under the same ansible_collections root (it sets
# ANSIBLE_COLLECTIONS_PATH to it), so the dependency amazon.aws, which the `ansible` package puts
# in the virtualenv's site-packages, is copied beside the collection.
amazon_aws=$(python -c 'import ansible_collections.amazon.aws as m; print(list(m.__path__)[0])')
mkdir -p "$work/ansible_collections/amazon"
cp -a "$amazon_aws" "$work/ansible_collections/amazon/aws"
cd "$tree"
# ansible-test bootstraps pip in its virtualenvs with a script it downloads from a host outside
# the reachable registries; tests/sanity/get_pip.py does the same job from PyPI.
pip_version=$(python - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages


class Python:
    version = ""


print(get_venv_packages(Python())["pip"].replace(".", "_"))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version}.py"
[ -f "$cache" ] || install -D -m 0644 "$root/tests/sanity/get_pip.py" "$cache"
ansible-test sanity --local --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --color no --skip-test shellcheck "$@" plugins/ meta/
