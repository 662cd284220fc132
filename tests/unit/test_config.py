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
