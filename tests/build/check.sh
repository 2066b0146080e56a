#!/usr/bin/env bash
# Build the collection artifact, check what it leaves out, install it into an empty collections
# path and check that ansible-doc documents every module and role from the installed copy.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mkdir -p build
rm -f build/labcloud-jupyter-*.tar.gz
ansible-galaxy collection build --force --output-path build/ . >/dev/null
artifact=$(ls build/labcloud-jupyter-*.tar.gz)
echo "built $artifact"

fail=0
listing=$(tar -tzf "$artifact")
# Every file of the artifact is one galaxy.yml's manifest allows (the same allow-list, as globs),
# and the caches and files a checkout gathers while it is used are not in it.
allowed='^(galaxy\.yml|MANIFEST\.json|FILES\.json|README\.md|CHANGELOG\.md|COPYING|requirements\.yml'
allowed+='|meta/[^/]+\.yml|plugins/.+\.(py|yml)|roles/.+\.(yml|j2|py)|playbooks/.+\.yml|inventory/.+\.yml)$'
while IFS= read -r entry; do
  case "$entry" in */) continue ;; esac
  if ! grep -Eq "$allowed" <<<"$entry"; then
    echo "FAIL: the artifact holds $entry, which the manifest does not allow"; fail=1
  fi
  case "$entry" in
    .*|*/.*|*__pycache__*|*.pyc) echo "FAIL: the artifact holds $entry"; fail=1 ;;
  esac
done <<<"$listing"
for excluded in tests/ bench/ localcloud/ molecule/ collections/ .venv/ .ci/ tools/ .ruff_cache/ .pytest_cache/; do
  if grep -q "^${excluded}" <<<"$listing"; then
    echo "FAIL: the artifact contains ${excluded}"; fail=1
  fi
done
for required in MANIFEST.json meta/runtime.yml README.md galaxy.yml playbooks/launch.yml roles/owners/tasks/main.yml; do
  grep -qx "$required" <<<"$listing" || { echo "FAIL: the artifact lacks $required"; fail=1; }
done
echo "artifact files: $(grep -vc '/$' <<<"$listing")"

target=$(mktemp -d /tmp/labcloud-install.XXXXXX)
trap 'rm -rf "$target"' EXIT
# --no-deps: amazon.aws comes from the `ansible` package in the virtualenv.
# --force: the checkout itself already provides labcloud.jupyter through ansible.cfg.
ansible-galaxy collection install --force --no-deps -p "$target" "$artifact" >/dev/null 2>&1
installed="$target/ansible_collections/labcloud/jupyter"
[ -f "$installed/MANIFEST.json" ] || { echo "FAIL: nothing installed at $installed"; exit 1; }

# Check from a directory without this checkout's ansible.cfg, so only the installed copy is seen.
export ANSIBLE_COLLECTIONS_PATH="$target"
unset ANSIBLE_CONFIG
cd "$target"
modules=$(ansible-doc -t module -l labcloud.jupyter 2>/dev/null | awk '{print $1}')
for path in "$root"/plugins/modules/*.py; do
  [ -e "$path" ] || continue
  name="labcloud.jupyter.$(basename "$path" .py)"
  if grep -qx "$name" <<<"$modules"; then
    ansible-doc -t module "$name" >/dev/null && echo "ansible-doc ok: $name"
  else
    echo "FAIL: ansible-doc does not list $name"; fail=1
  fi
done
# ansible-core 2.19 lists roles as "labcloud.jupyter.name:" followed by their entry points.
for kind in callback filter; do
  listed=$(ansible-doc -t "$kind" -l labcloud.jupyter 2>/dev/null | awk '{print $1}')
  for path in "$root"/plugins/"$kind"/*.py; do
    [ -e "$path" ] || continue
    for name in $(python - "$path" <<'PY'
import ast, sys, yaml
tree = ast.parse(open(sys.argv[1]).read())
for node in tree.body:
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
        print(yaml.safe_load(node.value.value)["name"])
PY
    ); do
      if grep -qx "labcloud.jupyter.$name" <<<"$listed"; then
        ansible-doc -t "$kind" "labcloud.jupyter.$name" >/dev/null && echo "ansible-doc ok: labcloud.jupyter.$name ($kind)"
      else
        echo "FAIL: ansible-doc -t $kind does not list labcloud.jupyter.$name"; fail=1
      fi
    done
  done
done
roles=$(ansible-doc -t role -l labcloud.jupyter 2>/dev/null | awk '/^[^ ]/{sub(/:$/, "", $1); print $1}')
for dir in "$root"/roles/*/; do
  [ -d "$dir" ] || continue
  name="labcloud.jupyter.$(basename "$dir")"
  if grep -qx "$name" <<<"$roles"; then
    ansible-doc -t role "$name" >/dev/null && echo "ansible-doc ok: $name (role)"
  else
    echo "FAIL: ansible-doc -t role does not list $name"; fail=1
  fi
done
exit $fail
