"""`tether.Client` / `tether.AsyncClient`: the managers' API over HTTP, against `tether serve`.

Switching an agent from embedded to remote is one line: `Client("http://…", api_key=…)` (or just
`Client()` with TETHER_URL / TETHER_API_KEY set) instead of `SessionManager(url)`. See docs/client.md.
"""

from tether.client.aio import AsyncClient
from tether.client.sync import Client

__all__ = ["AsyncClient", "Client"]
