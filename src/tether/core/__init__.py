"""Core values: the model, errors, clock, JSON codec, validation, policies and settings.

Imports nothing else of Tether's; every other layer builds on it."""
