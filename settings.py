"""One Settings object, built from the environment by one function.

Nothing else in the code base reads ``os.environ``: adapters receive a
``Settings`` (or the few values they need) as an argument.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from languages import CallLanguage, is_available

ROOT = Path(__file__).resolve().parent
DEFAULT_POLICY_FILE = ROOT / "config" / "support-policy.toml"
DEFAULT_ONCALL_FILE = ROOT / "config" / "oncall.toml"
MAX_BEAM_SIZE = 10  # wider beams cost more than they find on a voicemail


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting."""


def _bool(environ: Mapping[str, str], key: str, default: bool) -> bool:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key} must be true or false, not {raw!r}")


def _int(environ: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, not {value}")
    return value


def _beam(environ: Mapping[str, str], key: str, default: int) -> int:
    beam = _int(environ, key, default, minimum=1)
    if beam > MAX_BEAM_SIZE:
        raise ConfigError(f"{key} must be between 1 (greedy) and {MAX_BEAM_SIZE}, not {beam}")
    return beam


def _intervals(environ: Mapping[str, str], key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = environ.get(key)
    if not raw:
        return default
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(f"{key} must be comma-separated seconds, e.g. 10,30,90, not {raw!r}") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"{key} must be comma-separated seconds, e.g. 10,30,90, not {raw!r}")
    return values


def _choice(environ: Mapping[str, str], key: str, choices: tuple[str, ...], default: str) -> str:
    value = environ.get(key) or default
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _list(environ: Mapping[str, str], key: str) -> tuple[str, ...]:
    raw = environ.get(key, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


# Twilio's <Say> language and a voice for the languages whose catalogue ships here.
CALL_LANGUAGE_DEFAULTS = {"es": ("es-US", "Polly.Lupe")}
MENU_KEYS = ("1", "2", "3")  # coordinator or message, critical, ticket status


def _call_language(environ: Mapping[str, str]) -> CallLanguage | None:
    """CALL_LANGUAGE (default es; off: English only), CALL_LANGUAGE_KEY, CALL_LANGUAGE_SAY, CALL_LANGUAGE_VOICE."""
    code = (environ.get("CALL_LANGUAGE") or "es").strip()
    if code.lower() in {"off", "none", "false", "0", "en"}:
        return None
    if not is_available(code):
        raise ConfigError(f"CALL_LANGUAGE={code!r} has no catalogue: add languages/{code}.po (see README) or use off")
    key = (environ.get("CALL_LANGUAGE_KEY") or "9").strip()
    if len(key) != 1 or not key.isdigit() or key in MENU_KEYS:
        raise ConfigError(f"CALL_LANGUAGE_KEY must be one digit other than the menu's 1, 2 and 3, not {key!r}")
    say, voice = CALL_LANGUAGE_DEFAULTS.get(code, ("", ""))
    say = (environ.get("CALL_LANGUAGE_SAY") or say).strip()
    voice = (environ.get("CALL_LANGUAGE_VOICE") or voice).strip()
    if not say or not voice:
        raise ConfigError(
            f"CALL_LANGUAGE={code} needs CALL_LANGUAGE_SAY (Twilio's <Say> language, e.g. fr-CA) "
            "and CALL_LANGUAGE_VOICE (e.g. Polly.Chantal)"
        )
    return CallLanguage(code=code, key=key, say_language=say, voice=voice)


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with."""

    database_url: str = f"sqlite:///{ROOT / 'var' / 'supportline.db'}"
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: str = "dev-only-change-me"
    public_base_url: str = "http://127.0.0.1:8000"
    policy_file: Path = DEFAULT_POLICY_FILE
    oncall_file: Path = DEFAULT_ONCALL_FILE
    company_name: str = "ITECH Solutions"
    support_number: str = "+18055922500"
    # Twilio
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    validate_twilio_signature: bool = True
    # IVR
    coordinator_numbers: tuple[str, ...] = ()
    coordinator_ring_seconds: int = 20
    voicemail_max_seconds: int = 300
    confirmation_sms: bool = True
    # The other language the greeting offers ("Para español, oprima 9"); None: English only
    call_language: CallLanguage | None = field(default_factory=lambda: CallLanguage("es", "9", "es-US", "Polly.Lupe"))
    caller_rate_limit: int = 10  # calls per caller per window
    caller_rate_window_seconds: int = 600
    sms_thread_hours: int = 72  # a text joins the sender's open ticket opened by text this recently
    # Recordings and transcription
    recordings_dir: Path = ROOT / "var" / "recordings"
    recording_max_bytes: int = 50 * 1024 * 1024
    delete_twilio_recording: bool = False
    transcription_engine: str = "faster-whisper"
    whisper_model: str = ""  # empty: the bundled tiny.en model
    whisper_device: str = "cpu"
    whisper_compute_type: str = "int8"
    # The first pass reads greedily (the ticket has its transcript within seconds); the second pass
    # (the number re-read, a job of its own) reads with a beam search.
    whisper_beam_size: int = 1
    whisper_refine_beam_size: int = 5
    # Voicemails of callers who chose Spanish on the call: a multilingual model (faster-whisper),
    # loaded by the worker the first time one arrives; "off": transcribe them with WHISPER_MODEL.
    whisper_multilingual_model: str = "bundled:base"
    # An English caller's low-confidence transcript: ask the multilingual model whether it was Spanish.
    recheck_low_confidence_language: bool = True
    transcription_pending_minutes: int = 10
    # Paging
    ack_counts_as_first_response: bool = True
    paging_ring_seconds: int = 25  # how long a page call rings before Twilio gives up
    paging_send_tries: int = 3  # tries per page and channel when Twilio fails (5xx, 429, timeout)
    paging_machine_detection: bool = True  # AnsweredBy on page calls: a voicemail box is never an ack
    # Operations
    retention_days: int = 0  # purge recordings and transcripts of tickets older than this; 0 keeps them
    log_format: str = "text"  # or "json"
    worker_heartbeat_seconds: int = 10  # a worker silent for 3 beats is taken for dead by the sweeper
    worker_nice: int = 10  # the model-loading worker yields the cores to the web tier and the pager
    job_retry_intervals: tuple[int, ...] = (10, 30, 90)  # seconds between tries of a failed job
    outbox_max_attempts: int = 6  # hand-overs of an outbox message to the job queue before it is marked failed
    dispatch_after_response: bool = True  # hand jobs to Redis right after a webhook answers
    allow_simulated_time: bool = False  # demos/tests only: honour the simulator's time header
    # Coordinator console and JSON API
    console_secure_cookies: bool = True  # Secure, __Host- session cookie (default: PUBLIC_BASE_URL is https)
    console_idle_minutes: int = 30  # a console session unused this long is ended
    console_session_hours: int = 12  # and no session lives longer than this
    console_lockout_failures: int = 5  # failed sign-ins in a row that lock an account
    console_lockout_minutes: int = 15  # how long it stays locked
    api_rate_limit: str = "300/minute"  # requests per API token (moving window, counted in Redis)
    # Monitoring alerts (the Events API v2 endpoint): severity -> priority, and events per routing key
    alert_priorities: tuple[tuple[str, str], ...] = (
        ("critical", "P1"),
        ("error", "P2"),
        ("warning", "P3"),
        ("info", "P4"),
    )
    alert_rate_limit: str = "120/minute"
    api_auth_failure_limit: str = "20/minute"  # wrong or missing API tokens per client address
    # Mail (outgoing): empty SMTP_URL writes every message to the development Maildir instead
    smtp_url: str = ""
    mail_from: str = "ITECH Solutions Support <support@itech-solutions.example>"
    dev_mailbox_dir: Path = ROOT / "var" / "mail"
    # Client portal: sign-in links, sessions (shorter than the console's), rate limits, attachments
    portal_base_url: str = ""  # where sign-in links point; empty: PUBLIC_BASE_URL
    portal_link_minutes: int = 15  # a sign-in link works once, for this long
    portal_idle_minutes: int = 30  # a portal session unused this long is ended
    portal_session_hours: int = 8  # and none lives longer than this
    portal_link_limit_per_address: int = 5  # sign-in links per email address per window
    portal_link_limit_per_source: int = 20  # sign-in requests per source IP address per window
    portal_link_window_minutes: int = 15
    portal_attachment_max_bytes: int = 10 * 1024 * 1024  # per file
    portal_attachment_max_files: int = 5  # per submission or reply
    # Email channel: intake (webhooks, IMAP), threading, notices to clients
    mail_templates_file: Path = ROOT / "config" / "mail.toml"  # which events notify, and the templates
    mail_inbox_address: str = ""  # the helpdesk address mail arrives at; empty: MAIL_FROM's address
    mail_tag_prefix: str = "#"  # the ticket tag in subjects: [#400127]
    mail_reopen_days: int = 7  # a reply this soon after resolution reopens the ticket; later ones open a new one
    mail_cap_per_ticket: int = 10  # automatic messages to one address about one ticket per window
    mail_cap_window_minutes: int = 10
    mail_max_bytes: int = 25 * 1024 * 1024  # a bigger message is quarantined (headers kept)
    mail_attachment_max_bytes: int = 10 * 1024 * 1024  # a bigger attachment is listed but not stored
    # Hostile mail: checked on the raw bytes before any parsing; a message over a cap is quarantined
    mail_attachment_max_count: int = 20  # per message; the rest are listed as not stored
    mail_header_max_bytes: int = 128 * 1024  # the whole header block of the message
    mail_header_field_max_bytes: int = 32 * 1024  # one header field, unfolded
    mail_header_max_encoded_words: int = 1000  # RFC 2047 encoded words in one header field
    mail_message_max_encoded_words: int = 2000  # RFC 2047 encoded words in all the message's headers
    mail_max_nesting: int = 16  # multipart and message/rfc822 parts inside each other
    mail_html_max_bytes: int = 1024 * 1024  # bigger HTML bodies are reduced to text without layout
    # Parsing runs in a child process with this address-space budget and time limit
    mail_parse_max_memory_mb: int = 512
    mail_parse_timeout_seconds: int = 30
    mailgun_signing_key: str = ""  # empty: the Mailgun webhook refuses everything
    sendgrid_verification_key: str = ""  # base64 DER public key of the signed Inbound Parse webhook
    mail_webhook_max_age_seconds: int = 300  # a signed webhook older than this is refused (replay)
    imap_url: str = ""  # imaps://user:password@host:993/INBOX; empty: no IMAP poller
    imap_oauth2_token_command: str = ""  # prints a fresh OAuth2 access token: XOAUTH2 instead of the password
    imap_poll_seconds: int = 60  # between polls when the server offers no IDLE
    imap_idle_seconds: int = 300  # IDLE is renewed this often (servers drop it after 30 minutes)
    # Web hardening: request size and sign-in throttling
    max_request_bytes: int = 64 * 1024  # larger bodies are answered 413 before they are read
    console_signin_attempts_per_address: int = 10  # failed sign-ins from one address per window
    console_signin_window_minutes: int = 15
    trusted_proxy_hops: int = 0  # proxies in front whose X-Forwarded-For / -Proto give the client's address and scheme
    hsts_max_age_seconds: int = 31536000  # Strict-Transport-Security on HTTPS answers; 0: not sent
    hsts_include_subdomains: bool = False  # the header covers every subdomain too (only if all serve HTTPS)
    # Development mode (`make run` without Twilio credentials): the local Twilio stand-in, one simulated clock
    dev_mode: bool = False
    dev_state_dir: Path = ROOT / "var" / "dev"  # run.env (how to reach `make run`), console-login, the stand-in's log
    dev_twilio_log: Path = ROOT / "var" / "dev" / "twilio.jsonl"  # what the stand-in was asked to send
    # P1 paging reliability: repeat until a page is delivered, provider retries, email pages, withheld callers
    paging_horizon_minutes: int = (
        60  # keep repeating past the P1's first-response target this long while nobody is reached
    )
    paging_retry_max_seconds: int = 60  # longest pause between retries of a page Twilio failed to take
    paging_email: bool = True  # page by email too, to each on-call person's `email`
    paging_withheld_cap: int = 3  # P1 escalations started from withheld numbers per window; beyond: join the latest
    paging_withheld_window_minutes: int = 60
    # The PSA bridge: the ConnectWise file (site, credentials, board, mappings); None: no PSA bridge
    connectwise_file: Path | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (tests, CLI flags)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def inbox_address(self) -> str:
        """The helpdesk's own address: MAIL_INBOX_ADDRESS, else the address in MAIL_FROM (lower case)."""
        from email.utils import parseaddr

        return self.mail_inbox_address or parseaddr(self.mail_from)[1].lower()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    defaults = Settings()
    public = env.get("PUBLIC_BASE_URL", defaults.public_base_url).rstrip("/")
    if not public.startswith(("http://", "https://")):
        raise ConfigError(f"PUBLIC_BASE_URL must start with http:// or https://, not {public!r}")
    return Settings(
        database_url=env.get("DATABASE_URL") or defaults.database_url,
        redis_url=env.get("REDIS_URL") or defaults.redis_url,
        secret_key=env.get("SECRET_KEY") or defaults.secret_key,
        public_base_url=public,
        policy_file=Path(env.get("SUPPORT_POLICY_FILE") or defaults.policy_file),
        oncall_file=Path(env.get("ONCALL_FILE") or defaults.oncall_file),
        company_name=env.get("COMPANY_NAME") or defaults.company_name,
        support_number=env.get("SUPPORT_NUMBER") or defaults.support_number,
        allow_simulated_time=_bool(env, "ALLOW_SIMULATED_TIME", False),
        retention_days=_int(env, "RETENTION_DAYS", 0, minimum=0),
        log_format=_choice(env, "LOG_FORMAT", ("text", "json"), "text"),
        worker_heartbeat_seconds=_int(env, "WORKER_HEARTBEAT_SECONDS", 10, minimum=1),
        worker_nice=min(_int(env, "WORKER_NICE", 10, minimum=0), 19),
        job_retry_intervals=_intervals(env, "JOB_RETRY_INTERVALS", defaults.job_retry_intervals),
        outbox_max_attempts=_int(env, "OUTBOX_MAX_ATTEMPTS", defaults.outbox_max_attempts, minimum=1),
        **_telephony_settings(env, defaults),
        **_transcription_settings(env, defaults),
        **_paging_settings(env),
        **_portal_settings(env, defaults, public),
        **_mail_settings(env, defaults),
        **_web_settings(env, defaults, public),
        **_dev_settings(env, defaults),
        connectwise_file=Path(env["CONNECTWISE_FILE"]) if env.get("CONNECTWISE_FILE") else None,
    )


def _telephony_settings(env: Mapping[str, str], defaults: Settings) -> dict[str, Any]:
    """Twilio, the call flow and the recordings."""
    return dict(
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
        twilio_api_base_url=(env.get("TWILIO_API_BASE_URL") or defaults.twilio_api_base_url).rstrip("/"),
        validate_twilio_signature=_bool(env, "VALIDATE_TWILIO_SIGNATURE", True),
        coordinator_numbers=_list(env, "COORDINATOR_NUMBERS"),
        coordinator_ring_seconds=_int(env, "COORDINATOR_RING_SECONDS", 20, minimum=5),
        voicemail_max_seconds=_int(env, "VOICEMAIL_MAX_SECONDS", 300, minimum=10),
        confirmation_sms=_bool(env, "CONFIRMATION_SMS", True),
        call_language=_call_language(env),
        caller_rate_limit=_int(env, "CALLER_RATE_LIMIT", 10, minimum=1),
        caller_rate_window_seconds=_int(env, "CALLER_RATE_WINDOW_SECONDS", 600, minimum=1),
        sms_thread_hours=_int(env, "SMS_THREAD_HOURS", defaults.sms_thread_hours, minimum=1),
        recordings_dir=Path(env.get("RECORDINGS_DIR") or defaults.recordings_dir),
        recording_max_bytes=_int(env, "RECORDING_MAX_BYTES", defaults.recording_max_bytes, minimum=1024),
        delete_twilio_recording=_bool(env, "DELETE_TWILIO_RECORDING", False),
    )


def _transcription_settings(env: Mapping[str, str], defaults: Settings) -> dict[str, Any]:
    """The transcription engine and its models."""
    engine = env.get("TRANSCRIPTION_ENGINE", defaults.transcription_engine)
    if engine not in {"faster-whisper", "openai-whisper"}:
        raise ConfigError(f"TRANSCRIPTION_ENGINE must be faster-whisper or openai-whisper, not {engine!r}")
    return dict(
        transcription_engine=engine,
        whisper_model=env.get("WHISPER_MODEL", ""),
        whisper_device=env.get("WHISPER_DEVICE") or defaults.whisper_device,
        whisper_compute_type=env.get("WHISPER_COMPUTE_TYPE") or defaults.whisper_compute_type,
        whisper_beam_size=_beam(env, "WHISPER_BEAM_SIZE", defaults.whisper_beam_size),
        whisper_refine_beam_size=_beam(env, "WHISPER_REFINE_BEAM_SIZE", defaults.whisper_refine_beam_size),
        whisper_multilingual_model=env.get("WHISPER_MULTILINGUAL_MODEL") or defaults.whisper_multilingual_model,
        recheck_low_confidence_language=_bool(env, "RECHECK_LOW_CONFIDENCE_LANGUAGE", True),
        transcription_pending_minutes=_int(env, "TRANSCRIPTION_PENDING_MINUTES", 10, minimum=1),
    )


def _paging_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """P1 paging: rings, tries, e-mail, the withheld-number cap."""
    return dict(
        ack_counts_as_first_response=_bool(env, "ACK_COUNTS_AS_FIRST_RESPONSE", True),
        paging_ring_seconds=_int(env, "PAGING_RING_SECONDS", 25, minimum=5),
        paging_send_tries=_int(env, "PAGING_SEND_TRIES", 3, minimum=1),
        paging_machine_detection=_bool(env, "PAGING_MACHINE_DETECTION", True),
        paging_horizon_minutes=_int(env, "PAGING_HORIZON_MINUTES", 60, minimum=0),
        paging_retry_max_seconds=_int(env, "PAGING_RETRY_MAX_SECONDS", 60, minimum=1),
        paging_email=_bool(env, "PAGING_EMAIL", True),
        paging_withheld_cap=_int(env, "PAGING_WITHHELD_CAP", 3, minimum=1),
        paging_withheld_window_minutes=_int(env, "PAGING_WITHHELD_WINDOW_MINUTES", 60, minimum=1),
    )


def _portal_settings(env: Mapping[str, str], defaults: Settings, public: str) -> dict[str, Any]:
    """The client portal: its address, sign-in links, sessions and attachments."""
    return dict(
        portal_base_url=_portal_base_url(env, public),
        portal_link_minutes=_int(env, "PORTAL_LINK_MINUTES", 15, minimum=1),
        portal_idle_minutes=_int(env, "PORTAL_IDLE_MINUTES", 30, minimum=1),
        portal_session_hours=_int(env, "PORTAL_SESSION_HOURS", 8, minimum=1),
        portal_link_limit_per_address=_int(env, "PORTAL_LINK_LIMIT_PER_ADDRESS", 5, minimum=1),
        portal_link_limit_per_source=_int(env, "PORTAL_LINK_LIMIT_PER_SOURCE", 20, minimum=1),
        portal_link_window_minutes=_int(env, "PORTAL_LINK_WINDOW_MINUTES", 15, minimum=1),
        portal_attachment_max_bytes=_int(
            env, "PORTAL_ATTACHMENT_MAX_BYTES", defaults.portal_attachment_max_bytes, minimum=1024
        ),
        portal_attachment_max_files=_int(env, "PORTAL_ATTACHMENT_MAX_FILES", 5, minimum=1),
    )


def _mail_settings(env: Mapping[str, str], defaults: Settings) -> dict[str, Any]:
    """The email channel: sending, the inbox, hostile-mail limits, webhooks and IMAP."""
    return dict(
        smtp_url=_server_url(env, "SMTP_URL", parse_smtp_url),
        mail_from=env.get("MAIL_FROM") or defaults.mail_from,
        dev_mailbox_dir=Path(env.get("DEV_MAILBOX_DIR") or defaults.dev_mailbox_dir),
        mail_templates_file=Path(env.get("MAIL_TEMPLATES_FILE") or defaults.mail_templates_file),
        mail_inbox_address=(env.get("MAIL_INBOX_ADDRESS") or "").strip().lower(),
        mail_tag_prefix=_tag_prefix(env),
        mail_reopen_days=_int(env, "MAIL_REOPEN_DAYS", 7, minimum=0),
        mail_cap_per_ticket=_int(env, "MAIL_CAP_PER_TICKET", 10, minimum=1),
        mail_cap_window_minutes=_int(env, "MAIL_CAP_WINDOW_MINUTES", 10, minimum=1),
        mail_max_bytes=_int(env, "MAIL_MAX_BYTES", defaults.mail_max_bytes, minimum=64 * 1024),
        mail_attachment_max_bytes=_int(env, "MAIL_ATTACHMENT_MAX_BYTES", defaults.mail_attachment_max_bytes, minimum=1),
        mail_attachment_max_count=_int(env, "MAIL_ATTACHMENT_MAX_COUNT", defaults.mail_attachment_max_count, minimum=0),
        mail_header_max_bytes=_int(env, "MAIL_HEADER_MAX_BYTES", defaults.mail_header_max_bytes, minimum=4096),
        mail_header_field_max_bytes=_int(
            env, "MAIL_HEADER_FIELD_MAX_BYTES", defaults.mail_header_field_max_bytes, minimum=1000
        ),
        mail_header_max_encoded_words=_int(
            env, "MAIL_HEADER_MAX_ENCODED_WORDS", defaults.mail_header_max_encoded_words, minimum=1
        ),
        mail_message_max_encoded_words=_int(
            env, "MAIL_MESSAGE_MAX_ENCODED_WORDS", defaults.mail_message_max_encoded_words, minimum=1
        ),
        mail_max_nesting=_int(env, "MAIL_MAX_NESTING", defaults.mail_max_nesting, minimum=1),
        mail_html_max_bytes=_int(env, "MAIL_HTML_MAX_BYTES", defaults.mail_html_max_bytes, minimum=1024),
        mail_parse_max_memory_mb=_int(env, "MAIL_PARSE_MAX_MEMORY_MB", defaults.mail_parse_max_memory_mb, minimum=32),
        mail_parse_timeout_seconds=_parse_timeout(env, defaults.mail_parse_timeout_seconds),
        mailgun_signing_key=env.get("MAILGUN_SIGNING_KEY", ""),
        sendgrid_verification_key=env.get("SENDGRID_VERIFICATION_KEY", ""),
        mail_webhook_max_age_seconds=_int(env, "MAIL_WEBHOOK_MAX_AGE_SECONDS", 300, minimum=10),
        imap_url=_server_url(env, "IMAP_URL", parse_imap_url),
        imap_oauth2_token_command=env.get("IMAP_OAUTH2_TOKEN_COMMAND", ""),
        imap_poll_seconds=_int(env, "IMAP_POLL_SECONDS", 60, minimum=1),
        imap_idle_seconds=_int(env, "IMAP_IDLE_SECONDS", 300, minimum=10),
    )


def _web_settings(env: Mapping[str, str], defaults: Settings, public: str) -> dict[str, Any]:
    """The console and the API: cookies, sessions, lockouts, rate limits and web hardening."""
    return dict(
        console_secure_cookies=_bool(env, "CONSOLE_SECURE_COOKIES", public.startswith("https://")),
        console_idle_minutes=_int(env, "CONSOLE_IDLE_MINUTES", 30, minimum=1),
        console_session_hours=_int(env, "CONSOLE_SESSION_HOURS", 12, minimum=1),
        console_lockout_failures=_int(env, "CONSOLE_LOCKOUT_FAILURES", 5, minimum=1),
        console_lockout_minutes=_int(env, "CONSOLE_LOCKOUT_MINUTES", 15, minimum=1),
        api_rate_limit=_rate(env, "API_RATE_LIMIT", defaults.api_rate_limit),
        alert_priorities=_alert_priorities(env, defaults.alert_priorities),
        alert_rate_limit=_rate(env, "ALERT_RATE_LIMIT", defaults.alert_rate_limit),
        api_auth_failure_limit=_rate(env, "API_AUTH_FAILURE_LIMIT", defaults.api_auth_failure_limit),
        max_request_bytes=_int(env, "MAX_REQUEST_BYTES", defaults.max_request_bytes, minimum=4096),
        console_signin_attempts_per_address=_int(env, "CONSOLE_SIGNIN_ATTEMPTS_PER_ADDRESS", 10, minimum=1),
        console_signin_window_minutes=_int(env, "CONSOLE_SIGNIN_WINDOW_MINUTES", 15, minimum=1),
        trusted_proxy_hops=_int(env, "TRUSTED_PROXY_HOPS", 0, minimum=0),
        hsts_max_age_seconds=_int(env, "HSTS_MAX_AGE_SECONDS", 31536000, minimum=0),
        hsts_include_subdomains=_bool(env, "HSTS_INCLUDE_SUBDOMAINS", False),
    )


def _dev_settings(env: Mapping[str, str], defaults: Settings) -> dict[str, Any]:
    """Development mode."""
    return dict(
        dev_mode=_dev_mode(env),
        dev_state_dir=Path(env.get("DEV_STATE_DIR") or defaults.dev_state_dir),
        dev_twilio_log=Path(
            env.get("DEV_TWILIO_LOG") or Path(env.get("DEV_STATE_DIR") or defaults.dev_state_dir) / "twilio.jsonl"
        ),
    )


def _alert_priorities(environ: Mapping[str, str], default: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """ALERT_PRIORITIES, e.g. critical=P1,error=P2,warning=P3,info=P4: the priority of each alert severity."""
    raw = (environ.get("ALERT_PRIORITIES") or "").strip()
    if not raw:
        return default
    chosen = dict(default)
    for part in raw.split(","):
        severity, _, priority = part.partition("=")
        severity, priority = severity.strip().lower(), priority.strip().upper()
        if severity not in chosen or priority not in ("P1", "P2", "P3", "P4"):
            raise ConfigError(f"ALERT_PRIORITIES must read like critical=P1,error=P2,warning=P3,info=P4, not {raw!r}")
        chosen[severity] = priority
    return tuple(chosen.items())


def _rate(environ: Mapping[str, str], key: str, default: str) -> str:
    """A rate such as 300/minute, 20 per 10 minutes or 5/second (the ``limits`` library's notation)."""
    from limits import parse_many

    raw = (environ.get(key) or default).strip()
    try:
        rates = parse_many(raw)
    except ValueError:
        rates = []
    if len(rates) != 1 or rates[0].amount < 1:
        raise ConfigError(f"{key} must be a rate such as 300/minute or 20 per 10 minutes, not {raw!r}")
    return raw


def _portal_base_url(environ: Mapping[str, str], public: str) -> str:
    raw = (environ.get("PORTAL_BASE_URL") or "").rstrip("/")
    if raw and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"PORTAL_BASE_URL must start with http:// or https://, not {raw!r}")
    return raw or public


def _dev_mode(environ: Mapping[str, str]) -> bool:
    """DEV_MODE=true only with a local Twilio stand-in: development mode can never reach Twilio's real API."""
    on = _bool(environ, "DEV_MODE", False)
    base = (environ.get("TWILIO_API_BASE_URL") or "").rstrip("/")
    if on and not base.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ConfigError(
            f"DEV_MODE=true needs TWILIO_API_BASE_URL on this machine (the local stand-in), not {base or 'Twilio'!r}"
        )
    return on


def _server_url(environ: Mapping[str, str], key: str, parse: Callable[[str], object]) -> str:
    """A mail server URL, parsed now so that a malformed one stops the process at start-up."""
    raw = environ.get(key, "")
    if raw:
        try:
            parse(raw)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return raw


def _parse_timeout(environ: Mapping[str, str], default: int) -> int:
    # The mail job itself may run 60 s (workers/dispatch.py job_timeout): the parse must end well before,
    # so a message that times out is quarantined by the job rather than killed with it by RQ.
    value = _int(environ, "MAIL_PARSE_TIMEOUT_SECONDS", default, minimum=1)
    if value > 45:
        raise ConfigError(
            f"MAIL_PARSE_TIMEOUT_SECONDS must be at most 45 (the mail job's own limit is 60), not {value}"
        )
    return value


def _tag_prefix(environ: Mapping[str, str]) -> str:
    raw = environ.get("MAIL_TAG_PREFIX") or "#"
    if not all(c.isalnum() or c in "#-_ " for c in raw) or len(raw) > 20:
        raise ConfigError(
            f"MAIL_TAG_PREFIX must be letters, digits, '#', '-' or '_' (e.g. '#' or 'Ticket#'), not {raw!r}"
        )
    return raw


# --- mail server URLs: parsed here, so a malformed one stops the process at start-up ---------------------


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to hand mail over, parsed from ``SMTP_URL``."""

    scheme: str  # smtps, smtp (STARTTLS) or smtp+insecure
    host: str
    port: int
    username: str
    password: str


def _mail_server(name: str, url: str, default_ports: dict[str, int]) -> tuple[SplitResult, str, int]:
    """``url`` split, its host, and its port or the scheme's default; ValueError names what is wrong in ``name``."""
    parts = urlsplit(url)
    if parts.scheme not in default_ports:
        *first, last = (f"{scheme}://" for scheme in default_ports)
        raise ValueError(f"{name} must start with {', '.join(first)} or {last}, not {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError(f"{name} has no host")
    return parts, parts.hostname, parts.port or default_ports[parts.scheme]


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse ``SMTP_URL``; ValueError names what is wrong."""
    parts, host, port = _mail_server("SMTP_URL", url, {"smtps": 465, "smtp": 587, "smtp+insecure": 25})
    return SmtpTarget(
        scheme=parts.scheme,
        host=host,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


@dataclass(frozen=True)
class ImapTarget:
    """Where and how to log in, parsed from ``IMAP_URL``."""

    scheme: str
    host: str
    port: int
    username: str
    password: str
    folder: str

    @property
    def mailbox(self) -> str:
        """The cursor's name: user@host/folder."""
        return f"{self.username}@{self.host}/{self.folder}"


def parse_imap_url(url: str) -> ImapTarget:
    """Parse ``IMAP_URL``; ValueError names what is wrong."""
    parts, host, port = _mail_server("IMAP_URL", url, {"imaps": 993, "imap": 143, "imap+insecure": 143})
    if not parts.username:
        raise ValueError("IMAP_URL has no user name (imaps://user:password@host/INBOX)")
    return ImapTarget(
        scheme=parts.scheme,
        host=host,
        port=port,
        username=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
    )
