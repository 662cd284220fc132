"""Configuration dataclasses (spec §2–§6), serialised to and from JSON.

Every number of the specification is a field here, never a constant in code. A run is
described by one :class:`RunConfig`, which nests the graph, model, routing and training
sections, in the spirit of RecBole's model/config split.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .variants import VARIANT_TABLE, VARIANTS


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
    cue_scale_init: float = 1.0  # initial β of the cue router (β = softplus(learned) > 0)
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
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError("config file not found", path) from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path) from None
        if not isinstance(raw, dict):
            raise ConfigError("expected a JSON object", path)
        return cls.from_dict(raw, str(path))


def _build(cls: type, raw: dict[str, Any], source: str) -> Any:
    """Build dataclass ``cls`` from ``raw``, rejecting unknown keys and wrong types."""
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
                raise ConfigError(f"{cls.__name__}.{name} must be an object", source)
            kwargs[name] = _build(type(default), value, source)
            continue
        kwargs[name] = _coerce(value, default, f"{cls.__name__}.{name}", source)
    return cls(**kwargs)


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
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}", source)
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, int) and v > 0 for v in value):
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


def validate_config(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` on values that cannot work."""
    checks: list[tuple[bool, str]] = [
        (cfg.variant in VARIANTS, f"variant must be one of {', '.join(VARIANTS)}"),
        (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:"),
         "device must be auto, cpu or cuda"),
        (cfg.model.embedding_dim > 0, "model.embedding_dim must be positive"),
        (cfg.model.expert_hidden > 0, "model.expert_hidden must be positive"),
        (cfg.model.expert_kind in ("mlp", "diagonal"), "model.expert_kind must be mlp or diagonal"),
        (cfg.model.feature_dim >= 0, "model.feature_dim must be >= 0 (0 = no reduction)"),
        (cfg.model.router_rank >= 0, "model.router_rank must be >= 0 (0 = full-width diagonal router)"),
        (cfg.model.router in ("cue", "bilinear", "cue+bilinear"), "model.router must be cue, bilinear or cue+bilinear"),
        (cfg.model.cue_dim >= 1, "model.cue_dim must be >= 1"),
        (cfg.model.cue_scale_init > 0, "model.cue_scale_init must be positive"),
        (not cfg.model.cue_in_scores or cfg.model.router == "cue", "model.cue_in_scores needs model.router cue"),
        (cfg.graph.n_ui_layers >= 0, "graph.n_ui_layers must be >= 0"),
        (cfg.graph.n_mm_layers >= 0, "graph.n_mm_layers must be >= 0"),
        (cfg.graph.knn_k > 0, "graph.knn_k must be positive"),
        (0.0 <= cfg.graph.image_weight <= 1.0, "graph.image_weight must be in [0, 1]"),
        (0.0 <= cfg.graph.tail_quantile < 1.0, "graph.tail_quantile must be in [0, 1)"),
        (cfg.routing.switch_mode in ("trigger", "fixed"), "routing.switch_mode must be trigger or fixed"),
        (1 <= cfg.routing.k_cov <= 9 and 1 <= cfg.routing.k_spec <= 9, "routing K must be in 1..9"),
        (cfg.routing.tau_cov > 0 and cfg.routing.tau_spec > 0, "routing temperatures must be positive"),
        (0.0 <= cfg.routing.ema < 1.0, "routing.ema must be in [0, 1)"),
        (cfg.routing.window >= 1, "routing.window must be >= 1"),
        (cfg.routing.ramp_steps >= 0, "routing.ramp_steps must be >= 0"),
        (cfg.train.epochs >= 1, "train.epochs must be >= 1"),
        (cfg.train.batch_size >= 1, "train.batch_size must be >= 1"),
        (cfg.train.lr > 0, "train.lr must be positive"),
        (cfg.train.patience >= 1, "train.patience must be >= 1"),
        (cfg.train.loss in ("bpr", "softmax"), "train.loss must be bpr or softmax"),
        (cfg.train.n_negatives >= 1, "train.n_negatives must be >= 1"),
        (cfg.train.softmax_tau > 0, "train.softmax_tau must be positive"),
        (0 <= cfg.train.warmup_epochs < cfg.train.epochs, "train.warmup_epochs must be in [0, epochs)"),
        (cfg.train.eval_every >= 1, "train.eval_every must be >= 1"),
        (len(cfg.train.topks) > 0, "train.topks must not be empty"),
        (cfg.graph.content_channels in ("features", "id_graph"),
         "graph.content_channels must be features or id_graph"),
        (cfg.graph.id_graph_tables in ("own", "shared"), "graph.id_graph_tables must be own or shared"),
        (cfg.graph.id_graph_weight >= 0.0, "graph.id_graph_weight must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    metric, _, k = cfg.train.select_metric.partition("@")
    if metric not in ("recall", "ndcg", "precision", "map") or not k.isdigit() or int(k) not in cfg.train.topks:
        raise ConfigError(f"train.select_metric {cfg.train.select_metric!r} must be <metric>@K with K in topks")
