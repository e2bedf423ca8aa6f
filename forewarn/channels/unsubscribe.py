"""The signed one-click unsubscribe link (RFC 8058): the email sender's links and the
receiver's check share this one signature, and nothing else of the channels."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

# A customer's link, or None when there is no public URL to link to.
Links = Callable[[str], str | None]


def no_links(_customer_id: str) -> str | None:
    """No unsubscribe links (no public URL)."""
    return None


def sign(key: bytes, customer_id: str) -> str:
    """A short HMAC of a customer id."""
    return hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()[:32]


def verify(key: bytes, customer_id: str, signature: str) -> bool:
    """Whether `signature` is the one `sign` gives this customer (in constant time)."""
    return hmac.compare_digest(signature.encode(), sign(key, customer_id).encode())


def unsubscribe_link(public_url: str | None, key: bytes) -> Links:
    """The RFC 8058 one-click link for a customer, signed so nobody can forge another's."""

    def link(customer_id: str) -> str | None:
        if not public_url:
            return None
        return f"{public_url.rstrip('/')}/unsubscribe/{customer_id}/{sign(key, customer_id)}"

    return link
