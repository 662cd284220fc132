"""The dashboard's figures (app/charts.py), pure functions of checkpoint data."""
from __future__ import annotations


def test_dashboard_names_the_checkpoints_ranking_loss():
    import pandas as pd

    from app.charts import loss_figure
    trace = pd.DataFrame({"step": [0, 1], "loss": [1.0, 0.9], "bpr": [0.8, 0.7], "reg": [0.1, 0.1]})
    softmax = loss_figure(trace, "softmax")
    assert softmax.layout.annotations[0].text == "Total and sampled softmax loss"
    assert "sampled softmax" in {t.name for t in softmax.data}
    assert loss_figure(trace).layout.annotations[0].text == "Total and BPR loss"
