"""The known truth a synthetic dataset carries, read only when the dataset says it is synthetic.

The generator (:mod:`careval.synthetic`) writes ``truth.json`` (the injected effects) and
``true_risk.parquet`` (each person's true risk) beside the tables. The analyses compare their
estimates with them. On data flagged real neither file is read, whatever the folder holds: a
file of that name in a real extract is not careval's, and its contents must not reach a report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from careval.data.access import Dataset
from careval.errors import DatasetError

TRUTH = "truth.json"
TRUE_RISK = "true_risk.parquet"


def truth_document(ds: Dataset) -> dict[str, Any]:
    """A synthetic dataset's whole ``truth.json`` ({} when there is none, or data not synthetic).

    Raises
    ------
    DatasetError
        When the dataset is synthetic and ``truth.json`` is not valid JSON.
    """
    path = Path(ds.path) / TRUTH
    if not ds.synthetic or not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    return doc if isinstance(doc, dict) else {"effects": None}


def known_effects(ds: Dataset) -> dict[str, Any]:
    """The ``effects`` object of a synthetic dataset's ``truth.json`` ({} when there is none).

    Raises
    ------
    DatasetError
        When the dataset is synthetic and ``truth.json`` is not a JSON object whose
        ``effects`` is an object.
    """
    doc = truth_document(ds)
    if not doc:
        return {}
    effects = doc.get("effects", {})
    if not isinstance(effects, dict):
        raise DatasetError(
            f"{Path(ds.path) / TRUTH}: must hold a JSON object with an 'effects' object"
        )
    return effects


def true_risk_file(ds: Dataset) -> Path | None:
    """The synthetic dataset's ``true_risk.parquet``, or None (absent, or data not synthetic)."""
    path = Path(ds.path) / TRUE_RISK
    return path if ds.synthetic and path.is_file() else None
