"""Configuration dataclasses (spec §2–§6), serialised to and from JSON.

Every number of the specification is a field here, never a constant in code. A run is
described by one :class:`RunConfig`, which nests the graph, model, routing and training
sections, in the spirit of RecBole's model/config split.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .fileio import read_json_file
from .variants import VARIANT_TABLE, VARIANTS
from .vocab import N_EXPERTS


@dataclass
class GraphConfig:
    """Dual-view graph construction (spec §2)."""

    n_ui_layers: int = 2  # LightGCN layers on the interaction view
    n_mm_layers: int = 1  # propagation layers of projected content features
    knn_k: int = 10  # neighbours per item in each content kNN graph
    image_weight: float = 0.1  # S_I = image_weight*S_A + (1-image_weight)*S_S
    tail_quantile: float = 0.2  # items with training degree in this lowest share are "tail"
    tail_boost: float = 2.0  # multiplier on the content edges of tail items
    aug_weight: float = 1.0  # weight of the item-item block in the augmented view
    # What carries the content channels A and S: "features" (projected item features W_A x,
    # W_S x propagated on the augmented view, as specified) or "id_graph" (LATTICE/FREEDOM
    # style: ID embeddings propagated on the interaction graph plus that modality's own kNN
    # item-item edges; image kNN for A, text kNN for S).
    content_channels: str = "features"
    id_graph_tables: str = "own"  # id_graph: "own" (new tables E_A, E_S) or "shared" (the behaviour table)
    id_graph_weight: float = 1.0  # id_graph: weight of the modality's kNN block before renormalising
    id_graph_features: bool = False  # id_graph: also add the projected-feature term of "features"


@dataclass
class ModelConfig:
    """Encoders, experts and router (spec §2–§4)."""

    embedding_dim: int = 64
    feature_dim: int = 256  # PCA width of raw item features before W_A, W_S (0 = no reduction)
    expert_kind: str = "diagonal"  # "diagonal" (a learned metric per expert×modality) or "mlp"
    expert_hidden: int = 64  # hidden width of each expert's 2-layer projection MLP
    # Router (spec §4, §4b): "cue" = logits from the history-induced modality cues through each
    # expert's template (z_e = c_e + β Σ_m w_em ẑ_m); "bilinear" = the interaction-conditioned
    # bilinear router; "cue+bilinear" = both added. See docs/SPEC_AS_BUILT.md §4.
    router: str = "cue"
    router_rank: int = 32  # bilinear term in a learned rank-r subspace of [h] (0 = diagonal over all 3d)
    cue_dim: int = 32  # principal directions of each modality's features the cues compare in
    cue_scale_init: float = 3.0  # initial β of the cue router (β = softplus(learned) > 0); see SPEC_AS_BUILT §4b
    # Cue router only: the experts also score the cues, c_{e,m} += w_{e,m}·λ_m·ẑ_m (λ learned,
    # starting at 0), so the history evidence that routes a pair also counts in its score.
    cue_in_scores: bool = False
    use_experts: bool = True  # False = behaviour_only (LightGCN score only)
    use_aug_view: bool = True  # content-augmented view + multimodal channels
    residual_base: bool = True  # score = <h^B_u,h^B_i> + sum_e g_e s_e
    detach_expert_behaviour: bool = False  # experts/router see h^B without back-propagating into it
    fusion_gamma_init: float = 0.1  # initial value of the learnable fusion scalar
    learn_fusion_gamma: bool = True  # False: γ stays at fusion_gamma_init (0 = base is pure LightGCN)
    vc_tau: float = 0.2  # InfoNCE temperature of the view-contrastive loss
    init_std: float = 0.1  # std of the ID-embedding initialisation


@dataclass
class RoutingConfig:
    """Entropy-triggered two-stage routing schedule (spec §5)."""

    switch_mode: str = "trigger"  # "trigger" (entropy) or "fixed" (fixed-step ablation)
    tau_cov: float = 2.0
    k_cov: int = 3
    noise_cov: float = 1.0
    ent_weight_cov: float = 0.01  # weight of the entropy bonus in the coverage regime
    h_star: float = 0.90
    window: int = 50
    ema: float = 0.9
    max_coverage_steps: int = 2000  # fallback switch
    fixed_switch_step: int = 300  # used when switch_mode == "fixed"
    ramp_steps: int = 200
    tau_spec: float = 0.5
    k_spec: int = 2
    conf_weight: float = 0.01  # weight of the confidence loss once specialised
    lb_weight: float = 0.01  # load-balance loss weight (both regimes)


@dataclass
class TrainConfig:
    """Optimisation, early stopping and evaluation (spec §6)."""

    epochs: int = 200
    batch_size: int = 2048
    lr: float = 3e-3  # spec 1e-3; see docs/SPEC_AS_BUILT.md §6
    expert_lr_scale: float = 1.0  # lr multiplier of the expert projection MLPs
    router_lr_scale: float = 1.0  # lr multiplier of the router parameters
    expert_weight_decay: float = 0.1  # L2 weight decay on the expert projection MLPs
    content_weight_decay: float = 0.0  # L2 decay on the content projections W_A, W_S (ml100k: 1.0)
    reg_weight: float = 1e-2  # L2 on the batch's ID embeddings (spec 1e-4; see docs/SPEC_AS_BUILT.md §6)
    vc_weight: float = 0.001  # spec 0.01; see docs/SPEC_AS_BUILT.md §6
    warmup_epochs: int = 0  # first N epochs train the behaviour base alone (no mixture, vc, routing)
    loss: str = "bpr"  # ranking loss: "bpr" (spec) or "softmax" (sampled softmax, docs/SPEC_AS_BUILT.md §6)
    n_negatives: int = 1  # uniform negatives per positive (BPR: mean over them; softmax: the candidates)
    softmax_tau: float = 1.0  # temperature of the sampled softmax (scores / τ)
    patience: int = 20
    eval_every: int = 1
    seed: int = 999
    eval_batch_users: int = 1024
    topks: list[int] = field(default_factory=lambda: [5, 10, 20, 50])
    select_metric: str = "recall@20"


@dataclass
class RunConfig:
    """Everything that defines one training run."""

    data: str = "synthetic:demo"
    variant: str = "full"
    device: str = "auto"
    graph: GraphConfig = field(default_factory=GraphConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "RunConfig":
        return _build(cls, raw, source)

    @classmethod
    def from_json_file(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        if not os.path.lexists(path):
            raise ConfigError("config file not found", path)
        raw = read_json_file(path, ConfigError)
        if not isinstance(raw, dict):
            raise ConfigError("expected a JSON object", path)
        return cls.from_dict(raw, str(path))


def _build(cls: type, raw: dict[str, Any], source: str, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``raw``, rejecting unknown keys and wrong types (errors name
    the field by its dotted path, e.g. ``train.lr``)."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}", source)
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for name, value in raw.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{name} must be an object", source)
            kwargs[name] = _build(type(default), value, source, f"{prefix}{name}.")
            continue
        kwargs[name] = _coerce(value, default, f"{prefix}{name}", source)
    return cls(**kwargs)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _coerce(value: Any, default: Any, name: str, source: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}", source)
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}", source)
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}", source)
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{name} must be a finite number, got an integer of {len(str(value))} digits",
                              source) from None
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}", source)
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or not all(_is_int(v) and v > 0 for v in value):
            raise ConfigError(f"{name} must be a list of positive integers", source)
        return list(value)
    return value


def apply_variant(config: RunConfig, variant: str) -> RunConfig:
    """Return a copy of ``config`` with the switches of ablation ``variant`` applied (spec §6;
    the switches are :data:`magnet.variants.VARIANT_TABLE`)."""
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    cfg = RunConfig.from_dict(config.to_dict())
    cfg.variant = variant
    for path, value in VARIANT_TABLE[variant].overrides.items():
        section, name = path.split(".")
        setattr(getattr(cfg, section), name, value)
    return cfg


# Bounds of every size and number of a run (docs/RELIABILITY.md, "Bounds"). Sizes far beyond
# any useful value are refused before anything is built: each step of a 10^6-layer propagation
# or a 10^5-negative batch would run for minutes or exhaust memory.
MAX_LAYERS = 16  # propagation hops; LightGCN oversmooths beyond ~4
MAX_WIDTH = 4096  # embedding_dim, expert_hidden, router_rank (the paper: d = 64)
MAX_FEATURE_DIM = 65536  # PCA width of the raw features
MAX_KNN = 1024  # content neighbours per item
MAX_NEGATIVES = 1024  # negatives per positive
MAX_BATCH = 1 << 20  # batch_size, eval_batch_users
MAX_EPOCHS = 100_000  # epochs (and so warmup_epochs)
MAX_STEPS = 10_000_000  # routing.window, routing.ramp_steps
# Counters and thresholds that allocate nothing (patience, eval_every, max_coverage_steps,
# fixed_switch_step) are only kept positive and int64: 10**6 is a way to say "never".
MAX_TOPK, MAX_TOPKS = 1000, 16  # a cut-off, and how many cut-offs
TEMPERATURE = (1e-3, 1e3)  # every temperature; 1e-300 turns scores into inf and weights into NaN
MAX_LR = 10.0
MAX_SCALE = 1e3  # loss weights, decays, lr multipliers, edge weights, noise, |γ init|
SEED_LIMIT = 2 ** 32  # numpy's seeds: 0 <= seed < 2**32
METRIC_NAMES = ("recall", "ndcg", "precision", "map")
INT64 = 2 ** 63


def _int_in(name: str, value: int, low: int, high: int) -> tuple[bool, str]:
    return low <= value <= high, f"{name} must be in {low}..{high}, got {value}"


def _float_in(name: str, value: float, low: float, high: float, open_low: bool = False) -> tuple[bool, str]:
    ok = (low < value if open_low else low <= value) and value <= high
    return ok, f"{name} must be in {'(' if open_low else '['}{low:g}, {high:g}], got {value:g}"


def _finite_problems(cfg: RunConfig) -> list[str]:
    """Every float finite and every integer int64-sized, in every section (fields added later too)."""
    out = []
    for prefix, section in (("", cfg), ("graph.", cfg.graph), ("model.", cfg.model), ("routing.", cfg.routing),
                            ("train.", cfg.train)):
        for f in fields(section):
            value = getattr(section, f.name)
            name = prefix + f.name
            if isinstance(value, float) and not math.isfinite(value):
                out.append(f"{name} must be a finite number, got {value}")
            elif _is_int(value) and not -INT64 <= value < INT64:
                out.append(f"{name} is out of range ({value})")
    return out


def _choice_checks(cfg: RunConfig) -> list[tuple[bool, str]]:
    return [
        (cfg.variant in VARIANTS, f"variant must be one of {', '.join(VARIANTS)}"),
        (cfg.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d{1,3}", cfg.device) is not None,
         f"device must be auto, cpu, cuda or cuda:<n>, got {cfg.device!r:.40}"),
        (cfg.model.expert_kind in ("mlp", "diagonal"), "model.expert_kind must be mlp or diagonal"),
        (cfg.model.router in ("cue", "bilinear", "cue+bilinear"), "model.router must be cue, bilinear or cue+bilinear"),
        (not cfg.model.cue_in_scores or cfg.model.router == "cue", "model.cue_in_scores needs model.router cue"),
        (cfg.routing.switch_mode in ("trigger", "fixed"), "routing.switch_mode must be trigger or fixed"),
        (cfg.train.loss in ("bpr", "softmax"), "train.loss must be bpr or softmax"),
        (cfg.graph.content_channels in ("features", "id_graph"),
         "graph.content_channels must be features or id_graph"),
        (cfg.graph.id_graph_tables in ("own", "shared"), "graph.id_graph_tables must be own or shared"),
    ]


#: Integer fields and their inclusive bounds: each bounds what a run allocates or loops over.
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "model.embedding_dim": (1, MAX_WIDTH), "model.expert_hidden": (1, MAX_WIDTH),
    "model.feature_dim": (0, MAX_FEATURE_DIM), "model.router_rank": (0, MAX_WIDTH), "model.cue_dim": (1, MAX_WIDTH),
    "graph.n_ui_layers": (0, MAX_LAYERS), "graph.n_mm_layers": (0, MAX_LAYERS), "graph.knn_k": (1, MAX_KNN),
    "routing.k_cov": (1, N_EXPERTS), "routing.k_spec": (1, N_EXPERTS), "routing.window": (1, MAX_STEPS),
    "routing.ramp_steps": (0, MAX_STEPS), "train.epochs": (1, MAX_EPOCHS), "train.batch_size": (1, MAX_BATCH),
    "train.eval_batch_users": (1, MAX_BATCH), "train.n_negatives": (1, MAX_NEGATIVES),
    "train.seed": (0, SEED_LIMIT - 1),
}


def _field(cfg: RunConfig, dotted: str) -> Any:
    """The value of ``section.name`` in ``cfg``."""
    section, _, name = dotted.partition(".")
    return getattr(getattr(cfg, section), name)


def _size_checks(cfg: RunConfig) -> list[tuple[bool, str]]:
    r, t = cfg.routing, cfg.train
    return [
        *(_int_in(name, _field(cfg, name), low, high) for name, (low, high) in INT_BOUNDS.items()),
        (r.max_coverage_steps >= 0, f"routing.max_coverage_steps must be >= 0, got {r.max_coverage_steps}"),
        (r.fixed_switch_step >= 0, f"routing.fixed_switch_step must be >= 0, got {r.fixed_switch_step}"),
        (t.patience >= 1, f"train.patience must be >= 1, got {t.patience}"),
        (t.eval_every >= 1, f"train.eval_every must be >= 1, got {t.eval_every}"),
        (0 <= t.warmup_epochs < t.epochs, f"train.warmup_epochs must be in [0, epochs), got {t.warmup_epochs}"),
        (0 < len(t.topks) <= MAX_TOPKS and max(t.topks) <= MAX_TOPK,
         f"train.topks must hold 1 to {MAX_TOPKS} cut-offs in 1..{MAX_TOPK}, got {t.topks}"),
    ]


def _number_checks(cfg: RunConfig) -> list[tuple[bool, str]]:
    g, m, r, t = cfg.graph, cfg.model, cfg.routing, cfg.train
    low, high = TEMPERATURE
    temperatures = [("routing.tau_cov", r.tau_cov), ("routing.tau_spec", r.tau_spec),
                    ("model.vc_tau", m.vc_tau), ("train.softmax_tau", t.softmax_tau)]
    scales = [("graph.tail_boost", g.tail_boost), ("graph.aug_weight", g.aug_weight),
              ("graph.id_graph_weight", g.id_graph_weight), ("routing.noise_cov", r.noise_cov),
              ("routing.ent_weight_cov", r.ent_weight_cov), ("routing.conf_weight", r.conf_weight),
              ("routing.lb_weight", r.lb_weight), ("train.expert_lr_scale", t.expert_lr_scale),
              ("train.router_lr_scale", t.router_lr_scale), ("train.expert_weight_decay", t.expert_weight_decay),
              ("train.content_weight_decay", t.content_weight_decay), ("train.reg_weight", t.reg_weight),
              ("train.vc_weight", t.vc_weight)]
    return [
        *[_float_in(name, value, low, high) for name, value in temperatures],
        *[_float_in(name, value, 0.0, MAX_SCALE) for name, value in scales],
        _float_in("train.lr", t.lr, 0.0, MAX_LR, open_low=True),
        _float_in("model.init_std", m.init_std, 0.0, 10.0, open_low=True),
        _float_in("model.fusion_gamma_init", m.fusion_gamma_init, -MAX_SCALE, MAX_SCALE),
        _float_in("model.cue_scale_init", m.cue_scale_init, 0.0, MAX_SCALE, open_low=True),
        _float_in("graph.image_weight", g.image_weight, 0.0, 1.0),
        (0.0 <= g.tail_quantile < 1.0, f"graph.tail_quantile must be in [0, 1), got {g.tail_quantile:g}"),
        _float_in("routing.h_star", r.h_star, 0.0, 1.0),
        (0.0 <= r.ema < 1.0, f"routing.ema must be in [0, 1), got {r.ema:g}"),
    ]


def _select_metric_problem(t: TrainConfig) -> str | None:
    metric, _, k = t.select_metric.partition("@")
    if metric in METRIC_NAMES and k.isdigit() and t.select_metric == f"{metric}@{int(k)}" and int(k) in t.topks:
        return None
    return (f"train.select_metric {t.select_metric!r} must be <metric>@K with metric one of "
            f"{', '.join(METRIC_NAMES)} and K one of topks {t.topks}")


def config_problems(cfg: RunConfig) -> list[str]:
    """Every reason why ``cfg`` cannot work, whatever the data (empty when it is valid)."""
    problems = _finite_problems(cfg)
    if problems:
        return problems  # the range checks below assume finite numbers
    checks = _choice_checks(cfg) + _size_checks(cfg) + _number_checks(cfg)
    problems = [message for ok, message in checks if not ok]
    metric = _select_metric_problem(cfg.train)
    return problems + ([metric] if metric else [])


def validate_config(cfg: RunConfig, source: str | Path | None = None) -> None:
    """Raise :class:`ConfigError` (naming ``source``, the config file, when given) on the first
    value that cannot work; see :func:`config_problems` and the bounds above."""
    problems = config_problems(cfg)
    if problems:
        raise ConfigError(problems[0], source)


@dataclass(frozen=True)
class DataShape:
    """What the bounds of a run depend on in its data."""

    n_users: int
    n_items: int
    image_dim: int = 0
    text_dim: int = 0


def estimate_bytes(cfg: RunConfig, shape: DataShape) -> int:
    """A lower estimate of the memory a training run of ``cfg`` on data of ``shape`` needs
    (float32): parameters with their gradients and two Adam moments, the propagated layers
    kept for the backward pass, one batch of scored pairs through the experts, one block of
    full-catalogue evaluation scores, and the raw features."""
    m, g, t = cfg.model, cfg.graph, cfg.train
    nodes, d = shape.n_users + shape.n_items, m.embedding_dim
    channels = 3 if m.use_aug_view else 1
    own_tables = 2 if m.use_aug_view and g.content_channels == "id_graph" and g.id_graph_tables == "own" else 0
    params = nodes * d * (1 + own_tables)
    activations = channels * (max(g.n_ui_layers, g.n_mm_layers) + 1) * nodes * d
    pair_width = N_EXPERTS * channels * max(d, m.expert_hidden) if m.use_experts else d
    batch = t.batch_size * (1 + t.n_negatives) * pair_width
    evaluation = 2 * t.eval_batch_users * shape.n_items
    features = shape.n_items * (shape.image_dim + shape.text_dim)
    return 4 * (4 * params + activations + batch + evaluation + features)


def available_memory() -> int | None:
    """Bytes of memory this machine can still give (MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def validate_for_data(cfg: RunConfig, shape: DataShape, source: str | Path | None = None) -> None:
    """Raise :class:`ConfigError` naming ``source`` when ``cfg`` does not fit the data: cut-offs
    beyond the catalogue, as many negatives as items."""
    items = shape.n_items
    if max(cfg.train.topks) > items:
        raise ConfigError(f"train.topks {cfg.train.topks} ask for more than the dataset's {items} items", source)
    if cfg.train.n_negatives >= items:
        raise ConfigError(f"train.n_negatives {cfg.train.n_negatives} must be below the dataset's {items} items",
                          source)


def validate_memory(cfg: RunConfig, shape: DataShape, source: str | Path | None = None,
                    memory: int | None = None) -> None:
    """Raise :class:`ConfigError` naming ``source`` when a training run of ``cfg`` surely does not
    fit the machine: :func:`estimate_bytes` above ``memory`` (default :func:`available_memory`)."""
    need, have = estimate_bytes(cfg, shape), available_memory() if memory is None else memory
    if have is not None and need > have:
        raise ConfigError(f"a run of this size needs at least {need / 2**30:.1f} GiB of memory for "
                          f"{shape.n_users} users x {shape.n_items} items, but {have / 2**30:.1f} GiB are "
                          "available; lower model.embedding_dim, train.batch_size, train.n_negatives or "
                          "train.eval_batch_users", source)
