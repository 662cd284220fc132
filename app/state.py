"""Shared state of the dashboard: the checkpoint root, the selected checkpoint and baseline, and
the cached loaders (models and contexts once per process, tables once per checkpoint)."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

from magnet import explain
from magnet.checkpoint import Checkpoint, find_checkpoints, is_checkpoint_dir, load_checkpoint
from magnet.errors import MagnetError
from magnet.explain import ExplainContext, ItemExplanation

from .paths import relative_name, resolve_under, root_from_args, stamp

CKPT_KEY = "ckpt"
BASELINE_KEY = "baseline"
FOLDER_KEY = "folder"
NO_BASELINE = "(none)"


@dataclass(frozen=True)
class Selection:
    root: Path
    name: str  # relative to root, e.g. "demo/full"
    path: Path
    baseline_name: str | None
    baseline_path: Path | None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ----------------------------------------------------------------------------- loaders
@st.cache_resource(show_spinner="Reading checkpoint…", max_entries=32)
def _light(path: str, key: str) -> Checkpoint:
    return load_checkpoint(path, load_model=False)


@st.cache_resource(show_spinner="Loading model and dataset…", max_entries=8)
def _context(path: str, key: str) -> ExplainContext:
    with torch.no_grad():
        return ExplainContext.load(path)


@st.cache_data(show_spinner="Routing the top-20 of every user…", max_entries=16)
def _routing_table(path: str, key: str) -> pd.DataFrame:
    with torch.no_grad():
        return explain.routing_table(_context(path, key), top_n=20, max_users=2000)


@st.cache_data(show_spinner="Ranking held-out items…", max_entries=16)
def _held_out_ranks(path: str, key: str) -> pd.DataFrame:
    return explain.held_out_ranks(_context(path, key))


@st.cache_data(show_spinner="Explaining recommendations…", max_entries=256)
def _case_study(path: str, key: str, user: int, n: int, base_path: str | None, base_key: str | None
                ) -> tuple[list[ItemExplanation], pd.DataFrame]:
    ctx = _context(path, key)
    base = _context(base_path, base_key) if base_path else None
    with torch.no_grad():
        explanations = explain.case_study(ctx, user, n, baseline=base)
    return explanations, explain.case_study_table(ctx, explanations)


@st.cache_data(show_spinner="Finding typical cases…", max_entries=16)
def _typical_cases(path: str, key: str, base_path: str, base_key: str) -> pd.DataFrame:
    ctx = _context(path, key)
    with torch.no_grad():
        return explain.typical_cases(ctx, _context(base_path, base_key))


@st.cache_data(show_spinner="Re-ranking without one modality…", max_entries=64)
def _without(path: str, key: str, user: int, modality: str, n: int) -> pd.DataFrame:
    with torch.no_grad():
        return explain.without_modality(_context(path, key), user, modality, n)


@st.cache_data(show_spinner="Measuring how faithful the explanations are (knocking each modality out)…",
               max_entries=8)
def _fidelity(path: str, key: str, n_users: int) -> explain.Fidelity:
    with torch.no_grad():
        return explain.measure(_context(path, key), n_users=n_users)


@st.cache_data(show_spinner=False, max_entries=16)
def _user_reliance(path: str, key: str) -> pd.DataFrame:
    return explain.user_reliance(_routing_table(path, key))


def light(path: Path) -> Checkpoint:
    return _light(str(path), stamp(path))


def context(path: Path) -> ExplainContext:
    return _context(str(path), stamp(path))


def routing_table(path: Path) -> pd.DataFrame:
    return _routing_table(str(path), stamp(path))


def held_out_ranks(path: Path) -> pd.DataFrame:
    return _held_out_ranks(str(path), stamp(path))


def case_study(path: Path, user: int, n: int, baseline: Path | None
               ) -> tuple[list[ItemExplanation], pd.DataFrame]:
    return _case_study(str(path), stamp(path), int(user), int(n),
                       None if baseline is None else str(baseline),
                       None if baseline is None else stamp(baseline))


def without(path: Path, user: int, modality: str, n: int) -> pd.DataFrame:
    return _without(str(path), stamp(path), int(user), modality, int(n))


def fidelity(path: Path, n_users: int = 400) -> explain.Fidelity:
    return _fidelity(str(path), stamp(path), int(n_users))


def user_reliance(path: Path) -> pd.DataFrame:
    return _user_reliance(str(path), stamp(path))


def typical_cases(path: Path, baseline: Path) -> pd.DataFrame:
    return _typical_cases(str(path), stamp(path), str(baseline), stamp(baseline))


LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, IndexError)


def attempt(fn, *args, what: str = "checkpoint", show=None):
    """Call a loader; on a MagnetError (or a broken file) show one line (``show``, st.error by
    default) and return None — never a traceback."""
    show = show or st.error
    try:
        return fn(*args)
    except MagnetError as exc:
        show(f"Cannot open this {what}: {one_line(exc)}")
    except LOAD_ERRORS as exc:
        show(f"Cannot open this {what}: {type(exc).__name__}: {one_line(exc)}")
    return None


def guarded(fn, *args, what: str = "checkpoint"):
    """:func:`attempt`, and stop the page when it failed (its message stays on the page)."""
    result = attempt(fn, *args, what=what)
    if result is None:
        st.stop()
    return result


# ----------------------------------------------------------------------------- selection
def checkpoint_root() -> Path:
    if "_root" not in st.session_state:
        st.session_state["_root"] = str(root_from_args(sys.argv[1:]))
    return Path(st.session_state["_root"])


def listed(root: Path, folder: Path) -> dict[str, Path]:
    """Checkpoint directories under ``folder`` that really lie under ``root``, by name."""
    out: dict[str, Path] = {}
    for path in find_checkpoints(folder):
        resolved = resolve_under(root, path)
        if resolved is not None:
            out[relative_name(root, resolved)] = resolved
    return out


def _default_name(names: list[str]) -> str:
    for name in names:
        if Path(name).name == "full":
            return name
    return names[0]


def _default_baseline(name: str, names: list[str]) -> str:
    parent = Path(name).parent
    for other in names:
        if other != name and Path(other).parent == parent and Path(other).name == "behaviour_only":
            return other
    for other in names:
        if other != name and Path(other).name == "behaviour_only":
            return other
    return NO_BASELINE


def sidebar() -> Selection | None:
    """Folder box, checkpoint and baseline pickers in the sidebar; keeps ``?ckpt=`` in sync."""
    root = checkpoint_root()
    sb = st.sidebar
    sb.markdown("### Checkpoints")
    sb.caption(f"Root: `{root}`")
    folder_text = sb.text_input("Folder (under the root)", key=FOLDER_KEY,
                                help="A sub-folder of the checkpoint root; paths outside it are refused.")
    folder = resolve_under(root, folder_text)
    if folder is None:
        sb.error(f"“{folder_text}” is outside the checkpoint root; showing the root instead.")
        folder = root
    elif not os.path.isdir(folder):
        sb.error(f"“{folder_text}” is not a folder under the root; showing the root instead.")
        folder = root
    found = listed(root, folder) if os.path.isdir(root) else {}

    wanted = st.query_params.get("ckpt")
    if wanted is not None and wanted != st.session_state.get("_ckpt_qp"):
        st.session_state["_ckpt_qp"] = wanted
        target = resolve_under(root, wanted)
        if target is None:
            st.session_state["_ckpt_msg"] = f"Checkpoint “{wanted}” is outside the checkpoint root and was not opened."
        elif not is_checkpoint_dir(target):
            st.session_state["_ckpt_msg"] = f"No checkpoint “{wanted}” under the checkpoint root."
        else:
            name = relative_name(root, target)
            found.setdefault(name, target)
            st.session_state[CKPT_KEY] = name
            st.session_state.pop("_ckpt_msg", None)
    elif st.session_state.get(CKPT_KEY) and st.session_state[CKPT_KEY] not in found:
        target = resolve_under(root, st.session_state[CKPT_KEY])
        if target is not None and is_checkpoint_dir(target):
            found.setdefault(st.session_state[CKPT_KEY], target)
    if st.session_state.get("_ckpt_msg"):
        st.error(st.session_state["_ckpt_msg"])

    if not found:
        sb.warning("No checkpoints here.")
        return None
    names = list(found)
    if st.session_state.get(CKPT_KEY) not in found:
        st.session_state[CKPT_KEY] = _default_name(names)
    name = sb.selectbox("Checkpoint", names, key=CKPT_KEY)

    base_options = [NO_BASELINE] + [n for n in names if n != name]
    auto = _default_baseline(name, names)
    if st.session_state.get("_baseline_for") != name or st.session_state.get(BASELINE_KEY) not in base_options:
        st.session_state[BASELINE_KEY] = auto
        st.session_state["_baseline_for"] = name
    baseline = sb.selectbox("Baseline (for rank comparisons)", base_options, key=BASELINE_KEY,
                            help="Defaults to the behaviour_only checkpoint beside the chosen one.")
    if st.query_params.get("ckpt") != name:
        st.query_params["ckpt"] = name
        st.session_state["_ckpt_qp"] = name
    return Selection(root, name, found[name], None if baseline == NO_BASELINE else baseline,
                     None if baseline == NO_BASELINE else found.get(baseline))


def selection() -> Selection | None:
    return st.session_state.get("_selection")


def require_selection() -> Selection:
    sel = selection()
    if sel is None:
        root = checkpoint_root()
        st.info(f"No MAGNET checkpoints found under `{root}`. Train some with "
                "`python -m magnet ablate --data synthetic:demo --out checkpoints/demo`, or start the "
                "app with `streamlit run app/main.py -- --checkpoints DIR`.")
        st.stop()
    return sel


def all_checkpoints() -> dict[str, Path]:
    root = checkpoint_root()
    return listed(root, root) if os.path.isdir(root) else {}
