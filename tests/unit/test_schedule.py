"""The coverage→specialization controller on scripted entropy sequences."""
import pytest

from magnet.config import RoutingConfig
from magnet.schedule import COVERAGE, SPECIALIZATION, RoutingSchedule


def run(ctrl: RoutingSchedule, values: list[float]) -> list[str]:
    regimes = []
    for h in values:
        regimes.append(ctrl.params().regime)
        ctrl.observe(h, epoch=1)
    return regimes


def test_trigger_switches_after_window_consecutive_steps():
    # ema=0 makes H_ema = H, so the count is exact: low for steps 0..9, high from step 10.
    cfg = RoutingConfig(ema=0.0, h_star=0.9, window=5, max_coverage_steps=10_000)
    ctrl = RoutingSchedule(cfg)
    regimes = run(ctrl, [0.5] * 10 + [0.95] * 3 + [0.2] + [0.95] * 10)
    # high at 10,11,12, broken at 13, then 14..18 are five in a row → observed at step 18
    assert ctrl.switch["step"] == 19 and ctrl.switch["reason"] == "trigger"
    assert regimes[18] == COVERAGE and regimes[19] == SPECIALIZATION


def test_trigger_with_ema_needs_warm_up():
    # ema 0.5 from 0: H=1 gives 0.5, 0.75, 0.875, 0.9375 (> 0.9 first at step 3)
    cfg = RoutingConfig(ema=0.5, h_star=0.9, window=2, max_coverage_steps=10_000)
    ctrl = RoutingSchedule(cfg)
    run(ctrl, [1.0] * 10)
    assert ctrl.switch["step"] == 5  # above at steps 3 and 4 → switch before step 5


def test_fallback_and_fixed_modes():
    ctrl = RoutingSchedule(RoutingConfig(max_coverage_steps=7, window=50))
    run(ctrl, [0.5] * 20)
    assert ctrl.switch == {"step": 7, "epoch": 1, "reason": "fallback", "h_ema": pytest.approx(ctrl.switch["h_ema"])}
    fixed = RoutingSchedule(RoutingConfig(switch_mode="fixed", fixed_switch_step=4, ema=0.0, window=1))
    run(fixed, [1.0] * 10)  # high entropy from the start must not trigger in fixed mode
    assert fixed.switch["step"] == 4 and fixed.switch["reason"] == "fixed"


def test_ramp_interpolates_towards_specialization():
    cfg = RoutingConfig(switch_mode="fixed", fixed_switch_step=2, ramp_steps=4, tau_cov=2.0,
                        tau_spec=0.5, k_cov=3, k_spec=2, noise_cov=1.0, ent_weight_cov=0.01,
                        conf_weight=0.02)
    ctrl = RoutingSchedule(cfg)
    seen = []
    for _ in range(8):
        seen.append(ctrl.params())
        ctrl.observe(0.5, 1)
    assert [p.regime for p in seen[:2]] == [COVERAGE, COVERAGE]
    assert seen[0].entropy_coef == -0.01 and seen[0].route.tau == 2.0 and seen[0].route.k == 3
    ramps = [p.ramp for p in seen[2:]]
    assert ramps == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert seen[3].route.tau == pytest.approx(2.0 - 0.5 * 1.5)
    assert seen[3].route.noise == pytest.approx(0.5)
    assert seen[5].route.tau == 0.5 and seen[5].route.k == 2 and seen[5].route.noise == 0.0
    assert seen[5].entropy_coef == pytest.approx(0.02)


def test_state_round_trip():
    cfg = RoutingConfig(ema=0.9, window=3)
    a = RoutingSchedule(cfg)
    run(a, [0.99] * 30)
    b = RoutingSchedule(cfg)
    b.load_state_dict(a.state_dict())
    assert (b.step, b.h_ema, b.above, b.switch) == (a.step, a.h_ema, a.above, a.switch)


def test_disabled_controller_counts_steps_but_never_switches():
    ctrl = RoutingSchedule(RoutingConfig(max_coverage_steps=3, switch_mode="fixed", fixed_switch_step=2),
                             enabled=False)
    run(ctrl, [0.0] * 10)
    assert ctrl.step == 10 and ctrl.switch is None
