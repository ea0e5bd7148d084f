"""Atomic checkpoints: ``torch.save`` to a temporary file, then ``os.replace``; loaded with ``weights_only=True``."""
from __future__ import annotations

import os
import pathlib

import torch


def save_atomic(state: dict, path) -> None:
    """Write ``state`` to ``path`` so that a crash leaves either the old or the new file, never a torn one."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(state, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(path) -> dict:
    return torch.load(pathlib.Path(path), weights_only=True)


def write_text_atomic(path, text: str) -> None:
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
