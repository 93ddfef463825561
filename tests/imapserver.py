"""A real IMAP server for tests: Debian's Dovecot, started on 127.0.0.1 with a config of its
own in a temporary folder (scripts/system-deps installs ``dovecot-imapd``).

One user (a static passdb: any name, the given password) whose mail is a Maildir the
test writes into as a delivery agent would (``deliver``). TLS is required: plain
logins are refused before STARTTLS (port ``port``) and ``imaps_port`` is TLS from
the start, with a self-signed certificate for 127.0.0.1 (``cert`` is the CA to
trust); ``tls=False`` makes a server that offers no TLS at all, to be refused.
Dovecot refuses to run its login processes as root, so as root it runs them as its
own ``dovenull``/``dovecot`` users, which then own the mail; as any other user,
everything runs as that user.

    with Dovecot(tmp_path) as server:
        server.deliver(b"...")
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests._net import free_port
from tests.smtpserver import certificate

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{tls}
auth_mechanisms = plain
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home
}}
mail_location = maildir:{root}/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
"""


def available() -> bool:
    return Path(DOVECOT).exists()


class Dovecot:
    """Dovecot serving one Maildir; a context manager that stops it (its own pid only)."""

    def __init__(self, password: str = "mật-khẩu-thư-dội", *, tls: bool = True) -> None:
        self.password = password
        self.tls = tls
        self.port = free_port()
        self.imaps_port = free_port()
        # Its own folder, readable by Dovecot's users (pytest's tmp_path is not).
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.root.chmod(0o755)
        self.cert, self.key = certificate(self.root / "tls")
        self.maildir = self.root / "Maildir"
        self._process: subprocess.Popen[bytes] | None = None
        self._serial = 0
        if os.geteuid() == 0:
            self._users = ("dovecot", "dovecot", "dovenull")
            mail = pwd.getpwnam("dovecot")
            self._owner = (mail.pw_uid, mail.pw_gid)
        else:
            me = pwd.getpwuid(os.geteuid())
            self._users = (me.pw_name, _group_name(me.pw_gid), me.pw_name)
            self._owner = (me.pw_uid, me.pw_gid)

    def __enter__(self) -> Dovecot:
        for folder in ("new", "cur", "tmp"):
            (self.maildir / folder).mkdir(parents=True, exist_ok=True)
        self._chown(self.maildir)
        self.key.chmod(0o644)  # read by Dovecot's config parser, which runs as root or us
        config = self.root / "dovecot.conf"
        internal_user, internal_group, login_user = self._users
        config.write_text(
            CONFIG.format(
                root=self.root,
                tls=(
                    f"ssl = required\nssl_cert = <{self.cert}\nssl_key = <{self.key}\n"
                    "disable_plaintext_auth = yes"
                    if self.tls
                    else "ssl = no\ndisable_plaintext_auth = no"
                ),
                password=self.password,
                uid=self._owner[0],
                gid=self._owner[1],
                internal_user=internal_user,
                internal_group=internal_group,
                login_user=login_user,
                port=self.port,
                imaps_port=self.imaps_port if self.tls else 0,
            ),
            encoding="utf-8",
        )
        with (self.root / "stdout.log").open("wb") as log:
            self._process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_listening()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the master stops its own children
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def url(
        self, user: str = "bounces", folder: str = "INBOX", *, implicit_tls: bool = False
    ) -> str:
        if implicit_tls:
            return f"imaps://{user}@127.0.0.1:{self.imaps_port}/{folder}"
        return f"imap://{user}@127.0.0.1:{self.port}/{folder}"

    def deliver(self, data: bytes) -> Path:
        """Put a message in the Maildir's ``new/``, as a delivery agent does (tmp, rename)."""
        self._serial += 1
        name = f"{int(time.time())}.M{self._serial}P{os.getpid()}.test"
        temporary = self.maildir / "tmp" / name
        temporary.write_bytes(data)
        self._chown(temporary)
        final = self.maildir / "new" / name
        temporary.rename(final)
        return final

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _chown(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        for folder, _, files in os.walk(path):
            os.chown(folder, *self._owner)
            for name in files:
                os.chown(Path(folder) / name, *self._owner)
        os.chown(path, *self._owner)

    def _wait_until_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    if conn.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start: {self.log()[-2000:]}")


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name
