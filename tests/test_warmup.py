"""Behaviour warm-up (``train.warmup_epochs``): the first N epochs train the base score alone."""
import pytest
import torch

from magnet.config import RunConfig, validate_config
from magnet.data import DEFAULT_CACHE, load_dataset
from magnet.errors import ConfigError
from magnet.losses import bpr_loss
from magnet.pipeline import make_config
from magnet.trainer import Trainer


def _trainer(variant: str, epochs: int = 2, warmup: int = 0) -> Trainer:
    config = make_config("synthetic:tiny", variant, device="cpu", epochs=epochs)
    config.train.batch_size = 256
    config.train.warmup_epochs = warmup
    return Trainer(config, load_dataset("synthetic:tiny", cache_dir=DEFAULT_CACHE), progress=False)


def test_default_is_off_and_validated():
    assert RunConfig().train.warmup_epochs == 0
    for bad in (-1, 200):  # negative, or no epoch left after the warm-up (epochs = 200)
        cfg = RunConfig()
        cfg.train.warmup_epochs = bad
        with pytest.raises(ConfigError, match="warmup_epochs"):
            validate_config(cfg)


def test_warmup_step_touches_only_the_behaviour_base():
    trainer = _trainer("full", warmup=1)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer._warmup_epoch(torch.randperm(len(trainer.train_pairs), generator=trainer.generator))
    after = dict(trainer.model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == {"encoder.embedding", "encoder.gamma"}
    assert trainer.schedule.step == 0 and trainer.schedule.switch is None


def test_warmup_loss_is_bpr_on_base_plus_l2():
    trainer = _trainer("full", warmup=1)
    trainer.config.train.reg_weight = 0.5
    model = trainer.model
    with torch.no_grad():
        model.encoder.gamma.zero_()  # base = LightGCN on the interaction view alone
    users, pos, neg = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8])
    loss, scalars = trainer.objective(users, pos, neg, trainer.schedule.params(), base_only=True)
    # Independent path: a behaviour_only model with the same ID embeddings scores the same pairs.
    bo = _trainer("behaviour_only", warmup=0)
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
    state = _trainer("full", epochs=3, warmup=2).fit()
    assert [h["epoch"] for h in state.history] == [3]
    assert state.best_epoch == 3 and set(state.trace["epoch"]) == {3}
    assert state.trace["step"].iloc[0] == 0  # the routing schedule starts after the warm-up


def test_warmup_is_a_no_op_for_behaviour_only():
    a = _trainer("behaviour_only", epochs=2, warmup=0).fit()
    b = _trainer("behaviour_only", epochs=2, warmup=1).fit()
    assert [h["recall@20"] for h in a.history] == [h["recall@20"] for h in b.history]
    assert len(a.history) == 2
