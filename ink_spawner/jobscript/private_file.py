"""As a command, run as the user by the hub: write stdin to the path given, privately and
atomically (``ink_core.private.write_private``)."""

import sys

from ink_core.private import write_private


def main(path: str) -> int:
    write_private(path, sys.stdin.buffer.read())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
