"""A catch-all SMTP server for development: every message lands as a file in a folder.

``make run`` starts one so a newcomer can register end to end without a mail
server; tests start it on loopback to receive real mail. From Python::

    sink = smtp_sink.start(Path(".casetrack/mail"), port=1025)
    ...
    sink.stop()

or ``python -m adapters.smtp_sink --dir .casetrack/mail --port 1025``.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import ssl
import sys
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MailFolder:
    """aiosmtpd handler: writes each message to ``folder`` as NNNNNN.eml, in arrival order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(len(list(folder.glob("*.eml"))) + 1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            path = self.folder / f"{next(self._numbers):06d}.eml"
        content = envelope.original_content or envelope.content
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content if isinstance(content, bytes) else content.encode())
        tmp.rename(path)  # readers never see half a message
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted(self.folder.glob("*.eml"))
        ]


def start(
    folder: Path,
    host: str = "127.0.0.1",
    port: int = 1025,
    *,
    tls_context: ssl.SSLContext | None = None,
    ssl_context: ssl.SSLContext | None = None,
    **controller_options: Any,
) -> Controller:
    """Start the sink in a background thread; ``tls_context`` offers STARTTLS,
    ``ssl_context`` makes it implicit TLS. Returns the running controller."""
    controller = Controller(
        MailFolder(folder),
        hostname=host,
        port=port,
        tls_context=tls_context,
        ssl_context=ssl_context,
        **controller_options,
    )
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smtp_sink", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=".casetrack/mail", help="where messages land")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args(argv)
    folder = Path(args.dir).resolve()
    controller = start(folder, args.host, args.port)
    print(f"catching mail on {args.host}:{args.port}; messages land in {folder}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
