"""Shared helpers for the test suite: real services, generated media, processes."""
