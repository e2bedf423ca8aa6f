"""The bytes of an email: its headers (folded with CRLF), its text and HTML parts, a
Message-ID that is the same every time the same ledger row is sent, and an optional DKIM
signature. `channels/email.py` sends them."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from email.header import Header
from email.utils import parseaddr

from markupsafe import Markup, escape

from forewarn.config import dkim_key_pem
from forewarn.texts import environment

URL = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True, slots=True)
class Dkim:
    """Signs each message for its sender's domain (DKIM, RFC 6376), so the receiving
    servers can tell it came from the operator; the key never shows in a repr."""

    selector: str
    domain: str
    key: bytes

    def __repr__(self) -> str:
        return f"Dkim(selector={self.selector!r}, domain={self.domain!r})"

    def header(self, message: bytes) -> bytes:
        """The DKIM-Signature header line (CRLF-ended) for the message as it is sent."""
        import dkim  # only when signing: the library costs an import otherwise

        try:
            signed = dkim.sign(
                message, self.selector.encode(), self.domain.encode(), self.key,
                include_headers=SIGNED_HEADERS, linesep=b"\r\n",
            )  # fmt: skip
        except dkim.DKIMException as err:
            raise SigningFailed(f"DKIM signing failed: {type(err).__name__}") from None
        return bytes(signed)

    @classmethod
    def from_setting(cls, key: str, selector: str, sender: str) -> Dkim:
        """The signer for FOREWARN_DKIM_PRIVATE_KEY (the PEM itself, or a file holding
        it), FOREWARN_DKIM_SELECTOR and the sender's domain."""
        return cls(selector, sender_domain(sender), dkim_key_pem(key))


class SigningFailed(ValueError):
    """The DKIM key cannot sign (the message is not sent unsigned, nor lost)."""


# The headers a signature covers: what a forger would change.
SIGNED_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
    b"list-unsubscribe-post", b"mime-version", b"content-type",
]  # fmt: skip


def sender_domain(sender: str) -> str:
    """The domain of the sender's address, with or without a display name
    ("Mill Road Fibre <alerts@millroad.example>" is millroad.example)."""
    return parseaddr(sender)[1].rpartition("@")[2].lower() or "forewarn.invalid"


def message_id(key: str, sender: str) -> str:
    """A Message-ID that is the same every time the same ledger row is sent."""
    domain = sender_domain(sender)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"<{key}.{digest}@{domain}>"


def html_part(body: str, subject: str, lang: str) -> str:
    """The HTML alternative: the text's paragraphs, escaped, with its links clickable."""

    def linked(text: str) -> Markup:
        out, last = Markup(""), 0
        for match in URL.finditer(text):
            url = match.group(0)
            out += escape(text[last : match.start()])
            out += Markup('<a href="{0}">{0}</a>').format(url)
            last = match.end()
        return out + escape(text[last:])

    paragraphs = [
        Markup("<br>\n").join(linked(line) for line in block.splitlines())
        for block in body.split("\n\n")
        if block.strip()
    ]
    template = environment().get_template("email/message.html.j2")
    return template.render(paragraphs=paragraphs, subject=subject, lang=lang)


def plain_address(address: str) -> bool:
    """One bare ASCII address: nothing that could end a header or name a second recipient."""
    return address.isascii() and "@" in address and not any(c in address for c in "\r\n<>,; ")


def plain_message_id(value: str) -> bool:
    """A Message-ID safe to repeat in a header: <left@right>, printable ASCII, short."""
    return (
        len(value) <= 250
        and value.isascii()
        and value.startswith("<")
        and value.endswith(">")
        and "@" in value
        and not any(c in value[1:-1] for c in "\r\n<> ")
    )


def header(value: str) -> str:
    """A header value, RFC 2047-encoded only if it is not plain ASCII."""
    if value.isascii() and "\n" not in value and "\r" not in value:
        return value
    # Folded with CRLF like every other line: a bare LF in a header is refused by strict
    # servers (RFC 5322 allows CR and LF only together).
    return Header(value.replace("\r", " ").replace("\n", " "), "utf-8").encode(linesep="\r\n")


def text_part(subtype: str, text: str) -> list[str]:
    """One text part, base64 in lines of 76 (safe for any character and line length)."""
    encoded = base64.encodebytes(text.encode("utf-8")).decode("ascii").rstrip("\n")
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: base64",
        "",
        *encoded.split("\n"),
    ]
