"""Liveness in Redis: leases and heartbeats in a sorted set, over a durable store."""
