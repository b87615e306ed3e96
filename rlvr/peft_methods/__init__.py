"""PEFT methods as data: one registry entry per method, built, verified and exported the same way.

- registry.py: the method table (torch-free), method_names / method_info / check_method_config / build_policy
- build.py: peft config from a MethodConfig, building, and verification of the built model
- policy.py: AdapterPolicy (optimizer groups, AdaLoRA hooks, checkpoint state, export along three routes, and
  as one LoRA on the original base for `rlvr export` and shared batches: ``export(route="native")``)
- sharing.py: which method configs can share one engine's batch on the original base (torch-free, for pools)
- weights.py: fp32 effective weights and LoRA forms, never touching the learner's weights
- milora.py: MiLoRA's bottom-r SVD init (not in peft)
- table.py: `rlvr methods` rows, counted on the meta device for hub models

When you change this package, run `.venv/bin/python -m pytest tests/peft_methods -q` (~1 min, the vLLM serving
test included); add a method = add a MethodSpec, a configs/methods/uniform/<name>.yaml, and a test row.
"""
