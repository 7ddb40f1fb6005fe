"""Flows: every manager operation written once, for sync and async stores alike."""
