"""The shipped per-dataset config files parse, validate and differ from the defaults only where
they say so."""
from pathlib import Path

import pytest

from magnet.config import RunConfig, validate_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.json"))
from magnet.errors import ConfigError


def test_there_are_config_files():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_file_is_valid(path):
    config = RunConfig.from_json_file(path)
    validate_config(config)
    assert config.data.startswith("../shared/data/")


def test_ml100k_config_is_the_valid_selected_one():
    """configs/ml100k.json = the design experiments' selection on valid (docs/RESULTS.md)."""
    config = RunConfig.from_json_file(Path(__file__).resolve().parents[2] / "configs" / "ml100k.json")
    defaults = RunConfig()
    assert (config.train.content_weight_decay, config.train.vc_weight, config.train.reg_weight) == (1.0, 0.0, 1e-2)
    assert (config.train.loss, config.train.n_negatives, config.train.softmax_tau) == ("softmax", 16, 1.0)
    assert (config.train.expert_lr_scale, config.train.router_lr_scale) == (0.1, 0.1)
    assert config.train.warmup_epochs == 60 and config.graph.aug_weight == 0.1
    assert config.model.fusion_gamma_init == 0.0 and config.model.learn_fusion_gamma is False
    # the router its three-seed results were measured with (the default is now the cue router)
    assert config.model.router == "bilinear" and config.model.router_rank == 0
    assert config.model.detach_expert_behaviour is True
    config.model.fusion_gamma_init, config.model.learn_fusion_gamma = 0.1, True
    config.model.router, config.model.router_rank = defaults.model.router, defaults.model.router_rank
    config.model.detach_expert_behaviour = False
    assert config.model == defaults.model and config.routing == defaults.routing


def test_baby_config_is_the_valid_selected_lightgcn():
    """configs/baby.json = behaviour_only's selection on valid (docs/RESULTS.md, Baby section)."""
    config = RunConfig.from_json_file(Path(__file__).resolve().parents[2] / "configs" / "baby.json")
    assert config.variant == "behaviour_only"
    assert (config.train.lr, config.train.reg_weight, config.train.epochs) == (1e-3, 1e-2, 400)
    defaults = RunConfig()
    assert config.model == defaults.model and config.graph == defaults.graph


def test_invalid_loss_settings_are_rejected():
    for field, value in (("loss", "hinge"), ("n_negatives", 0), ("softmax_tau", 0.0)):
        config = RunConfig()
        setattr(config.train, field, value)
        with pytest.raises(ConfigError, match=f"train.{field}"):
            validate_config(config)


# --------------------------------------------------------------------------------------------
# every size and number bounded, every error naming the config file (issue 18, classes 2, 3, 6)
# --------------------------------------------------------------------------------------------
from magnet.config import (DataShape, SEED_LIMIT, estimate_bytes, validate_for_data,  # noqa: E402
                           validate_memory)
from magnet.errors import ConfigError as _ConfigError  # noqa: E402
from tests.hostile import assert_one_line, link_to, make_fifo  # noqa: E402

ABSURD = [
    ("graph", "n_ui_layers", 10 ** 6), ("graph", "n_mm_layers", 17), ("graph", "knn_k", 10 ** 7),
    ("model", "embedding_dim", 10 ** 8), ("model", "embedding_dim", 0), ("model", "expert_hidden", 10 ** 5),
    ("model", "feature_dim", -1), ("model", "router_rank", 10 ** 6), ("model", "init_std", 0.0),
    ("model", "vc_tau", 1e-300), ("model", "fusion_gamma_init", 1e300),
    ("train", "n_negatives", 10 ** 5), ("train", "n_negatives", 0), ("train", "batch_size", 10 ** 9),
    ("train", "eval_batch_users", 0), ("train", "eval_batch_users", 10 ** 8), ("train", "epochs", 10 ** 7),
    ("train", "patience", 0), ("train", "eval_every", 0), ("train", "warmup_epochs", -1),
    ("train", "seed", -1), ("train", "seed", SEED_LIMIT), ("train", "lr", float("inf")),
    ("train", "lr", float("nan")), ("train", "lr", 0.0), ("train", "lr", 1e6), ("train", "softmax_tau", 1e-300),
    ("train", "reg_weight", -1.0), ("train", "vc_weight", 1e9), ("train", "expert_lr_scale", -0.5),
    ("train", "topks", [5, 10 ** 6]), ("train", "topks", list(range(1, 40))),
    ("train", "select_metric", "recall@020"), ("train", "select_metric", "recall@7"),
    ("train", "select_metric", "hits@20"), ("train", "select_metric", "recall@+20"),
    ("routing", "window", 10 ** 9), ("routing", "window", 0), ("routing", "ramp_steps", 10 ** 12),
    ("routing", "max_coverage_steps", -1), ("routing", "fixed_switch_step", -5), ("routing", "k_cov", 10),
    ("routing", "k_spec", 0), ("routing", "h_star", 1.5), ("routing", "h_star", -0.01), ("routing", "ema", 1.0),
    ("routing", "tau_cov", 0.0), ("routing", "tau_spec", 1e9), ("routing", "noise_cov", -1.0),
    ("routing", "lb_weight", float("inf")), ("graph", "image_weight", 2.0), ("graph", "tail_boost", -1.0),
]


@pytest.mark.parametrize(("section", "name", "value"), ABSURD, ids=lambda v: str(v)[:12])
def test_absurd_values_are_refused_naming_the_file(section, name, value):
    config = RunConfig.from_dict({section: {name: value}}, "run.json")
    with pytest.raises(_ConfigError) as info:
        validate_config(config, "run.json")
    assert_one_line(info.value, "run.json")
    assert f"{section}.{name}" in str(info.value)


@pytest.mark.parametrize("text, phrase", [
    ('{"train": {"lr": Infinity}}', "train.lr"),
    ('{"train": {"lr": 1e999}}', "train.lr"),
    ('{"train": {"lr": ' + "9" * 400 + '}}', "train.lr"),
    ('{"train": {"epochs": ' + "9" * 5000 + '}}', "not valid JSON"),
    ('[' * 100_000 + ']' * 100_000, "nested too deeply"),
    ('{"train": {"topks": [true, 5]}}', "train.topks"),
    ('[1, 2]', "expected a JSON object"),
    ('{"train": {"seed": -1}}', "train.seed"),
])
def test_config_file_values(tmp_path, text, phrase):
    path = tmp_path / "run.json"
    path.write_text(text)
    with pytest.raises(_ConfigError) as info:
        validate_config(RunConfig.from_json_file(path), path)
    assert_one_line(info.value, "run.json")
    assert phrase in str(info.value)


@pytest.mark.parametrize("make", [
    pytest.param(lambda p: p.mkdir(), id="directory"),
    pytest.param(make_fifo, id="fifo"),
    pytest.param(lambda p: link_to(p, "/dev/zero"), id="dev-zero"),
])
def test_config_file_must_be_a_regular_file(tmp_path, make):
    path = tmp_path / "run.json"
    make(path)
    with pytest.raises(_ConfigError) as info:
        RunConfig.from_json_file(path)
    assert_one_line(info.value, "run.json")
    assert "regular file" in str(info.value)


def test_a_bom_config_file_reads(tmp_path):
    path = tmp_path / "run.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"train": {"epochs": 3}}')
    assert RunConfig.from_json_file(path).train.epochs == 3


def test_bounds_against_the_data():
    small = DataShape(n_users=4, n_items=5)
    validate_for_data(RunConfig.from_dict({"train": {"topks": [1, 5], "select_metric": "recall@5"}}), small)
    for raw, phrase in (({}, "train.topks"), ({"train": {"topks": [2], "select_metric": "recall@2",
                                                         "n_negatives": 5}}, "train.n_negatives")):
        with pytest.raises(_ConfigError) as info:
            validate_for_data(RunConfig.from_dict(raw), small, "toy")
        assert_one_line(info.value, "toy")
        assert phrase in str(info.value)


def test_bounds_against_the_machine():
    """The estimate grows with the data and the sizes; above the memory there is, refused."""
    shape = DataShape(n_users=20_000_000, n_items=800, image_dim=240, text_dim=256)
    need = estimate_bytes(RunConfig(), shape)
    assert need > 4 * 20_000_000 * 64 * 4  # at least the embedding table, its gradient and Adam's moments
    validate_memory(RunConfig(), shape, "run.json", memory=need)
    with pytest.raises(_ConfigError) as info:
        validate_memory(RunConfig(), shape, "run.json", memory=need - 1)
    assert_one_line(info.value, "run.json")
    assert "GiB" in str(info.value) and "model.embedding_dim" in str(info.value)
    validate_memory(RunConfig(), DataShape(150, 80, 240, 256))  # synthetic:tiny fits any machine
