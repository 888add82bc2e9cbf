"""The mailer port: an SMTP adapter (aiosmtplib) and an in-memory fake.

Messages are plain-text ``email.message.EmailMessage`` objects.  A failure to
deliver is raised as :class:`MailNotSent`, whatever the transport said.
"""

from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from api.errors import SmartVendError
from api.settings import Settings

SMTP_TIMEOUT_S = 15.0
IMPLICIT_TLS_PORT = 465


class MailNotSent(SmartVendError):
    code = "mail_not_sent"


class Mailer(Protocol):
    @property
    def configured(self) -> bool:
        """False when there is nowhere to send mail."""
        ...

    async def send(self, message: EmailMessage) -> None: ...


def compose(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


@dataclass(frozen=True)
class SmtpMailer:
    host: str | None
    port: int = 25
    username: str | None = None
    password: str | None = None
    tls: bool = False
    timeout_s: float = SMTP_TIMEOUT_S

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmtpMailer":
        password = settings.smtp_password
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=str(password) if password is not None else None,
            tls=settings.smtp_tls,
        )

    @property
    def configured(self) -> bool:
        return bool(self.host)

    async def send(self, message: EmailMessage) -> None:
        if not self.host:
            raise MailNotSent("SMTP_HOST is not set")
        implicit = self.tls and self.port == IMPLICIT_TLS_PORT
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=implicit,
                start_tls=self.tls and not implicit,
                timeout=self.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailNotSent(f"SMTP {self.host}:{self.port}: {exc}") from exc


@dataclass
class MemoryMailer:
    """Keeps what it is asked to send; ``fail_with`` makes every send fail."""

    sent: list[EmailMessage] = field(default_factory=list)
    fail_with: str | None = None
    configured: bool = True

    async def send(self, message: EmailMessage) -> None:
        if self.fail_with is not None:
            raise MailNotSent(self.fail_with)
        self.sent.append(message)
