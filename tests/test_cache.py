import pytest
import torch

from samlp_lite.train.cache import (
    CacheKey,
    StaleCacheEntry,
    load_soft_labels,
    save_soft_labels,
)

KEY = CacheKey(dataset="toy", teacher="gcn", split=0, seed=0, setting="transductive", config_hash="abc")


def test_round_trip_and_absent(tmp_path):
    assert load_soft_labels(KEY, {"logits": (3, 2)}, root=tmp_path) is None
    logits = torch.randn(3, 2)
    save_soft_labels(KEY, {"logits": logits}, {"test_acc": 0.5}, root=tmp_path)
    tensors, meta = load_soft_labels(KEY, {"logits": (3, 2)}, root=tmp_path)
    assert torch.equal(tensors["logits"], logits) and meta == {"test_acc": 0.5}
    assert not list(tmp_path.rglob("*.tmp"))


def test_shape_mismatch_and_nan_are_stale(tmp_path):
    save_soft_labels(KEY, {"logits": torch.randn(3, 2)}, {}, root=tmp_path)
    with pytest.raises(StaleCacheEntry, match="shape"):
        load_soft_labels(KEY, {"logits": (4, 2)}, root=tmp_path)
    save_soft_labels(KEY, {"logits": torch.tensor([[float("nan"), 0.0]])}, {}, root=tmp_path)
    with pytest.raises(StaleCacheEntry, match="NaN"):
        load_soft_labels(KEY, {"logits": (1, 2)}, root=tmp_path)


def test_entry_moved_to_another_key_is_stale(tmp_path):
    other = CacheKey(**{**KEY.as_dict(), "split": 1})
    save_soft_labels(KEY, {"logits": torch.zeros(1, 2)}, {}, root=tmp_path)
    other.path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    KEY.path(tmp_path).rename(other.path(tmp_path))
    with pytest.raises(StaleCacheEntry, match="differs"):
        load_soft_labels(other, {"logits": (1, 2)}, root=tmp_path)


def test_pickled_objects_are_refused(tmp_path):
    path = KEY.path(tmp_path)
    path.parent.mkdir(parents=True)
    torch.save({"format": 1, "key": KEY.as_dict(), "tensors": {}, "meta": {"evil": object()}}, path)
    with pytest.raises(StaleCacheEntry, match="unreadable"):
        load_soft_labels(KEY, {"logits": (1, 2)}, root=tmp_path)
