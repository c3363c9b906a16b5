"""Small real files for preview tests: a PNG and a one-page PDF, made byte by byte."""

import struct
import zlib


def png(width: int = 64, height: int = 48) -> bytes:
    """An RGB gradient PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 128)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def pdf(text: str = "INK preview") -> bytes:
    """A one-page PDF showing ``text``."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def root_file(path) -> None:
    """A ROOT file (written by uproot): a 1-D and a 2-D histogram, nested folders, a tree of
    three branches."""
    import numpy as np
    import uproot

    rng = np.random.default_rng(42)
    with uproot.recreate(path) as f:
        f["hpx"] = np.histogram(rng.normal(0, 1, 10_000), bins=40, range=(-4, 4))
        f["maps/h2"] = np.histogram2d(rng.normal(size=5000), rng.normal(size=5000), bins=20)
        f["maps/deeper/hdeep"] = np.histogram(rng.uniform(0, 1, 100), bins=10)
        tree = f.mktree("events", {"px": "f8", "py": "f8", "energy": "f8"})
        tree.extend(
            {"px": rng.normal(0, 1, 2000), "py": rng.normal(0, 1, 2000), "energy": rng.exponential(5, 2000)}
        )


def fits_file(path, width=300, height=200) -> None:
    """A FITS image (written by astropy): a gradient with a bright spot, and a header card."""
    import numpy as np
    from astropy.io import fits

    y, x = np.mgrid[0:height, 0:width]
    data = (x / width + np.exp(-((x - 200) ** 2 + (y - 60) ** 2) / 50.0) * 5).astype(np.float32)
    hdu = fits.PrimaryHDU(data)
    hdu.header["OBJECT"] = "INK test field"
    hdu.writeto(path, overwrite=True)


def fits_bomb(path, side: int) -> None:
    """A gzip-compressed FITS image of zeros, side x side float64: a few MiB on disk that
    inflate to side*side*8 bytes (written as a stream, never held in memory)."""
    import gzip

    from astropy.io import fits

    header = fits.Header(
        [("SIMPLE", True), ("BITPIX", -64), ("NAXIS", 2), ("NAXIS1", side), ("NAXIS2", side)]
    )
    head = header.tostring().encode()
    data = side * side * 8
    zeros = bytes(1 << 24)
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(head)
        while data > 0:
            out.write(zeros[: min(data, len(zeros))])
            data -= len(zeros)
        out.write(bytes(-(side * side * 8) % 2880))  # FITS blocks are 2880 bytes
