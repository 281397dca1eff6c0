"""gunicorn entry point: `gunicorn web.wsgi:app` (what `codecshift web` runs)."""

from web.app import create_app

app = create_app()
