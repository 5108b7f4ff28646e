"""``careval risk train|validate|score``: the risk model as a tool for case finding.

Kept light at import (``careval.cli`` imports this module when it starts): the analysis modules
are imported inside the commands.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from careval.cli.common import check_json, err, out, parse_date, steps, validated, write_json
from careval.disclosure import DisclosureSettings
from careval.errors import ConfigError
from careval.folders import Kind, check_replaceable, new_folder

risk_app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Risk stratification and case finding: train, validate and score a model of an "
        "emergency admission in the next 12 months."
    ),
)

SCORE_FILES = ("case_list_by_practice.csv", "case_list_by_mdg.csv", "scores.parquet")


@risk_app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory")],
    index_date: Annotated[
        str, typer.Option(help="Index date, YYYY-MM-DD: features before it, outcome after it")
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Model directory to create (model.joblib, model.json)")
    ],
    model: Annotated[str, typer.Option(help="logistic or lightgbm")] = "logistic",
    overwrite: Annotated[
        bool, typer.Option(help="Replace a model directory careval wrote earlier")
    ] = False,
) -> None:
    """Fit the risk model on everyone registered on the index date; write a model directory.

    The data must cover the 12 months after the index date (the outcome). model.json holds
    the feature definitions, training counts and, for the logistic model, its coefficients.
    """
    from careval.cohort.summary import data_window
    from careval.data.access import Dataset
    from careval.features.index_date import FeatureSettings
    from careval.risk.model import (
        MODEL_KINDS,
        OUTCOME,
        RiskModel,
        design_matrix,
        history_warning,
        model_metadata,
        require_follow_up,
        risk_frame,
        save_model,
    )

    date = parse_date(index_date, "--index-date")
    if model not in MODEL_KINDS:
        raise ConfigError(f"--model must be {' or '.join(MODEL_KINDS)}; got {model!r}")
    _check_out_dir(out_dir, overwrite, "model", data)
    settings = FeatureSettings()
    with steps(4) as step:
        step("validating the dataset")
        validated(data)
        step("features at the index date and the 12-month outcome")
        with Dataset(data) as ds:
            window = data_window(ds)
            require_follow_up(window, date, "--index-date")
            note = history_warning(window, date, settings)
            frame = risk_frame(ds, date, settings)
            synthetic = ds.synthetic
        if note:
            err.print(f"warning: {note}", highlight=False)
        y = frame[OUTCOME].to_numpy()
        if len(y) == 0 or y.min() == y.max():
            raise ConfigError(
                f"cannot fit on {date}: {_shown(len(y), synthetic)} people registered, "
                f"{_shown(int(y.sum()), synthetic)} of them admitted in the 12 months; a model "
                "needs people with and without an admission"
            )
        step(f"fitting the {model} model")
        fitted = RiskModel(model).fit(design_matrix(frame), y)  # type: ignore[arg-type]
        meta = model_metadata(fitted, date, settings, frame, data, synthetic)
        with new_folder(out_dir, "model", overwrite=overwrite) as tmp:
            save_model(fitted, meta, tmp)
    share = f", {y.mean():.1%}" if synthetic else ""  # on real data: the counts as published
    out.print(
        f"trained {model} on {_shown(len(y), synthetic)} people registered on {date} "
        f"({_shown(int(y.sum()), synthetic)} admitted in 12 months{share}); wrote {out_dir}",
        highlight=False,
    )


@risk_app.command("validate")
def validate_cmd(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory")],
    model_dir: Annotated[Path, typer.Option("--model", help="Model directory (risk train)")],
    index_date: Annotated[
        str, typer.Option(help="Validation date, YYYY-MM-DD, after the training date")
    ],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
) -> None:
    """Score everyone registered on a later date and measure the model against what happened.

    AUC (DeLong 95% CI), calibration, Brier score and PPV/sensitivity in the top 0.5, 1, 2
    and 5%, overall and by age band and sex; the oracle AUC when the dataset has the true risks
    (synthetic data). The data must cover 12 months after the date.
    """
    from careval.cohort.summary import data_window
    from careval.data.access import Dataset
    from careval.report.publish.risk import protect_deciles, protect_subgroups, publish_figures
    from careval.report.publish.rules import protect_count
    from careval.risk.evaluate import (
        calibration_deciles,
        oracle_figures,
        records,
        rounded,
        subgroups,
    )
    from careval.risk.metrics import subgroup_table, summarise_score
    from careval.risk.model import (
        OUTCOME,
        design_matrix,
        follow_up_end,
        load_model,
        read_metadata,
        require_follow_up,
        risk_frame,
        settings_from_dict,
    )

    date = parse_date(index_date, "--index-date")
    meta = read_metadata(model_dir)
    trained = dt.date.fromisoformat(meta["index_date"])
    if date <= trained:
        raise ConfigError(
            f"--index-date {date} must be after the model's training date {trained} "
            "(temporal validation scores people at a later date than the model learnt from)"
        )
    check_json(json_out)
    warnings: list[str] = []
    if date < follow_up_end(trained):
        warnings.append(
            f"the validation year from {date} overlaps the training outcome year from {trained}: "
            "a weaker test than a full year apart"
        )
    with steps(3) as step:
        step("validating the dataset")
        validated(data)
        step("features and 12-month outcome at the validation date")
        with Dataset(data) as ds:
            require_follow_up(data_window(ds), date, "--index-date")
            model, meta = load_model(model_dir, ds)
            settings = settings_from_dict(meta["feature_settings"])
            valid = risk_frame(ds, date, settings)
            synthetic = ds.synthetic
            step("scoring")
            y = valid[OUTCOME].to_numpy()
            if len(y) == 0 or y.min() == y.max():
                raise ConfigError(
                    f"cannot validate on {date}: {_shown(len(y), synthetic)} people, "
                    f"{_shown(int(y.sum()), synthetic)} admitted; the figures need people with "
                    "and without an admission"
                )
            p = model.predict_proba(design_matrix(valid))[:, 1]
            valid["risk"] = p
            figures = summarise_score(y, p)
            oracle, oracle_warnings = oracle_figures(ds, valid, date, figures["auc"])
    warnings += oracle_warnings
    figures.update(oracle)
    rules = DisclosureSettings()  # the command publishes under the default rules
    if not synthetic:  # the run's derived-figure rule (careval.report.publish.risk)
        figures = publish_figures(figures, rules)
        figures["n"] = protect_count(len(y), rules)
        figures["events"] = protect_count(int(y.sum()), rules)
    deciles = calibration_deciles(valid)
    deciles = protect_deciles(deciles, rules) if not synthetic else deciles
    by_subgroup = subgroup_table(y, p, subgroups(valid))
    if not synthetic:  # the run's rule (careval.report.publish.risk)
        by_subgroup = protect_subgroups(by_subgroup, rules)
    payload: dict[str, Any] = {
        "model": _model_block(model_dir, meta),
        "index_date": date.isoformat(),
        "synthetic": synthetic,
        **{k: rounded(v) for k, v in figures.items()},
        "by_subgroup": records(by_subgroup),
        "calibration_deciles": records(deciles),
        "warnings": warnings,
    }
    write_json(json_out, payload)
    for note in warnings:
        err.print(f"warning: {note}", highlight=False)
    line = (
        f"validated on {_shown(len(y), synthetic)} people registered on {date}: AUC "
        f"{_num(figures['auc'], '.3f')} (95% CI {_num(figures['auc_ci_low'], '.3f')} to "
        f"{_num(figures['auc_ci_high'], '.3f')}), calibration slope "
        f"{_num(figures['calibration_slope'], '.2f')}, Brier {_num(figures['brier'], '.4f')}"
    )
    if "oracle_auc" in figures:
        line += f"; oracle AUC {figures['oracle_auc']:.3f}"
    out.print(line, highlight=False)


@risk_app.command()
def score(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory")],
    model_dir: Annotated[Path, typer.Option("--model", help="Model directory (risk train)")],
    date: Annotated[str, typer.Option(help="Scoring date, YYYY-MM-DD: events before it count")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to create for the lists")],
    top: Annotated[int, typer.Option(help="People listed per practice and per MDG")] = 50,
    overwrite: Annotated[
        bool, typer.Option(help="Replace case lists careval wrote there earlier")
    ] = False,
) -> None:
    """Score everyone registered on a date and write case-finding lists.

    CLINICAL LISTS, NOT FOR PUBLICATION: case_list_by_practice.csv and case_list_by_mdg.csv
    name (by person_id) the top N highest-risk eligible people without a care plan in each
    practice and each MDG, with the three inputs that raise each score most; scores.parquet
    holds everyone's score. They identify people so that practices and MDGs can act on them:
    keep them within the programme's information governance. Only summary.json (counts, with
    small-number disclosure control on real data) may be shared more widely.
    """
    from careval.cohort.summary import data_window
    from careval.data.access import Dataset
    from careval.report.publish.caselist import publish_score_summary
    from careval.report.workbook import csv_text
    from careval.risk.caselist import case_list, score_people, score_summary, scores_table
    from careval.risk.model import load_model, read_metadata, settings_from_dict

    day = parse_date(date, "--date")
    if top < 1:
        raise ConfigError(f"--top must be at least 1; got {top}")
    meta = read_metadata(model_dir)
    trained = dt.date.fromisoformat(meta["index_date"])
    _check_out_dir(out_dir, overwrite, "case_lists", data)
    warnings: list[str] = []
    if day < trained:
        warnings.append(
            f"scoring on {day}, before the model's training date {trained}: the model learnt "
            "from admissions after this date, so the lists are not a fair retrospective test"
        )
    with steps(4) as step:
        step("validating the dataset")
        validated(data)
        step("features on the scoring date")
        with Dataset(data) as ds:
            window = data_window(ds)
            last = window[1] + dt.timedelta(days=31)
            if not window[0] < day <= last:
                raise ConfigError(
                    f"--date {day}: the data run from {window[0]} to {window[1]}; score on a "
                    f"date after {window[0]} and no later than {last} (a month after the last "
                    "admission), or recent events would be missing"
                )
            model, meta = load_model(model_dir, ds)
            settings = settings_from_dict(meta["feature_settings"])
            scored, x = score_people(ds, model, day, settings)
            synthetic, has_plans = ds.synthetic, ds.has("care_plans")
        if not len(scored):
            raise ConfigError(f"--date {day}: nobody is registered on that date")
        if not has_plans:
            warnings.append("no care_plans table: nobody counts as already on a care plan")
        step("case-finding lists and drivers")
        by_practice = case_list(scored, x, model, "practice_code", top)
        by_mdg = case_list(scored, x, model, "mdg", top)
        counted = score_summary(scored, by_practice, by_mdg, top)
        if not synthetic:
            counted = publish_score_summary(counted, DisclosureSettings())  # the default rules
        summary = {
            "date": day.isoformat(),
            "model": _model_block(model_dir, meta),
            "synthetic": synthetic,
            "disclosure_control": not synthetic,
            **counted.to_dict(),
            "files": list(SCORE_FILES),
            "warnings": warnings,
        }
        step("writing")
        with new_folder(out_dir, "case_lists", overwrite=overwrite) as tmp:
            for frame, name in ((by_practice, SCORE_FILES[0]), (by_mdg, SCORE_FILES[1])):
                (tmp / name).write_text(csv_text(frame, "%.6g"), encoding="utf-8", newline="")
            scores_table(scored).to_parquet(tmp / SCORE_FILES[2], index=False)
            (tmp / "summary.json").write_text(
                json.dumps(summary, indent=2) + "\n", encoding="utf-8"
            )
    for note in warnings:
        err.print(f"warning: {note}", highlight=False)
    out.print(
        f"scored {len(scored):,} people registered on {day}; listed {len(by_practice):,} "
        f"across {by_practice.practice_code.nunique():,} practices and {len(by_mdg):,} across "
        f"{by_mdg.mdg.nunique():,} MDGs (top {top} each); wrote {out_dir} "
        "(clinical lists: not for publication)",
        highlight=False,
    )


def _shown(n: int, synthetic: bool) -> str:
    """A count for the terminal: exact for synthetic data, as published otherwise (1-7 as *,
    others rounded to 5, the default rules)."""
    from careval.report.publish.rules import protect_count

    v = n if synthetic else protect_count(n, DisclosureSettings())
    return f"{v:,}" if isinstance(v, int) else str(v)


def _num(v: Any, spec: str) -> str:
    """A figure for the terminal (``withheld`` where disclosure control withheld it)."""
    return "withheld" if v is None else format(v, spec)


def _model_block(model_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "directory": str(model_dir),
        "kind": meta["model_kind"],
        "trained_on": meta["index_date"],
        "careval_version": meta.get("careval_version"),
    }


def _check_out_dir(path: Path, overwrite: bool, kind: Kind, data: Path) -> None:
    """Refuse an output directory that cannot be made, before any work is done.

    ``--overwrite`` replaces only a folder of this kind careval wrote (:mod:`careval.folders`);
    nothing is written inside the dataset ``data``.
    """
    d, o = data.resolve(), path.resolve()
    if o == d or d in o.parents:
        raise ConfigError(
            f"--out {path} is inside the dataset directory {data}: careval never writes into a "
            "dataset; choose an --out outside it"
        )
    check_replaceable(path, kind, overwrite)
    if not path.parent.is_dir():
        raise ConfigError(f"--out {path}: the directory {path.parent} does not exist")
