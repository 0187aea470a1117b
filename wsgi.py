"""WSGI entry point: ``gunicorn wsgi:app``."""

from ivr.app import create_app
from settings import load_settings
from workers.logs import configure

settings = load_settings()
configure(settings.log_format)
app = create_app(settings)
