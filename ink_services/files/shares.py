"""Share links: read-only access to one file or folder, for whoever holds the link, until it
expires or its owner revokes it. The store keeps only a hash of each link's secret, so a leaked
store does not leak working links."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import asdict, dataclass

from ink_core.errors import Refused
from ink_core.jsonstore import RecordStore

SECRET = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
MAX_EXPIRY = 90 * 24 * 3600
MAX_PER_USER = 500


ShareError = Refused  # the one error with an HTTP status and a sentence (ink_core.errors)


@dataclass
class ShareLink:
    id: str  # the hash's first 16 characters: names the link in lists, grants nothing
    owner: str
    path: str
    created: float
    expires: float
    is_dir: bool

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ShareStore(RecordStore):
    """One record per link, keyed by the digest of its secret (the secret itself is not kept)."""

    def create(self, owner: str, path: str, expires_in: float, is_dir: bool) -> tuple[str, ShareLink]:
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
            raise ShareError(400, "expires_in: expected seconds")
        if not 60 <= expires_in <= MAX_EXPIRY:
            raise ShareError(400, f"expires_in: expected 60 to {MAX_EXPIRY} seconds (90 days)")
        if len(self.of_owner(owner)) >= MAX_PER_USER:
            raise ShareError(429, f"you have {MAX_PER_USER} share links: revoke some first")
        secret = secrets.token_urlsafe(32)
        now = time.time()
        link = ShareLink(digest(secret)[:16], owner, path, now, now + expires_in, is_dir)
        self.records.put(digest(secret), asdict(link))
        return secret, link

    @staticmethod
    def _load(value) -> ShareLink | None:
        try:
            return ShareLink(**value) if isinstance(value, dict) else None
        except TypeError:
            return None

    def resolve(self, secret: str) -> ShareLink:
        """The live link for a secret; 404 for unknown, expired or revoked ones alike."""
        if not isinstance(secret, str) or not SECRET.match(secret):
            raise ShareError(404, "no such share link")
        key = digest(secret)
        link = self._load(self.records.get(key))
        if link is None:
            raise ShareError(404, "no such share link (revoked, or never made)")
        if link.expired:
            self.records.delete(key)
            raise ShareError(410, "this share link has expired")
        return link

    def _links(self, prefix: str = "") -> list[tuple[str, ShareLink]]:
        found = ((key, self._load(value)) for key, value in self.records.items(prefix))
        return [(key, link) for key, link in found if link is not None]

    def of_owner(self, owner: str) -> list[ShareLink]:
        links = []
        for key, link in self._links():
            if link.owner != owner:
                continue
            if link.expired:
                self.records.delete(key)
                continue
            links.append(link)
        return sorted(links, key=lambda link: link.created)

    def forget_owner(self, owner: str) -> int:
        """Delete every link of an owner whose account is gone; how many there were."""
        mine = [(key, link) for key, link in self._links() if link.owner == owner]
        for key, _ in mine:
            self.records.delete(key)
        return len([link for _, link in mine if not link.expired])

    def revoke(self, owner: str, link_id: str) -> None:
        if not re.match(r"^[0-9a-f]{16}$", link_id or ""):
            raise ShareError(404, "no such share link")
        for key, link in self._links(link_id):
            if link.owner == owner:
                self.records.delete(key)
                return
        raise ShareError(404, "no such share link of yours")
