"""The client portal: clients' own people sign in by emailed link, submit tickets with triage questions, follow and reply.

Separate from the console in everything that grants access: its own cookie (``__Host-portal``),
its own server-side sessions (``portal_sessions``, shorter-lived), and no route of the console or
the JSON API reads it. CSRF protection (flask-wtf, configured by the console) covers every form,
and the same security headers are sent.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the portal blueprint (after the console, whose CSRF protection covers it)."""
    # Each page module adds its routes to the one portal blueprint when imported.
    from web.portal import auth, files, layout, new_ticket, sign_in, tickets  # noqa: F401

    app.register_blueprint(auth.blueprint)
