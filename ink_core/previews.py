"""Server-side previews, run inside the user's worker (so an untrusted file is parsed with the
user's rights, never the service's): the key tree of a ROOT file (uproot, reading only what
it needs), and a FITS file's headers and a scaled image (astropy), as PNG; gzip-compressed FITS
too. Each runs in a child with memory and CPU limits (``bounded``)."""

from __future__ import annotations

import gzip
import importlib
import io
import os
import pickle
import resource
import select
import signal
import struct
import time
import zlib

from .errors import Refused

MAX_KEYS = 5000
MAX_BRANCHES = 500
MAX_FITS_PIXELS = 64 * 1024 * 1024  # larger images are not previewed (memory)
MAX_SIDE = 1024
MAX_CARDS = 400
DIRECTORY_CLASSES = ("TDirectory", "TDirectoryFile")
# a preview parses bytes anyone could have written (also for a share link's visitor): it runs in
# a child of the worker with these limits, so a decompression bomb or a parser stuck in a loop
# costs one child, not the worker or the machine
PREVIEW_MEMORY = int(os.environ.get("INK_PREVIEW_MEMORY_MB", "1024")) * 1024 * 1024
PREVIEW_SECONDS = int(os.environ.get("INK_PREVIEW_SECONDS", "30"))


def preload(*modules: str) -> None:
    """Import a parser's libraries in the worker once, so each bounded child starts with them
    (its limit then measures the parse, not the import)."""
    for module in modules:
        importlib.import_module(module)


def address_space() -> int:
    """This process's virtual memory size in bytes (VmSize)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def bounded(work, *args, memory: int | None = None, seconds: int | None = None):
    """``work(*args)`` in a forked child with an address-space and a CPU-time limit and a wall
    clock deadline: its answer, or Refused(422) saying which limit it hit."""
    memory = memory or PREVIEW_MEMORY
    seconds = seconds or PREVIEW_SECONDS
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: parse, send the answer, leave without cleaning up the parent's state
        code = 0
        try:
            os.close(read_end)
            # on top of what the worker already maps (numpy's and OpenBLAS's reservations vary)
            limit = address_space() + memory
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
            try:
                result = ("ok", work(*args))
            except Refused as e:
                result = ("refused", e.status, str(e))
            except MemoryError:
                result = ("memory",)
            with os.fdopen(write_end, "wb") as out:
                out.write(pickle.dumps(result))
        except BaseException:  # noqa: BLE001 - the parent reports a child that said nothing
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + seconds * 2
    chunks = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise Refused(
                    422, f"the preview took longer than {seconds * 2} s: open the file in ROOT or a viewer"
                )
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    cpu_limit = os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL)
    if not chunks and cpu_limit:
        raise Refused(
            422, f"the preview needed more than {seconds} s of CPU: open the file in ROOT or a viewer"
        )
    # no answer without the CPU limit, or the child's MemoryError: the memory limit
    result = pickle.loads(b"".join(chunks)) if chunks else ("memory",)
    if result[0] == "ok":
        return result[1]
    if result[0] == "refused":
        raise Refused(result[1], result[2])
    raise Refused(422, f"the preview needed more than {memory >> 20} MiB of memory (a decompression bomb?)")


class CountingFile(io.RawIOBase):
    """A read-only file object over ``read_at(offset, n)`` that counts what it reads."""

    def __init__(self, read_at, size: int):
        self.read_at, self.size = read_at, size
        self.position = 0
        self.bytes_read = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self):
        return self.position

    def readinto(self, buffer):
        data = self.read_at(self.position, len(buffer))
        buffer[: len(data)] = data
        self.position += len(data)
        self.bytes_read += len(data)
        return len(data)


def root_keys(fileobj: CountingFile) -> dict:
    """The keys of a ROOT file as a tree: name, path, class; folders' children; trees' branches."""
    import uproot

    count = 0

    def walk(directory, prefix: str) -> list[dict]:
        nonlocal count
        items = []
        for name in directory.keys(recursive=False, cycle=False):
            count += 1
            if count > MAX_KEYS:
                raise Refused(413, f"more than {MAX_KEYS} keys: open the file in ROOT")
            classname = directory.classname_of(name, encoded=False)
            item = {"name": name, "path": prefix + name, "class": classname}
            if classname in DIRECTORY_CLASSES:
                item["children"] = walk(directory[name], prefix + name + "/")
            elif classname.startswith("TTree") or classname == "TNtuple":
                tree = directory[name]
                item["entries"] = int(tree.num_entries)
                item["branches"] = list(tree.keys(recursive=True))[:MAX_BRANCHES]
            items.append(item)
        return items

    try:
        with uproot.open(fileobj) as f:
            keys = walk(f, "")
    except (Refused, MemoryError):
        raise
    except Exception as e:  # not a ROOT file, damaged, unknown streamer
        raise Refused(422, f"not a readable ROOT file: {type(e).__name__}: {str(e)[:200]}") from None
    return {"keys": keys, "bytes_read": fileobj.bytes_read, "size": fileobj.size}


def png(gray, width: int, height: int) -> bytes:
    """An 8-bit grayscale PNG from rows of bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + gray[y * width : (y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def fits_preview(fileobj) -> tuple[dict, bytes | None]:
    """(headers of every HDU and the previewed image's facts, PNG of the first image or None)."""
    import numpy as np
    from astropy.io import fits

    try:
        compressed = fileobj.read(2) == b"\x1f\x8b"  # .fits.gz, as archives keep them
        fileobj.seek(0)
        if compressed:
            fileobj = gzip.GzipFile(fileobj=io.BufferedReader(fileobj), mode="rb")
        hdus = fits.open(fileobj, memmap=False, lazy_load_hdus=True)
        headers, image, source = [], None, None
        for index, hdu in enumerate(hdus):
            cards = [str(card) for card in list(hdu.header.cards)[:MAX_CARDS]]
            headers.append({"index": index, "name": hdu.name, "cards": cards})
            shape = tuple(hdu.header.get(f"NAXIS{i}", 0) for i in range(1, hdu.header.get("NAXIS", 0) + 1))
            is_image = isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
            if image is None and is_image and len(shape) >= 2 and all(shape):
                if int(np.prod(shape)) > MAX_FITS_PIXELS:
                    source = {"hdu": index, "skipped": f"image of {shape} pixels is too large to preview"}
                    continue
                data = hdu.data
                while data.ndim > 2:
                    data = data[0]
                image, source = np.asarray(data, dtype=np.float64), {"hdu": index, "shape": list(data.shape)}
    except MemoryError:
        raise
    except Exception as e:
        raise Refused(422, f"not a readable FITS file: {type(e).__name__}: {str(e)[:200]}") from None
    if image is None:
        return {"headers": headers, "image": source}, None
    step = max(1, -(-max(image.shape) // MAX_SIDE))
    image = image[::step, ::step]
    finite = image[np.isfinite(image)]
    low, high = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
    scaled = np.clip((np.nan_to_num(image, nan=low) - low) / ((high - low) or 1.0), 0, 1)
    gray = (scaled[::-1] * 255).astype(np.uint8)  # FITS rows go up; PNG rows go down
    source.update(low=float(low), high=float(high), step=step)
    return {"headers": headers, "image": source}, png(gray.tobytes(), gray.shape[1], gray.shape[0])
