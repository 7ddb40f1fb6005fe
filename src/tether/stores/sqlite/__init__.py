"""The SQLite store: `sqlite:///path/tether.db`, the embedded default."""

from tether.stores.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
