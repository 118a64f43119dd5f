"""AppTest for the class board: submitting, the side-by-side views, filters and sort, moderation, withdrawing, the
limits' sentences, the checkpoint checks, and opening entries on the Compare page."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

import aeviz
from aeviz import io, zoo
from aeviz.classroom import Limits, open_store
from aeviz.classroom.store import board_full_message, too_big_message
from aeviz.data import load
from aeviz.ui import classroom
from aeviz.ui.classroom import Seat


def _app():
    """app.py without the model picker (AppTest cannot rerun a picker whose labels read the session)."""
    import streamlit as st

    from aeviz.ui import classroom
    from aeviz.ui.pages import board, compare

    pages = {"Learn": [st.Page(board.render, title="Class board", url_path="board", default=True),
                       st.Page(compare.render, title="Compare variants", url_path="compare")]}
    classroom.run(pages)



def seated(code: str, name: str, secret: str | None = None, models=(), give_model=None) -> AppTest:
    """A tab whose session sits in the room (as after joining), with its own models."""
    member, token = classroom.store().join(code, name)
    at = AppTest.from_function(_app, default_timeout=120)
    at.session_state["room_seat"] = Seat(member.code, member.name, token, member.id, secret)
    at.session_state["room_params"] = {"room": code, "seat": token}
    ids = [give_model(at, n, m) for n, m in models]
    at.run()
    assert not at.exception
    return at, ids


def submit(at: AppTest, model_id: str, name: str, note: str = "") -> AppTest:
    at.selectbox(key="board_model").set_value(model_id)
    at.text_input(key="board_name").input(name)
    at.text_input(key="board_note").input(note)
    return at.button(key="board_submit").click().run()


def table(at: AppTest) -> list[dict]:
    """The metrics table's rows (the page's one dataframe)."""
    return at.dataframe[0].value.to_dict("records")


def pictures_html(at: AppTest) -> str:
    """The picture rows: one HTML grid."""
    (grid,) = [h.proto.body for h in at.get("html") if "aeviz-pics" in h.proto.body]
    return grid


def map_titles(at: AppTest) -> list[str]:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("board_maps"))
    return [a["text"] for a in json.loads(chart.proto.spec)["layout"]["annotations"]]


@pytest.fixture(scope="module")
def models(make_checkpoint):
    return {"ae": aeviz.load(make_checkpoint()), "vae": aeviz.load(make_checkpoint("variational")),
            "vae8": aeviz.load(make_checkpoint("variational", latent_dim=8))}


def test_entries_of_the_class_side_by_side(room, models, give_model):
    code, secret = room
    ana, (ae,) = seated(code, "Ana", models=[("my-ae", models["ae"])], give_model=give_model)
    submit(ana, ae, "plain AE", "latent 2")
    done = [f"“plain AE” is on the board of room {code} as entry {classroom.store().entries(code)[0].id}."]
    assert [s.value for s in ana.success] == done
    ana.run()  # the board's own rerun (its live refresh) keeps the confirmation; changing the form clears it
    assert [s.value for s in ana.success] == done
    ana.text_input(key="board_name").input("another").run()
    assert not ana.success
    ben, (vae, vae8) = seated(code, "<b>Ben</b>", models=[("v", models["vae"]), ("v8", models["vae8"])],
                              give_model=give_model)
    submit(ben, vae, "vae z2")
    submit(ben, vae8, "vae z8")
    teacher, _ = seated(code, "Teacher", secret)
    rows = table(teacher)
    assert [r["student"] for r in rows] == ["Ana", "<b>Ben</b>", "<b>Ben</b>"]
    assert [r["objective"] for r in rows] == ["vanilla", "variational", "variational"]
    card = zoo.trained_card(models["vae8"], load("digits"))  # the one model card, measured once at submission
    assert rows[2]["test MSE ↓"] == pytest.approx(card["test_mse"], rel=1e-5)
    assert rows[2]["−ELBO (nats) ↓"] == pytest.approx(card["nelbo"], rel=1e-3)
    assert rows[0]["note"] == "latent 2"
    assert map_titles(teacher) == ["<b>Ana</b><br>plain AE", "<b>&lt;b&gt;Ben&lt;/b&gt;</b><br>vae z2",
                                   "<b>&lt;b&gt;Ben&lt;/b&gt;</b><br>vae z8 · PCA of 8-D"]  # names: text, not markup
    shown = [m.value for m in teacher.markdown]
    ben_z2 = next(e.id for e in classroom.store().entries(code) if e.name == "vae z2")  # ids count across rooms
    assert f"#{ben_z2} **&lt;b\\>Ben&lt;/b\\>** · vae z2" in shown  # names are text, never HTML (moderation list)
    pictures = pictures_html(teacher)  # originals + 3 reconstructions + 2 VAE sample rows, as PNGs in one grid
    assert pictures.count("<img src='data:image/png;base64,") == 1 + 3 + 2
    assert "<b>&lt;b&gt;Ben&lt;/b&gt;</b> · vae z8" in pictures and "<b>Ben</b>" not in pictures


def test_filters_and_sort(room, models, give_model):
    code, _ = room
    ana, ids = seated(code, "Ana", models=[("a", models["ae"]), ("v", models["vae"]), ("v8", models["vae8"])],
                      give_model=give_model)
    for i, name in zip(ids, ("ae", "vae", "vae8")):
        submit(ana, i, name)
    ana.multiselect(key="board_obj").select("variational").run()
    assert [r["model"] for r in table(ana)] == ["vae", "vae8"]
    ana.multiselect(key="board_obj").unselect("variational").run()
    ana.multiselect(key="board_lat").select(8).run()
    assert [r["model"] for r in table(ana)] == ["vae8"]
    ana.multiselect(key="board_lat").unselect(8).run()
    ana.selectbox(key="board_sort").set_value("test_mse").run()
    mse = [r["test MSE ↓"] for r in table(ana)]
    assert mse == sorted(mse) and len(mse) == 3
    ana.selectbox(key="board_sort").set_value("latent_dim").run()
    assert [r["latent"] for r in table(ana)] == [2, 2, 8]


def test_the_teacher_moderates_and_a_student_withdraws_only_their_own(room, models, give_model):
    code, secret = room
    ana, (a,) = seated(code, "Ana", models=[("a", models["ae"])], give_model=give_model)
    ben, (b,) = seated(code, "Ben", models=[("b", models["vae"])], give_model=give_model)
    submit(ana, a, "ana's")
    submit(ben, b, "ben's")
    first, second = (e.id for e in classroom.store().entries(code))
    assert [k.key for k in ben.run().button if k.key and k.key.startswith("board_withdraw")] == [
        f"board_withdraw::{second}"]  # no way to touch Ana's entry
    with pytest.raises(PermissionError, match="belongs to another student"):
        classroom.store().withdraw(code, ben.session_state["room_seat"].token, first)
    assert not [k for k in ben.button if k.key and k.key.startswith(("board_hide", "board_remove", "board_clear"))]
    teacher, _ = seated(code, "Teacher", secret)
    teacher.button(key=f"board_hide::{first}").click().run()
    assert f"Entry {first} is hidden from the class." in [s.value for s in teacher.success]
    assert [r["hidden"] for r in table(teacher)] == [True, False]
    assert [r["model"] for r in table(ben.run())] == ["ben's"]
    teacher.button(key=f"board_remove::{second}").click().run()
    assert [r["model"] for r in table(teacher)] == ["ana's"]
    ana.run().button(key=f"board_withdraw::{first}").click().run()
    assert classroom.store().entries(code, include_hidden=True) == []
    assert any(f"Room {code} has no entries yet" in i.value for i in ana.info)
    submit(ana, a, "again")
    teacher.run().button(key="board_clear").click().run()
    assert "The board is cleared." in [s.value for s in teacher.success] and not classroom.store().entries(code)


def test_limits_give_their_sentence(room, models, give_model, tmp_path, monkeypatch):
    small = open_store(f"sqlite://{tmp_path}", Limits(entries_per_room=1, bytes_per_entry=200_000))
    monkeypatch.setattr(classroom, "store", lambda: small)
    r, _ = small.open_room()
    ana, (a, b) = seated(r.code, "Ana", models=[("a", models["ae"]), ("v", models["vae"])], give_model=give_model)
    submit(ana, a, "one")
    assert ana.success
    submit(ana, b, "two")
    assert [e.value for e in ana.error] == [board_full_message(r.code, 1)]
    ana.selectbox(key="board_model").set_value("ae-mlp-z2")
    ana.button(key="board_submit").click().run()
    size = (io.PRETRAINED / "ae-mlp-z2.safetensors").stat().st_size
    assert [e.value for e in ana.error] == [too_big_message(size, 200_000)]
    assert "at most 0.2 MB; a room holds 1 entries" in " ".join(c.value for c in ana.caption)


def test_a_checkpoint_that_fails_the_checks_is_refused(room, models, give_model, monkeypatch):
    code, _ = room
    ana, (a,) = seated(code, "Ana", models=[("a", models["ae"])], give_model=give_model)
    good = io.to_bytes(models["ae"])
    monkeypatch.setattr(io, "to_bytes", lambda *args, **kw: good[: len(good) // 2])
    submit(ana, a, "cut short")
    assert len(ana.error) == 1 and "a.safetensors" not in ana.error[0].value
    assert "cut short.safetensors" in ana.error[0].value and classroom.store().entries(code) == []


def test_two_entries_open_on_the_compare_page(room, models, give_model):
    code, secret = room
    ana, (a, b) = seated(code, "Ana", models=[("a", models["ae"]), ("v", models["vae"])], give_model=give_model)
    submit(ana, a, "ae")
    submit(ana, b, "vae")
    teacher, _ = seated(code, "Teacher", secret)
    ids = [e.id for e in classroom.store().entries(code)]
    assert teacher.button(key="board_compare").disabled
    teacher.multiselect(key="board_pick").select(ids[0]).select(ids[1]).run()
    teacher.button(key="board_compare").click().run()
    assert not teacher.exception
    shown = teacher.multiselect(key="cmp_models").value
    assert len(shown) == 2 and all(i.startswith("class:") for i in shown) and shown == teacher.session_state["offered"]
    assert [teacher.session_state["board_refs"][i] for i in shown] == ids
    teacher.button(key="room_push_btn").click().run()  # a push names the entries, which every student can open
    assert classroom.store().room_state(code).view.params["models"] == f"entry:{ids[0]},entry:{ids[1]}"
    ben, _ = seated(code, "Ben")
    assert ben.multiselect(key="cmp_models").value == shown
