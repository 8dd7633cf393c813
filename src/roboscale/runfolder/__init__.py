"""A training run folder: its layout, reading and cross-checking it, its checkpoint, its device.

Below both :mod:`roboscale.train` (which writes run folders) and
:mod:`roboscale.evaluate` (which reads them), so neither reaches into the other.
Reading a folder needs no torch; the checkpoint and device functions load torch
on first use, so refusing a bad folder stays fast.
"""

from __future__ import annotations

from roboscale.lazy import lazy_exports
from roboscale.runfolder.layout import RunLayout
from roboscale.runfolder.read import RunFolder, read_json, read_run_folder, tokenizer_payload, tokenizers_from_payload

_TORCH_EXPORTS = {
    "save_checkpoint": "roboscale.runfolder.checkpoint",
    "load_checkpoint": "roboscale.runfolder.checkpoint",
    "has_checkpoint": "roboscale.runfolder.checkpoint",
    "checkpoint_step": "roboscale.runfolder.checkpoint",
    "resolve_device": "roboscale.runfolder.device",
}

__all__ = [
    "RunFolder",
    "RunLayout",
    "checkpoint_step",
    "has_checkpoint",
    "load_checkpoint",
    "read_json",
    "read_run_folder",
    "resolve_device",
    "save_checkpoint",
    "tokenizer_payload",
    "tokenizers_from_payload",
]


__getattr__ = lazy_exports(__name__, _TORCH_EXPORTS)
