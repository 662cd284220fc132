"""Exceptions with one-line, user-facing messages.

Every error a user can cause (bad data, bad checkpoint, bad argument) is raised as a
subclass of :class:`MagnetError` whose message names the file and the problem in one line.
The CLI prints ``error: <message>`` and exits with status 2; the dashboard shows the message.
"""
from __future__ import annotations

from pathlib import Path


class MagnetError(Exception):
    """Base class of every user-facing error of the project."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        text = message if path is None else f"{path}: {message}"
        super().__init__(text.replace("\n", " "))


class DataError(MagnetError):
    """A dataset file is missing or malformed."""


class CheckpointError(MagnetError):
    """A checkpoint directory is missing, corrupt, unsafe or incompatible."""


class ConfigError(MagnetError):
    """A configuration value or command-line argument is invalid."""


class TrainingError(MagnetError):
    """A run cannot go on (its loss or weights became NaN or infinite); nothing is written."""
