"""Code that runs inside a vLLM worker to swap the served policy, called by method name (``PolicyLoader``).

Arguments are bytes (safetensors, in buckets) and plain dicts, which vLLM's msgpack carries to an engine in
other processes. Everything that can reject an update runs before the worker's state is touched, so a bad
update fails cleanly and the previous policy keeps serving.
"""

from __future__ import annotations

from pathlib import Path

from rlvr.rollout.vllm_cpu_lora import install_segmented_lora_kernels
from rlvr.sync.buckets import Staging, load_tensors
from rlvr.sync.digest import weights_digest


def _packed_layer(name: str, packed_of: dict[str, str]) -> str:
    """The vLLM layer a checkpoint tensor loads into: q/k/v -> qkv_proj, gate/up -> gate_up_proj."""
    module = name.rsplit(".", 1)[0]
    parent, _, leaf = module.rpartition(".")
    return f"{parent}.{packed_of.get(leaf, leaf)}"


def _complete_layers(weights: dict, model, pristine_files: list[str]) -> dict:
    """Add, from the pristine checkpoint, every tensor that shares a vLLM layer with an updated one.

    vLLM's in-place reload rebuilds a layer only when all its tensors arrive; a partly loaded packed layer
    (q_proj without k_proj, v_proj and the biases) comes out as garbage. Updates list only changed
    tensors, so the unchanged siblings are pristine by construction.
    """
    from safetensors import safe_open

    packed_of = {leaf: packed for packed, leaves in model.packed_modules_mapping.items() for leaf in leaves}
    touched = {_packed_layer(n, packed_of) for n in weights}
    completed, known = dict(weights), set()
    for path in pristine_files:
        with safe_open(path, framework="pt") as f:
            for name in f.keys():
                known.add(name)
                if name not in completed and _packed_layer(name, packed_of) in touched:
                    completed[name] = f.get_tensor(name)
    unknown = sorted(set(weights) - known)
    if unknown:
        raise ValueError(f"base_weights: {len(unknown)} tensor(s) not in the base checkpoint, e.g. {unknown[:3]}")
    return completed


class PolicyLoader:
    """vLLM worker extension (``LLM(worker_extension_cls=...)``): the engine calls these by name through
    ``collective_rpc``, so only names, bytes and plain values cross into an out-of-process engine and vLLM's
    insecure (pickle) serialization stays off. Method names carry the ``rlvr_`` prefix because vLLM mixes this
    class into its worker class, which must not already have them."""

    def rlvr_stage(self, field: str, total: int, offset: int, chunk: bytes) -> None:
        """Keep one bucket of an update field; nothing served changes until ``rlvr_apply``."""
        if getattr(self, "_rlvr_staging", None) is None:
            self._rlvr_staging = Staging()
        self._rlvr_staging.put(field, total, offset, chunk)

    def rlvr_discard(self) -> None:
        """Drop a partly staged update (the driver failed to send all of it)."""
        self._rlvr_staging = None

    def rlvr_apply(
        self, lora_id: int | None, lora_config: dict | None, pristine_files: list[str], previous_lora_id: int | None
    ) -> None:
        """Serve the staged policy: parse everything first, then drop the old adapter, reload, add."""
        staging, self._rlvr_staging = getattr(self, "_rlvr_staging", None) or Staging(), None
        lora_tensors, base_weights = staging.take("lora_tensors"), staging.take("base_weights")
        runner = self.model_runner
        lora = (
            _parse_adapter(runner.lora_manager, lora_id, load_tensors(lora_tensors), lora_config)
            if lora_tensors
            else None
        )
        weights = (
            _complete_layers(load_tensors(base_weights), runner.get_model(), pristine_files) if base_weights else None
        )
        if previous_lora_id is not None:
            runner.lora_manager.remove_adapter(previous_lora_id)
        if weights is not None:
            _quiet_partial_reload()
            self.reload_weights(weights_iterator=iter(weights.items()))  # also drops every loaded adapter
        if lora is not None:
            # WorkerLoRAManager only loads adapters from a path; its model manager takes a built LoRAModel.
            runner.lora_manager._adapter_manager.add_adapter(lora)

    def rlvr_restore(self, previous_lora_ids: list[int], pristine_files: list[str], seed: int | None) -> None:
        """A warm pool's lease: no adapter (those of ``previous_lora_ids`` removed), the base reloaded whole from
        its checkpoint (``pristine_files``, empty when no update touched it), and the sampling RNG seeded as an
        engine started with ``seed`` has it (None: a tenant's slot only, the RNG is the other tenants' too)."""
        from vllm.utils.torch_utils import set_random_seed

        self._rlvr_staging = None
        for lora_id in previous_lora_ids:
            self.model_runner.lora_manager.remove_adapter(lora_id)
        if pristine_files:
            from safetensors import safe_open

            def pristine():
                for path in pristine_files:
                    with safe_open(path, framework="pt") as f:
                        yield from ((name, f.get_tensor(name)) for name in f.keys())

            self.reload_weights(weights_iterator=pristine())
        if seed is not None:
            set_random_seed(seed)

    def rlvr_weights_digest(self) -> str:
        """The digest of the served base weights (rlvr.sync.digest), to check a restore."""
        return weights_digest(self.model_runner.get_model().named_parameters())

    def rlvr_install_cpu_lora_kernels(self) -> None:
        """Patch vLLM's CPU LoRA kernels in the process that runs them (the engine core's, when out of process)."""
        install_segmented_lora_kernels()


def _quiet_partial_reload() -> None:
    """A policy update carries only the tensors it changes, so vLLM's reload warns about every layer it kept
    (norms, embeddings) on every sync; those warnings describe the intended partial reload."""
    import logging

    for name in (
        "vllm.model_executor.model_loader.reload.layerwise",
        "vllm.model_executor.model_loader.reload.inplace",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


def _parse_adapter(manager, lora_id: int, tensors: dict, config: dict):
    """vLLM's own validation and LoRAModel construction, as its path-based loader does them."""
    from vllm.lora.lora_model import LoRAModel
    from vllm.lora.peft_helper import PEFTHelper

    helper = PEFTHelper.from_dict({**config, "vllm_max_position_embeddings": manager.max_position_embeddings})
    helper.validate_legal(manager.lora_config)
    model = manager._adapter_manager.model
    mapper = getattr(model, "hf_to_vllm_mapper", None)
    return LoRAModel.from_lora_tensors(
        lora_id,
        tensors,
        helper,
        device="cpu",
        dtype=manager.lora_config.lora_dtype,
        model_vocab_size=manager.vocab_size,
        weights_mapper=mapper.get_rename_mapper() if mapper is not None else None,
        skip_prefixes=getattr(model, "lora_skip_prefixes", None),
    )


def checkpoint_files(model_dir: Path) -> list[str]:
    """The safetensors shards of a model directory (the pristine base the engine started from)."""
    files = sorted(str(p) for p in model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"model_path: no *.safetensors files in {model_dir}; the engine reloads base weights from them"
        )
    return files
