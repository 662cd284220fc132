"""Each parameter belongs to exactly one Adam group, with the lr and weight decay of its role."""
import pytest

from magnet.data import DEFAULT_CACHE, load_dataset
from magnet.pipeline import make_config
from magnet.trainer import Trainer


@pytest.mark.parametrize("variant", ["full", "behaviour_only"])
def test_parameter_groups(variant):
    config = make_config("synthetic:tiny", variant, device="cpu", epochs=1)
    config.train.lr = 0.002
    config.train.expert_lr_scale, config.train.router_lr_scale = 0.5, 3.0
    config.train.expert_weight_decay, config.train.content_weight_decay = 0.2, 0.05
    trainer = Trainer(config, load_dataset("synthetic:tiny", cache_dir=DEFAULT_CACHE), progress=False)
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    seen: dict[str, tuple[float, float]] = {}
    for group in trainer.optimizer.param_groups:
        for p in group["params"]:
            assert names[id(p)] not in seen, f"{names[id(p)]} in two groups"
            seen[names[id(p)]] = (group["lr"], group["weight_decay"])
    assert set(seen) == set(names.values())
    expected = {"encoder.embedding": (0.002, 0.0)}
    if variant == "full":
        expected.update({"encoder.proj_image.weight": (0.002, 0.05), "encoder.proj_text.bias": (0.002, 0.05),
                         "encoder.gamma": (0.002, 0.0), "router.q": (0.006, 0.0)})
        expert = next(n for n in names.values() if n.startswith("experts."))
        expected[expert] = (0.001, 0.2)
    for name, (lr, decay) in expected.items():
        assert seen[name] == pytest.approx((lr, decay)), name
