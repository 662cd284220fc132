"""The dashboard under Streamlit's AppTest: every page, with values checked against the
checkpoint files and magnet.explain (not just "no exception")."""
from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from magnet.explain import ExplainContext, measure, routing_table, user_reliance, without_modality

REPO = Path(__file__).resolve().parents[2]
MAIN = str(REPO / "app" / "main.py")
CKPT = "tiny/full"


def open_app(monkeypatch, root: Path, query: dict[str, str] | None = None, page: str | None = None) -> AppTest:
    monkeypatch.setenv("MAGNET_CHECKPOINTS", str(root))
    at = AppTest.from_file(MAIN, default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page:
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


def figures(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def titles(at: AppTest) -> list[str]:
    return [f["layout"].get("title", {}).get("text", "") for f in figures(at)]


def decode(values) -> np.ndarray:
    """Plotly 7 encodes arrays as {'dtype', 'bdata'}; older versions as lists."""
    if isinstance(values, dict) and "bdata" in values:
        arr = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        shape = values.get("shape")
        if isinstance(shape, str):
            shape = tuple(int(v) for v in shape.split(","))
        return arr.reshape(shape) if shape else arr
    return np.asarray(values, dtype=float)


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


# ----------------------------------------------------------------------------- pure helpers




# ----------------------------------------------------------------------------- pages
def test_overview_shows_metrics_and_switch(tiny_checkpoints, monkeypatch):
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT})
    path = tiny_checkpoints / CKPT
    metrics = json.loads((path / "metrics.json").read_text())
    switch = json.loads((path / "switch.json").read_text())
    info = json.loads((path / "config.json").read_text())
    assert at.selectbox(key="ckpt").value == CKPT
    assert at.selectbox(key="baseline").value == "tiny/behaviour_only"  # same folder, auto-picked
    for key in ("recall@10", "ndcg@10", "recall@20", "ndcg@20"):
        assert metric(at, f"Test {key}") == f"{metrics['test'][key]:.4f}"
    assert metric(at, "Switch step") == str(switch["step"])
    assert metric(at, "Variant") == "full"
    assert metric(at, "Dataset") == info["dataset"]["name"]
    assert metric(at, "Training time (s)") == f"{info['train_seconds']:.1f}"
    fig = next(f for f in figures(at) if "popularity bucket" in f["layout"]["title"]["text"])
    bars = {t["name"]: decode(t["y"]) for t in fig["data"]}
    for k, bucket in enumerate(("head", "mid", "tail")):
        assert bars["MAGNET recall@20"][k] == pytest.approx(metrics["test"]["buckets"][bucket]["recall@20"])
    assert "Most-used experts" in markdown_text(at)
    assert at.query_params["ckpt"] == [CKPT] or at.query_params["ckpt"] == CKPT


def test_routing_page_marks_the_switch(tiny_checkpoints, monkeypatch):
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT}, page="views/routing.py")
    switch = json.loads((tiny_checkpoints / CKPT / "switch.json").read_text())
    cfg = json.loads((tiny_checkpoints / CKPT / "config.json").read_text())["run"]["routing"]
    assert switch["reason"] == "trigger"
    assert metric(at, "Switch step") == str(switch["step"])
    assert metric(at, "H*") == f"{cfg['h_star']:g}"
    assert metric(at, "Window (steps)") == str(cfg["window"])
    fig = next(f for f in figures(at) if f["layout"]["title"]["text"].startswith("Routing entropy"))
    names = [t["name"] for t in fig["data"]]
    assert {"H (routing entropy)", "EMA of H", "temperature τ", "K (experts per pair)"} <= set(names)
    shapes = fig["layout"]["shapes"]
    assert any(s.get("x0") == switch["step"] and s.get("x1") == switch["step"] for s in shapes)  # the switch line
    assert any(s.get("y0") == cfg["h_star"] for s in shapes)  # H* line
    assert any(s.get("x0") == switch["step"] - cfg["window"] for s in shapes)  # the window
    notes = " ".join(a.get("text", "") for a in fig["layout"]["annotations"])
    assert f"switch @ step {switch['step']} (entropy trigger)" in notes
    assert any("Loss terms" in t for t in titles(at))


def test_routing_page_fixed_and_fallback(tiny_checkpoints, monkeypatch, tmp_path):
    # a fallback switch, as a run that never triggers would record it (copy, then edit switch.json)
    shutil.copytree(tiny_checkpoints / "tiny", tmp_path / "tiny")
    fallback = {"step": 15, "epoch": 2, "reason": "fallback", "h_ema": 0.42}
    (tmp_path / "tiny" / "no_routing_reg" / "switch.json").write_text(json.dumps(fallback))
    for name, reason in (("tiny/fixed_switch", "fixed step"), ("tiny/no_routing_reg", "fallback")):
        at = open_app(monkeypatch, tmp_path, {"ckpt": name}, page="views/routing.py")
        switch = json.loads((tmp_path / name / "switch.json").read_text())
        assert metric(at, "Switch step") == str(switch["step"])
        assert metric(at, "Switch reason").startswith(reason)
    # a model without a router never switches, and the page says so
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": "tiny/behaviour_only"}, page="views/routing.py")
    assert json.loads((tiny_checkpoints / "tiny/behaviour_only/switch.json").read_text())["step"] is None
    assert metric(at, "Switch step") == "none"


def test_experts_page_utilization(tiny_checkpoints, monkeypatch):
    from magnet.explain import family_sums, utilization

    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT}, page="views/experts.py")
    with torch.no_grad():
        table = routing_table(ExplainContext.load(tiny_checkpoints / CKPT))
    util = utilization(table)
    roles, anchors = family_sums(util)
    for name, value in list(roles.iloc[0].items()) + list(anchors.iloc[0].items()):
        assert metric(at, f"{name} share") == f"{value:.3f}"
    heat = next(f for f in figures(at) if f["layout"]["title"]["text"] == "Utilization: anchor × role")
    z = decode(heat["data"][0]["z"]).reshape(3, 3)
    expected = np.array([[util.iloc[0][f"{a}-{r}"] for r in ("Dom", "Bal", "Comp")] for a in "BAS"])
    np.testing.assert_allclose(z, expected, rtol=1e-6)
    assert len(at.error) + len(at.success) == 1  # the collapse verdict is always shown
    assert any("over training" in t for t in titles(at))
    assert any("user activity" in t for t in titles(at)) and any("item popularity" in t for t in titles(at))
    at.radio(key="experts_family").set_value("anchor").run()
    assert not at.exception
    area = next(f for f in figures(at) if "over training" in f["layout"]["title"]["text"])
    assert [t["name"] for t in area["data"]] == ["B", "A", "S"]


def test_experts_page_behaviour_only(tiny_checkpoints, monkeypatch):
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": "tiny/behaviour_only"}, page="views/experts.py")
    assert any("no experts" in i.value for i in at.info)


def test_case_study_deep_link_matches_explain(tiny_checkpoints, monkeypatch):
    from magnet.explain import case_study

    user = 5
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT, "user": str(user)}, page="views/case_studies.py")
    assert at.selectbox(key="cs_user").value == user
    at.selectbox(key="cs_item").set_value(2).run()
    assert not at.exception
    ctx = ExplainContext.load(tiny_checkpoints / CKPT)
    base = ExplainContext.load(tiny_checkpoints / "tiny/behaviour_only")
    with torch.no_grad():
        expected = case_study(ctx, user, 10, baseline=base)
    ex = expected[1]
    assert metric(at, "Rank (MAGNET)") == "2"
    assert metric(at, "Rank (baseline)") == str(ex.baseline_rank)
    assert metric(at, "Score") == f"{ex.score:.4f}"
    frame = [d for d in at.dataframe if list(d.value.columns) == ["expert", "weight"]][0].value
    assert list(frame["expert"]) == [n for n, _ in ex.active_experts()]
    np.testing.assert_allclose(frame["weight"].to_numpy(), [round(w, 3) for _, w in ex.active_experts()], atol=1e-12)
    text = markdown_text(at)
    assert ", ".join(f"{n} {w:.2f}" for n, w in ex.active_experts()) in text
    assert ex.cue in text and ex.style in text
    assert any(ex.sentence(ctx.data.item_title(ex.item)) == i.value for i in at.info)
    # recommendations as image cards with titles, history too
    captions = [c for img in at.image for c in img.captions]
    for e in expected:
        assert any(ctx.data.item_title(e.item) in c for c in captions)
    contribution = next(f for f in figures(at) if f["layout"]["title"]["text"].startswith("What each modality"))
    np.testing.assert_allclose(decode(contribution["data"][0]["y"]), ex.contribution_share, rtol=1e-5)
    assert contribution["data"][0]["text"] == [f"{v:.0%} · #2→#{int(r)}" for v, r in zip(ex.contribution_share,
                                                                                         ex.knockout_ranks)]
    assert ex.knockout_sentence() in text or any(ex.knockout_sentence() in c.value for c in at.caption)
    # the user's reliance relative to other users, beside the planted one (synthetic data)
    with torch.no_grad():
        reliance = user_reliance(routing_table(ctx, top_n=20, max_users=2000)).loc[user]
    bars = next(f for f in figures(at) if f["layout"]["title"]["text"] == f"User {user}: modality reliance")
    np.testing.assert_allclose(decode(bars["data"][0]["y"]), [reliance[f"relative_{m}"] for m in "BAS"], rtol=1e-5)
    np.testing.assert_allclose(decode(bars["data"][1]["y"]), ctx.data.planted["reliance"][user], rtol=1e-5)
    # CSV download of the case study
    assert at.get("download_button")
    # typical cases: held-out items one model puts in the top-20 and the other does not
    typical = [d for d in at.dataframe if "outcome" in d.value.columns][0].value
    assert set(typical["outcome"]) <= {"only this model", "only the baseline"}
    assert ((typical["outcome"] == "only this model") == (typical["rank"] <= 20)).all()
    # what if appearance were switched off for every item: the re-ranked list side by side
    at.radio(key="cs_whatif").set_value("A").run()
    assert not at.exception
    after = [d for d in at.dataframe if "was #" in d.value.columns][0].value
    expected_after = without_modality(ctx, user, "A", 10)
    assert list(after["title"]) == list(expected_after["title"])
    assert list(after["was #"]) == list(expected_after["rank_before"])


def test_faithfulness_page_shows_the_measured_figures(tiny_checkpoints, monkeypatch):
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT}, page="views/faithfulness.py")
    assert not at.exception
    ctx = ExplainContext.load(tiny_checkpoints / CKPT)
    with torch.no_grad():
        report = measure(ctx, n_users=400).report
    assert metric(at, "Names the knockout that hurts most") == f"{report['knockout']['top_agreement']:.2f}"
    assert metric(at, "Recovers the planted top modality") == f"{report['planted']['top_modality_accuracy']:.2f}"
    users_ko = report["knockout_users"]["top_agreement"]
    assert metric(at, "Agrees with the user's own knockouts") == f"{users_ko:.2f}"
    assert {"Faithfulness against its baselines", "Planted vs recovered modality reliance, one point per user"} <= \
        set(titles(at))
    warnings = " ".join(w.value for w in at.warning)
    assert ("carry largely the same information" in warnings) == report["redundancy"]["warn"]
    assert ("does not track what knocking modalities out" in warnings) == (users_ko < 1 / 3 + 0.10)
    bo = open_app(monkeypatch, tiny_checkpoints, {"ckpt": "tiny/behaviour_only"}, page="views/faithfulness.py")
    assert not bo.exception and float(metric(bo, "Names the knockout that hurts most")) >= 0.95  # B, nearly always
    assert not any("does not track" in w.value for w in bo.warning)  # no router: reliance is behaviour by design


def test_case_study_prev_next_and_bad_user(tiny_checkpoints, monkeypatch):
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT, "user": "999999"}, page="views/case_studies.py")
    assert any("999999" in w.value and "does not exist" in w.value for w in at.warning)
    first = at.selectbox(key="cs_user").value
    assert len(at.image) >= 5  # the rest of the page still renders: history and recommendation cards
    at.button(key="cs_next").click().run()
    assert not at.exception
    assert at.selectbox(key="cs_user").value == first + 1
    assert at.query_params["user"] in (str(first + 1), [str(first + 1)])
    assert not any("does not exist" in w.value for w in at.warning)
    at.button(key="cs_prev").click().run()
    assert at.selectbox(key="cs_user").value == first
    at2 = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT, "user": "abc"}, page="views/case_studies.py")
    assert any("abc" in w.value for w in at2.warning)


def test_compare_page(tiny_checkpoints, monkeypatch):
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT}, page="views/compare.py")
    chosen = ["tiny/full", "tiny/fixed_switch", "tiny/behaviour_only"]
    at.multiselect(key="cmp_set").set_value(chosen).run()
    assert not at.exception
    frame = [d for d in at.dataframe if "checkpoint" in d.value.columns][0].value
    assert list(frame["checkpoint"]) == chosen
    for _, row in frame.iterrows():
        m = json.loads((tiny_checkpoints / row["checkpoint"] / "metrics.json").read_text())
        s = json.loads((tiny_checkpoints / row["checkpoint"] / "switch.json").read_text())
        assert row["recall@20"] == round(m["test"]["recall@20"], 4)  # shown to 4 decimals
        assert row["ndcg@20"] == round(m["test"]["ndcg@20"], 4)  # shown to 4 decimals
        assert row["tail_recall@20"] == round(m["test"]["buckets"]["tail"]["recall@20"], 4)  # shown to 4 decimals
        if s["step"] is None:
            assert pd.isna(row["switch_step"])
        else:
            assert row["switch_step"] == s["step"]
    overlay = next(f for f in figures(at) if "each switch marked" in f["layout"]["title"]["text"])
    assert len(overlay["data"]) == 3
    lines = sorted(s["x0"] for s in overlay["layout"]["shapes"])
    steps = (json.loads((tiny_checkpoints / c / "switch.json").read_text())["step"] for c in chosen)
    assert lines == sorted(step for step in steps if step is not None)  # one line per switch that happened
    roles = next(f for f in figures(at) if "role family per checkpoint" in f["layout"]["title"]["text"])
    assert list(roles["data"][0]["x"]) == ["tiny/full", "tiny/fixed_switch"]  # behaviour_only has no experts
    assert any(t.startswith("Per-user change") for t in titles(at))
    assert at.get("download_button")


def test_embedding_page(tiny_checkpoints, monkeypatch):
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT}, page="views/embedding.py")
    proj = np.load(tiny_checkpoints / CKPT / "projection.npz")
    fig = figures(at)[0]
    xs = np.concatenate([decode(t["x"]) for t in fig["data"]])
    assert len(xs) == len(proj["item_xy"])
    np.testing.assert_allclose(np.sort(xs), np.sort(proj["item_xy"][:, 0]), rtol=1e-5, atol=1e-6)
    assert "title" in fig["data"][0]["hovertemplate"]
    for colour in ("anchor", "category", "popularity bucket", "log popularity"):
        at.selectbox(key="emb_color_items").set_value(colour).run()
        assert not at.exception
        assert colour in figures(at)[0]["layout"]["title"]["text"]
    assert len(at.image) == 5  # pictures of the most popular items
    at.radio(key="emb_what").set_value("users").run()
    assert not at.exception
    assert sum(len(decode(t["x"])) for t in figures(at)[0]["data"]) == len(proj["user_xy"])


# ----------------------------------------------------------------------------- safety
def test_paths_outside_the_root_are_refused(tiny_checkpoints, monkeypatch):
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": "../../etc"})
    assert any("outside the checkpoint root" in e.value for e in at.error)
    assert metric(at, "Variant") == "full"  # the rest of the app works on the default checkpoint
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": "tiny/nothing-here"})
    assert any("No checkpoint" in e.value for e in at.error)
    at.text_input(key="folder").input("../..").run()
    assert not at.exception
    assert any("outside the checkpoint root" in e.value for e in at.sidebar.error)
    at.text_input(key="folder").input("tiny").run()
    assert not at.sidebar.error
    assert "tiny/fixed_switch" in at.selectbox(key="ckpt").options


def test_corrupt_checkpoint_shows_one_line(tiny_checkpoints, monkeypatch, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(tiny_checkpoints / "tiny", root / "tiny")
    (root / "tiny" / "no_routing_reg" / "metrics.json").write_text("{not json")
    (root / "tiny" / "fixed_switch" / "model.safetensors").write_bytes(b"\x00" * 10)
    cfg = json.loads((root / "tiny" / "no_view_contrastive" / "config.json").read_text())
    cfg["format_version"] = 99
    (root / "tiny" / "no_view_contrastive" / "config.json").write_text(json.dumps(cfg))
    cases = (("tiny/no_routing_reg", "views/overview.py", "not valid JSON"),
             ("tiny/fixed_switch", "views/case_studies.py", "safetensors"),
             ("tiny/no_view_contrastive", "views/routing.py", "format_version 99"))
    for name, page, words in cases:
        at = open_app(monkeypatch, root, {"ckpt": name}, page=page)
        errors = [e.value for e in at.error]
        assert any(words in e and "\n" not in e for e in errors), errors
        assert not at.exception


def _edit(name: str, fn):
    def mutate(d: Path) -> None:
        data = json.loads((d / name).read_text())
        fn(data)
        (d / name).write_text(json.dumps(data))
    return mutate


def _nan_weights(d: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(d / "model.safetensors"))
    state["encoder.embedding"][0, 0] = float("nan")
    save_file(state, str(d / "model.safetensors"))


SECRET = 0.7777  # a value only the file outside the root holds


def _secret_link(d: Path) -> None:
    """metrics.json becomes a link to a well-formed metrics file outside the checkpoint root."""
    metrics = json.loads((d / "metrics.json").read_text())
    for split in ("valid", "test"):
        metrics[split] = {k: (SECRET if isinstance(v, float) else v) for k, v in metrics[split].items()}
    secret = d.parents[2] / "secret.json"
    secret.write_text(json.dumps(metrics))
    (d / "metrics.json").unlink()
    (d / "metrics.json").symlink_to(secret)


MALFORMED = [
    ("metrics-list", lambda d: (d / "metrics.json").write_text("[1, 2]"), "views/overview.py", "metrics.json"),
    ("metrics-string", _edit("metrics.json", lambda m: m["test"].__setitem__("recall@20", "high")),
     "views/overview.py", "metrics.json"),
    ("switch-list", lambda d: (d / "switch.json").write_text("[]"), "views/routing.py", "switch.json"),
    ("switch-types", _edit("switch.json", lambda w: w.update(step="12", reason=3)), "views/routing.py",
     "switch.json"),
    ("trace-columns", lambda d: (d / "trace.csv").write_text("a,b\n1,2\n"), "views/routing.py", "trace.csv"),
    ("projection-no-items", lambda d: np.savez(d / "projection.npz", user_xy=np.zeros((150, 2))),
     "views/embedding.py", "projection.npz"),
    ("nan-weights", _nan_weights, "views/case_studies.py", "model.safetensors"),
    ("seconds-fast", _edit("config.json", lambda c: c.__setitem__("train_seconds", "fast")), "views/overview.py",
     "config.json"),
    ("secret-link", _secret_link, "views/overview.py", "metrics.json"),
]


@pytest.fixture
def malformed_root(tiny_checkpoints, tmp_path) -> Path:
    """The tiny checkpoints plus one broken copy of tiny/full per MALFORMED case (tiny/<case>)."""
    root = tmp_path / "root"
    shutil.copytree(tiny_checkpoints / "tiny", root / "tiny")
    for name, corrupt, _, _ in MALFORMED:
        shutil.copytree(root / "tiny" / "full", root / "tiny" / name)
        corrupt(root / "tiny" / name)
    return root


def test_malformed_checkpoints_show_one_line_and_the_rest_works(malformed_root, monkeypatch):
    for name, _, page, file in MALFORMED:
        at = open_app(monkeypatch, malformed_root, {"ckpt": f"tiny/{name}"}, page=page)
        errors = [e.value for e in at.error]
        assert any(file in e and "\n" not in e for e in errors), (name, errors)
        assert not any(str(SECRET) in m.value for m in at.metric), "content outside the root was shown"
        at.selectbox(key="ckpt").set_value(CKPT).run()  # another checkpoint on the same page works
        assert not at.exception and not at.error, (name, [e.value for e in at.error])
    at = open_app(monkeypatch, malformed_root, {"ckpt": "tiny/nan-weights"})  # its light pages still open
    assert metric(at, "Variant") == "full"


def test_compare_leaves_out_a_bad_sibling(malformed_root, monkeypatch):
    at = open_app(monkeypatch, malformed_root, {"ckpt": CKPT}, page="views/compare.py")
    at.multiselect(key="cmp_set").set_value([CKPT, "tiny/metrics-list", "tiny/nan-weights",
                                             "tiny/behaviour_only"]).run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("tiny/metrics-list" in w and "metrics.json" in w for w in warnings), warnings
    assert any("tiny/nan-weights" in w and "model.safetensors" in w for w in warnings), warnings
    frame = [d for d in at.dataframe if "checkpoint" in d.value.columns][0].value
    assert list(frame["checkpoint"]) == [CKPT, "tiny/nan-weights", "tiny/behaviour_only"]  # light files fine
    assert any(t.startswith("Per-user change") for t in titles(at))


def test_empty_root_shows_a_message(tmp_path, monkeypatch):
    at = open_app(monkeypatch, tmp_path)
    assert any("No MAGNET checkpoints" in i.value for i in at.info)


def test_pages_render_fast_after_first_load(tiny_checkpoints, monkeypatch):
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT})
    pages = ["views/overview.py", "views/routing.py", "views/experts.py", "views/case_studies.py",
             "views/compare.py", "views/embedding.py"]
    for page in pages:  # first load fills the caches
        at.switch_page(page).run()
    for page in pages:
        start = time.perf_counter()
        at.switch_page(page).run()
        assert not at.exception
        assert time.perf_counter() - start < 2.0, page


def _demo_present() -> bool:
    from magnet.checkpoint import find_checkpoints

    return bool(find_checkpoints(REPO / "checkpoints" / "demo"))


@pytest.mark.skipif(not _demo_present(), reason="no shipped demo checkpoints (checkpoints/demo)")
def test_opens_on_the_shipped_demo(monkeypatch):
    monkeypatch.delenv("MAGNET_CHECKPOINTS", raising=False)
    at = AppTest.from_file(MAIN, default_timeout=120).run()
    assert not at.exception
    assert at.selectbox(key="ckpt").value.startswith("demo/")
    assert not at.error
    metrics = json.loads((REPO / "checkpoints" / at.selectbox(key="ckpt").value / "metrics.json").read_text())
    assert metric(at, "Test recall@20") == f"{metrics['test']['recall@20']:.4f}"


def _long_floats(frame: pd.DataFrame) -> list[str]:
    """Cells of ``frame`` whose float would print with more than 4 decimals."""
    bad = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values):
            for v in values.dropna():
                if abs(float(v) - round(float(v), 4)) > 1e-12:
                    bad.append(f"{column}={v!r}")
    return bad[:3]


def test_every_table_shows_rounded_numbers(tiny_checkpoints, monkeypatch):
    """Issue 17.5: numbers are rounded where shown, in tables as in charts."""
    at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT, "user": "0"})
    seen = 0
    for page in ["views/overview.py", "views/routing.py", "views/experts.py", "views/case_studies.py",
                 "views/faithfulness.py", "views/compare.py", "views/embedding.py"]:
        at.switch_page(page).run()
        assert not at.exception, page
        if page.endswith("case_studies.py"):
            at.radio(key="cs_whatif").set_value("A").run()
        for table in at.dataframe:
            frame = table.value.data if hasattr(table.value, "data") else table.value
            seen += 1
            assert not _long_floats(frame), (page, _long_floats(frame))
    assert seen >= 6


def test_faithfulness_page_flags_a_user_reliance_the_knockouts_do_not_back(tiny_checkpoints, monkeypatch):
    """As measured on ml100k (docs/RESULTS.md): a per-user reliance at chance against the users'
    own knockouts is flagged, and the metric shows it."""
    import streamlit as st

    from magnet.explain import fidelity as fidelity_module

    at_chance = {"top_agreement": 0.31, "spearman": -0.17, "chance": 1 / 3,
                 "per_modality_pearson": {"B": 0.01, "A": -0.04, "S": -0.49}}
    monkeypatch.setattr(fidelity_module, "user_knockout_measures", lambda explanation, table: at_chance)
    st.cache_data.clear()
    try:
        at = open_app(monkeypatch, tiny_checkpoints, {"ckpt": CKPT}, page="views/faithfulness.py")
        assert metric(at, "Agrees with the user's own knockouts") == "0.31"
        assert any("does not track what knocking modalities out" in w.value for w in at.warning)
    finally:
        st.cache_data.clear()
