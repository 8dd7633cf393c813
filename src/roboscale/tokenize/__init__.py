"""Tokenizers: states and actions to model slots (uniform or quantile bins, or continuous),
and camera frames to image slots (patches, or VQ-VAE codes)."""

from roboscale.tokenize.image_spec import IMAGE_KINDS, ImageTokenizerSpec, is_image_tokenizer
from roboscale.tokenize.tokenizers import (
    KINDS,
    QUANTILE_SAMPLE,
    Tokenizer,
    TokenizerSpec,
    action_spec_for,
    even_subsample,
    fit_tokenizer,
)

_TORCH_EXPORTS = {"ImageTokenizer", "default_cache_dir", "fit_image_tokenizer"}
"""Names of :mod:`roboscale.tokenize.image` (it imports torch), imported on first use."""


def __getattr__(name: str):
    if name in _TORCH_EXPORTS:
        from roboscale.tokenize import image

        return getattr(image, name)
    raise AttributeError(f"module 'roboscale.tokenize' has no attribute {name!r}")


__all__ = [
    "IMAGE_KINDS",
    "KINDS",
    "QUANTILE_SAMPLE",
    "ImageTokenizer",
    "ImageTokenizerSpec",
    "Tokenizer",
    "TokenizerSpec",
    "action_spec_for",
    "default_cache_dir",
    "even_subsample",
    "fit_image_tokenizer",
    "fit_tokenizer",
    "is_image_tokenizer",
]
