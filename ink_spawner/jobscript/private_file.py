"""Write stdin to a file only its owner can read, atomically (run as the user by the hub)."""

import os
import sys
import tempfile


def main(path: str) -> int:
    data = sys.stdin.buffer.read()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ink-")  # mkstemp creates mode 600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
