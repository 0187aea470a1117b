"""The tables, by subject: base (the declarative base, column type, enumerations), tickets, paging, accounts, mail.

Every model is importable from here: ``from ticketing.models import Ticket``.
"""

from ticketing.models.accounts import (
    ApiToken,
    ConsoleSession,
    PortalLink,
    PortalSession,
    PortalSignInEvent,
    SignInFailure,
    User,
)
from ticketing.models.alerts import Alert, AlertKey
from ticketing.models.base import (
    OPEN_STATUSES,
    Base,
    Source,
    Status,
    TranscriptionState,
    UTCDateTime,
)
from ticketing.models.callbacks import CallbackRequest
from ticketing.models.mail import (
    InboundMail,
    MailAddress,
    MailAttachment,
    MailboxCursor,
    SmsOptOut,
    TicketMessage,
)
from ticketing.models.outages import IncidentCall, KnownIncident
from ticketing.models.paging import (
    Escalation,
    EscalationJoin,
    Page,
)
from ticketing.models.tickets import (
    AuditEntry,
    CallEvent,
    Client,
    Contact,
    ExceptionalEvent,
    Heartbeat,
    Milestone,
    OutboxMessage,
    SlaPause,
    Ticket,
    TicketAttachment,
)

__all__ = [
    "Alert",
    "AlertKey",
    "ApiToken",
    "AuditEntry",
    "Base",
    "CallEvent",
    "CallbackRequest",
    "Client",
    "ConsoleSession",
    "Contact",
    "Escalation",
    "EscalationJoin",
    "ExceptionalEvent",
    "IncidentCall",
    "KnownIncident",
    "Heartbeat",
    "InboundMail",
    "MailAddress",
    "MailAttachment",
    "MailboxCursor",
    "Milestone",
    "OPEN_STATUSES",
    "OutboxMessage",
    "Page",
    "PortalLink",
    "PortalSession",
    "PortalSignInEvent",
    "SignInFailure",
    "SlaPause",
    "SmsOptOut",
    "Source",
    "Status",
    "Ticket",
    "TicketAttachment",
    "TicketMessage",
    "TranscriptionState",
    "UTCDateTime",
    "User",
]
