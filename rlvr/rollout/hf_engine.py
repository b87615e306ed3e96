"""Rollouts on transformers' generate (adapters through peft), for models or methods vLLM cannot serve.

Same contract as the vLLM engine: sampling log-probabilities are the processed ones (after temperature and
top-p, what the tokens were drawn from), as vLLM's processed_logprobs mode reports them and as the learner
computes them (logits / temperature), so importance ratios compare like with like; score() stays raw.
"""

from __future__ import annotations

from rlvr.rollout.spec import EngineSpec
from rlvr.rollout.types import Completion, SamplingSpec
from rlvr.sync.digest import weights_digest
from rlvr.sync.probe import model_logprobs
from rlvr.sync.servable import UnservableUpdate, check_servable
from rlvr.sync.update import PolicyUpdate


class HFEngine:
    """A transformers model serving one policy version; see rlvr.rollout.types.RolloutEngine."""

    def __init__(
        self,
        model_path: str,
        spec: EngineSpec,
        seed: int,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model_cfg = spec.model
        load = {"revision": model_cfg.revision, "trust_remote_code": model_cfg.trust_remote_code}
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, **load)
        self.base = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, model_cfg.dtype), **load)
        self.base.to(self.device).eval()
        self.model = self.base  # the base, or a PeftModel around it while an adapter is served
        self._base_names = set(self.base.state_dict())  # peft renames wrapped weights while an adapter is in
        eos = self.base.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.eos_ids)
        self.max_lora_rank = spec.max_lora_rank
        self._seed = seed
        self._calls = 0
        self._model_path, self._load = model_path, load
        self.version: int | None = None
        self._pristine_digest = weights_digest(self.base.state_dict())

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[list[Completion]]:
        import torch
        from transformers import GenerationConfig

        if not prompts:
            return []
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        sample = spec.temperature > 0
        # A fresh config, so a hub model's defaults (top_k, repetition penalty) do not leak in; vLLM ignores them too.
        config = GenerationConfig(
            max_new_tokens=spec.max_new_tokens,
            do_sample=sample,
            temperature=spec.temperature if sample else None,
            top_p=spec.top_p if sample else None,
            top_k=0 if sample else None,
            num_return_sequences=spec.n,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.pad_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
        seed = spec.seed if spec.seed is not None else self._seed + self._calls
        self._calls += 1
        with torch.no_grad(), torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        new = out.sequences[:, width:]
        # scores are the logits after generate's temperature and top-p warpers (-inf outside the nucleus)
        logprobs = torch.stack(out.scores, 1).float().log_softmax(-1).gather(-1, new[..., None])[..., 0]
        groups: list[list[Completion]] = [[] for _ in prompts]
        for row, (tokens, lps) in enumerate(zip(new.tolist(), logprobs.tolist())):
            stop = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
            end = len(tokens) if stop is None else stop + 1
            groups[row // spec.n].append(
                Completion(
                    prompt_index=row // spec.n,
                    token_ids=tokens[:end],
                    logprobs=lps[:end],
                    text=self.tokenizer.decode(tokens[:end], skip_special_tokens=True),
                    finish_reason="length" if stop is None else "stop",
                )
            )
        return groups

    def score(self, prompt: list[int], completion: list[int]) -> list[float]:
        return model_logprobs(self.model, prompt, completion)

    def load_policy(self, update: PolicyUpdate) -> None:
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load

        check_servable(update, self.max_lora_rank)
        weights = load(update.base_weights) if update.base_weights is not None else {}
        unknown = sorted(set(weights) - self._base_names)
        if unknown:
            raise UnservableUpdate(
                f"policy v{update.version}: base_weights has {len(unknown)} tensor(s) the model lacks, e.g. "
                f"{unknown[:3]}"
            )
        if self.model is not self.base:
            self.base = self.model.unload()  # takes the adapter layers out without merging them
        self.base.load_state_dict(weights, strict=False)
        self.model = self.base
        if update.has_adapter:
            # The shipped tensors replace the initial A and B, so use the init without side effects on the base.
            config = LoraConfig.from_peft_type(
                **{**update.lora_config, "init_lora_weights": True, "inference_mode": True}
            )
            self.model = get_peft_model(self.base, config).eval()
            result = set_peft_model_state_dict(self.model, load(update.lora_tensors))
            if result.unexpected_keys:
                raise UnservableUpdate(
                    f"policy v{update.version}: adapter tensors match no module, e.g. {result.unexpected_keys[:3]}"
                )
        self.version = update.version

    def reset(self, seed: int) -> None:
        """A warm pool's lease: the pristine base (read back from the checkpoint if an update changed it, then
        checked by digest), no adapter, and the seed of an engine started with ``seed``."""
        from transformers import AutoModelForCausalLM

        if self.model is not self.base:
            self.base = self.model.unload()
            self.model = self.base
        if weights_digest(self.base.state_dict()) != self._pristine_digest:
            pristine = AutoModelForCausalLM.from_pretrained(self._model_path, dtype=self.base.dtype, **self._load)
            self.base.load_state_dict(pristine.state_dict())
            if weights_digest(self.base.state_dict()) != self._pristine_digest:
                raise RuntimeError("rollout engine: the base weights differ from the pristine checkpoint after a reset")
        self._seed, self._calls, self.version = seed, 0, None

    def close(self) -> None:
        import gc

        del self.model, self.base
        gc.collect()
