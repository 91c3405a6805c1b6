"""A problem found in a config file, with the position it was found at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]
# A problem before it is placed in the file: (key path, message, points at the key?).
Problem = tuple[Path, str, bool]


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in a config file; ``line`` and ``column`` count from 1."""

    file: str
    line: int
    column: int
    key_path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.key_path}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.key_path,
            "message": self.message,
        }


def dotted(path: Path) -> str:
    """``("channels", "email", "topics", 0)`` -> ``channels.email.topics[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(root)"


class ConfigError(Exception):
    """The config file is invalid; ``findings`` lists every problem found."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("\n".join(str(f) for f in findings))
        self.findings = findings
