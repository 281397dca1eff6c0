"""Cluster logic over the database: jobs, dispatching, nodes, scans, maintenance.

Plain functions over a SQLAlchemy session; anything that talks to the broker
goes through the ``Publisher`` protocol so this package needs no Celery.
"""
