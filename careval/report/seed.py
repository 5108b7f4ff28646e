"""Whether a dataset is the seed-shaped synthetic default: :func:`seed_shaped`.

The default synthetic population is calibrated to the North West London integrated care
pilot's published evaluation (the *seed*: its 1,236 matched people, 0.44 emergency admissions a
person-year among the care-planned, about 30% of the eligible care-planned by April 2012, 39%
of the innovation fund allocated in its first year, about three months of follow-up). Only on
such data may the report set its figures beside the seed's; on any other data (real, or
synthetic with other settings) those comparisons would be about someone else's data, so the
report speaks of the data it was given alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from careval.synthetic.settings import SynthSettings

# Generator settings that change the size or the draw of the population but not its shape.
FREE_SETTINGS = ("persons", "seed")


def seed_shaped(manifest: Mapping[str, Any]) -> bool:
    """Whether a dataset's manifest (``dataset.json``) describes the seed-shaped synthetic
    default.

    True when the manifest says the data are synthetic (as
    :attr:`careval.data.access.Dataset.synthetic` reads it) and its ``settings`` are exactly
    the generator's settings (:class:`~careval.synthetic.settings.SynthSettings`, as
    ``to_dict`` writes them), every one at its default apart from ``persons`` and ``seed``.
    A manifest without settings, with a setting missing or unknown (another generator, or
    another version of it), or with any other setting changed is not seed-shaped.

    Examples
    --------
    >>> default = {"synthetic": True, "settings": SynthSettings(persons=12_000, seed=7).to_dict()}
    >>> seed_shaped(default)
    True
    >>> seed_shaped({**default, "synthetic": False})
    False
    >>> seed_shaped({**default, "settings": {**default["settings"], "effect": 0.0}})
    False
    """
    if manifest.get("synthetic") is not True:  # the string "false" is not synthetic
        return False
    settings = manifest.get("settings")
    defaults = SynthSettings().to_dict()
    if not isinstance(settings, Mapping) or set(settings) != set(defaults):
        return False
    return all(settings[k] == v for k, v in defaults.items() if k not in FREE_SETTINGS)
