"""A class in headless Chromium: the teacher's page pushes views and two students' pages (of the same browser)
follow; a frozen room disables the students' controls; the teacher's board shows an entry as it arrives."""
from __future__ import annotations

import os

import pytest

from aeviz.bench import browser as driver
from aeviz.bench import teacher as bench
from aeviz.io import PRETRAINED

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(driver.CHROMIUM), reason="chromium is not installed"),
              pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model")]


def test_students_follow_the_teacher_and_the_board_is_live():
    # The server inherits AEVIZ_DATA from tests/conftest.py, so this process's store is the server's store.
    with driver.app_in_browser("classroom") as (_, teacher, url, _):
        teacher.set_viewport_size(bench.VIEWPORT)
        code = bench._open_room(teacher, url)
        students = [teacher.context.browser.new_page(viewport=bench.VIEWPORT) for _ in range(2)]
        for i, page in enumerate(students):
            bench._join(page, url, code, f"Student {i + 1}")
        for version, sample in ((1, 5), (2, 12)):
            arrived = bench._push_once(teacher, students, version, sample)
            assert all(t is not None for t in arrived), arrived
        for page in students:
            assert page.locator(".st-key-ex_idx input").input_value() == "12"
            assert "sample=12" in page.url and f"room={code}" in page.url
        teacher.locator(".st-key-room_freeze label").click()
        for page in students:
            page.wait_for_selector(".st-key-ex_idx input:disabled", timeout=30_000)
            page.wait_for_selector("[data-testid=stSidebarNav]", state="detached", timeout=30_000)  # no page links
            assert page.locator(".st-key-ex_pad-box").count() == 0  # the latent pad is not drawn
            assert page.get_by_role("tab").all_inner_texts() == ["Reconstructions"]  # the teacher's tab only
        assert teacher.locator("[data-testid=stSidebarNav]").count() == 1
        teacher.get_by_role("link", name="Class board").click()
        teacher.wait_for_selector(driver.IDLE)
        assert bench.submit_entries(code, 1) == 1
        teacher.wait_for_function(bench.BOARD_DONE, arg=1, timeout=60_000)  # no click: the board polls
        assert teacher.locator("[data-testid=stException]").count() == 0
        assert all(page.locator("[data-testid=stException]").count() == 0 for page in students)
