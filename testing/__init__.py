"""The harness the tests and the benchmarks share: a real stack to break, a Twilio REST stand-in, the
synthetic voicemail corpora, hostile mail, a private Dovecot and the schema migration. It imports the product,
never ``tests``."""
