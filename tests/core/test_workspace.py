"""aeviz.workspace: a student's saved models and datasets on disk under an unguessable token."""
from __future__ import annotations

import os
import pickle
import time

import pytest

import aeviz
from aeviz import io
from aeviz import workspace as store
from aeviz.workspace import StoreError


@pytest.fixture
def data(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("AEVIZ_DATA", str(root))
    for var in ("AEVIZ_MAX_AGE_DAYS", "AEVIZ_STUDENT_MB"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.fixture(scope="module")
def checkpoint() -> bytes:
    model = aeviz.build(aeviz.config_for("digits", hidden=(16,), latent_dim=2))  # untrained is enough here
    return io.to_bytes(model, {"test_mse": 0.5}, {"epochs": [1]})


def files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_saved_model_comes_back(data, checkpoint):
    token = store.new_token()
    assert store.valid_token(token) and store.list_models(token) == []
    assert not data.exists()  # created lazily, on the first save
    e = store.save_model(token, "my model: best/../one.safetensors", checkpoint)
    assert (e.kind, e.name, e.size) == ("model", "my-model-best-..-one", len(checkpoint))
    assert store.list_models(token) == [e]
    assert store.load_model_bytes(token, e.id) == checkpoint
    assert aeviz.load(store.load_model_bytes(token, e.id)).metrics == {"test_mse": 0.5}
    assert files(data) == [f"students/{token}/models/{e.id}_my-model-best-..-one.safetensors"]


def test_names_stay_unique_and_delete_removes_one(data, checkpoint):
    token = store.new_token()
    a = store.save_model(token, "vae", checkpoint)
    b = store.save_model(token, "vae.safetensors", checkpoint)
    c = store.save_model(token, "", checkpoint)
    assert (a.name, b.name, c.name) == ("vae", "vae-2", "unnamed")
    store.delete_model(token, b.id)
    assert {e.id for e in store.list_models(token)} == {a.id, c.id}
    with pytest.raises(StoreError, match="is gone"):
        store.load_model_bytes(token, b.id)


def test_another_token_sees_nothing(data, checkpoint):
    mine, theirs = store.new_token(), store.new_token()
    e = store.save_model(mine, "secret", checkpoint)
    assert store.list_models(theirs) == [] and store.usage(theirs) == 0
    for action in (store.load_model_bytes, store.delete_model):
        with pytest.raises(StoreError, match="That saved model is gone"):
            action(theirs, e.id)
    assert store.list_models(mine) == [e]


@pytest.mark.parametrize("bad", ["../x", "..", "", None, 42, "a" * 21, "a" * 23, "../" + "a" * 19, "a" * 21 + "/",
                                 "a" * 21 + ".", "a" * 21 + "\n", "/etc/passwd", "a" * 11 + "\0" + "a" * 10])
def test_bad_tokens_never_touch_the_disk(data, checkpoint, bad):
    assert not store.valid_token(bad)
    for action in (lambda: store.save_model(bad, "m", checkpoint), lambda: store.list_models(bad),
                   lambda: store.load_model_bytes(bad, "0" * 12), lambda: store.delete_model(bad, "0" * 12)):
        with pytest.raises(StoreError, match="That student token is not valid"):
            action()
    assert not data.exists()


@pytest.mark.parametrize("bad", ["../../x", "0" * 11, "0" * 13, "ABCDEF012345", None, "*"])
def test_bad_entry_ids_are_refused(data, checkpoint, bad):
    token = store.new_token()
    store.save_model(token, "m", checkpoint)
    with pytest.raises(StoreError, match="There is no saved model with the id"):
        store.load_model_bytes(token, bad)


def test_the_size_cap_refuses_with_one_sentence(data, checkpoint, monkeypatch):
    token = store.new_token()
    with monkeypatch.context() as m:
        m.setattr(store, "usage", lambda t: 50_000_000 - len(checkpoint) + 1)  # one byte too many
        with pytest.raises(StoreError) as err:
            store.save_model(token, "m", checkpoint)
    assert str(err.value) == "Your saved models would take more than 50 MB; delete one in the sidebar first."

    monkeypatch.setenv("AEVIZ_STUDENT_MB", str(2.5 * len(checkpoint) / 1e6))  # room for two checkpoints
    store.save_model(token, "one", checkpoint)
    store.save_model(token, "two", checkpoint)
    with pytest.raises(StoreError, match=r"^Your saved models would take more than [0-9.]+ MB; delete one in the "
                                         r"sidebar first\.$"):
        store.save_model(token, "three", checkpoint)
    assert [e.name for e in store.list_models(token)] == ["two", "one"]


def test_purge_removes_what_has_not_been_used(data, checkpoint, monkeypatch):
    old_student, active = store.new_token(), store.new_token()
    gone = store.save_model(old_student, "old", checkpoint)
    stale = store.save_model(active, "stale", checkpoint)
    fresh = store.save_model(active, "fresh", checkpoint)
    used = store.save_model(active, "used", checkpoint)
    long_ago = time.time() - 15 * 86400
    for token, e in ((old_student, gone), (active, stale), (active, used)):
        os.utime(store._find(token, "model", e.id), (long_ago, long_ago))
    store.load_model_bytes(active, used.id)  # loading counts as using

    assert store.purge_older_than() == 2  # 14 days by default
    assert {e.id for e in store.list_models(active)} == {fresh.id, used.id}
    assert not (data / "students" / old_student).exists()  # nothing left: the folder goes too

    monkeypatch.setenv("AEVIZ_MAX_AGE_DAYS", "0.5")
    half_a_day = time.time() - 86400
    os.utime(store._find(active, "model", fresh.id), (half_a_day, half_a_day))
    assert store.purge_older_than() == 1 and [e.id for e in store.list_models(active)] == [used.id]
    assert store.purge_older_than(days=0) == 1 and store.list_models(active) == []


def test_a_write_that_fails_leaves_nothing_behind(data, checkpoint, monkeypatch):
    token = store.new_token()
    keep = store.save_model(token, "keep", checkpoint)

    def crash(*args):
        raise OSError("disk full")

    with monkeypatch.context() as m, pytest.raises(OSError, match="disk full"):
        m.setattr(os, "replace", crash)  # the rename into place never happens
        store.save_model(token, "lost", checkpoint)
    assert store.list_models(token) == [keep]
    assert files(data) == [f"students/{token}/models/{keep.id}_keep.safetensors"]  # no temporary file either

    # a process killed mid-write leaves only a temporary file: never listed, purged after a day
    tmp = data / "students" / token / "models" / ".tmp-abc.safetensors"
    tmp.write_bytes(checkpoint[:100])
    assert store.list_models(token) == [keep]
    os.utime(tmp, (time.time() - 2 * 86400,) * 2)
    assert store.purge_older_than() == 0 and not tmp.exists()


def test_only_real_checkpoints_are_kept(data, checkpoint):
    token = store.new_token()
    with pytest.raises(StoreError, match="never unpickles"):
        store.save_model(token, "evil", pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(StoreError, match="not a valid .safetensors|too short|truncated"):
        store.save_model(token, "junk", b"hello world, not weights")
    with pytest.raises(StoreError, match="truncated"):
        store.save_model(token, "cut", checkpoint[: len(checkpoint) // 2])
    assert store.list_models(token) == [] and files(data) == []


def test_datasets_are_kept_beside_models(data, checkpoint):
    token = store.new_token()
    m = store.save_model(token, "m", checkpoint)
    d = store.save_dataset(token, "my points.csv", b"x,y\n1,2\n")
    assert (d.kind, d.name) == ("dataset", "my-points")
    assert store.list_models(token) == [m] and store.list_entries(token, "dataset") == [d]
    assert store.load_bytes(token, "dataset", d.id) == b"x,y\n1,2\n"
    assert store.usage(token) == len(checkpoint) + 8
    with pytest.raises(StoreError, match="Datasets are kept as"):
        store.save_dataset(token, "data.pkl", pickle.dumps([1, 2]))
    with pytest.raises(StoreError, match=r"is not a \.npy file"):
        store.save_dataset(token, "data.npy", pickle.dumps([1, 2]))
    with pytest.raises(StoreError, match="Unknown kind"):
        store.save(token, "../model", "m", checkpoint)
