"""The trainer on synthetic:tiny: optimizer groups, behaviour warm-up, the fusion scalar γ, and
the ranking loss through the training objective."""
from __future__ import annotations

import pytest
import torch

from magnet.config import RunConfig, validate_config
from magnet.data import DEFAULT_CACHE, load_dataset
from magnet.errors import ConfigError
from magnet.losses import bpr_loss
from magnet.pipeline import make_config
from magnet.trainer import Trainer


def tiny_trainer(variant: str, epochs: int = 2, **train: object) -> Trainer:
    """A Trainer on synthetic:tiny (batches of 256) with the given ``train`` fields set."""
    config = make_config("synthetic:tiny", variant, device="cpu", epochs=epochs)
    config.train.batch_size = 256
    for name, value in train.items():
        setattr(config.train, name, value)
    return Trainer(config, load_dataset("synthetic:tiny", cache_dir=DEFAULT_CACHE), progress=False)


# ------------------------------------------------------------------------------------------
# optimizer: one Adam group per role
# ------------------------------------------------------------------------------------------

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
                         "encoder.gamma": (0.002, 0.0), "router.c": (0.006, 0.0),
                         "router.scale_raw": (0.006, 0.0)})
        expert = next(n for n in names.values() if n.startswith("experts."))
        expected[expert] = (0.001, 0.2)
    for name, (lr, decay) in expected.items():
        assert seen[name] == pytest.approx((lr, decay)), name


# ------------------------------------------------------------------------------------------
# behaviour warm-up (train.warmup_epochs): the first N epochs train the base score alone
# ------------------------------------------------------------------------------------------

def test_default_is_off_and_validated():
    assert RunConfig().train.warmup_epochs == 0
    for bad in (-1, 200):  # negative, or no epoch left after the warm-up (epochs = 200)
        cfg = RunConfig()
        cfg.train.warmup_epochs = bad
        with pytest.raises(ConfigError, match="warmup_epochs"):
            validate_config(cfg)


def test_warmup_step_touches_only_the_behaviour_base():
    trainer = tiny_trainer("full", warmup_epochs=1)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer._warmup_epoch(torch.randperm(len(trainer.train_pairs), generator=trainer.generator))
    after = dict(trainer.model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == {"encoder.embedding", "encoder.gamma"}
    assert trainer.schedule.step == 0 and trainer.schedule.switch is None


def test_warmup_loss_is_bpr_on_base_plus_l2():
    trainer = tiny_trainer("full", warmup_epochs=1)
    trainer.config.train.reg_weight = 0.5
    model = trainer.model
    with torch.no_grad():
        model.encoder.gamma.zero_()  # base = LightGCN on the interaction view alone
    users, pos, neg = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8])
    loss, scalars = trainer.objective(users, pos, neg, trainer.schedule.params(), base_only=True)
    # Independent path: a behaviour_only model with the same ID embeddings scores the same pairs.
    bo = tiny_trainer("behaviour_only", warmup_epochs=0)
    bo.config.train.reg_weight = 0.5
    with torch.no_grad():
        bo.model.encoder.embedding.copy_(model.encoder.embedding)
    bo_loss, _ = bo.objective(users, pos, neg, bo.schedule.params())
    assert float(loss.detach()) == pytest.approx(float(bo_loss.detach()), rel=1e-6)
    emb, nu = model.encoder.embedding, model.n_users
    reg = 0.5 * (emb[users].pow(2).sum() + emb[pos + nu].pow(2).sum() + emb[neg + nu].pow(2).sum()) / 6
    assert float(scalars[5]) == pytest.approx(float(reg.detach()), rel=1e-6)  # TRACE_SCALARS[5] = reg
    assert float(scalars[2]) == 0.0 and float(scalars[3]) == 0.0  # no vc, no load balance
    assert float(loss.detach()) - float(reg.detach()) == pytest.approx(float(scalars[1]))
    assert float(scalars[1]) > float(bpr_loss(torch.tensor([10.0]), torch.tensor([0.0])))


def test_fit_skips_evaluation_and_trace_during_warmup():
    state = tiny_trainer("full", epochs=3, warmup_epochs=2).fit()
    assert [h["epoch"] for h in state.history] == [3]
    assert state.best_epoch == 3 and set(state.trace["epoch"]) == {3}
    assert state.trace["step"].iloc[0] == 0  # the routing schedule starts after the warm-up


def test_warmup_is_a_no_op_for_behaviour_only():
    a = tiny_trainer("behaviour_only", epochs=2, warmup_epochs=0).fit()
    b = tiny_trainer("behaviour_only", epochs=2, warmup_epochs=1).fit()
    assert [h["recall@20"] for h in a.history] == [h["recall@20"] for h in b.history]
    assert len(a.history) == 2


# ------------------------------------------------------------------------------------------
# fusion γ in h^B = h^B_int + γ·h^B_aug: learned (default) or fixed
# ------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------
# the ranking loss through the objective: sampled softmax over m negatives
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["behaviour_only", "full"])
def test_objective_softmax_matches_hand_scores(variant):
    trainer = tiny_trainer(variant, loss="softmax", n_negatives=3, softmax_tau=0.7)
    users, pos = trainer.train_pairs[:64, 0], trainer.train_pairs[:64, 1]
    neg = trainer.sampler.sample(users, 3)
    params = trainer.schedule.params()
    model = trainer.model
    model.eval()  # no routing noise, so the two forward passes see the same gates
    torch.manual_seed(0)
    loss, scalars = trainer.objective(users, pos, neg, params)
    ch = model.encode(trainer.graphs, trainer.image_feat, trainer.text_feat)
    route = params.route
    def score(items: torch.Tensor, positive: bool) -> torch.Tensor:  # positives' cues leave the item out
        return model.score_pairs(ch, users, items, route, torch.full_like(items, positive, dtype=torch.bool)).score

    s_pos = score(pos, True)
    s_neg = torch.stack([score(neg[:, j], False) for j in range(3)], dim=1)
    expected = (torch.logsumexp(torch.cat([s_pos[:, None], s_neg], 1) / 0.7, 1) - s_pos / 0.7).mean()
    torch.testing.assert_close(scalars[1], expected.detach(), rtol=1e-5, atol=1e-6)


def test_softmax_training_runs_and_learns():
    trainer = tiny_trainer("full", loss="softmax", n_negatives=8)
    state = trainer.fit()
    assert state.metrics["valid"]["recall@20"] > 0.0
    assert set(state.trace["bpr"].round(6)) != {0.0}


