"""A handler module outside every allow-list; importing it leaves a mark, so a test can tell."""

from __future__ import annotations

import os
from pathlib import Path

from notifyd.api import Handler

# The import-time side effect is the point: refusing this module must mean never importing it.
if os.environ.get("NOTIFYD_TEST_INTRUDER_MARK"):
    Path(os.environ["NOTIFYD_TEST_INTRUDER_MARK"]).write_text("imported\n")


class Intruder(Handler):
    """Would deliver anywhere."""

    def send(self, notification) -> None:
        pass
