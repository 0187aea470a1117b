"""Security headers every web answer may carry."""

from __future__ import annotations

from flask import Response, request

from runtime.web import rt

# Pages and fragments: nothing outside this origin, no inline script, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def strict_transport_security(response: Response) -> Response:
    """Add Strict-Transport-Security to an answer to a request that came over HTTPS, never over plain HTTP.

    Behind TRUSTED_PROXY_HOPS proxies, HTTPS is what the trusted proxy says in X-Forwarded-Proto
    (ProxyFix); without one, only a TLS connection to this server itself. Browsers ignore the header
    over HTTP (RFC 6797 section 8.1), and sending it there would claim a protection the hop lacks.
    """
    settings = rt().settings
    if request.is_secure and settings.hsts_max_age_seconds > 0:
        value = f"max-age={settings.hsts_max_age_seconds}"
        if settings.hsts_include_subdomains:
            value += "; includeSubDomains"
        response.headers.setdefault("Strict-Transport-Security", value)
    return response
