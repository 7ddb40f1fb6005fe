"""The store's pools hand out the connection returned last: after a burst, calls run on one warm
connection (and backend) while the connections the burst added idle until `max_idle` closes them."""

from __future__ import annotations

import asyncio

from tether.core.postgres_url import PoolSettings
from tether.stores.postgres.connection import AsyncConnection, AsyncPool, Connection, Pool, pool_arguments


def test_the_pool_hands_out_the_connection_returned_last(pg_url: str) -> None:
    arguments = pool_arguments(PoolSettings.from_url(f"{pg_url}&pool_min=3&pool_max=3"))
    with Pool(connection_class=Connection, open=False, **arguments) as pool:
        pool.open(wait=True)
        burst = [pool.getconn() for _ in range(3)]
        for conn in burst:
            pool.putconn(conn)
        for _ in range(3):  # first in, first out would hand out burst[0], burst[1], burst[2]
            conn = pool.getconn()
            assert conn is burst[-1]
            pool.putconn(conn)
        assert pool.get_stats()["pool_available"] == 3


def test_the_async_pool_hands_out_the_connection_returned_last(pg_url: str) -> None:
    async def main() -> None:
        arguments = pool_arguments(PoolSettings.from_url(f"{pg_url}&pool_min=3&pool_max=3"))
        async with AsyncPool(connection_class=AsyncConnection, open=False, **arguments) as pool:
            await pool.open(wait=True)
            burst = [await pool.getconn() for _ in range(3)]
            for conn in burst:
                await pool.putconn(conn)
            for _ in range(3):
                conn = await pool.getconn()
                assert conn is burst[-1]
                await pool.putconn(conn)

    asyncio.run(main())
