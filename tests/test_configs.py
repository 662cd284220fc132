"""The shipped per-dataset config files parse, validate and differ from the defaults only where
they say so."""
from pathlib import Path

import pytest

from magnet.config import RunConfig, validate_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


def test_there_are_config_files():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_file_is_valid(path):
    config = RunConfig.from_json_file(path)
    validate_config(config)
    assert config.data.startswith("../shared/data/")


def test_ml100k_config_selects_content_decay():
    config = RunConfig.from_json_file(Path(__file__).resolve().parents[1] / "configs" / "ml100k.json")
    assert config.train.content_weight_decay == 1.0
    assert config.model == RunConfig().model and config.routing == RunConfig().routing
