"""``python -m careval.spec``: write ``docs/study-spec.md`` from the spec's definition."""

from pathlib import Path

from careval.spec.docs import markdown

target = Path(__file__).resolve().parents[2] / "docs" / "study-spec.md"
target.write_text(markdown() + "\n", encoding="utf-8")
print(target)
