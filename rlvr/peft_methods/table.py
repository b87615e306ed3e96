"""`rlvr methods`: every method of a preset on a given model, with verified trainable-parameter counts.

Hub models (``architecture`` set) are built on the meta device, so the 7B table needs no weights and no GPU;
tiny models are built for real. Counts come from the built and verified model, never from a formula.
"""

from __future__ import annotations

from typing import Any

from rlvr.config.loader import build, config_root, load_raw
from rlvr.config.methods import SPECS
from rlvr.config.schema import ALL_LINEAR, MethodConfig, ModelConfig
from rlvr.models.loading import meta_model
from rlvr.models.tiny import build_model
from rlvr.peft_methods.build import build_adapted, verify_adapted

_COUNT_STEPS = 1000  # AdaLoRA needs a schedule length; it does not change the parameter layout


def _empty_model(model_cfg: ModelConfig):
    if model_cfg.tiny is not None:
        return build_model(model_cfg.tiny)

    return meta_model(model_cfg)


def methods_table(model_cfg: ModelConfig, preset: str, methods: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per method (all, or ``methods``) that has configs/methods/<preset>/<name>.yaml, built and verified.

    Some peft builders are slow on big shapes even without weights (FourierFT ~45 s, BOFT ~25 s for 1.5B).
    """
    folder = config_root() / "methods" / preset
    if not folder.is_dir():
        raise ValueError(f"preset: {preset!r} has no folder {folder}; allowed: paper, uniform")
    rows = []
    for spec in SPECS:
        path = folder / f"{spec.name}.yaml"
        if not path.is_file() or (methods is not None and spec.name not in methods):
            continue
        cfg = build(MethodConfig, load_raw(path), str(path))
        model = _empty_model(model_cfg)
        base_params = sum(p.numel() for p in model.parameters())
        real = model_cfg.tiny is not None
        row = {"method": spec.name, "group": spec.group, "preset": preset, "route": spec.route}
        try:
            adapted = build_adapted(model, spec, cfg, _COUNT_STEPS, initialize=real)
        except NotImplementedError as e:
            # Adapters whose layout depends on data (SHiRA's mask uses nonzero) cannot be built on meta.
            rows.append(
                {
                    **row,
                    "modules": ",".join(cfg.target_modules or ()),
                    "rank": cfg.rank,
                    "trainable_params": None,
                    "pct_of_model": None,
                    "note": f"not countable on meta: {e}"[:120],
                }
            )
            continue
        rec = verify_adapted(adapted, spec, cfg, base_params, initialized=real)
        rows.append(
            {
                **row,
                "modules": ",".join(rec["modules"]),
                "rank": rec["rank"],
                "trainable_params": rec["trainable_params"],
                "pct_of_model": rec["trainable_pct"],
            }
        )
    return rows


def format_methods_table(rows: list[dict[str, Any]], console=None):
    """Print methods_table rows as a rich table (on ``console``, default stdout) and return the Table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"PEFT methods ({rows[0]['preset']} preset)" if rows else "PEFT methods",
        caption="modules: all = " + ",".join(m.removesuffix("_proj") for m in ALL_LINEAR),
    )
    for col, justify in (
        ("method", "left"),
        ("group", "left"),
        ("modules", "left"),
        ("rank", "right"),
        ("trainable", "right"),
        ("% model", "right"),
        ("route", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=col not in ("group", "modules"))
    for r in rows:
        names = r["modules"].split(",")
        modules = "all" if set(names) == set(ALL_LINEAR) else ",".join(m.removesuffix("_proj") for m in names)
        table.add_row(
            r["method"],
            r["group"],
            modules,
            "-" if r["rank"] is None else str(r["rank"]),
            "n/a" if r["trainable_params"] is None else f"{r['trainable_params']:,}",
            "n/a" if r["pct_of_model"] is None else f"{r['pct_of_model']:.3f}",
            r["route"],
        )
    (console or Console()).print(table)
    return table
