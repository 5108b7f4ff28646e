"""One survey summarised: :class:`SurveyResult`, its tables and its results.json block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from careval.surveys.common import (
    count_text,
    count_value,
    effective_n_value,
    notes_text,
    plain,
    records,
    share_value,
)
from careval.surveys.definition import SurveyDefinition


@dataclass
class SurveyResult:
    """One survey summarised.

    Attributes
    ----------
    definition : SurveyDefinition
    n_responses : int
    response_rates : pandas.DataFrame
        ``group``, ``label``, ``invited``, ``responded``, ``response_rate`` (None when the number
        invited is not known); the last row is ``group == "all"``.
    items : pandas.DataFrame
        One row per likert or choice question: ``question``, ``text``, ``type``,
        ``n_respondents``, ``n_valid`` (substantive answers), ``n_agree``, ``share_agree``,
        ``ci_low``, ``ci_high`` (Wilson 95%), ``n_dont_know``, ``share_dont_know`` (of those
        answering, don't know included), ``n_user_missing``, ``n_blank``, ``n_effective``.
    distribution : pandas.DataFrame
        Per question and category: ``question``, ``code``, ``label``, ``kind`` (answer,
        dont_know, user_missing, blank), ``role`` (agree, disagree, neutral, other), ``count``,
        ``weighted``, ``share_of_valid`` (answers only), ``share_of_respondents``.
    by_group : pandas.DataFrame
        Share agreeing per question and group: ``question``, ``group``, ``label``, ``n_valid``,
        ``n_agree``, ``share_agree``, ``ci_low``, ``ci_high``, ``n_effective`` (Kish's, no
        finite population correction, as the interval uses; None without answers).
    comparisons : pandas.DataFrame
        Per question: ``question``, ``test``, ``statistic``, ``dof``, ``p_value``, ``n``,
        ``min_expected``, ``table`` (the rows x columns counted), ``note``.
    open_text : pandas.DataFrame or None
        Non-blank answers to open questions: ``question``, ``respondent``, ``group``, ``text``
        (None where they are not published: the block then has no ``open_text``).
    warnings : list of str
    n_open_text : int or str, optional
        The number of open-text answers when ``open_text`` does not hold them (as published).
    disclosure_control : bool
        Whether the counts are as published under disclosure control (set only by
        :func:`careval.report.publish.surveys.publish_survey`, whose copy holds published
        counts, shares withheld as None and no open-text answers).
    """

    definition: SurveyDefinition
    n_responses: int
    response_rates: pd.DataFrame
    items: pd.DataFrame
    distribution: pd.DataFrame
    by_group: pd.DataFrame
    comparisons: pd.DataFrame
    open_text: pd.DataFrame | None
    warnings: list[str] = field(default_factory=list)
    n_open_text: int | str | None = None
    disclosure_control: bool = False

    @property
    def name(self) -> str:
        """The survey's short name."""
        return self.definition.name

    def tidy(self) -> pd.DataFrame:
        """The item table (one row per question)."""
        return self.items.copy()

    def summary(self) -> str:
        """Plain-text summary: response rate and share agreeing per item."""
        overall = self.response_rates.iloc[-1]
        rate = overall["response_rate"]
        head = f"{self.definition.title}: {count_text(self.n_responses)} responses"
        if rate is not None and not pd.isna(rate):
            head += f" of {count_text(overall['invited'])} invited ({100 * rate:.1f}%)"
        lines = [head]
        for r in self.items.itertuples():
            if r.share_agree is None or pd.isna(r.share_agree) or r.ci_low is None:
                continue
            lines.append(
                f"  {r.question}: {100 * r.share_agree:.1f}% agree "
                f"(95% CI {100 * r.ci_low:.1f} to {100 * r.ci_high:.1f}; n={count_text(r.n_valid)})"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The survey's block of results.json (see :meth:`SurveysResult.to_dict`).

        Counts, shares (to 4 decimals) and Kish's effective n (to 2) as the tables hold them: the
        true ones, or on a published copy the published ones.
        """
        d = self.definition
        items = []
        for r in self.items.itertuples():
            items.append(
                {
                    "question": r.question,
                    "text": r.text,
                    "type": r.type,
                    "n_respondents": count_value(r.n_respondents),
                    "n_valid": count_value(r.n_valid),
                    "n_agree": count_value(r.n_agree),
                    "share_agree": share_value(r.share_agree),
                    "ci_low": share_value(r.ci_low),
                    "ci_high": share_value(r.ci_high),
                    "n_dont_know": count_value(r.n_dont_know),
                    "share_dont_know": share_value(r.share_dont_know),
                    "n_user_missing": count_value(r.n_user_missing),
                    "n_blank": count_value(r.n_blank),
                    "n_effective": effective_n_value(r.n_effective),
                }
            )
        dist = [
            {
                "question": r.question,
                "code": r.code,
                "label": r.label,
                "kind": r.kind,
                "role": r.role,
                "count": count_value(r.count),
                "share_of_valid": share_value(r.share_of_valid),
                "share_of_respondents": share_value(r.share_of_respondents),
            }
            for r in self.distribution.itertuples()
        ]
        groups = [
            {
                "question": r.question,
                "group": r.group,
                "label": r.label,
                "n_valid": count_value(r.n_valid),
                "n_agree": count_value(r.n_agree),
                "share_agree": share_value(r.share_agree),
                "ci_low": share_value(r.ci_low),
                "ci_high": share_value(r.ci_high),
            }
            for r in self.by_group.itertuples()
        ]
        comps = []
        for r in self.comparisons.itertuples():
            table = dict(r.table)
            table["counts"] = [[count_value(v) for v in row] for row in table["counts"]]
            comps.append(
                {
                    "question": r.question,
                    "test": r.test,
                    "statistic": plain(r.statistic),
                    "dof": None if pd.isna(r.dof) else int(r.dof),
                    "p_value": plain(r.p_value),
                    "n": count_value(r.n),
                    "min_expected": plain(r.min_expected),
                    "table": table,
                    "note": r.note,
                }
            )
        n_open = self.n_open_text
        if n_open is None:
            n_open = len(self.open_text) if self.open_text is not None else 0
        out: dict[str, Any] = {
            "title": d.title,
            "data_format": d.format,
            "n_responses": count_value(self.n_responses),
            "weighted": bool(d.weight),
            "population": d.population,
            "response_rates": self.response_rates_dict(),
            "items": items,
            "distribution": dist,
            "by_group": groups,
            "comparisons": comps,
            "n_open_text_answers": count_value(n_open),
            "warnings": notes_text(self.warnings),
        }
        if self.open_text is not None:
            out["open_text"] = records(self.open_text)
        return out

    def response_rates_dict(self) -> list[dict[str, Any]]:
        """The response-rate table as JSON rows (a rate only where the number invited is known)."""
        rows = []
        for r in self.response_rates.itertuples():
            invited = count_value(r.invited)
            rows.append(
                {
                    "group": r.group,
                    "label": r.label,
                    "invited": invited,
                    "responded": count_value(r.responded),
                    "response_rate": None if invited is None else share_value(r.response_rate),
                }
            )
        return rows
