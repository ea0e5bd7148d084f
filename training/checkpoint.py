"""Atomic checkpoints: ``torch.save`` into memory, then ``hil.files.write_atomic``; loaded with ``weights_only=True``."""

from __future__ import annotations

import io
import pathlib

import torch

from hil.files import write_atomic


def save_atomic(state: dict, path) -> None:
    """Write ``state`` to ``path`` so that a crash leaves either the old or the new file, never a torn one."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def load(path) -> dict:
    return torch.load(pathlib.Path(path), weights_only=True)


def write_text_atomic(path, text: str) -> None:
    write_atomic(path, text)
