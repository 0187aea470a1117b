"""Security headers every web answer may carry."""

from __future__ import annotations

from flask import Response, request

from runtime.web import rt

# Pages and fragments: nothing outside this origin, no inline script, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def page_headers(response: Response, static_endpoint: str) -> Response:
    """The console's and the portal's headers: no sniffing or framing, same-origin referrers, the CSP on pages.

    Nothing but the blueprint's static files is cached: pages and files carry one signed-in person's data.
    """
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if request.endpoint != static_endpoint:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


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
