"""Emails as the receiving servers judge them (issue 21, items 13 and 15): every header
line ended by CRLF (folded Spanish subjects too), a List-Id beside List-Unsubscribe, an
optional DKIM signature that verifies, and SpamAssassin's own rules finding nothing."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError

from forewarn.channels.base import Message
from forewarn.channels.email import EmailSender, SmtpServer
from forewarn.channels.mime import Dkim, SigningFailed
from forewarn.config import Settings

SERVER = SmtpServer("127.0.0.1", 25, False, None, None)
SENDER = "Mill Road Fibre <alerts@millroad.example>"
SPANISH = Message(
    1, "email", "casa43@example.org", "c43", 7, 2,
    "El servicio de banda ancha en 43 Mill Road ha vuelto. Sentimos las molestias. "
    "Si sigue sin servicio, reinicie el router.",
    "Restablecido: la avería de banda ancha en 43 Mill Road, Cambridge, ya está resuelta",
    locale="es",
)  # fmt: skip


def links(customer_id: str) -> str:
    return f"https://alerts.millroad.example/unsubscribe?c={customer_id}&s=abc"


def rsa_key() -> tuple[bytes, bytes]:
    """A fresh RSA key: (the private key's PEM, the public key as DNS publishes it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(der)


def test_every_header_line_ends_in_crlf_even_a_folded_spanish_subject() -> None:
    wire = EmailSender(SERVER, SENDER, links).compose(SPANISH)
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert b"\r\n " in head  # the subject was folded onto a continuation line
    assert re.search(rb"(?<!\r)\n", wire) is None  # and no LF anywhere stands alone


def test_a_list_id_goes_with_the_unsubscribe_headers() -> None:
    wire = EmailSender(SERVER, SENDER, links).compose(SPANISH)
    assert b"\r\nList-Id: <outages.millroad.example>\r\n" in wire
    assert b"\r\nList-Unsubscribe: <https://alerts.millroad.example/" in wire


def test_a_dkim_signature_verifies_and_breaks_when_the_subject_is_changed(
    tmp_path: Path,
) -> None:
    pem, public = rsa_key()
    (tmp_path / "dkim.pem").write_bytes(pem)
    signer = Dkim.from_setting(str(tmp_path / "dkim.pem"), "s2026", SENDER)
    assert signer.domain == "millroad.example" and "BEGIN" not in repr(signer)
    wire = EmailSender(SERVER, SENDER, links, dkim=signer).compose(SPANISH)
    assert wire.startswith(b"DKIM-Signature: ")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s2026._domainkey.millroad.example."
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(wire, dnsfunc=dns)
    forged = wire.replace(b"Subject: ", b"Subject: URGENT ", 1)
    assert not dkim.verify(forged, dnsfunc=dns)


def test_the_dkim_setting_takes_a_key_that_signs_and_refuses_anything_else(
    tmp_path: Path,
) -> None:
    pem, public = rsa_key()

    def given(value: str) -> Settings:
        return Settings(dkim_private_key=SecretStr(value), _env_file=None)  # type: ignore[call-arg]

    assert given(pem.decode()).dkim_private_key is not None
    escaped = pem.decode().replace("\n", "\\n")  # as a one-line env file holds it
    signer = Dkim.from_setting(escaped, "s1", SENDER)
    assert signer.header(EmailSender(SERVER, SENDER, links).compose(SPANISH)).startswith(b"DKIM")
    (tmp_path / "key.pem").write_bytes(pem)
    assert given(str(tmp_path / "key.pem")).dkim_private_key is not None
    public_pem = (
        b"-----BEGIN PUBLIC KEY-----\n" + public + b"\n-----END PUBLIC KEY-----\n"
    ).decode()
    for wrong, why in [
        (str(tmp_path / "missing.pem"), "neither a PEM private key"),
        (public_pem, "not an unencrypted RSA private key"),  # a pasted public key
        ("-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----", "not an"),
    ]:
        with pytest.raises(ValidationError, match=why) as refused:
            given(wrong)
        assert public.decode()[:40] not in str(refused.value)  # the key is never repeated


def test_a_key_that_cannot_sign_holds_the_email_back_and_loses_nothing() -> None:
    pem, _ = rsa_key()
    broken = Dkim("s1", "millroad.example", pem[: len(pem) // 2])  # cut in half
    sender = EmailSender(SERVER, SENDER, links, dkim=broken)
    with pytest.raises(SigningFailed, match="DKIM signing failed"):
        sender.compose(SPANISH)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="Debian's spamassassin")
def test_spamassassin_finds_nothing_to_hold_against_a_message() -> None:
    english = Message(
        2, "email", "house43@example.org", "c43", 7, 3,
        "Mill Road Fibre: broadband at 43 Mill Road is back (10:42 GMT). Sorry for the "
        "trouble. If it is still not working, restart your router. "
        "Follow it live: https://status.millroad.example/incidents/7.html",
        "Restored: broadband at 43 Mill Road",
    )  # fmt: skip
    for message in (english, SPANISH):
        wire = EmailSender(SERVER, SENDER, links).compose(message)
        # -L: local tests only (no network lookups), -t: the report of every rule hit.
        done = subprocess.run(
            ["spamassassin", "-L", "-t"], input=wire, capture_output=True, timeout=120,
            check=False,
        )  # fmt: skip
        report = done.stdout.decode("utf-8", errors="replace")
        score = float(re.search(r"X-Spam-Status: \w+, score=(-?[\d.]+)", report)[1])  # type: ignore[index]
        hits = re.findall(
            r"^\s*-?[\d.]+ (\w+)\s", report.split("Content analysis details:")[-1], re.M
        )
        assert "LIST_PARTIAL_SHORT_MSG" not in hits, report[-3000:]
        assert score <= 0.5, report[-3000:]
