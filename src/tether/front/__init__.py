"""The front doors: SessionManager, AsyncSessionManager, handles, the supervisor, the worker loop."""
