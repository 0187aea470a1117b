"""WSGI entry point: ``gunicorn wsgi:app``."""

from runtime.logs import configure
from settings import load_settings
from web.app import create_app

settings = load_settings()
configure(settings.log_format)
app = create_app(settings)
