"""How the command ends: exit statuses, and every error as one line on stderr, never a traceback.

  0  success
  1  any other error (including an unexpected one: TETHER_DEBUG=1 shows its traceback)
  2  usage: a bad option or argument, invalid input (ValidationError)
  3  not found
  4  conflict: the session changed, the lease was lost, or the state forbids the action
  5  the store is unavailable
  6  configuration: a bad store URL, setting or policy file, or a schema newer than this Tether
  7  authentication
130  interrupted
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import typer

from tether.core.config import setting
from tether.core.errors import (
    AuthError,
    ConfigurationError,
    ConflictError,
    InvalidTransition,
    NotFound,
    SchemaMismatch,
    StoreUnavailable,
    TetherError,
    ValidationError,
)

GENERIC = 1
USAGE = 2
INTERRUPTED = 130

EXIT_CODES: dict[type[TetherError], int] = {
    TetherError: GENERIC,
    ValidationError: USAGE,
    NotFound: 3,
    ConflictError: 4,
    InvalidTransition: 4,
    StoreUnavailable: 5,
    ConfigurationError: 6,
    SchemaMismatch: 6,
    AuthError: 7,
}


def exit_code(error: TetherError) -> int:
    """The status of the most specific class of the error that the table names."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return GENERIC


def run(app: typer.Typer, argv: Sequence[str] | None) -> int:
    """Run the app without Click's standalone handling, so every error ends here."""
    debug = setting("TETHER_DEBUG") == "1"
    if not debug and logging.lastResort is not None:
        # Unless a command configures logging, library warnings (a pool retrying a connection)
        # would print around the one error line.
        logging.lastResort.setLevel(logging.CRITICAL)
    try:
        command = typer.main.get_command(app)
        result = command.main(args=argv, prog_name="tether", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors: bad options, missing arguments
        return report(exc.format_message(), exc.exit_code)
    except typer.Abort:
        return report("aborted", GENERIC)
    except TetherError as exc:  # with its notes (an import says how far it got)
        return report("; ".join([str(exc), *getattr(exc, "__notes__", ())]), exit_code(exc))
    except KeyboardInterrupt:
        return report("interrupted", INTERRUPTED)
    except BrokenPipeError:  # the reader went away (`tether export - | head`): not worth a word
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return GENERIC
    except OSError as exc:  # a file named on the command line; stores wrap their own I/O errors
        return report(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), GENERIC)
    except Exception as exc:
        if debug:
            raise
        return report(f"unexpected {type(exc).__name__}: {exc} (TETHER_DEBUG=1 shows the traceback)", GENERIC)
    return result if isinstance(result, int) else 0


def report(message: str, code: int) -> int:
    """Print `error: <message>` as a single line on stderr; returns the exit status."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    return code
