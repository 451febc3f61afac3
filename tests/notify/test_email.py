"""E-mail over SMTP against a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations


import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from tests.servers import free_port
from vidmill.config import Settings
from vidmill.errors import MailNotSent
from vidmill.notify.email import send_mail


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def test_a_message_arrives(smtp, tmp_path):
    controller, inbox = smtp
    settings = Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=controller.port,
                        smtp_from="transcoder@example.com")
    send_mail(settings, "correo@tuservidor.com", "[vidmill] Order 1-2 FINISHED", "Order 1-2 finished\n")
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["To"] == "correo@tuservidor.com" and msg["From"] == "transcoder@example.com"
    assert msg["Subject"] == "[vidmill] Order 1-2 FINISHED"
    assert msg.get_payload(decode=True).decode().strip() == "Order 1-2 finished"


def test_unreachable_server_is_a_delivery_error(tmp_path):
    settings = Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_password="hunter2")
    with pytest.raises(MailNotSent) as exc:
        send_mail(settings, "a@example.com", "s", "t")
    assert "ConnectionRefusedError" in exc.value.message and "hunter2" not in exc.value.message


def test_no_server_configured(tmp_path):
    with pytest.raises(MailNotSent, match="no SMTP server configured"):
        send_mail(Settings(data_dir=tmp_path), "a@example.com", "s", "t")
