"""Tokenizers: states and actions to model slots (uniform or quantile bins, or continuous)."""

from roboscale.tokenize.tokenizers import KINDS, Tokenizer, TokenizerSpec, fit_tokenizer

__all__ = ["KINDS", "Tokenizer", "TokenizerSpec", "fit_tokenizer"]
