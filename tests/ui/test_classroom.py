"""AppTest for rooms: open, join, rejoin, push and follow, follow off and on, freeze, the task, and the teacher's
powers, in the real app (app.py): one AppTest per browser tab, sharing the server's room store."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from aeviz.classroom import View
from aeviz.io import PRETRAINED
from aeviz.ui import classroom

pytestmark = pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model")
APP = str(Path(__file__).resolve().parents[2] / "app.py")


def tab(params: dict | None = None, box: bool = False) -> AppTest:
    """A new browser tab on the app (its own session), opened at an address with these query parameters; box: with
    the sidebar's "Class room: join or teach" box open (its content runs only then)."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(params or {})
    if box:
        at.session_state[classroom.ROOM_BOX] = True
    return at.run()


def open_room(capsys) -> tuple[AppTest, str, str]:
    """A teacher's tab with a new room: (tab, code, the secret the console printed)."""
    teacher = tab(box=True)
    capsys.readouterr()
    teacher.button(key="room_open").click().run()
    assert not teacher.exception
    out = capsys.readouterr().out
    code = teacher.session_state["room_seat"].code
    secret = re.search(rf"room {code} is open\. .*: (\S+)$", out.strip(), re.M).group(1)
    return teacher, code, secret


def join(code: str, name: str) -> AppTest:
    student = tab({"room": code})
    student.text_input(key="room_join_name").input(name).run()
    student.button(key="room_join").click().run()
    assert not student.exception
    return student


def param(at: AppTest, key: str) -> str | None:
    """A query parameter of the tab's address (AppTest keeps them as lists)."""
    value = at.query_params.get(key)
    return value[-1] if isinstance(value, list) else value


def sidebar_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.sidebar.markdown)


def test_the_room_box_runs_only_while_open_keeps_what_was_typed_but_not_secrets_and_a_room_link_opens_it(capsys):
    at = tab()
    assert not at.exception and not at.sidebar.text_input and not at.sidebar.button  # closed: nothing inside runs
    at.session_state[classroom.ROOM_BOX] = True  # the student opens it
    at.run()
    assert [b.key for b in at.sidebar.button] == ["room_join", "room_open", "room_claim"]
    at.text_input(key="room_join_code").input("k7qm")
    at.text_input(key="room_join_name").input("Ada")
    at.text_input(key="room_claim_secret").input("s" * 32).run()
    at.session_state[classroom.ROOM_BOX] = False
    at.run()
    assert not at.sidebar.text_input
    at.session_state[classroom.ROOM_BOX] = True
    at.run()
    assert at.text_input(key="room_join_code").value == "k7qm" and at.text_input(key="room_join_name").value == "Ada"
    assert not at.text_input(key="room_claim_secret").value  # a secret is not kept once the box is closed

    teacher, code, _ = open_room(capsys)
    invited = tab({"room": code})  # the room's link: the box is open, with the room's code in it
    assert f"Room **{code}**" in sidebar_text(invited) and invited.button(key="room_join")


def test_a_teacher_opens_a_room_and_the_secret_stays_out_of_every_address(capsys):
    teacher, code, secret = open_room(capsys)
    assert f"**Room {code}** · you teach it" in sidebar_text(teacher)
    assert teacher.session_state["room_seat"].secret == secret
    assert secret not in str(dict(teacher.query_params))
    assert param(teacher, "room") == code
    link = [c.value for c in teacher.sidebar.code][0]
    assert link.endswith(f"/?room={code}") and secret not in link
    student = join(code, "Ana")
    assert "you are Ana" in sidebar_text(student)
    assert param(student, "room") == code and len(param(student, "seat")) >= 32
    assert secret not in str(dict(student.query_params))


def test_a_reload_takes_the_seat_back_and_another_room_sees_nothing(capsys):
    _, code, _ = open_room(capsys)
    student = join(code, "Ben")
    seat = student.session_state["room_seat"]
    again = tab({"room": code, "seat": seat.token, "me": student.session_state["token"]})
    assert again.session_state["room_seat"].member_id == seat.member_id
    assert "you are Ben" in sidebar_text(again)
    other_teacher, other, _ = open_room(capsys)
    other_teacher.text_area(key="room_task_in").input("Only for the other room.").run()
    other_teacher.button(key="room_task_set").click().run()
    assert "Only for the other room" not in " ".join(m.value for m in again.run().markdown)
    wrong = tab({"room": other, "seat": seat.token})  # a seat in one room is no seat in another
    assert "room_seat" not in wrong.session_state or wrong.session_state["room_seat"] is None
    assert any("Your seat in that room is gone" in w.value for w in wrong.sidebar.warning)


def test_names_and_the_task_are_shown_as_text_never_as_html(capsys):
    teacher, code, _ = open_room(capsys)
    student = join(code, "<img src=x> **Bo** [x](javascript:y)")
    shown = sidebar_text(student)
    assert "<img" not in shown and "&lt;img" in shown and "\\*\\*Bo\\*\\*" in shown and "\\[x\\]\\(" in shown
    teacher.text_area(key="room_task_in").input("Train a **VAE** with β = 4 <script>alert(1)</script> ![](http://x/y.png)").run()
    teacher.button(key="room_task_set").click().run()
    task = [m.value for m in student.run().markdown if "Task from the teacher" in m.value]
    assert len(task) == 1
    assert "**VAE**" in task[0] and "<script" not in task[0] and "&lt;script>" in task[0] and "![" not in task[0]
    assert all(not m.proto.allow_html for m in student.markdown)


def test_a_pushed_view_is_followed_and_following_can_be_switched_off(capsys):
    teacher, code, _ = open_room(capsys)
    student = join(code, "Cy")
    teacher.number_input(key="ex_idx").set_value(42).run()
    teacher.button(key="room_push_btn").click().run()
    assert any("View 1 (Explorer) went out" in s.value for s in teacher.sidebar.success)
    student.run()
    assert student.number_input(key="ex_idx").value == 42
    assert param(student, "sample") == "42"
    assert "view 1" in " ".join(c.value for c in student.sidebar.caption)
    student.toggle(key="room_follow").set_value(False).run()
    teacher.number_input(key="ex_idx").set_value(7).run()
    teacher.button(key="room_push_btn").click().run()
    student.run()
    assert student.number_input(key="ex_idx").value == 42  # exploring on their own
    assert "The teacher pushed view 2." in [c.value for c in student.sidebar.caption]
    teacher.number_input(key="ex_idx").set_value(9).run()
    teacher.button(key="room_push_btn").click().run()
    student.run()
    assert "The teacher pushed view 3." in [c.value for c in student.sidebar.caption]
    student.button(key="room_go_btn").click().run()  # one view, following stays off
    assert student.number_input(key="ex_idx").value == 9 and student.toggle(key="room_follow").value is False
    teacher.number_input(key="ex_idx").set_value(7).run()
    teacher.button(key="room_push_btn").click().run()
    student.toggle(key="room_follow").set_value(True).run()
    assert student.number_input(key="ex_idx").value == 7  # back on: the latest view at once


def test_a_push_can_send_students_to_another_page_with_its_state(capsys):
    teacher, code, secret = open_room(capsys)
    student = join(code, "Di")
    classroom.store().push_view(code, secret, View("compare", "", {"models": "ae-mlp-z2,vae-mlp-z2", "seed": "3"}))
    student.run()
    assert not student.exception
    assert student.multiselect(key="cmp_models").value == ["ae-mlp-z2", "vae-mlp-z2"]
    assert student.number_input(key="cmp_seed").value == 3


def test_freeze_disables_the_students_controls(capsys):
    teacher, code, secret = open_room(capsys)
    student = join(code, "Eve")
    teacher.toggle(key="room_freeze").set_value(True).run()
    student.run()
    assert student.number_input(key="ex_idx").disabled and student.radio(key="ex_bg").disabled
    assert all(s.disabled for s in student.slider if s.label in ("z1", "z2"))
    assert student.toggle(key="room_follow").disabled and student.toggle(key="room_follow").value
    assert student.selectbox(key="model").disabled
    views = ["Reconstructions", "Traversal", "Interpolation", "Sampling (VAE)", "Latent history"]
    assert [t.label for t in student.tabs if t.label in views] == ["Reconstructions"]  # tabs cannot be disabled
    assert student.radio(key="ex_rec_order").disabled
    assert any(c.value.startswith(":material/lock: Locked while the teacher has frozen the class: the pad")
               for c in student.caption)  # the pad (in the browser, no disabled state) is not drawn
    assert not teacher.run().number_input(key="ex_idx").disabled  # the teacher keeps control
    assert [t.label for t in teacher.tabs if t.label in views] == views
    classroom.store().push_view(code, secret, View("/", "ae-mlp-z2", {"sample": "4", "view": "traversal"}))
    student.run()
    assert [t.label for t in student.tabs if t.label in views] == ["Traversal"]  # the teacher's tab, alone
    assert student.slider(key="ex_trav_steps").disabled
    classroom.store().push_view(code, secret, View("/", "ae-mlp-z2", {"sample": "4", "view": "interpolation"}))
    student.run()
    assert student.slider(key="ex_int_steps").disabled and student.radio(key="ex_int_method").disabled
    assert student.selectbox(key="ex_int_ca").disabled and student.radio(key="ex_int_by").disabled
    assert not [c for c in student.caption if "drag t along the path" in c.value]  # the server draws the path
    assert student.number_input(key="ex_idx").value == 4
    classroom.store().push_view(code, secret, View("compare", "", {"models": "ae-mlp-z2,vae-mlp-z2"}))
    student.run()
    assert student.multiselect(key="cmp_models").disabled and student.slider(key="cmp_level").disabled
    assert student.number_input(key="cmp_seed").disabled and student.selectbox(key="cmp_preset").disabled
    teacher.toggle(key="room_freeze").set_value(False).run()
    assert not student.run().multiselect(key="cmp_models").disabled
    classroom.store().push_view(code, secret, View("/", "ae-mlp-z2", {"sample": "4", "view": "traversal"}))
    student.run()
    assert [t.label for t in student.tabs if t.label in views] == views  # unfrozen: every tab, the teacher's open
    assert student.session_state["ex_view"] == "Traversal" and not student.number_input(key="ex_idx").disabled


def test_a_student_has_no_teacher_powers(capsys):
    teacher, code, secret = open_room(capsys)
    student = join(code, "Fay")
    assert not [b for b in student.sidebar.button if b.key in ("room_push_btn", "room_task_set", "room_close")]
    student.session_state["room_pushed"] = View("compare")  # forged: push_pending() needs a teacher seat
    student.run()
    assert classroom.store().room_state(code).version == 0
    student.sidebar.text_input(key="room_claim_secret").input("x" * 32).run()
    student.button(key="room_claim").click().run()
    assert f"The teacher secret for room {code} is wrong." in [e.value for e in student.sidebar.error]
    assert student.session_state["room_seat"].secret is None
    student.text_input(key="room_claim_secret").input(secret).run()
    student.button(key="room_claim").click().run()  # with the secret, the same seat teaches
    assert student.session_state["room_seat"].secret == secret
    assert "you teach it" in sidebar_text(student)


def test_closing_the_room_leaves_the_students_outside(capsys):
    teacher, code, _ = open_room(capsys)
    student = join(code, "Gus")
    teacher.button(key="room_close").click().run()
    assert teacher.session_state["room_seat"] is None
    student.run()
    assert student.session_state["room_seat"] is None
    assert f"Room {code} is closed (the teacher closed it, or it expired)." in [w.value for w in student.sidebar.warning]
    assert param(student, "seat") is None


def test_a_push_sent_with_a_change_sends_the_view_after_the_change(capsys):
    teacher, code, _ = open_room(capsys)
    teacher.number_input(key="ex_idx").set_value(3).run()
    teacher.button(key="room_push_btn").click().run()  # settled: one push, at the click
    assert classroom.store().room_state(code).version == 1
    teacher.number_input(key="ex_idx").set_value(9)
    teacher.button(key="room_push_btn").click().run()  # both in one run: the click saw sample 3 in the address
    rs = classroom.store().room_state(code)
    assert rs.version == 3 and rs.view.params["sample"] == "9"
