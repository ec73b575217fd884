"""The torch device a run uses: the one asked for, or the best available."""

from __future__ import annotations

import torch

from benchmark.common.errors import UserError


def auto_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | None) -> torch.device:
    """`name` ("cpu", "cuda", "cuda:1", "mps") checked against this machine; None: auto."""
    if not name:
        return auto_device()
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise UserError(f"device {name!r} is not available here ({count} CUDA device(s)); "
                            f"drop --device to use {auto_device()}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} is not available here; drop --device to use "
                        f"{auto_device()}")
    return device

