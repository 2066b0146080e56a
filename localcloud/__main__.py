"""`python -m localcloud` runs the command line."""

from localcloud.cli import main

raise SystemExit(main())
