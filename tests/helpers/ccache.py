"""The secrets inside an MIT FILE credential cache (format version 4, 0x0504): each
credential's session key and encrypted ticket, for tests that look for them where they must not
be (logs, pages, API answers)."""

import struct


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + n]
        if len(chunk) != n:
            raise ValueError("truncated credential cache")
        self.at += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def counted(self) -> bytes:
        return self.take(self.u32())

    def principal(self) -> str:
        self.u32()  # name type
        count = self.u32()
        realm = self.counted().decode()
        return "/".join(self.counted().decode() for _ in range(count)) + "@" + realm


def ccache_secrets(data: bytes) -> list[tuple[str, bytes, bytes]]:
    """(server principal, session key, encrypted ticket) of every real credential."""
    r = _Reader(data)
    if r.u16() != 0x0504:
        raise ValueError("not a version 4 FILE credential cache")
    r.take(r.u16())  # header tags
    r.principal()  # default principal
    found = []
    while r.at < len(data):
        r.principal()  # client
        server = r.principal()
        r.u16()  # enctype
        key = r.counted()
        r.take(16)  # auth, start, end, renew-till times
        r.u8()  # is_skey
        r.u32()  # ticket flags
        for _ in range(r.u32()):  # addresses
            r.u16()
            r.counted()
        for _ in range(r.u32()):  # authdata
            r.u16()
            r.counted()
        ticket = r.counted()
        r.counted()  # second ticket
        if not server.startswith("X-CACHECONF:"):
            found.append((server, key, ticket))
    return found


def secret_texts(data: bytes) -> list[str]:
    """How the secrets would look in text: hex and base64 of each key and of a slice of each
    encrypted ticket (from its middle, past any fixed ASN.1 header)."""
    import base64

    texts = []
    for _, key, ticket in ccache_secrets(data):
        middle = ticket[len(ticket) // 2 : len(ticket) // 2 + 24]
        for secret in (key, middle):
            texts += [secret.hex(), base64.b64encode(secret).decode()]
    return texts
