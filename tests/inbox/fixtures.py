"""Real MIME, as mail clients and servers write it: each function returns the raw bytes of one message."""

from __future__ import annotations

import base64


def _crlf(text: str) -> bytes:
    return text.lstrip("\n").replace("\n", "\r\n").encode("latin-1")


def multipart_alternative(mid: str = "<alt-1@acme-dental.example>") -> bytes:
    return _crlf(f"""
Return-Path: <dana@acme-dental.example>
From: Dana Whitfield <dana@acme-dental.example>
To: ITECH Support <help@itech.example>
Subject: Printer in reception is offline
Date: Wed, 18 Nov 2026 10:02:11 -0800
Message-ID: {mid}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

The reception printer shows =E2=80=9Coffline=E2=80=9D since this morning.=20
Nobody can print invoices.

--b1
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<html><body><p>The reception printer shows =E2=80=9Coffline=E2=80=9D since th=
is morning.</p><p>Nobody can print invoices.</p></body></html>

--b1--
""")


def html_only() -> bytes:
    html = (
        "<html><head><style>p{color:red}</style></head><body><h1>VPN down</h1>"
        "<p>Since <b>9:40</b> none of us can reach the VPN.</p><ul><li>Laptop A</li><li>Laptop B</li></ul>"
        "<table><tr><td>Office</td><td>Pismo</td></tr></table></body></html>"
    )
    body = base64.encodebytes(html.encode()).decode()
    return _crlf(f"""
From: "Priya Raman" <priya@pismotitle.example>
To: help@itech.example
Subject: VPN
Date: Wed, 18 Nov 2026 10:05:00 -0800
Message-ID: <html-only-1@pismotitle.example>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

{body}""")


def latin1_subject() -> bytes:
    # ISO-8859-1 encoded word in the subject, quoted-printable ISO-8859-1 body.
    return _crlf("""
From: =?ISO-8859-1?Q?Jos=E9_Mu=F1oz?= <jose@acme-dental.example>
To: help@itech.example
Subject: =?ISO-8859-1?Q?Probl=E8me_de_r=E9seau_=E0_l'accueil?=
Date: Wed, 18 Nov 2026 10:06:00 -0800
Message-ID: <latin1-1@acme-dental.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Le r=E9seau ne marche plus =E0 l'accueil.
""")


def shift_jis_subject() -> bytes:
    subject = base64.b64encode("プリンターが動きません".encode("shift_jis")).decode()
    body = base64.encodebytes("受付のプリンターが印刷できません。".encode("shift_jis")).decode()
    return _crlf(f"""
From: Kenji <kenji@example.jp>
To: help@itech.example
Subject: =?Shift_JIS?B?{subject}?=
Date: Wed, 18 Nov 2026 10:07:00 -0800
Message-ID: <sjis-1@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=Shift_JIS
Content-Transfer-Encoding: base64

{body}""")


def with_attachment(size: int, mid: str = "<att-1@acme-dental.example>") -> bytes:
    data = base64.encodebytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256)).decode()
    return _crlf(f"""
From: Dana Whitfield <dana@acme-dental.example>
To: help@itech.example
Subject: Screenshot of the error
Date: Wed, 18 Nov 2026 10:08:00 -0800
Message-ID: {mid}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: text/plain; charset=us-ascii

See attached.

--mix
Content-Type: image/png; name="error.png"
Content-Disposition: attachment; filename="error.png"
Content-Transfer-Encoding: base64

{data}
--mix--
""")


def outlook_out_of_office(tag: str, in_reply_to: str) -> bytes:
    return _crlf(f"""
From: Dana Whitfield <dana@acme-dental.example>
To: ITECH Solutions Support <help@itech.example>
Subject: Automatic reply: {tag} New ticket created: Printer in reception is offline
Thread-Topic: {tag} New ticket created: Printer in reception is offline
Date: Wed, 18 Nov 2026 10:03:00 -0800
Message-ID: <SN6PR01MB0001OOF@SN6PR01MB0001.prod.outlook.com>
In-Reply-To: {in_reply_to}
References: {in_reply_to}
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: dana@acme-dental.example
Content-Type: text/plain; charset="us-ascii"
MIME-Version: 1.0

I am out of the office until Monday with limited access to email.
""")


def gmail_vacation(tag: str) -> bytes:
    return _crlf(f"""
From: Luis Ortega <luis@acme-dental.example>
To: help@itech.example
Subject: Re: {tag} Resolved: Printer in reception is offline
Date: Wed, 18 Nov 2026 10:04:00 -0800
Message-ID: <CAGvacation123@mail.gmail.com>
Auto-Submitted: auto-replied
Precedence: bulk
X-Autoreply: yes
Content-Type: text/plain; charset="UTF-8"
MIME-Version: 1.0

I'm on vacation and will reply when I'm back.
""")


def mailer_daemon_bounce(original_mid: str, recipient: str = "gone@acme-dental.example") -> bytes:
    return _crlf(f"""
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.itech.example>
To: help@itech.example
Subject: Undelivered Mail Returned to Sender
Date: Wed, 18 Nov 2026 10:09:00 -0800
Message-ID: <20261118180900.ABC@mx.itech.example>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="rpt"

--rpt
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--rpt
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.itech.example
Arrival-Date: Wed, 18 Nov 2026 10:08:58 -0800

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown

--rpt
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: ITECH Solutions Support <help@itech.example>
To: {recipient}
Subject: [#400001] New ticket created
Message-ID: {original_mid}

--rpt--
""")


def mailing_list() -> bytes:
    return _crlf("""
From: Vendor Security Advisories <advisories@vendor.example>
To: help@itech.example
Subject: [vendor-announce] Firmware 4.2 released
Date: Wed, 18 Nov 2026 10:10:00 -0800
Message-ID: <list-42@lists.vendor.example>
List-Id: Vendor announcements <announce.lists.vendor.example>
List-Unsubscribe: <mailto:leave@lists.vendor.example>
Precedence: list
Content-Type: text/plain; charset=us-ascii

Firmware 4.2 fixes three issues.
""")


def reply_with_tag_only(tag: str) -> bytes:
    return _crlf(f"""
From: Dana Whitfield <dana@acme-dental.example>
To: help@itech.example
Subject: RE: {tag} Printer in reception is offline
Date: Wed, 18 Nov 2026 11:00:00 -0800
Message-ID: <reply-tag-1@acme-dental.example>
Content-Type: text/plain; charset=utf-8
MIME-Version: 1.0

It is the HP in reception, serial CN123.
""")


def reply_with_in_reply_to_only(in_reply_to: str) -> bytes:
    return _crlf(f"""
From: Dana Whitfield <dana@acme-dental.example>
To: help@itech.example
Subject: Re: your message
Date: Wed, 18 Nov 2026 11:05:00 -0800
Message-ID: <reply-irt-1@acme-dental.example>
In-Reply-To: {in_reply_to}
References: <unrelated@elsewhere.example> {in_reply_to}
Content-Type: text/plain; charset=utf-8
MIME-Version: 1.0

Yes, please go ahead.
""")


def same_subject_no_tag() -> bytes:
    return _crlf("""
From: Dana Whitfield <dana@acme-dental.example>
To: help@itech.example
Subject: Re: Printer in reception is offline
Date: Wed, 18 Nov 2026 11:10:00 -0800
Message-ID: <same-subject@acme-dental.example>
Content-Type: text/plain; charset=utf-8

Another printer now.
""")


def no_message_id() -> bytes:
    return _crlf("""
From: someone@unknown-company.example
To: help@itech.example
Subject: Help with my laptop
Date: Wed, 18 Nov 2026 10:11:00 -0800
Content-Type: text/plain; charset=utf-8

My laptop will not boot.
""")


def plain(
    *,
    sender: str,
    subject: str,
    body: str,
    mid: str | None = None,
    in_reply_to: str | None = None,
    reply_to: str | None = None,
    date: str = "Wed, 18 Nov 2026 11:30:00 -0800",
) -> bytes:
    """A plain-text message as a person's mail client writes it; optional threading headers and Reply-To."""
    lines = [f"From: {sender}", "To: help@itech.example", f"Subject: {subject}", f"Date: {date}"]
    if mid:
        lines.append(f"Message-ID: {mid}")
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    if reply_to:
        lines.append(f"Reply-To: {reply_to}")
    lines += ["MIME-Version: 1.0", 'Content-Type: text/plain; charset="utf-8"', "", body, ""]
    return _crlf("\n".join(lines))


def with_executable(*, sender: str, subject: str, body: str, mid: str) -> bytes:
    """A message with an ``.exe`` attached, as a stranger would send one."""
    data = base64.encodebytes(b"MZ\x90\x00" + b"\x00" * 60).decode()
    return _crlf(f"""
From: {sender}
To: help@itech.example
Subject: {subject}
Date: Wed, 18 Nov 2026 11:40:00 -0800
Message-ID: {mid}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: text/plain; charset=us-ascii

{body}

--mix
Content-Type: application/octet-stream; name="invoice.exe"
Content-Disposition: attachment; filename="invoice.exe"
Content-Transfer-Encoding: base64

{data}
--mix--
""")


def forged_bounce(recipients: list[str], original_mid: str, sender: str = "postmaster@evil.example") -> bytes:
    """A delivery-status report anyone can write: failed recipients and the Message-ID it claims bounced."""
    blocks = "\n".join(
        f"Final-Recipient: rfc822; {r}\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n"
        for r in recipients
    )
    return _crlf(f"""
From: Mail Delivery System <{sender}>
To: help@itech.example
Subject: Undelivered Mail Returned to Sender
Date: Wed, 18 Nov 2026 10:20:00 -0800
Message-ID: <forged-dsn-{len(recipients)}@evil.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="rpt"

--rpt
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.

--rpt
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.evil.example

{blocks}
--rpt
Content-Type: text/rfc822-headers

From: ITECH Solutions Support <help@itech.example>
To: {recipients[0]}
Subject: [#400001] New ticket created
Message-ID: {original_mid}

--rpt--
""")
