"""The `rlvr` command line. Each command parses arguments and calls one function of the package."""

from __future__ import annotations

import logging
import sys

import typer

from rlvr.config.loader import ConfigError

app = typer.Typer(
    help="RL with verifiable rewards: compare PEFT methods, then train with the best.",
    no_args_is_help=True,
    add_completion=False,
)
model_app = typer.Typer(
    help="Model weights: fetch a sweep's into the shared cache; build and pretrain tiny ones.", no_args_is_help=True
)
config_app = typer.Typer(help="Load, validate and print configs.", no_args_is_help=True)
analyze_app = typer.Typer(help="Analyses of trained policies.", no_args_is_help=True)
app.add_typer(model_app, name="model")
app.add_typer(config_app, name="config")
app.add_typer(analyze_app, name="analyze")

Overrides = typer.Argument(None, help="Overrides as a.b.c=value.")
_VERBOSE = {"on": False}  # set by the --verbose option; read by main() and the sweep's progress view


def _setup_logging(verbose: bool) -> None:
    """rlvr's own events (trial steps, sweep progress) at INFO; libraries' at WARNING unless --verbose."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("rlvr").setLevel(logging.INFO)


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log libraries (Ray, vLLM, ...) at INFO too."),
) -> None:
    _VERBOSE["on"] = verbose
    _setup_logging(verbose)


@app.command()
def doctor(
    cluster: bool = typer.Option(
        True, "--cluster/--no-cluster", help="Also connect to a running Ray cluster and report it."
    ),
) -> None:
    """Versions of the stack (against the lock), the device vLLM will use, and Ray's status."""
    from rlvr.doctor import run_doctor

    raise typer.Exit(run_doctor(cluster))


@model_app.command("build-tiny")
def build_tiny(
    out: str = typer.Argument(..., help="Directory to write the model and tokenizer to."),
    config: str = typer.Option("tiny", help="Model config (configs/models/NAME.yaml or a path)."),
) -> None:
    """Build a randomly initialised tiny Qwen2 with its character tokenizer and chat template."""
    from pathlib import Path

    from rlvr.config.loader import build, find_config, load_raw
    from rlvr.config.schema import ModelConfig
    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny

    path = find_config(config, "models")
    cfg = build(ModelConfig, load_raw(path), str(path))
    if cfg.tiny is None:
        raise ConfigError(f"{path}: tiny: this model config has no tiny section")
    save_tiny(build_model(cfg.tiny), build_tokenizer(), Path(out))
    typer.echo(f"wrote {out}")


@model_app.command("pretrain")
def pretrain_cmd(
    config: str = typer.Argument("tiny", help="Model config with a tiny section."),
    overrides: list[str] | None = Overrides,
    ship: bool = typer.Option(
        False,
        "--ship",
        help="Pretrain from scratch and write the weights into the package "
        "(rlvr/models/assets), to be committed as the base every machine installs.",
    ),
) -> None:
    """Build the cached tiny base (installed from the shipped weights, or pretrained) and print its accuracy."""
    import json

    from rlvr.config.loader import build, find_config, load_raw
    from rlvr.config.schema import ModelConfig
    from rlvr.models import pretrain

    path = find_config(config, "models")
    cfg = build(ModelConfig, load_raw(path, overrides or []), str(path))
    if cfg.tiny is None:
        raise ConfigError(f"{path}: tiny: this model config has no tiny section")
    if ship:
        asset = pretrain.ship(cfg.tiny)
        typer.echo(f"wrote {asset} and {asset.with_suffix('.json').name}\n{asset.with_suffix('.json').read_text()}")
        return
    out = pretrain.ensure_tiny(cfg.tiny)
    stats = json.loads((out / "pretrain.json").read_text())
    typer.echo(f"{out}\n" + json.dumps({k: v for k, v in stats.items() if k != "config"}, indent=2))


@model_app.command("fetch")
def model_fetch(
    config: str = typer.Argument(..., help="Sweep or trial config name or path."),
    overrides: list[str] | None = Overrides,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would be fetched and whether it is cached; download nothing."
    ),
) -> None:
    """Download every model and hub dataset a sweep uses into the shared cache (HF_HOME; tiny models into
    RLVR_CACHE_DIR), so that trials load them offline. Exit code 1 when something could not be fetched."""
    from rlvr.cluster.fetch import fetch, locate
    from rlvr.cluster.needs import load_trials, needs_of

    needs = needs_of(load_trials(config, overrides or []))
    found = [locate(n, download=False) for n in needs] if dry_run else fetch(needs)
    for f in found:
        state = "cached" if f.path else "MISSING" if dry_run else "FAILED"
        typer.echo(f"{state:<7}  {f.need.kind:<7}  {f.need.name}  {f.detail}")
    raise typer.Exit(0 if dry_run or all(f.path for f in found) else 1)


@app.command()
def preflight(
    config: str = typer.Argument(..., help="Sweep config name or path."),
    overrides: list[str] | None = Overrides,
    address: str | None = typer.Option(None, help="Ray address (auto on a cluster node); default a private local Ray."),
    allow_fake_gpus: bool = typer.Option(
        False, "--allow-fake-gpus", help="Skip, not fail, GPUs declared on nodes without an NVIDIA driver."
    ),
    node_timeout: float = typer.Option(900.0, help="Seconds to wait for each node type's checks."),
) -> None:
    """Check one node of every node type before a sweep: CUDA, NCCL, vLLM, DeepSpeed, storage, data, weights."""
    from rlvr.sweep.cli import preflight_command

    raise typer.Exit(preflight_command(config, overrides or [], address, allow_fake_gpus, node_timeout))


@config_app.command("show")
def config_show(
    kind: str = typer.Argument(..., help="trial or sweep."),
    name: str = typer.Argument(..., help="Config name or path."),
    overrides: list[str] | None = Overrides,
) -> None:
    """Print the resolved, validated config."""
    from rlvr.config.loader import dump, load_sweep, load_trial

    loaders = {"trial": load_trial, "sweep": load_sweep}
    if kind not in loaders:
        raise ConfigError(f"kind: {kind!r} is not one of trial, sweep")
    typer.echo(dump(loaders[kind](name, overrides or [])))


@app.command()
def methods(
    model: str = typer.Option("tiny", help="Model config whose parameters are counted."),
    preset: str = typer.Option("uniform", help="Method preset: paper or uniform."),
) -> None:
    """Table of PEFT methods: group, modules, rank, trainable parameters and % of the model, sync route."""
    from rlvr.config.loader import build, find_config, load_raw
    from rlvr.config.schema import ModelConfig
    from rlvr.peft_methods.table import format_methods_table, methods_table

    path = find_config(model, "models")
    cfg = build(ModelConfig, load_raw(path), str(path))
    format_methods_table(methods_table(cfg, preset))


@app.command()
def train(
    config: str = typer.Argument(..., help="Trial config name or path."), overrides: list[str] | None = Overrides
) -> None:
    """Run one trial (resumes from its newest checkpoint)."""
    from rlvr.trial.cli import train_command

    train_command(config, overrides or [], verbose=_VERBOSE["on"])


@app.command()
def sweep(
    config: str = typer.Argument("demo-cpu", help="Sweep config name or path."),
    overrides: list[str] | None = Overrides,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the trial table with resources and exit."),
    wait: bool = typer.Option(False, "--wait", help="Wait for another controller's lease instead of refusing."),
    no_preflight: bool = typer.Option(False, "--no-preflight", help="Start the trials without the preflight checks."),
    no_pools: bool = typer.Option(False, "--no-pools", help="Each trial starts its own actors (same as pools=false)."),
) -> None:
    """Run a sweep on the current Ray cluster (local if none), after `rlvr preflight`'s checks; re-running resumes
    it."""
    from rlvr.sweep.cli import sweep_command

    overrides = [*(overrides or []), *(["pools=false"] if no_pools else [])]
    raise typer.Exit(
        sweep_command(config, overrides, dry_run=dry_run, wait=wait, preflight=not no_preflight, verbose=_VERBOSE["on"])
    )


@app.command()
def study(
    config: str = typer.Argument("demo-cpu", help="Study config name (configs/studies/) or path."),
    overrides: list[str] | None = Overrides,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the budget (trials, time, GPU-hours) and exit."),
) -> None:
    """Which method, at which learning rate: tune each method's lr on tuning seeds, compare on fresh seeds, print
    the answer. Re-running resumes it."""
    from rlvr.study.cli import study_command

    raise typer.Exit(study_command(config, overrides or [], dry_run=dry_run, verbose=_VERBOSE["on"]))


@app.command()
def plan(
    config: str = typer.Argument(..., help="Sweep or trial config name or path."),
    overrides: list[str] | None = Overrides,
) -> None:
    """Memory plan per actor (weights, gradients, optimizer, activations, logits, KV cache), GPUs, nodes, GPU-hours;
    for a sweep, the pooled plan (trials sharing a batch as tenants) beside the solo one."""
    from rlvr.config.memory_report import plan_command
    from rlvr.pool.warm import pool_key

    typer.echo(plan_command(config, overrides or [], key=pool_key))


@app.command()
def status(run: str = typer.Argument(..., help="Run directory or URI (<storage>/<sweep name>).")) -> None:
    """Print the trial table of a run from its ledger."""
    from rlvr.sweep.cli import status_command

    raise typer.Exit(status_command(run))


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("tiny", help="Model config name (configs/models), local path or hub name."),
    adapter: str | None = typer.Option(None, help="A peft adapter directory to merge onto the model."),
    trial: str | None = typer.Option(
        None,
        help="A trial directory: evaluate its checkpoint with the trial's own "
        "evaluation settings; the options below override them (replaces --model).",
    ),
    step: int | None = typer.Option(None, help="Checkpoint step of --trial (default: the newest)."),
    benchmarks: list[str] | None = typer.Option(
        None, help="Benchmark names, synthetic:<task> or hub:<dataset> (repeat the option; default math500)."
    ),
    k: int | None = typer.Option(None, help="Samples per problem (default: each benchmark's k, else 4)."),
    limit: int | None = typer.Option(None, help="Only the first N problems of each benchmark."),
    engine: str = typer.Option("vllm", help="vllm or hf."),
    temperature: float | None = typer.Option(None, help="Sampling temperature (default 0.7, the study's)."),
    top_p: float | None = typer.Option(None, help="Nucleus sampling (default 0.9, the study's)."),
    max_new_tokens: int | None = typer.Option(
        None, help="Completion limit (default the study's 31,744, capped to what the model's context leaves)."
    ),
    prompt_template: str | None = typer.Option(None, help="Prompt template (default study)."),
    out: str = typer.Option("runs/eval", help="Directory for samples and summary Parquet files."),
    extraction: str | None = typer.Option(None, help="Answer extraction: study or lenient (default study)."),
) -> None:
    """Evaluate a model, adapter or trial checkpoint on benchmarks: Avg@k and Pass@k per benchmark."""
    from rich.console import Console
    from rich.table import Table

    from rlvr.eval.cli import eval_command

    summary = eval_command(
        model=model,
        adapter=adapter,
        benchmarks=benchmarks,
        k=k,
        limit=limit,
        engine=engine,
        out=out,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        prompt_template=prompt_template,
        trial=trial,
        trial_step=step,
        extraction=extraction,
    )
    table = Table(title=f"evaluation -> {out}")
    for col in summary.column_names:
        table.add_column(col)
    for row in summary.to_pylist():
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)


@app.command("export")
def export_cmd(
    trial: str = typer.Argument(..., help="Trial directory or URI (<run>/trials/<id>)."),
    out: str = typer.Option(..., help="New directory or URI to write the export to."),
    format: str = typer.Option(..., "--format", help="adapter (peft LoRA for the original base) or merged (model)."),
    step: int | None = typer.Option(None, help="Checkpoint step (default: the newest complete one)."),
    vllm: bool = typer.Option(True, "--vllm/--no-vllm", help="Also check an adapter served by vLLM (CPU or GPU)."),
) -> None:
    """Export a trial's policy for use outside rlvr, checked by loading it back (log-probs of the sync probe)."""
    from rlvr.export.command import export_command

    result = export_command(trial, out, format, step, vllm=vllm)
    checks = ", ".join(f"{c.loader} gap {c.gap:.2g}" for c in result.checks)
    typer.echo(f"wrote {result.format} of step {result.step} to {result.out} (loaded back: {checks})")


@analyze_app.command("spectral")
def analyze_spectral(target: str = typer.Argument(..., help="A trial directory or a run directory.")) -> None:
    """Spectral analysis of the updates (dW = W_t - W_0) at the kept checkpoints."""
    from rlvr.analysis.cli import spectral_command

    spectral_command(target)


@app.command()
def report(
    run: str = typer.Argument(..., help="Run directory."),
    out: str | None = typer.Option(None, help="Output directory (default: <run>/report)."),
) -> None:
    """Write the HTML + Markdown report of a run."""
    from rlvr.analysis.cli import report_command

    report_command(run, out)


def main() -> None:
    from rlvr.errors import UsageError, explain

    try:
        app()
    except Exception as e:  # expected failures get one paragraph; anything else its traceback
        message = explain(e, getattr(e, "trial_log", None))
        if message is None or _VERBOSE["on"]:
            raise
        typer.echo(message, err=True)
        sys.exit(2 if isinstance(e, (ConfigError, UsageError)) else 1)


if __name__ == "__main__":
    main()
