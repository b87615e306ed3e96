"""Expected failures told as one paragraph: what failed and the setting to change.

A run can end on errors the user can act on (a config error, an engine that does not serve the policy, an
update vLLM refuses, a stop request). The command line prints ``explain(err)`` for those instead of a
traceback; the traceback still goes to the trial's log file and, with ``-v``, to the terminal. Classes are
matched by name so that this module imports nothing heavy (Ray wraps remote errors in its own subclasses).
"""

from __future__ import annotations

import re


class TrialPreempted(RuntimeError):
    """A trial stopped on request (SIGTERM) after writing a checkpoint; running it again resumes it. Defined here,
    free of the training stack, so the sweep scheduler and the smoke trial use the very same class."""


class UsageError(ValueError):
    """A command-line argument that cannot be used (an unknown benchmark, settings that contradict each other);
    the message names the option, the value and what is allowed."""


# class name -> what to do about it (the error's own message says what failed)
HINTS = {
    "ConfigError": "Fix the config field named above (`rlvr config show trial|sweep NAME` prints the resolved config).",
    "StaleEngineError": (
        "The post-sync probe found the rollout engine serving a different policy than the learner holds "
        "(docs/probe.md says what each check sees). Raise rollout.probe_tolerance (gap) or "
        "rollout.probe_slope_tolerance (slope) only if the right policy measures beyond them in this precision, "
        "or set rollout.sync_route: merged for a method whose adapter the engine applies differently. "
        "Running the same command again resumes from the last checkpoint."
    ),
    "AdapterRejected": (
        "vLLM refused the policy update (it still serves the previous one). Set rollout.sync_route: merged to "
        "ship merged weights instead of an adapter, or rollout.engine: hf for the HF generate engine."
    ),
    "UnservableUpdate": (
        "The update cannot be served by this engine (see the fields above). Set rollout.sync_route: merged, or "
        "change the method fields named."
    ),
    "AdapterMismatch": "The built adapter differs from its method config: check the method.* fields named above.",
    "TrialPreempted": "The trial stopped on request after a checkpoint. Run the same command again to resume it.",
    "ExportRefused": "Nothing was written. Follow the fix named above (another --format, --out or --step).",
    "ExportMismatch": "Nothing was copied to --out: the export failed its load-back check (a bug; please report it).",
    "CorruptCheckpoint": "Pass --step with a complete checkpoint (the trial directory lists them under checkpoints/).",
    "LeaseHeld": "Another controller drives this run. Wait for it, pass --wait, or use another sweep name.",
    "UsageError": "Change the option named above (`rlvr COMMAND --help` lists the options).",
    # a path given to a command (a run or trial directory, a benchmark file) that is not there or not one
    "FileNotFoundError": "Check the path named above (`rlvr COMMAND --help` says what each argument takes).",
}


def _cause(err: BaseException) -> BaseException:
    """The user's error inside Ray's wrappers (RayTaskError.cause, then the __cause__ chain)."""
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        inner = getattr(err, "cause", None) or err.__cause__
        if _name(err) is not None and not (isinstance(inner, BaseException) and _name(inner) is not None):
            return err
        if not isinstance(inner, BaseException):
            break
        err = inner
    return err


def _name(err: BaseException) -> str | None:
    """The first class in the error's MRO that has a hint (Ray's RayTaskError(StaleEngineError) included)."""
    return next((c.__name__ for c in type(err).__mro__ if c.__name__ in HINTS), None)


def _message(err: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    # RayTaskError's text is the remote traceback; its last non-empty line is the error itself.
    if "Traceback (most recent call last)" in text:
        text = [ln for ln in text.splitlines() if ln.strip()][-1].strip()
    return text


def explain(err: BaseException, log_path: str | None = None) -> str | None:
    """One paragraph for an expected error (None for any other): what failed, what to change, where the
    traceback is."""
    cause = _cause(err)
    name = _name(cause)
    if name is None:
        return None
    lines = [f"error: {name}: {_message(cause)}", HINTS[name]]
    where = f"the traceback is in {log_path}; " if log_path else ""
    if name not in ("ConfigError", "UsageError"):
        lines.append(f"({where}run with -v to print it here)")
    return "\n".join(lines)


def hint_for(line: str) -> str | None:
    """The hint for an error already reduced to one line ("StaleEngineError: ..." in a sweep's ledger)."""
    return HINTS.get(line.partition(":")[0].strip())
