"""Celery: the app factory, task modules, beat schedule and routing."""
