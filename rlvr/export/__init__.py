"""`rlvr export`: a trial's trained policy as something the outside world loads, checked by loading it back.

- source.py: a trial's config and a verified checkpoint, rebuilt as the trial's policy; its merged model directory
  (also what `rlvr eval --trial` evaluates)
- command.py: `rlvr export TRIAL_DIR --format adapter|merged --out DIR`, local paths or pyarrow URIs
- verify.py: the written directory loaded back (transformers, peft, vLLM) must score the post-sync probe as the
  trial's policy does
- card.py: the model card (README.md) of an export

When you change this package, run `.venv/bin/python -m pytest tests/export -q`.
"""
