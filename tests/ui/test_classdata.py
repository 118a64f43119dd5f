"""AppTest for the class dataset: the teacher shares one of their datasets with the room, a student whose server never
saw the file finds it as "class: <title>", trains on it (1 epoch) and submits the model; the board shows the dataset
at the top and compares the entry on its test split; only the teacher's secret shares or removes it.

AppTest has no file uploads, so the teacher's file is handed over as the upload's callback does (yourdata.FILE).
"""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from aeviz import io as aeviz_io
from aeviz import userdata, workspace
from aeviz.bench.datafiles import table_csv
from aeviz.ui import classroom
from aeviz.ui.classroom import Seat
from aeviz.ui.pages.explorer import yourdata

pytestmark = pytest.mark.skipif(not (aeviz_io.PRETRAINED / "ae-mlp-z2.safetensors").exists(),
                                reason="the default model is not in pretrained/")


def _app():
    """The Explorer (without the sidebar's picker, which AppTest cannot rerun) or the Class board, in a room."""
    import streamlit as st

    from aeviz.ui import classroom
    from aeviz.ui.pages import board, explorer

    shown = (board.render, "Class board", "board") if st.session_state.get("on_board") else (
        explorer.render, "Explorer", "explorer")
    pages = {"Learn": [st.Page(shown[0], title=shown[1], url_path=shown[2], default=True)]}  # one page at a time
    classroom.run(pages)



def seated(code: str, name: str, secret: str | None = None, board: bool = False) -> AppTest:
    member, token = classroom.store().join(code, name)
    at = AppTest.from_function(_app, default_timeout=120)
    at.session_state["ex_chooser"] = True  # the "Choose a model" box opened: the Train and Your data tabs
    at.session_state["room_seat"] = Seat(member.code, member.name, token, member.id, secret)
    at.session_state["room_params"] = {"room": code, "seat": token}
    at.session_state["on_board"] = board
    at.run()
    assert not at.exception
    return at


def with_file(at: AppTest) -> AppTest:
    """The teacher's table (60 rows, 4 measurements, a label column 'kind') read in the Your data tab."""
    at.session_state[yourdata.FILE] = yourdata.upload("parts.csv", table_csv())
    at.run()
    next(w for w in at.selectbox if w.label == "Label column").set_value("kind").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def forget_everywhere(name: str) -> None:
    """This server never saw the teacher's file: the room's students sit on another replica (or the data folder
    was cleaned by a restart)."""
    from aeviz.ui import state

    (userdata.data_dir() / f"{name.removeprefix(userdata.PREFIX)}.safetensors").unlink(missing_ok=True)
    userdata._USER.pop(name, None)
    state._dataset.clear()


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown] + [c.value for c in at.caption]


def test_the_teacher_shares_and_a_student_trains_on_it_for_the_board(room):
    code, secret = room
    teacher = with_file(seated(code, "Teacher", secret))
    assert f":material/school: **Room {code}** has no class dataset yet." in texts(teacher)
    title_key = next(w.key for w in teacher.text_input if w.label == "Its name for the class")
    assert teacher.text_input(key=title_key).value == "parts"  # the file's name
    teacher.text_input(key=title_key).input("lab parts")
    teacher.button(key="ex_data_share_btn").click().run()
    shared = classroom.store().room_dataset(code)
    assert [s.value for s in teacher.success] == [
        f"Room {code} has the dataset “lab parts” now: every student finds it as “class: lab parts” where data are "
        f"chosen, and the board compares their entries on its test samples."]
    assert shared.title == "lab parts" and shared.name.startswith("user:parts-")
    assert shared.meta == {"rows": 60, "train": 48, "test": 12, "shape": [4], "each": "4 features", "classes": 3,
                           "file": "parts.csv"}
    assert f":material/school: **Room {code}** has this dataset as “class: lab parts”." in texts(teacher.run())

    forget_everywhere(shared.name)
    ana = seated(code, "Ana")
    assert not [b for b in ana.button if b.key == "ex_data_share_btn"]  # students cannot share
    assert any(t.startswith(":material/school: **class: lab parts** · the dataset shared with room") for t in texts(ana))
    ana.button(key="ex_data_use_class").click().run()  # the class dataset in Your data: a look, a default training
    assert "The class dataset **lab parts**" in texts(ana)
    assert "**The teacher's file 'parts.csv': 4 numeric columns; label column 'kind': 3 classes; 48 train / 12 test.**" \
        in texts(ana)
    assert {m.label: m.value for m in ana.metric}["test samples"] == "12"
    picker = ana.selectbox(key="ex_t_data")
    assert picker.value == shared.name and picker.options[0] == "class: lab parts"  # first, under its class name
    ana.number_input(key="ex_t_epochs").set_value(1)
    ana.button(key="ex_train::start").click().run()
    assert ana.session_state["ex_train::job"].wait(120).state == "finished"
    ana.run()
    assert not ana.exception and not ana.error, [e.value for e in ana.error]
    model_id = ana.session_state["model"]
    model = ana.session_state["mine"][model_id][1]
    assert model.config.dataset == shared.name
    kept = workspace.list_entries(ana.session_state["token"], "dataset")  # kept with her models: it outlives the room
    assert [e.name for e in kept] == [shared.name.removeprefix("user:")]
    header = next(m.value for m in ana.markdown if m.value.startswith("#### `"))
    assert f"nets, {classroom.plain('class: lab parts')} data ·" in header  # the title is text, never markup

    ana.session_state["on_board"] = True
    ana.run()
    assert "**Class dataset: lab parts** · 60 samples · each 4 features · 3 classes" in " ".join(texts(ana))
    assert not [b for b in ana.button if b.key == "board_unshare"]
    assert (classroom.dataset_sentence(shared) + " Train on it in Explorer → Train your own (or Your data), then "
            "submit the model here.") in texts(ana)
    ana.selectbox(key="board_model").set_value(model_id)
    ana.text_input(key="board_name").input("ana on parts")
    ana.button(key="board_submit").click().run()
    (entry,) = classroom.store().entries(code)
    assert [s.value for s in ana.success] == [f"“ana on parts” is on the board of room {code} as entry {entry.id}."]
    assert entry.meta["dataset"] == shared.name
    data = ana.selectbox(key="board_data")
    assert data.value == shared.name and data.options == ["class: lab parts"]
    (row,) = ana.dataframe[0].value.to_dict("records")
    assert (row["student"], row["model"]) == ("Ana", "ana on parts")
    assert row["test MSE ↓"] == pytest.approx(entry.meta["card"]["test_mse"])
    chart = next(c for c in ana.get("plotly_chart") if c.proto.id.endswith("board_maps"))
    assert [a["text"] for a in json.loads(chart.proto.spec)["layout"]["annotations"]] == ["<b>Ana</b><br>ana on parts"]
    assert [i.value for i in ana.info] == [f"The samples of {classroom.plain('class: lab parts')} are not images, so "
                                           "the picture rows are left out."]
    assert any(c.value.startswith("The same 12 test samples in every map") for c in ana.caption)  # its test split
    assert not ana.exception and not ana.warning

    forget_everywhere(shared.name)  # a classmate on another replica opens the board first: it finds the data too
    ben = seated(code, "Ben", board=True)
    assert not ben.exception and not ben.warning, [w.value for w in ben.warning]
    assert any(c.proto.id.endswith("board_maps") for c in ben.get("plotly_chart"))
    assert (userdata.data_dir() / f"{shared.name.removeprefix('user:')}.safetensors").is_file()  # read from the room

    board = seated(code, "Teacher", secret, board=True)  # the teacher's board: the same entry, and the power to remove
    assert [r["model"] for r in board.dataframe[0].value.to_dict("records")] == ["ana on parts"]
    board.button(key="board_unshare").click().run()
    assert [s.value for s in board.success] == [
        f"Room {code} has no class dataset now; models trained on it stay on the board and in each student's models."]
    assert classroom.store().room_dataset(code) is None and len(classroom.store().entries(code)) == 1
    assert not [m for m in texts(board) if "Class dataset:" in m]


def test_a_wrong_secret_cannot_share_and_the_sentence_says_so(room):
    code, secret = room
    impostor = with_file(seated(code, "Eve", secret="not the secret of this room at all"))
    impostor.button(key="ex_data_share_btn").click().run()
    assert [e.value for e in impostor.error] == [f"The teacher secret for room {code} is wrong."]
    assert classroom.store().room_dataset(code) is None


def test_a_dataset_over_the_limit_is_refused_with_its_sentence(room, monkeypatch, tmp_path):
    from aeviz.classroom import Limits, open_store

    small = open_store(f"sqlite://{tmp_path}", Limits(bytes_per_dataset=1000))
    monkeypatch.setattr(classroom, "store", lambda: small)
    r, secret = small.open_room()
    teacher = with_file(seated(r.code, "Teacher", secret))
    assert any("not your file: at most 1 kB." in c.value for c in teacher.caption)
    teacher.button(key="ex_data_share_btn").click().run()
    size = len(userdata.dataset_bytes(userdata.read_data(table_csv(), name="x", file_name="parts.csv",
                                                         label_column="kind")))
    assert [e.value for e in teacher.error] == [
        f"This dataset is {size / 1e3:.0f} kB as stored, over the limit of 1 kB for a class dataset; read fewer rows "
        f"or smaller images, then share it again."]
    assert small.room_dataset(r.code) is None


def test_the_board_shows_titles_and_file_names_as_text_and_survives_odd_metadata(room):
    code, secret = room
    ds = userdata.read_data(table_csv(), name="odd", file_name="odd.csv", label_column="kind")
    meta = {**classroom.dataset_info(ds), "file": "[click](http://example.com).csv", "rows": "lots"}
    classroom.store().share_dataset(code, secret, ds.name, "<b>Lab</b> *parts*", meta, userdata.dataset_bytes(ds))
    ana = seated(code, "Ana", board=True)
    assert not ana.exception
    shown = texts(ana)
    assert ":material/dataset: **Class dataset: &lt;b\\>Lab&lt;/b\\> \\*parts\\*** · 0 samples · each 4 features · " \
           "3 classes" in shown
    sentence = next(t for t in shown if "from the file" in t)
    assert sentence.startswith(f"0 samples from the file {classroom.plain('[click](http://example.com).csv')}, each 4 "
                               "features")
    assert "\\[click\\]\\(http\\:" in sentence  # no link: escaped as text
