"""`python -m tether` runs the CLI, as the `tether` command does."""

from tether.cli import main

main()
