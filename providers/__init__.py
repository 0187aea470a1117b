"""Outbound provider adapters (Twilio's REST API, mail): imported by the web app and the workers alike."""
