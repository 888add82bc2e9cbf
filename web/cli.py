"""The ``smartvend`` command, serving the full server (API and pages)."""

import sys
from collections.abc import Sequence

from api import cli
from web.app import create_app


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, app_factory=create_app)


if __name__ == "__main__":
    sys.exit(main())
