"""The `soundgen` command line. Each ``cmd_*.py`` module here registers its own subcommands."""
