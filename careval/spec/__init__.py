"""The study specification: ``study.toml`` in, each analysis's settings out.

- :class:`~careval.spec.model.StudySpec`: the sections and fields, each documented.
- :func:`~careval.spec.toml.load`: read a spec file (every problem at once).
- :func:`~careval.spec.check.check`: the spec against a dataset (dates inside the data, areas
  that practices have).
- :func:`~careval.spec.resolve.resolve`: the settings of each analysis.
- :func:`~careval.spec.infer.infer`: a spec inferred from a dataset (``careval init``).
"""

from careval.spec.model import StudySpec
from careval.spec.resolve import RunSettings, resolve
from careval.spec.toml import LoadedSpec, dumps, load, loads

__all__ = ["LoadedSpec", "RunSettings", "StudySpec", "dumps", "load", "loads", "resolve"]
