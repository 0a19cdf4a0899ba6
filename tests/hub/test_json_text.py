"""JSON text for JSONB columns (``hub.states.to_json``): the fast encoder and the standard
one it falls back to must mean the same thing to the database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.model import ChangeOp
from hub.states import to_json

VALUES: list[Any] = [
    {"legal_name": "Müller & Söhne GmbH", "emails": ["a@b.example"], "score": 0.1 + 0.2},
    {"nested": {"list": [1, 2.5, None, True, "東京"]}, "empty": {}},
    {"op": ChangeOp.DELETE},  # a str enum: its value
    {"nul": "a\x00b"},  # escaped, so callers can find and refuse it
    {"big": 2**70},  # beyond 64 bits: the standard encoder
    {1: "one"},  # a key that is not a string: the standard encoder
    {"surrogate": "\ud800"},  # a lone surrogate: the standard encoder
]


@pytest.mark.parametrize("value", VALUES)
def test_the_text_means_what_the_standard_encoder_says(value: Any) -> None:
    text = to_json(value)
    assert json.loads(text) == json.loads(json.dumps(value))
    assert " " not in text.replace("Müller & Söhne GmbH", "")  # compact


def test_a_nul_character_stays_escaped() -> None:
    assert "\\u0000" in to_json({"nul": "a\x00b"})


def test_what_neither_encoder_takes_is_refused() -> None:
    with pytest.raises(TypeError):
        to_json({"when": object()})
