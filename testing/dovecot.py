"""A private Dovecot IMAP server (Debian's dovecot-imapd) for tests and benchmarks: one user, a throwaway Maildir."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from testing.twilio_server import free_port

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "help", "secret"


class Dovecot:
    """``start()`` runs dovecot on a free port of 127.0.0.1 (plain IMAP, IDLE offered); ``stop()`` removes it all."""

    def __init__(self) -> None:
        # Not under pytest's 0700 temporary folder: dovecot's own users must reach the mailbox and password file.
        self.root = Path(tempfile.mkdtemp(prefix="supportline-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.conf = self.root / "dovecot.conf"

    @property
    def url(self) -> str:
        """IMAP_URL of the user's INBOX."""
        return f"imap+insecure://{USER}:{PASSWORD}@127.0.0.1:{self.port}/INBOX"

    def start(self) -> Dovecot:
        uid, gid = os.getuid(), os.getgid()
        internal = login = pwd.getpwuid(uid).pw_name
        if uid == 0:  # dovecot never delivers as root: the mailbox belongs to its own user
            user = pwd.getpwnam("dovecot")
            uid, gid, internal, login = user.pw_uid, user.pw_gid, "dovecot", "dovenull"
        root = self.root
        (root / "mail").mkdir()
        os.chown(root / "mail", uid, gid)
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.conf.write_text(
            f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
mail_uid = {uid}
mail_gid = {gid}
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""
        )
        subprocess.run([DOVECOT, "-c", str(self.conf)], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen: {(root / 'dovecot.log').read_text()[-2000:]}")

    def stop(self) -> None:
        subprocess.run([DOVECOT, "-c", str(self.conf), "stop"], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
