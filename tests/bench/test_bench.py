import json
import os
import subprocess
import sys

import pytest

import aeviz
from aeviz import bench, cli, io
from aeviz.bench import browser


def last_json(argv: list[str]) -> dict:
    run = subprocess.run([sys.executable, "-m", "aeviz.cli", "bench", *argv, "--json"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def positive_numbers(result: dict, keys: set[str]) -> None:
    assert keys <= set(result)
    for k in keys:
        assert isinstance(result[k], (int, float)) and result[k] > 0, k


def test_bench_train_prints_its_figures_as_json_last():
    result = last_json(["train", "--steps", "3", "--repeats", "1"])
    positive_numbers(result, {"aeviz_samples_per_s", "plain_samples_per_s", "ratio", "gflops", "matmul_gflops",
                              "threads"})
    assert result["gflops_fraction"] == pytest.approx(result["gflops"] / result["matmul_gflops"], abs=2e-3)
    positive_numbers(result, {"cpu_ratio", "gflops_per_cpu_s", "matmul_gflops_per_cpu_s"})


def test_two_trainings_in_threads_are_each_clocked(monkeypatch):
    monkeypatch.setenv("AEVIZ_THREADS", "3")
    clocks = bench._in_threads(1, steps=2)
    assert [samples for samples, _, _ in clocks] == [256, 256]
    assert all(wall > 0 and cpu > 0 for _, wall, cpu in clocks)
    wall_rate, cpu_rate = bench._rates(clocks)
    assert wall_rate > 0 and cpu_rate == pytest.approx(512 / sum(cpu for _, _, cpu in clocks))
    assert bench.os.environ["AEVIZ_THREADS"] == "3"  # pinned() restores the caller's setting


def test_linear_macs_of_the_benchmark_mlp():
    model = aeviz.build(bench.mnist_mlp())
    assert bench.linear_macs(model) == 2 * (784 * 512 + 512 * 256 + 256 * 2)


def test_a_registered_bench_becomes_a_subcommand_with_flags_from_its_signature(monkeypatch, capsys):
    def fake(size: int = 3, rate: float = 0.5, label: str = "x", quick: bool = False) -> dict:
        """A fake bench."""
        print("figures follow")
        return {"size": size, "rate": rate, "label": label, "quick": quick}

    monkeypatch.setitem(bench.BENCHES, "fake", fake)
    assert cli.main(["bench", "fake", "--size", "7", "--label", "y", "--quick", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "figures follow"
    assert json.loads(out[-1]) == {"size": 7, "rate": 0.5, "label": "y", "quick": True}
    assert cli.main(["bench", "fake"]) == 0
    assert capsys.readouterr().out == "figures follow\n"


@pytest.mark.skipif(not (io.PRETRAINED / "ae-rnn-signals-z8.safetensors").exists(), reason="no pretrained GRU")
def test_bench_signals_finds_the_spikes_and_rarely_flags_normal_signals():
    result = last_json(["signals"])
    assert result["percentile"] == 95 and result["window"] == 5
    # Measured with the zoo's GRU: every spike found, 4 % of normal signals flagged, flat lines mostly missed.
    assert result["spike_event_recall"] >= 0.95
    assert result["normal_signals_flagged"] <= 0.08  # the threshold lets 5 % of normal training signals alarm
    assert result["flat-line_event_recall"] < result["spike_event_recall"]
    assert 0 < result["all_event_precision"] <= 1 and 0 < result["all_event_recall"] <= 1


def test_bench_signals_names_a_missing_model():
    run = subprocess.run([sys.executable, "-m", "aeviz.cli", "bench", "signals", "--model", "nope"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "There is no" in run.stderr and "nope.safetensors" in run.stderr


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(browser.CHROMIUM), reason="chromium is not installed")
def test_bench_compare_reruns_the_four_model_page_and_reports_its_figures():
    if not all((io.PRETRAINED / f"{m}.safetensors").exists() for m in browser.COMPARE_MODELS):
        pytest.skip("the β ladder is not in pretrained/")
    r = browser.bench_compare(clicks=2)
    assert r["models"] == 4
    assert 0 < r["rerun_median_s"] <= r["rerun_max_s"] and r["server_cpu_per_rerun_s"] > 0


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(browser.CHROMIUM), reason="chromium is not installed")
@pytest.mark.skipif(not (io.PRETRAINED / "ae-rnn-rows-z16.safetensors").exists(), reason="no recurrent zoo model")
def test_bench_drag_drags_a_pad_and_a_slider_and_reports_each_figure():
    result = last_json(["drag", "--seconds", "1", "--models", "ae-mlp-z2,ae-rnn-rows-z16"])
    figures = {"frames", "fps_median", "frame_ms_p95", "decode_ms_median", "release_to_idle_ms", "weights_bytes"}
    positive_numbers(result, figures)
    assert [r["mode"] for r in result["models"].values()] == ["pad", "sliders"]
    for r in result["models"].values():
        positive_numbers(r, figures)
        assert r["ws_frames_during_drag"] == 0  # nothing leaves the browser while the pointer is down
        assert r["reruns_per_release"] == 1 and r["fragment_rerun"] and r["commits"] == 1
        assert r["parity_max_abs_err"] <= 1e-5
    assert result["weights_bytes"] == sum(r["weights_bytes"] for r in result["models"].values())


def test_bench_teacher_with_two_students_and_two_pushes():
    result = last_json(["teacher", "--students", "2", "--pushes", "2", "--board-entries", "3"])
    assert (result["students"], result["pushes"], result["followed"], result["board_entries"]) == (2, 2, 4, 3)
    positive_numbers(result, {"push_to_student_s_median", "push_to_student_s_p95", "board_render_s"})
    assert result["push_to_student_s_median"] <= result["push_to_student_s_p95"]
