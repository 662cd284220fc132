"""``train.loss`` / ``train.n_negatives``: BPR over m negatives and the sampled softmax, by hand
and through the training objective."""
import math

import pytest
import torch

from magnet.config import RunConfig, validate_config
from magnet.data import DEFAULT_CACHE, load_dataset
from magnet.errors import ConfigError
from magnet.losses import bpr_loss, ranking_loss, sampled_softmax_loss
from magnet.pipeline import make_config
from magnet.sampler import NegativeSampler
from magnet.trainer import Trainer


def test_sampled_softmax_hand_value():
    # row 0: logits (2, 0, 0)/τ with τ = 0.5 → (4, 0, 0); row 1: (1, 1, 3)/0.5 → (2, 2, 6)
    pos = torch.tensor([2.0, 1.0])
    neg = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    row0 = math.log(math.exp(4) + 2) - 4
    row1 = math.log(2 * math.exp(2) + math.exp(6)) - 2
    assert abs(sampled_softmax_loss(pos, neg, 0.5).item() - (row0 + row1) / 2) < 1e-6


def test_sampled_softmax_is_stable_for_large_scores():
    pos, neg = torch.tensor([500.0]), torch.tensor([[400.0, 502.0]])  # exp(500) overflows float32
    loss = sampled_softmax_loss(pos, neg, 1.0)
    assert abs(loss.item() - (math.log(1 + math.exp(-2) + math.exp(-102)) + 2)) < 1e-5


def test_bpr_over_several_negatives_is_the_mean_of_its_pairs():
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    pairs = [math.log1p(math.exp(n - p)) for p, row in zip([1.0, 0.0], neg.tolist()) for n in row]
    assert abs(bpr_loss(pos, neg).item() - sum(pairs) / 4) < 1e-6
    # one column is the classic aligned form
    assert torch.equal(ranking_loss("bpr", pos, neg[:, :1], 1.0), bpr_loss(pos, neg[:, 0]))


def test_sampler_columns_are_single_draws_of_every_user():
    train = torch.tensor([[0, 0], [0, 1], [1, 2]])
    one = NegativeSampler(train, 6, torch.Generator().manual_seed(3)).sample(torch.tensor([0, 1, 0]))
    many = NegativeSampler(train, 6, torch.Generator().manual_seed(3)).sample(torch.tensor([0, 1, 0]), 1)
    assert many.shape == (3, 1) and torch.equal(many[:, 0], one)
    users = torch.tensor([0, 1] * 50)
    neg = NegativeSampler(train, 6, torch.Generator().manual_seed(0)).sample(users, 5)
    assert neg.shape == (100, 5)
    positives = {(0, 0), (0, 1), (1, 2)}
    assert not any((int(u), int(i)) in positives for u, row in zip(users, neg) for i in row)


def _trainer(variant: str, **train: object) -> Trainer:
    config = make_config("synthetic:tiny", variant, device="cpu", epochs=2)
    config.train.batch_size = 256
    for name, value in train.items():
        setattr(config.train, name, value)
    return Trainer(config, load_dataset("synthetic:tiny", cache_dir=DEFAULT_CACHE), progress=False)


@pytest.mark.parametrize("variant", ["behaviour_only", "full"])
def test_objective_softmax_matches_hand_scores(variant):
    trainer = _trainer(variant, loss="softmax", n_negatives=3, softmax_tau=0.7)
    users, pos = trainer.train_pairs[:64, 0], trainer.train_pairs[:64, 1]
    neg = trainer.sampler.sample(users, 3)
    params = trainer.schedule.params()
    model = trainer.model
    model.eval()  # no routing noise, so the two forward passes see the same gates
    torch.manual_seed(0)
    loss, scalars = trainer.objective(users, pos, neg, params)
    ch = model.encode(trainer.graphs, trainer.image_feat, trainer.text_feat)
    route = params.route
    score = lambda items: model.score_pairs(ch, users, items, route).score  # noqa: E731
    s_pos = score(pos)
    s_neg = torch.stack([score(neg[:, j]) for j in range(3)], dim=1)
    expected = (torch.logsumexp(torch.cat([s_pos[:, None], s_neg], 1) / 0.7, 1) - s_pos / 0.7).mean()
    torch.testing.assert_close(scalars[1], expected.detach(), rtol=1e-5, atol=1e-6)


def test_softmax_training_runs_and_learns():
    trainer = _trainer("full", loss="softmax", n_negatives=8)
    state = trainer.fit()
    assert state.metrics["valid"]["recall@20"] > 0.0
    assert set(state.trace["bpr"].round(6)) != {0.0}


def test_invalid_loss_settings_are_rejected():
    for field, value in (("loss", "hinge"), ("n_negatives", 0), ("softmax_tau", 0.0)):
        config = RunConfig()
        setattr(config.train, field, value)
        with pytest.raises(ConfigError, match=f"train.{field}"):
            validate_config(config)


def test_dashboard_names_the_checkpoints_ranking_loss():
    import pandas as pd

    from app.charts import loss_figure
    trace = pd.DataFrame({"step": [0, 1], "loss": [1.0, 0.9], "bpr": [0.8, 0.7], "reg": [0.1, 0.1]})
    softmax = loss_figure(trace, "softmax")
    assert softmax.layout.annotations[0].text == "Total and sampled softmax loss"
    assert "sampled softmax" in {t.name for t in softmax.data}
    assert loss_figure(trace).layout.annotations[0].text == "Total and BPR loss"
