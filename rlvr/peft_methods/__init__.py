"""PEFT methods as data: one entry per method in the method table (rlvr.config.methods, torch-free), built,
verified and exported the same way here.

- base.py: the Policy protocol learners, trial and analysis use
- build.py: peft config from a MethodConfig, building, and verification of the built model
- policy.py: build_policy and AdapterPolicy (optimizer groups, AdaLoRA hooks, checkpoint state, export along three
  routes, and as one LoRA on the original base for `rlvr export` and shared batches: ``export(route="native")``;
  which methods can share a batch: rlvr.config.sharing)
- weights.py: fp32 effective weights and LoRA forms, never touching the learner's weights
- milora.py: MiLoRA's bottom-r SVD init (not in peft)
- table.py: `rlvr methods` rows, counted on the meta device for hub models

When you change this package, run `.venv/bin/python -m pytest tests/peft_methods -q` (~1 min, the vLLM serving
test included); add a method = add a MethodSpec (rlvr/config/methods.py), a configs/methods/uniform/<name>.yaml,
and a test row.
"""
