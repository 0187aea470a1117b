"""Inbound email: storing raw messages, MIME parsing, provider webhook signatures, the IMAP poller."""
