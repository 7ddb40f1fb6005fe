"""`python -m tether` runs the CLI, as the `tether` command does."""

from tether.cli import main

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    main()
