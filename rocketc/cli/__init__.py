"""The `rocketc` command line: one thin function per command.

Each command calls the library and formats the result. A `RocketcError` (the user's mistake) is
printed as `file:line:col: message` lines on stderr with exit code 1; usage errors stay click's
(exit 2). `check` and `compile` never import torch, so they answer instantly.
"""

from __future__ import annotations

# Each module registers its commands on `app` when imported; this order is `--help`'s order.
from rocketc.cli import compiler_commands  # noqa: F401

# isort: split
from rocketc.cli import training_commands  # noqa: F401

# isort: split
from rocketc.cli import shrink_command  # noqa: F401

# isort: split
from rocketc.cli import serving_commands  # noqa: F401

# isort: split
from rocketc.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
