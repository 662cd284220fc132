"""Routing dynamics: entropy, its EMA, H*, the window and the switch; τ and K; loss terms."""
from __future__ import annotations

import streamlit as st

from app import charts, state
from app.charts import REASON_TEXT
from app.tables import show_table

sel = state.require_selection()
ckpt = state.guarded(state.light, sel.path)
trace, switch, rc = ckpt.trace, ckpt.switch, ckpt.config.routing

st.title(f"Routing dynamics · {sel.name}")
c = st.columns(5)
c[0].metric("Switch step", "none" if switch.get("step") is None else str(switch["step"]))
c[1].metric("Switch reason", REASON_TEXT.get(switch.get("reason"), str(switch.get("reason"))))
c[2].metric("Switch epoch", "—" if switch.get("epoch") is None else str(switch["epoch"]))
c[3].metric("H*", f"{rc.h_star:g}")
c[4].metric("Window (steps)", str(rc.window))
mode = "fixed step %d" % rc.fixed_switch_step if rc.switch_mode == "fixed" else "entropy trigger"
st.caption(f"Switch mode: {mode}; EMA factor {rc.ema:g}; fallback after {rc.max_coverage_steps} coverage steps; "
           f"coverage τ={rc.tau_cov:g}, K={rc.k_cov} → specialization τ={rc.tau_spec:g}, K={rc.k_spec} over "
           f"{rc.ramp_steps} ramp steps.")

if trace.empty:
    st.warning("This checkpoint's trace is empty.")
    st.stop()
if not ckpt.config.model.use_experts:
    st.info("Behaviour-only checkpoint: no experts are routed, so H stays at zero; the schedule still runs.")

if switch.get("step") is None:
    st.info(f"No switch happened in {len(trace)} steps: the run stayed in the coverage regime.")
elif switch.get("reason") == "trigger":
    st.success(f"The EMA of H stayed above H* = {rc.h_star:g} for {rc.window} steps and triggered the switch at "
               f"step {switch['step']} (EMA {switch.get('h_ema')}).")
elif switch.get("reason") == "fixed":
    st.info(f"Fixed-step ablation: switched at step {switch['step']}.")
else:
    st.warning(f"Fallback: the trigger never fired; switched after {switch['step']} coverage steps.")

st.plotly_chart(charts.entropy_figure(trace, switch, rc.h_star, rc.window), key="routing_entropy")
st.plotly_chart(charts.loss_figure(trace, ckpt.config.train.loss), key="routing_loss")
with st.expander("Trace (last 200 steps)"):
    show_table(trace.tail(200), key="routing_trace")
