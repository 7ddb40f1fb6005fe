"""Events: the in-process bus and its PostgreSQL / Redis bridges across processes."""
