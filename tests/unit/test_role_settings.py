"""Unit tests of the role_settings lookup: the settings configure.yml records on a VM come from the
roles' argument specs, and the digest of the roles changes with any of their files."""

import shutil

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.labcloud.jupyter.plugins.lookup import role_settings
from ansible_collections.labcloud.jupyter.plugins.lookup.role_settings import LookupModule


def names(*roles, **options):
    return LookupModule().run(list(roles), variables={}, **options)


def test_names_are_the_main_options_in_spec_order():
    found = names("sshd")
    assert found[0] == "sshd_check_settings"
    assert "sshd_password_authentication" in found
    assert all(name.startswith("sshd_") for name in found)


def test_exclude_and_order_across_roles():
    found = names("jupyterlab", "jupyter_service", exclude="_(check_settings|upgrade|upgrade_with)$")
    assert "jupyterlab_check_settings" not in found and "jupyterlab_upgrade" not in found
    assert "jupyterlab_upgrade_with" not in found
    assert found.index("jupyterlab_packages") < found.index("jupyter_service_port")


def test_secret_settings_are_the_no_log_ones():
    secret = names("jupyter_service", want="secret")
    assert secret and all(name.startswith("jupyter_service_") for name in secret)
    assert "jupyter_service_token" in secret
    assert "jupyter_service_port" not in secret
    assert names("sshd", want="secret") == []


@pytest.mark.parametrize("role", ["nosuchrole", "../roles", "Sshd", ""])
def test_unknown_or_malformed_roles_fail(role):
    with pytest.raises(AnsibleLookupError, match="role_settings"):
        names(role)


def test_a_bad_exclude_pattern_fails():
    with pytest.raises(AnsibleLookupError, match="not a regular expression"):
        names("sshd", exclude="(")


def test_digest_changes_with_any_file_of_the_roles(tmp_path, monkeypatch):
    roles = tmp_path / "roles"
    shutil.copytree(role_settings.ROLES + "/sshd", roles / "sshd")
    monkeypatch.setattr(role_settings, "ROLES", str(roles))
    first = names("sshd", want="digest")
    assert first == names("sshd", want="digest")
    assert len(first[0]) == 64
    template = next((roles / "sshd" / "templates").rglob("*.j2"))
    template.write_text(template.read_text() + "\n# one more line\n")
    assert names("sshd", want="digest") != first
    # Files outside the role's parts (its tests, say) do not count.
    (roles / "sshd" / "README.md").write_text("notes")
    changed = names("sshd", want="digest")
    (roles / "sshd" / "README.md").unlink()
    assert names("sshd", want="digest") == changed


@pytest.mark.parametrize(
    ("options", "message"),
    [({"want": "values"}, "want='values' is not one of"), ({"exclud": "x"}, "unknown option")],
)
def test_bad_options_fail(options, message):
    with pytest.raises(AnsibleLookupError, match=message):
        names("sshd", **options)
