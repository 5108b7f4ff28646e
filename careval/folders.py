"""The folders careval writes, and the rules that keep everyone else's files safe.

Every folder careval creates (a dataset, a run's outputs, a risk model, case lists) carries a
marker, ``.careval.json``: the folder's kind, the careval version and the entries careval wrote.

* ``--overwrite`` replaces only a folder with careval's marker, of the same kind, holding
  nothing but the entries careval wrote; anything else is refused (:class:`ConfigError`, exit
  2) before anything is touched.
* A new folder is written beside its place (``.careval-tmp.<name>.<random>``) and renamed in
  whole; an old one is renamed aside first (``.careval-old.<name>.<random>``) and removed once
  the new one is in. A kill leaves the old folder, the new one or (between the two renames)
  none, never a mixture; the next write to that place removes the leftovers, only those named
  so and carrying the marker.
* A run folder keeps the user's own files: only the run's outputs are careval's. Each run is
  written to ``.careval-runs/run-<time>-<random>/`` and made current by replacing one
  symbolic link, ``.careval-runs/current``; ``report.html``, ``results.json``, ``tables.xlsx``,
  ``study.json`` and ``figures`` are relative links through it, made once. So the five change
  together: a kill at any instant leaves the previous complete set or the new one. Where links
  cannot be made (Windows without the right to make them, some network drives) the outputs are
  real files moved in one after another, and a kill during those moves can mix two runs until
  the next run replaces them.

:func:`kill_point` lets the kill tests stop careval at a named step (``CAREVAL_TEST_KILL_AT``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from careval import __version__
from careval.errors import ConfigError

Kind = Literal["dataset", "run", "model", "case_lists", "follow", "app_export"]
MARKER = ".careval.json"
RUNS = ".careval-runs"  # a run folder's own directory: one directory per run, and ``current``
CURRENT = "current"
RECORD = ".written.json"  # in each run's directory: the files careval wrote, written last
_TMP, _OLD = ".careval-tmp.", ".careval-old."
_RUN_NAME = re.compile(r"run-\d{8}T\d{6}-[0-9a-f]{8}")
_LINK_TMP = re.compile(r"current\.[0-9a-f]{8}")
_LEGACY = f"outputs of careval versions without the {MARKER} marker are deleted by hand"
_NAMES = {
    "dataset": "dataset",
    "run": "run",
    "model": "risk model",
    "case_lists": "case-list",
    "follow": "follow-state",
    "app_export": "app-export",
}


def kill_point(step: str) -> None:
    """Kill this process at ``step`` when ``CAREVAL_TEST_KILL_AT`` names it (kill tests only)."""
    if os.environ.get("CAREVAL_TEST_KILL_AT") == step:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a folder careval wrote, or None when there is none (or it is not careval's)."""
    path = Path(folder) / MARKER
    if path.is_symlink() or not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(marker, dict) or marker.get("careval_folder") != 1:
        return None
    if marker.get("kind") not in _NAMES or not isinstance(marker.get("entries"), list):
        return None
    return marker


def write_marker(folder: Path, kind: Kind, entries: Sequence[str], **more: str) -> None:
    """Write (or replace) ``folder``'s marker: its kind and the entries careval wrote in it."""
    marker = {
        "careval_folder": 1,
        "kind": kind,
        "careval_version": __version__,
        "entries": sorted(entries),
        **more,
        "note": "written by careval: careval replaces only the entries listed here",
    }
    _write_small(Path(folder) / MARKER, json.dumps(marker, indent=2) + "\n")


def _write_small(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` (``<name>.<8 hex>``, the usual permissions) and move it in."""
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()


def _clean_small(folder: Path) -> None:
    """Remove the marker's and the record's temporary copies a kill left in ``folder``."""
    pattern = re.compile(rf"({re.escape(MARKER)}|{re.escape(RECORD)})\.[0-9a-f]{{8}}")
    for entry in folder.iterdir() if folder.is_dir() else ():
        if pattern.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink()


def _count(items: Sequence[str], one: str, many: str) -> str:
    return f"{len(items):,} {one if len(items) == 1 else many}"


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(sorted(names)[:5])
    return shown + (f" and {len(names) - 5:,} more" if len(names) > 5 else "")


def check_replaceable(path: Path, kind: Kind, overwrite: bool, option: str = "--out") -> None:
    """Refuse to write a ``kind`` folder at ``path`` unless nothing or only careval's is there.

    Allowed: nothing at ``path``, an empty directory, or (with ``overwrite``) a folder with
    careval's marker of the same kind holding only the entries careval wrote.

    Raises
    ------
    ConfigError
        Naming the path, what is there and how to proceed; nothing has been touched.
    """
    path = Path(path)
    what = f"{option} {path}"
    if path.is_symlink():
        raise ConfigError(f"{what} is a link; careval replaces only a folder it wrote itself")
    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(f"{what} is a file careval did not write; nothing was touched")
    here = os.listdir(path)
    if not here:
        return
    if not overwrite:
        raise ConfigError(
            f"{what} exists and is not empty; pass --overwrite to replace it (only a "
            f"{_NAMES[kind]} folder careval wrote can be replaced) or choose another {option}"
        )
    marker = read_marker(path)
    if marker is None:
        raise ConfigError(
            f"{what} was not written by careval (it has no {MARKER}): --overwrite replaces only "
            f"a folder careval made, and nothing was touched; move it or choose another "
            f"{option} ({_LEGACY})"
        )
    if marker["kind"] != kind:
        raise ConfigError(
            f"{what} is a careval {_NAMES[marker['kind']]} folder, not a {_NAMES[kind]} "
            f"folder; nothing was touched; choose another {option}"
        )
    # Every file at every level must be careval's: a file the user added in a subfolder
    # (surveys/mine.toml) would go with the folder just as one at the top would.
    extra = sorted(set(_all_entries(path)) - set(marker["entries"]) - {MARKER})
    if extra:
        raise ConfigError(
            f"{what} holds {_count(extra, 'entry', 'entries')} careval did not write "
            f"({_listing(extra)}); "
            "--overwrite would delete them, so nothing was touched: move them out first"
        )


def _all_entries(top: Path) -> list[str]:
    """Every file and link under ``top`` (at any level, links not followed), as relative paths;
    a folder counts only through what it holds (an empty one as itself)."""
    found = []
    for root, dirs, files in os.walk(top):
        here = Path(root)
        links = [d for d in dirs if (here / d).is_symlink()]
        dirs[:] = [d for d in dirs if d not in links]
        names = [*files, *links] + ([] if files or dirs or links or here == top else [""])
        found += [(here / n).relative_to(top).as_posix() for n in names]
    return sorted(found)


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """Create ``parent/<prefix><8 hex digits>`` with the usual permissions (not mkdtemp's 0700)."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(path: Path) -> list[Path]:
    """Remove what a killed write of the folder ``path`` left beside it; the paths removed.

    Only directories named as careval names its temporary and replaced folders
    (``.careval-tmp.<name>.<8 hex>``, ``.careval-old.<name>.<8 hex>``) and carrying its marker.
    """
    path = Path(path)
    pattern = re.compile(rf"\.careval-(tmp|old)\.{re.escape(path.name)}\.[0-9a-f]{{8}}")
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    ours = [
        e
        for e in path.parent.iterdir()
        if pattern.fullmatch(e.name)
        and e.is_dir()
        and not e.is_symlink()
        and read_marker(e) is not None
    ]
    olds = [e for e in ours if e.name.startswith(_OLD)]
    if not os.path.lexists(path) and len(olds) == 1:
        # Killed between moving the old folder aside and the new one in: the old one is the
        # complete folder there was, so it goes back rather than away.
        os.replace(olds[0], path)
        ours.remove(olds[0])
    for entry in ours:
        _rmtree(entry)
        removed.append(entry)
    return removed


@contextmanager
def new_folder(path: Path, kind: Kind, *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``path`` that becomes ``path`` when the block ends without error.

    The place is checked first (:func:`check_replaceable`) and again just before the swap.
    The old folder (careval's, with ``overwrite``) is renamed aside, the new one renamed in, the
    old one removed: a kill leaves the old folder, the new one or none. On an error nothing
    changes at ``path`` and the temporary folder is removed.
    """
    path = Path(path)
    check_replaceable(path, kind, overwrite)
    if not path.parent.is_dir():
        raise ConfigError(f"--out {path}: the directory {path.parent} does not exist")
    clean_leftovers(path)
    tmp = _fresh_dir(path.parent, f"{_TMP}{path.name}.")
    old: Path | None = None
    swapped = False
    try:
        write_marker(tmp, kind, [])  # careval's from the start: a leftover can be recognised
        yield tmp
        write_marker(tmp, kind, [n for n in _all_entries(tmp) if n != MARKER])
        kill_point("folder-staged")
        check_replaceable(path, kind, overwrite)
        if path.is_dir():
            if os.listdir(path):
                old = path.parent / f"{_OLD}{path.name}.{secrets.token_hex(4)}"
                os.replace(path, old)
                kill_point("folder-between")
            else:
                path.rmdir()
        os.replace(tmp, path)
        swapped = True
        kill_point("folder-swapped")
    finally:
        if tmp.exists():
            _rmtree(tmp)
        if old is not None:
            if swapped:
                _rmtree(old)
            elif not os.path.lexists(path):
                os.replace(old, path)  # the new one never came in: the old one goes back


# Run folders -------------------------------------------------------------------------------


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_run_folder(out: Path, outputs: Sequence[str], data: Path | None = None) -> None:
    """Refuse a run folder ``out`` before any work when writing there could lose anything.

    Refused: ``out`` a file or a link, ``out`` the dataset or inside it, the dataset inside one
    of the run's own entries, another kind of careval folder, and (in a folder without
    careval's marker) an entry named as one of the outputs: careval did not write it.
    """
    out = Path(out)
    if out.is_symlink() and not out.is_dir():
        raise ConfigError(f"--out {out} is a link to no directory; give a directory")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out must be a directory")
    if data is not None:
        d, o = Path(data).resolve(), out.resolve()
        if _inside(o, d):
            raise ConfigError(
                f"--out {out} is the dataset directory {data} or inside it: a run must not "
                "write into its dataset; choose an --out outside it"
            )
        own = [o / n for n in (*outputs, RUNS, MARKER)]
        if any(_inside(d, p) for p in own):
            raise ConfigError(
                f"--data {data} lies inside the run's own outputs in {out}, which a run "
                "replaces; move the dataset or choose another --out"
            )
    if not out.is_dir():
        return
    marker = read_marker(out)
    if marker is None:
        clash = [n for n in (*outputs, RUNS) if os.path.lexists(out / n)]
        if clash:
            raise ConfigError(
                f"--out {out} holds {_listing(clash)}, which careval did not write (the folder "
                f"has no {MARKER}); a run would replace them, so nothing was touched: move "
                f"them or choose another --out ({_LEGACY})"
            )
        return
    if marker["kind"] != "run":
        raise ConfigError(
            f"--out {out} is a careval {_NAMES[marker['kind']]} folder, not a run folder; "
            "nothing was touched; choose another --out"
        )
    if (out / RUNS).is_symlink() or not (out / RUNS).is_dir() and os.path.lexists(out / RUNS):
        raise ConfigError(
            f"--out {out}: {RUNS} is not the folder careval made there (a link or a file); a "
            "run would write through it, so nothing was touched: move it and run again"
        )
    links = marker.get("layout") != "files"
    for name in outputs:
        entry = out / name
        if not os.path.lexists(entry):
            continue
        ours = (
            entry.is_symlink() and Path(os.readlink(entry)) == Path(_link_target(name))
            if links
            else not entry.is_symlink()
        )
        if not ours:
            raise ConfigError(
                f"--out {out}: {name} is not the {'link' if links else 'file'} careval made "
                "there; a run would replace it, so nothing was touched: move it and run again"
            )


def _link_target(name: str) -> str:
    return f"{RUNS}/{CURRENT}/{name}"


def _links_work(runs: Path) -> bool:
    """Whether links to directories can be made in ``runs`` and one replaced by another in one
    step, as the switch of ``current`` does (not everywhere on Windows)."""
    first, second = (runs / f"{CURRENT}.{secrets.token_hex(4)}" for _ in range(2))
    try:
        os.symlink("probe-a", first, target_is_directory=True)
        os.symlink("probe-b", second, target_is_directory=True)
        os.replace(second, first)
        return os.readlink(first) == "probe-b"
    except (OSError, NotImplementedError):
        return False
    finally:
        for probe in (first, second):
            if os.path.lexists(probe):
                os.unlink(probe)


def current_run(out: Path) -> Path | None:
    """The directory of the run that is current in the run folder ``out`` (None before one)."""
    pointer = Path(out) / RUNS / CURRENT
    if pointer.is_symlink():
        name = os.readlink(pointer)
    elif pointer.is_file():
        name = pointer.read_text("utf-8").strip()
    else:
        return None
    run = Path(out) / RUNS / name
    return run if _RUN_NAME.fullmatch(name) and run.is_dir() else None


def _recorded(runs: Path, only: Path | None = None) -> set[str]:
    """Every file the runs in ``runs`` record as careval's (a killed run's too), or only the
    files of run ``only`` when given."""
    written: set[str] = set()
    for entry in runs.iterdir() if only is None else [only]:
        if _RUN_NAME.fullmatch(entry.name) and (entry / RECORD).is_file():
            try:
                written.update(json.loads((entry / RECORD).read_text("utf-8"))["files"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return written


def _carry_user_files(out: Path, run: Path, written: set[str], folder: str) -> None:
    """Copy the user's own files in ``out/folder`` (not in ``written``) into ``run``."""
    here = out / folder
    if not here.is_dir():
        return
    theirs = sorted(n for n in os.listdir(here) if f"{folder}/{n}" not in written)
    clash = [n for n in theirs if os.path.lexists(run / folder / n)]
    if clash:
        raise ConfigError(
            f"{here} holds {_listing(clash)}, which careval did not write, under the name of a "
            "file this run writes; nothing was touched: rename or move them and run again"
        )
    (run / folder).mkdir(exist_ok=True)
    for n in theirs:
        src = here / n
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, run / folder / n, symlinks=True)
        else:
            shutil.copy2(src, run / folder / n, follow_symlinks=False)


def clean_runs(out: Path) -> None:
    """Remove the runs in ``out`` that are not current, and half-made ``current`` links."""
    runs = Path(out) / RUNS
    keep = current_run(out)
    if not runs.is_dir():
        return
    for entry in runs.iterdir():
        if _RUN_NAME.fullmatch(entry.name) and entry != keep and not entry.is_symlink():
            _rmtree(entry)
        elif _LINK_TMP.fullmatch(entry.name) and (entry.is_symlink() or entry.is_file()):
            entry.unlink()


def write_run(
    out: Path, outputs: Sequence[str], fill: Callable[[Path], None], carry: str = "figures"
) -> Path:
    """Write one run's ``outputs`` into the run folder ``out`` and make them current together.

    ``fill(directory)`` writes every output into the run's own directory. The user's files in
    ``out`` stay; so do the ones in ``out/<carry>`` (copied into the new run's folder). The
    directory of the new run is returned.
    """
    out = Path(out)
    check_run_folder(out, outputs)
    out.mkdir(parents=True, exist_ok=True)
    _clean_small(out)
    entries = [*outputs, RUNS]
    marker = read_marker(out)
    if marker is None:  # claim the outputs' names first: nothing of careval's is there yet
        write_marker(out, "run", entries)
        marker = {}
    runs = out / RUNS
    runs.mkdir(exist_ok=True)
    layout = marker.get("layout")
    if layout not in ("links", "files"):
        layout = "links" if _links_work(runs) else "files"
        write_marker(out, "run", entries, layout=layout)
    # careval's own files: those of the current run and of any killed later one (without links
    # a kill while moving the outputs in can leave some of a later run's in ``out``).
    # With links, only the current run's files are in ``out/figures``: a killed run's record
    # must not make a user's file of the same name look like careval's.
    current = current_run(out)
    if layout == "files" and current is not None:
        _put_back_replaced(out, outputs, current)
    known = _recorded(runs, current) if layout == "links" and current else _recorded(runs)
    clean_runs(out)
    old = current_run(out)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    run = _fresh_dir(runs, f"run-{stamp}-")
    try:
        fill(run)
        kill_point("run-filled")
        written = _all_entries(run)  # careval's: the user's files carried over next are not
        _carry_user_files(out, run, known, carry)
        _write_small(run / RECORD, json.dumps({"files": written}) + "\n")
        kill_point("run-staged")
        if layout == "links":
            _switch_links(out, outputs, run)
        else:
            _move_in(out, outputs, run, old)
    except BaseException:
        if current_run(out) != run:
            _rmtree(run)
        raise
    kill_point("run-switched")
    clean_runs(out)
    return run


def _switch_links(out: Path, outputs: Sequence[str], run: Path) -> None:
    """Make ``run`` current by replacing one link; the outputs are links through it."""
    for name in outputs:  # made once, before any run is current: all appear at the switch
        if not os.path.lexists(out / name):
            os.symlink(_link_target(name), out / name, target_is_directory=(run / name).is_dir())
    kill_point("run-links")
    link = out / RUNS / f"{CURRENT}.{secrets.token_hex(4)}"
    os.symlink(run.name, link, target_is_directory=True)
    os.replace(link, out / RUNS / CURRENT)


def _put_back_replaced(out: Path, outputs: Sequence[str], current: Path) -> None:
    """Without links, a run killed between moving an old output folder aside (into the current
    run's folder) and its new one in leaves it there, the user's files in it included: put it
    back where it was, before anything else."""
    for name in outputs:
        if os.path.lexists(out / name):
            continue
        aside = sorted(current.glob(f"{name}.replaced.*"))
        if len(aside) == 1 and aside[0].is_dir() and not aside[0].is_symlink():
            os.replace(aside[0], out / name)


def _move_in(out: Path, outputs: Sequence[str], run: Path, old: Path | None) -> None:
    """Without links: move each output into ``out`` (the old ones into the old run's folder)."""
    trash = old if old is not None else _fresh_dir(out / RUNS, "run-00000000T000000-")
    for name in outputs:
        if (out / name).is_dir() and not (out / name).is_symlink():
            os.replace(out / name, trash / f"{name}.replaced.{secrets.token_hex(4)}")
        os.replace(run / name, out / name)
        kill_point("run-moving")
    kill_point("run-moved")
    pointer = out / RUNS / f"{CURRENT}.{secrets.token_hex(4)}"
    pointer.write_text(run.name + "\n", encoding="utf-8")
    os.replace(pointer, out / RUNS / CURRENT)
    if old is None:
        _rmtree(trash)
