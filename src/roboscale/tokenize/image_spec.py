"""Image tokenizer specs (``patch:P``, ``vq:K@T``), parsed and checked without torch (the CLI
and study files validate them before any work); the tokenizers themselves are in
:mod:`roboscale.tokenize.image`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from roboscale.errors import BadInputError
from roboscale.tokenize.tokenizers import KINDS as STATE_KINDS

IMAGE_KINDS = ("patch", "vq")
USAGE = "use patch:P (e.g. patch:8) or vq:K@T (e.g. vq:64@16: K codes, T tokens per frame)"


@dataclass(frozen=True)
class ImageTokenizerSpec:
    """A parsed image tokenizer spec: ``patch:P`` or ``vq:K@T``."""

    kind: str
    patch: int = 0
    codes: int = 0
    tokens: int = 0

    @classmethod
    def parse(cls, text: str) -> ImageTokenizerSpec:
        raw = str(text).strip().lower()
        body, _, tokens_text = raw.partition("@")
        kind, _, number_text = body.partition(":")
        if kind in STATE_KINDS:
            raise BadInputError(f"image tokenizer {text!r}: that is a state tokenizer; {USAGE}")
        if kind not in IMAGE_KINDS:
            raise BadInputError(f"image tokenizer {text!r}: unknown kind {kind!r}; {USAGE}")
        if kind == "patch":
            if tokens_text or "@" in raw:
                raise BadInputError(f"image tokenizer {text!r}: patch takes no @TOKENS (tokens = (H/P)^2); {USAGE}")
            return cls("patch", patch=_positive(text, "patch size P", number_text, minimum=1))
        if "@" not in raw:
            raise BadInputError(f"image tokenizer {text!r}: vq needs tokens per frame; {USAGE}")
        codes = _positive(text, "codebook size K", number_text, minimum=2)
        tokens = _positive(text, "tokens per frame T", tokens_text, minimum=1)
        if math.isqrt(tokens) ** 2 != tokens:
            raise BadInputError(f"image tokenizer {text!r}: T={tokens} is not a square number; use 4, 16, 64 or 256")
        return cls("vq", codes=codes, tokens=tokens)

    def __str__(self) -> str:
        return f"patch:{self.patch}" if self.kind == "patch" else f"vq:{self.codes}@{self.tokens}"

    def tokens_per_frame(self, image_size: int) -> int:
        return (image_size // self.patch) ** 2 if self.kind == "patch" else self.tokens

    def check_image(self, image_size: int) -> None:
        """BadInputError unless this spec can tokenize ``image_size`` x ``image_size`` frames."""
        if self.kind == "patch":
            if image_size % self.patch:
                raise BadInputError(
                    f"image tokenizer {self}: patch size {self.patch} does not divide the image size {image_size}; "
                    f"use a divisor of {image_size}"
                )
            return
        side = math.isqrt(self.tokens)
        scale = image_size // side if image_size % side == 0 else 0
        if scale == 0 or scale & (scale - 1):
            raise BadInputError(
                f"image tokenizer {self}: a {side}x{side} token grid must divide the {image_size}-pixel image by a "
                f"power of 2; use T = (image size / 2^k)^2, e.g. {(image_size // 4) ** 2} or {(image_size // 8) ** 2}"
            )


def _positive(text: str, what: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadInputError(f"image tokenizer {text!r}: {what} {value!r} is not an integer; {USAGE}") from None
    if number < minimum:
        raise BadInputError(f"image tokenizer {text!r}: {what} must be >= {minimum}; {USAGE}")
    return number


def is_image_tokenizer(text: str) -> bool:
    """Whether ``text`` names an image tokenizer kind (``patch:…`` or ``vq:…``), valid or not."""
    return str(text).strip().lower().partition("@")[0].partition(":")[0] in IMAGE_KINDS
