"""Review of the concept-set files of ``careval import omop --concept-set NAME=FILE``: hostile
files give one ConfigError (exit 2), and the flags of an item mean what they say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from careval.data.adapters.omop_vocab import Item, parse_concept_set
from careval.errors import ConfigError


def test_deeply_nested_json_is_one_message(tmp_path: Path) -> None:
    """JSON nested deeper than Python's parser goes: a ConfigError, not a RecursionError."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="nested"):
        parse_concept_set("deep", path)


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "set.json").mkdir()
    with pytest.raises(ConfigError, match="not a file"):
        parse_concept_set("s", tmp_path / "set.json")


def _items(tmp_path: Path, **flags: object) -> list[Item]:
    entry = {"concept": {"CONCEPT_ID": 1118084}, **flags}
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"items": [entry]}), encoding="utf-8")
    return parse_concept_set("s", path)


def test_flags_written_as_text_mean_what_they_say(tmp_path: Path) -> None:
    """A hand-written set with "isExcluded": "false" includes the concept (bool("false") is
    True: the concept would silently be excluded); "true" and JSON booleans as written."""
    assert _items(tmp_path, isExcluded="false", includeDescendants="true") == [
        Item("1118084", True, False)
    ]
    assert _items(tmp_path, isExcluded=True, includeDescendants=False) == [
        Item("1118084", False, True)
    ]
    assert _items(tmp_path) == [Item("1118084", False, False)]


def test_a_flag_that_is_no_yes_or_no_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="isExcluded"):
        _items(tmp_path, isExcluded="maybe")
    with pytest.raises(ConfigError, match="includeDescendants"):
        _items(tmp_path, includeDescendants=[1])
