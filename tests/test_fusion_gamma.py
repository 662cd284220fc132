"""``model.learn_fusion_gamma``: γ in h^B = h^B_int + γ·h^B_aug learned (default) or fixed."""
import torch

from magnet.config import RunConfig
from magnet.data import DEFAULT_CACHE, load_dataset
from magnet.pipeline import make_config
from magnet.trainer import Trainer


def _trained(learn: bool, gamma_init: float) -> Trainer:
    config = make_config("synthetic:tiny", "full", device="cpu", epochs=1)
    config.train.batch_size = 256
    config.model.fusion_gamma_init = gamma_init
    config.model.learn_fusion_gamma = learn
    trainer = Trainer(config, load_dataset("synthetic:tiny", cache_dir=DEFAULT_CACHE), progress=False)
    users, pos = trainer.train_pairs[:256, 0], trainer.train_pairs[:256, 1]
    for _ in range(3):
        trainer.step(users, pos, trainer.sampler.sample(users), trainer.schedule.params())
    return trainer


def test_default_learns_gamma():
    assert RunConfig().model.learn_fusion_gamma is True
    trainer = _trained(True, 0.1)
    assert float(trainer.model.encoder.gamma.detach()) != 0.1


def test_fixed_zero_gamma_makes_the_base_pure_lightgcn():
    trainer = _trained(False, 0.0)
    model = trainer.model
    assert float(model.encoder.gamma) == 0.0 and not model.encoder.gamma.requires_grad
    assert "encoder.gamma" in model.state_dict()  # same checkpoint layout as a learned γ
    ch = model.encode(trainer.graphs, trainer.image_feat, trainer.text_feat)
    assert torch.equal(ch.h[0], ch.b_interaction)
    assert not torch.equal(ch.b_augmented, ch.b_interaction)  # the augmented view exists, unused by B


def test_fixed_nonzero_gamma_stays():
    trainer = _trained(False, 0.25)
    assert float(trainer.model.encoder.gamma) == 0.25
