"""The phone: Twilio voice and SMS webhooks (TwiML), page calls and acknowledgements, signature checks, the simulator."""
