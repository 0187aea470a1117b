"""The Flask adapter: app factory, Twilio webhooks (TwiML), console and JSON API."""
