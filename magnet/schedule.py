"""Entropy-triggered two-stage routing schedule (spec §5).

The schedule is consulted before each training step (:meth:`RoutingSchedule.params`) and told
the step's routing entropy afterwards (:meth:`RoutingSchedule.observe`).

* Coverage regime: τ = tau_cov, K = k_cov, logit noise noise_cov, entropy *bonus*.
* Trigger: the EMA of H (started at 0, so the trigger needs evidence, not one lucky batch)
  stays above h_star for ``window`` consecutive steps → switch (reason "trigger").
  ``max_coverage_steps`` forces a switch (reason "fallback"); ``switch_mode="fixed"``
  switches at ``fixed_switch_step`` (reason "fixed").
* Specialization regime: over ``ramp_steps`` steps τ → tau_spec, K → k_spec, noise → 0 and
  the entropy bonus turns into a confidence loss; load balancing stays on.

``switch.step`` is the first step trained in the specialization regime. The routing settings
of a step travel to the model as one :class:`RouteParams` (``StepParams.route``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .config import RoutingConfig

COVERAGE = "coverage"
SPECIALIZATION = "specialization"


@dataclass(frozen=True)
class RouteParams:
    """How the router turns logits into gates: softmax temperature ``tau``, Top-``k`` and the
    std of the Gaussian logit noise (training only)."""

    tau: float
    k: int
    noise: float = 0.0


@dataclass(frozen=True)
class StepParams:
    """Settings of one training step: its routing (``route``) and the weights of the routing
    terms of the loss. ``entropy_coef`` multiplies the mean per-pair entropy (negative = bonus
    for spread-out routing, positive = confidence loss)."""

    step: int
    regime: str
    ramp: float  # progress of the specialization ramp in [0, 1]
    route: RouteParams
    entropy_coef: float
    lb_weight: float


class RoutingSchedule:
    """State machine of spec §5; its state round-trips through :meth:`state_dict`."""

    def __init__(self, cfg: RoutingConfig, enabled: bool = True) -> None:
        self.cfg = cfg
        self.enabled = enabled  # False for models without experts: steps are counted, never switched
        self.step = 0  # index of the next step to run
        self.h_ema = 0.0
        self.above = 0  # consecutive observed steps with h_ema > h_star
        self.switch: dict[str, Any] | None = None

    @property
    def regime(self) -> str:
        return SPECIALIZATION if self.switch is not None and self.step >= self.switch["step"] else COVERAGE

    def params(self) -> StepParams:
        """Settings for step ``self.step``."""
        c = self.cfg
        if self.regime == COVERAGE:
            return StepParams(self.step, COVERAGE, 0.0, RouteParams(c.tau_cov, c.k_cov, c.noise_cov),
                              -c.ent_weight_cov, c.lb_weight)
        done = self.step - self.switch["step"] + 1
        ramp = 1.0 if c.ramp_steps <= 0 else min(1.0, done / c.ramp_steps)
        route = RouteParams(tau=c.tau_cov + ramp * (c.tau_spec - c.tau_cov),
                            k=int(round(c.k_cov + ramp * (c.k_spec - c.k_cov))),
                            noise=c.noise_cov * (1.0 - ramp))
        return StepParams(step=self.step, regime=SPECIALIZATION, ramp=ramp, route=route,
                          entropy_coef=-c.ent_weight_cov * (1.0 - ramp) + c.conf_weight * ramp,
                          lb_weight=c.lb_weight)

    def observe(self, entropy: float, epoch: int) -> dict[str, Any] | None:
        """Record the routing entropy H of step ``self.step`` and advance; return the switch
        record if this observation caused the switch."""
        c = self.cfg
        self.h_ema = c.ema * self.h_ema + (1.0 - c.ema) * float(entropy)
        self.above = self.above + 1 if self.h_ema > c.h_star else 0
        self.step += 1
        if self.switch is not None or not self.enabled:
            return None
        reason = None
        if c.switch_mode == "fixed":
            if self.step >= c.fixed_switch_step:
                reason = "fixed"
        elif self.above >= c.window:
            reason = "trigger"
        elif self.step >= c.max_coverage_steps:
            reason = "fallback"
        if reason is None:
            return None
        self.switch = {"step": self.step, "epoch": int(epoch), "reason": reason,
                       "h_ema": round(self.h_ema, 6)}
        return self.switch

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "h_ema": self.h_ema, "above": self.above, "switch": self.switch,
                "config": asdict(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.h_ema = float(state["h_ema"])
        self.above = int(state["above"])
        self.switch = state["switch"]
