"""Bounded buckets cover a field exactly, reassemble to the same tensors (bf16 too), and refuse a missing bucket."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save

from rlvr.sync.buckets import Staging, bucket_bytes, load_tensors, split


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "w": torch.randn(33, 17, generator=g),
        "h": torch.randn(5, 3, generator=g).to(torch.bfloat16),
        "i": torch.arange(7),
        "empty": torch.zeros(0, 4),
    }


def test_buckets_are_bounded_and_reassemble_to_the_same_tensors():
    data = save(_tensors())
    chunks = list(split(data, 100))
    assert len(chunks) == -(-len(data) // 100) and all(len(c) <= 100 for _, c in chunks)
    staging = Staging()
    for offset, chunk in chunks:
        staging.put("base_weights", len(data), offset, chunk)
    got = load_tensors(staging.take("base_weights"))
    assert got.keys() == _tensors().keys()
    for name, want in _tensors().items():
        assert got[name].dtype == want.dtype and torch.equal(got[name], want)
    assert staging.take("lora_tensors") is None


def test_a_missing_bucket_is_refused_before_anything_is_parsed():
    data = save(_tensors())
    staging = Staging()
    for offset, chunk in list(split(data, 64))[:-1]:
        staging.put("lora_tensors", len(data), offset, chunk)
    with pytest.raises(ValueError, match=f"lora_tensors: received .* of {len(data)} bytes; a bucket is missing"):
        staging.take("lora_tensors")


def test_a_bucket_past_the_field_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        Staging().put("base_weights", 10, 0, b"x" * 11)


def test_bucket_size_and_empty_field():
    assert bucket_bytes(1 / 64) == 16384 and bucket_bytes(1e-9) == 1
    assert list(split(b"", 8)) == [(0, b"")]
