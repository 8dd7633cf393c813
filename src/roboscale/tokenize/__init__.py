"""Tokenizers: states and actions to model slots (uniform or quantile bins, or continuous),
and camera frames to image slots (patches, or VQ-VAE codes)."""

from roboscale.tokenize.image import (
    ImageTokenizer,
    ImageTokenizerSpec,
    default_cache_dir,
    fit_image_tokenizer,
    is_image_tokenizer,
)
from roboscale.tokenize.tokenizers import (
    KINDS,
    QUANTILE_SAMPLE,
    Tokenizer,
    TokenizerSpec,
    action_spec_for,
    even_subsample,
    fit_tokenizer,
)

__all__ = [
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
