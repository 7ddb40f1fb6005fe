"""`tether serve`: the HTTP service over a SessionManager (see docs/http-api.md)."""
