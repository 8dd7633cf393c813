"""Tokenizers: states and actions to model slots (uniform or quantile bins, or continuous)."""

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
    "Tokenizer",
    "TokenizerSpec",
    "action_spec_for",
    "even_subsample",
    "fit_tokenizer",
]
