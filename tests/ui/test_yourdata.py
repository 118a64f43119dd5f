"""The Explorer's "Your data" tab in AppTest: each kind of file goes from upload to a trained model on the map; every
bad input of issue 15 gets its one sentence while the sidebar's model stays; kept datasets come back after a reload;
the notebook export's bytes are a valid notebook.

AppTest has no file uploads, so a test hands the file over as the upload's callback does (the FILE session key).
Pages that end with a student's own model run without the sidebar (see tests/ui/test_explorer.py).
"""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from aeviz import io as aeviz_io
from aeviz import userdata, workspace
from aeviz.bench import datafiles
from aeviz.bench.datafiles import arrays_npz, csv_bytes, images_zip, png, series_csv, table_csv, zip_bytes
from aeviz.data import load
from aeviz.ui.pages.explorer import yourdata

pytestmark = pytest.mark.skipif(not (aeviz_io.PRETRAINED / "ae-mlp-z2.safetensors").exists(),
                                reason="the default model is not in pretrained/")
DEFAULT = "ae-mlp-z2"


def _page(sidebar: bool = True):
    from aeviz.ui import state
    from aeviz.ui.pages import explorer

    if sidebar:
        state.sidebar()
    explorer.render()


def _app(sidebar: bool = True, token: str | None = None) -> AppTest:
    at = AppTest.from_function(_page, default_timeout=60, kwargs={"sidebar": sidebar})
    at.session_state["ex_chooser"] = True  # the "Choose a model" box, where the Your data tab is, opened
    if token:
        at.query_params["me"] = token
    return at.run()


def _give(at: AppTest, name: str, raw: bytes) -> AppTest:
    at.session_state[yourdata.FILE] = yourdata.upload(name, raw)
    return at.run()


def _widget(elements, label: str):
    return next(w for w in elements if w.label == label)


def _shown(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("#### `")).split("`")[1]


# --- small files of each kind ---------------------------------------------------------------------------------

KINDS = {  # file name, bytes, options to set (widget label -> value), what the preview says
    "table": ("parts.csv", table_csv(), {"Label column": "kind"}, "4 features", "3"),
    "arrays": ("vectors.npz", arrays_npz(), {}, "6 features", "2"),
    "images": ("shapes.zip", images_zip(), {}, "28 × 28 pixels", "2"),
    "series": ("waves.csv", series_csv(), {"Each line is": "a step or a series"}, "16 steps", "—"),
}


def _set(at: AppTest, options: dict) -> AppTest:
    for label, value in options.items():
        for kind in ("selectbox", "radio", "slider", "number_input"):
            hits = [w for w in at.get(kind) if getattr(w, "label", None) == label]
            if hits:
                hits[0].set_value(value).run()
                break
        else:
            raise AssertionError(f"no widget labelled {label!r}")
    return at


def _record_downloads(monkeypatch) -> dict:
    """file name -> the callable a download button builds its bytes with (AppTest cannot click a download)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    made = {}
    original = MediaFileManager.add_deferred

    def record(self, data, mimetype, coordinates, file_name=None, **kw):
        made[file_name] = data
        return original(self, data, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return made


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_of_file_goes_from_upload_to_a_trained_model_on_the_map(kind, monkeypatch):
    import nbformat

    made = _record_downloads(monkeypatch)
    name, raw, options, shape, classes = KINDS[kind]
    at = _set(_give(_app(sidebar=False), name, raw), options)
    assert not at.exception and at.error.len == 0, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["each sample"] == shape and metrics["classes"] == classes
    assert any(m.value.startswith(f"**Your file '{name}'") for m in at.markdown)
    at.button(key=f"{yourdata.TRAIN_KEY}::start").click().run()
    assert at.session_state[f"{yourdata.TRAIN_KEY}::job"].wait(120).done
    at.run()
    assert not at.exception and at.error.len == 0, [e.value for e in at.error]
    model_id = at.session_state["model"]
    model = at.session_state["mine"][model_id][1]
    c = model.config
    assert c.dataset.startswith("user:") and (c.arch, c.latent_dim, c.recon) == ("mlp", 2, "mse")
    assert model.train_config == yourdata.default_configs(load(c.dataset))[1]  # stored, for the notebook export
    assert model.preprocessing["source"]["file"] == name
    assert _shown(at) == f"ae-mlp-z2-{c.dataset.removeprefix('user:')}"
    assert any(e.proto.id.endswith("ex_map") for e in at.get("bidi_component"))
    kept = workspace.list_entries(at.session_state["token"], "dataset")
    assert [e.name for e in kept] == [c.dataset.removeprefix("user:")]
    assert c.dataset in [w for w in at.selectbox if w.label == "Dataset"][0].options  # "Train your own" offers it
    notebook = made[f"ae-mlp-z2-{c.dataset.removeprefix('user:')}.ipynb"]().decode()  # the training panel's button
    nbformat.validate(nbformat.reads(notebook, as_version=4))
    assert f"DATA_PATH = {name!r}" in notebook and "aeviz.read_data(DATA_PATH" in notebook


# --- bad input: one sentence, and nothing lost -----------------------------------------------------------------

def _zip_bomb() -> bytes:
    return zip_bytes({"big.png": bytes(userdata.MAX_MEMBER + 1)})


def _zip_escape() -> bytes:
    return zip_bytes({**{f"ok/{i}.png": png(8, 50) for i in range(20)}, "../evil.png": png(8, 50)})


def _zip_text() -> bytes:
    return zip_bytes({**{f"ok/{i}.png": png(8, 50) for i in range(20)}, "ok/readme.txt": b"hello"})


BAD = {  # name, bytes, options, the sentence (a part of it that names the problem)
    "non-numeric column": ("cities.csv", csv_bytes([[i, i * 2, "Oslo"] for i in range(30)], ["a", "b", "city"]), {},
                           "Column 'city' is not numeric (e.g. 'Oslo' on line 2); pick it as the label column or "
                           "leave it out."),
    "missing values": ("gaps.csv", csv_bytes([[i, "" if i % 10 == 3 else i * 2, i % 7] for i in range(30)],
                                        ["a", "b", "c"]), {},
                       "3 rows of 'gaps.csv' have gaps (the first at line 5, column 'b'): choose 'drop' to leave "
                       "those rows out or 'fill'"),
    "single feature": ("one.csv", csv_bytes([[i] for i in range(30)], ["a"]), {},
                       "'one.csv' has a single numeric column ('a'); an autoencoder needs at least 2 features"),
    "constant columns": ("flat.csv", csv_bytes([[i, 5, 5] for i in range(30)], ["a", "b", "c"]), {},
                         "In 'flat.csv' only 'a' varies ('b' and 'c' are the same in every row)"),
    "too few rows": ("few.csv", csv_bytes([[i, i * i] for i in range(5)], ["a", "b"]), {},
                     "'few.csv' has 5 usable rows; aeviz needs at least 20"),
    "too many rows": ("many.csv", csv_bytes([[i, i % 7] for i in range(userdata.MAX_ROWS + 1)], ["a", "b"]), {},
                      f"'many.csv' has {userdata.MAX_ROWS + 1:,} rows; aeviz reads at most {userdata.MAX_ROWS:,}"),
    "too many bytes": ("huge.csv", b"a,b\n" + b"1,2\n" * (userdata.MAX_BYTES // 4), {},
                       "'huge.csv' is 20.0 MB; aeviz reads files of at most 20 MB"),
    "zip bomb": ("bomb.zip", _zip_bomb(), {}, "'big.png' in 'bomb.zip' unpacks to 10 MB, more than the 10 MB aeviz "
                                              "unpacks per file; it may be a zip bomb"),
    "path leaving the folder": ("escape.zip", _zip_escape(), {},
                                "'escape.zip' contains '../evil.png', a path that leaves the folder"),
    "not an image in a zip": ("mixed.zip", _zip_text(), {},
                              "'mixed.zip' contains 'ok/readme.txt', which is not a PNG or JPEG image"),
    "ragged sequences": ("ragged.csv", csv_bytes([list(range(8 if i != 4 else 6)) for i in range(30)]),
                         {"Each line is": "a step or a series"},
                         "The series on line 5 of 'ragged.csv' has 6 steps but the first has 8"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_one_sentence_and_the_current_model_stays(case):
    name, raw, options, sentence = BAD[case]
    at = _app()
    assert at.session_state["model"] == DEFAULT and _shown(at) == DEFAULT
    at = _set(_give(at, name, raw), options)
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [next(e.value for e in at.error if sentence in e.value)]  # one, this one
    assert at.session_state["model"] == DEFAULT and _shown(at) == DEFAULT  # the sidebar's model stays
    assert at.session_state[yourdata.FILE][0] == name  # the file stays: change an option and read it again
    assert not any(b.label == "Train on this data" for b in at.button)


def test_gaps_can_then_be_dropped_or_filled_without_uploading_again():
    name, raw, _, _ = BAD["missing values"]
    at = _give(_app(), name, raw)
    assert at.error.len == 1
    _set(at, {"Gaps (missing values)": "drop"})
    assert at.error.len == 0 and {m.label: m.value for m in at.metric}["training samples"] == "21"
    assert any("Left out 3 rows with gaps." in c.value for c in at.caption)
    _set(at, {"Gaps (missing values)": "fill"})
    assert at.error.len == 0 and any("Filled the gaps in 3 rows" in c.value for c in at.caption)
    assert at.session_state["model"] == DEFAULT


def test_images_of_mixed_sizes_are_resized_and_said_so():
    at = _give(_app(), "sizes.zip", images_zip(24, sides=(8, 12)))
    assert at.error.len == 0 and not at.exception
    assert any("The images came in 2 sizes (from 8x8 to 12x12); all were converted to grayscale and resized to "
               "28x28." in c.value for c in at.caption)
    _set(at, {"Image side (pixels)": 16})
    assert {m.label: m.value for m in at.metric}["each sample"] == "16 × 16 pixels"
    assert at.session_state["model"] == DEFAULT


def test_the_upload_box_states_its_caps():
    at = _app()
    box = at.get("file_uploader")[0]
    assert box.proto.max_upload_size_mb == 20
    assert sorted(box.proto.type) == sorted(f".{t}" for t in yourdata.TYPES)
    assert any("At most 20 MB a file; 50,000 samples" in c.value for c in at.caption)


def test_an_anomaly_value_trains_on_the_normal_rows_only():
    at = _set(_give(_app(), *KINDS["table"][:2]), {"Label column": "kind"})
    _set(at, {"Anomaly value": "c"})
    assert at.error.len == 0
    assert any("anomalies are tested, never trained on" in m.value for m in at.markdown)
    assert {m.label: m.value for m in at.metric}["training samples"] == "32"  # 40 normal rows, 80 % train


# --- kept datasets, and the notebook ---------------------------------------------------------------------------

def test_a_dataset_trained_on_comes_back_after_a_reload():
    token = workspace.new_token()
    at = _set(_give(_app(sidebar=False, token=token), *KINDS["table"][:2]), {"Label column": "kind"})
    at.button(key=f"{yourdata.TRAIN_KEY}::start").click().run()
    assert at.session_state[f"{yourdata.TRAIN_KEY}::job"].wait(120).done
    at.run()
    name = at.session_state["mine"][at.session_state["model"]][1].config.dataset.removeprefix("user:")
    again = _app(sidebar=False, token=token)  # a reload: a new session with the same address
    assert [r.name for r, _ in again.session_state["mine"].values()] == [f"ae-mlp-z2-{name}"]  # the model too
    assert any(e.label == "Your datasets (1)" for e in again.expander)
    (entry,) = workspace.list_entries(token, "dataset")
    again.button(key=f"ex_data_use::{entry.id}").click().run()
    assert again.error.len == 0 and any(m.value == f"Your kept dataset **{name}**" for m in again.markdown)
    assert {m.label: m.value for m in again.metric}["classes"] == "3"


def test_a_model_whose_data_the_server_lost_gets_it_back_from_the_workspace(tmp_path, monkeypatch):
    token = workspace.new_token()
    ds = userdata.read_data(table_csv(), name="lost-table", file_name="lost.csv", label_column="kind")
    workspace.save_dataset(token, "lost-table.safetensors", userdata.dataset_bytes(ds))
    monkeypatch.setattr(userdata, "data_dir", lambda: tmp_path / "elsewhere")  # nothing registered on this server
    userdata._USER.pop("user:lost-table", None)

    def page():
        import streamlit as st

        from aeviz.ui import state

        st.session_state["n"] = len(state.dataset("user:lost-table").x_test)

    at = AppTest.from_function(page)
    at.query_params["me"] = token
    at.run()
    assert not at.exception and at.session_state["n"] == len(ds.x_test)
    assert (tmp_path / "elsewhere" / "lost-table.safetensors").is_file()


def test_the_export_button_gives_a_valid_notebook(monkeypatch):
    import nbformat

    made = _record_downloads(monkeypatch)
    at = _app()
    assert not at.exception
    nb = nbformat.reads(made[f"{DEFAULT}.ipynb"]().decode(), as_version=4)
    nbformat.validate(nb)
    text = "\n".join(c.source for c in nb.cells)
    assert "aeviz.config_for('mnist'" in text and "This is the zoo model `ae-mlp-z2`" in text


def test_the_default_training_takes_enough_steps_on_small_data_and_20_epochs_on_large():
    small = userdata.read_data(table_csv(120), file_name="small.csv", label_column="kind")
    mc, tc = yourdata.default_configs(small)
    assert (mc.arch, mc.latent_dim, mc.recon, mc.hidden) == ("mlp", 2, "mse", (64, 32))
    assert (tc.batch_size, tc.epochs) == (32, 134)  # 96 rows: 3 steps an epoch, 400 steps
    large = userdata.read_data(datafiles.wide_table_csv(8000, 30), file_name="large.csv", label_column="group")
    assert yourdata.default_configs(large)[1].epochs == 20 and yourdata.default_configs(large)[1].batch_size == 128
    images = userdata.read_data(images_zip(40), file_name="i.zip")
    assert yourdata.default_configs(images)[0].hidden == (256, 128)
