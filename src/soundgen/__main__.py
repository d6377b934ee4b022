"""`python -m soundgen` runs the command line."""

from soundgen.cli.main import main

raise SystemExit(main())
