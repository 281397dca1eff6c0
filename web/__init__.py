"""The dashboard: Flask app factory, blueprints (auth, api, dashboard), templates, static."""
