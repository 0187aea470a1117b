"""The web app: one factory (``app.py``), the coordinator console, the client portal, the JSON API, the mail
webhooks, health and metrics. The phone's webhooks are in ``ivr/``."""
