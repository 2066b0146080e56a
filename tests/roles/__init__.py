"""Role tests on local-cloud machines (a package, so that their module names do not clash with tests/unit)."""
