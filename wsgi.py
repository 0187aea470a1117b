"""WSGI entry point: ``gunicorn wsgi:app``."""

from ivr.app import create_app

app = create_app()
