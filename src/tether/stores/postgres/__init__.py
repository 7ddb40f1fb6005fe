"""`postgresql://…`: the store for many Tether processes sharing one PostgreSQL (psycopg 3 + pool).

`PostgresStore` (sync) and `AsyncPostgresStore` (asyncio) run the same operations and the same
SQL (`queries.sql`); only the driving of the connection differs.
"""

from tether.stores.postgres.aio import AsyncPostgresStore
from tether.stores.postgres.store import PostgresStore

__all__ = ["AsyncPostgresStore", "PostgresStore"]
