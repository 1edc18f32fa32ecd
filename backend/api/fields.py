"""Constrained field types the request bodies share, so every route refuses the same bad values alike."""

from __future__ import annotations

from typing import Annotated

import msgspec

#: A BCP 47 language tag such as `en`, `en-US` or `zh-Hans-CN`.
LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
#: A name a person gave: at least one character that is not whitespace (names are stored stripped, and
#: the tables refuse a blank one).
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
LanguageTag = Annotated[str, msgspec.Meta(pattern=LANGUAGE, max_length=35)]
Transcript = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
