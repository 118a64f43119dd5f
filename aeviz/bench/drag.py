"""`aeviz bench drag`: drag the Explorer's latent pad (2-D codes) or its first latent slider (larger codes) in
headless Chromium with Playwright mouse moves for a few seconds per model, and measure what the student sees.

Per model and overall:
  frames                 decoded frames drawn while the pointer was down
  fps_median             1000 / the median time between two drawn frames (the browser draws at most 60 a second)
  frame_ms_p95           95th percentile of the time between two drawn frames
  decode_ms_median       median time to decode and draw one frame, inside the page
  ws_frames_during_drag  websocket messages the page sent while the pointer was down (the goal is none)
  release_to_idle_ms     from the pointer's release until the page shows the code committed (the server's
                         "z = (...)" line, redrawn by the rerun the release causes), timed inside the page
  reruns_per_release     reruns the page asked the server for after the release (the goal is one, a fragment's)
  weights_bytes          bytes of the model blob the browser decodes with (the weights carrier)
  parity_max_abs_err     largest difference between the served decoder.js and torch on a few codes, per pixel
Beside them: pointer_moves_per_s (the input the page got) and browser_frame_ms_p95 (the 95th percentile between
two animation frames of the page, drawn or not: what a busy machine lets the browser do at all).
Frame times come from the page's own clock (a MutationObserver on the view's frame counter), so Playwright's round
trips do not count. The pointer is moved through the DevTools protocol (Input.dispatchMouseEvent, what Playwright's
mouse sends) every 4 ms without waiting for each answer, as a 250 Hz mouse does: awaiting each move, as
page.mouse.move does, paces the pointer by the round trip (25 ms on a busy machine) and would measure the driver.
"""
from __future__ import annotations

import asyncio
import base64
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from aeviz.bench import browser

MODELS = ("ae-mlp-z2", "ae-conv-z16", "ae-rnn-rows-z16")  # an MLP, a conv and a recurrent decoder from the zoo
VIEW = ".st-key-ex_pad-box .aeviz-latent, .st-key-ex_zs-box .aeviz-latent"
DECODER_URL = "/_stcore/bidi-components/aeviz.latent/decoder.js"

# A timestamp and the draw time of every frame the view draws from now on; and every animation frame the
# browser runs (what the machine lets it draw, whatever the page does).
RECORD = """(view) => {
  const log = (window.__aevizFrameLog = []), raf = (window.__aevizRaf = []);
  new MutationObserver(() => log.push([performance.now(), Number(view.dataset.ms)]))
    .observe(view, { attributes: true, attributeFilter: ["data-frames"] });
  const tick = (t) => { raf.push(t); if (!window.__aevizRafStop) requestAnimationFrame(tick); };
  window.__aevizRafStop = false;
  requestAnimationFrame(tick);
}"""

PARITY = """async ([url, blob, zs]) => {
  const { parseBlob, decode } = await import(url);
  const bytes = Uint8Array.from(atob(blob), (c) => c.charCodeAt(0));
  const m = parseBlob(bytes);
  return zs.map((z) => Array.from(decode(m, z)));
}"""


async def pick_model(page, name: str) -> None:
    """Choose a model in the sidebar's picker, as a student does (type to filter, Enter)."""
    await page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").first.click()
    await page.keyboard.type(name)
    await page.keyboard.press("Enter")
    await page.locator("[data-testid=stMarkdownContainer] h4 code", has_text=name).first.wait_for(timeout=120_000)
    await page.wait_for_selector(browser.IDLE, timeout=120_000)  # the page's header names the model


async def _target(page):
    """(view, mode, its box): the pad itself, or the first slider of the sliders view."""
    view = page.locator(VIEW).first
    await view.wait_for(timeout=120_000)
    await page.wait_for_function("(v) => v.dataset.ready === '1' && Number(v.dataset.frames) > 0",
                                 arg=await view.element_handle(), timeout=120_000)
    mode = "pad" if "aeviz-mode-pad" in await view.get_attribute("class") else "sliders"
    target = view.locator(".aeviz-pad" if mode == "pad" else "input[type=range]").first
    await target.scroll_into_view_if_needed()
    return view, mode, await target.bounding_box()


def _path(box: dict, mode: str, t: float) -> tuple[float, float]:
    """Where the pointer is t seconds into the drag, at a steady speed (so that every frame has a new value): round
    a circle on the pad, to and fro along a slider."""
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    if mode == "pad":
        r = 0.3 * min(box["width"], box["height"])
        return cx + r * math.cos(2 * math.pi * 0.5 * t), cy + r * math.sin(2 * math.pi * 0.5 * t)
    phase = (t / 1.5) % 1.0  # one sweep of 80 % of the slider each 0.75 s
    return cx + 0.4 * box["width"] * (4 * abs(phase - 0.5) - 1), cy


async def _mouse(cdp, kind: str, xy: tuple[float, float]) -> None:
    event = {"mousePressed": {"button": "left", "buttons": 1, "clickCount": 1},
             "mouseMoved": {"button": "left", "buttons": 1}, "mouseReleased": {"button": "left", "buttons": 0,
                                                                               "clickCount": 1}}[kind]
    await cdp.send("Input.dispatchMouseEvent", {"type": kind, "x": xy[0], "y": xy[1], **event})


async def _drag(page, cdp, sent: list, seconds: float) -> dict:
    view, mode, box = await _target(page)
    await page.wait_for_selector(browser.IDLE, timeout=60_000)
    await view.evaluate(RECORD)
    await _mouse(cdp, "mouseMoved", _path(box, mode, 0.0))
    await _mouse(cdp, "mousePressed", _path(box, mode, 0.0))
    before, start, moves = len(sent), time.perf_counter(), []
    while (t := time.perf_counter() - start) < seconds:
        moves.append(asyncio.ensure_future(_mouse(cdp, "mouseMoved", _path(box, mode, t))))
        await asyncio.sleep(0.004)
    await asyncio.gather(*moves)
    moved_s = time.perf_counter() - start
    await page.evaluate("() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)))")
    during = len(sent) - before
    log, raf = await page.evaluate("window.__aevizRafStop = true, [window.__aevizFrameLog, window.__aevizRaf]")
    await page.evaluate(browser.WATCH_COMMIT)
    after = len(sent)
    await _mouse(cdp, "mouseReleased", _path(box, mode, t))
    await page.wait_for_function("window.__commit.shown !== undefined", timeout=60_000)
    await asyncio.sleep(0.5)  # a second rerun, if the release caused one, would be asked for within this
    await page.wait_for_selector(browser.IDLE, timeout=60_000)
    commit = await page.evaluate("window.__commit")
    reruns = [p for p in sent[after:] if _rerun(p) is not None]
    times, ms = [t for t, _ in log], [m for _, m in log]
    gaps = np.diff(times) if len(times) > 1 else np.array([float("nan")])
    return {"mode": mode, "frames": len(log), "fps_median": round(1000 / float(np.median(gaps)), 1),
            "frame_ms_p95": round(float(np.percentile(gaps, 95)), 1),
            "decode_ms_median": round(statistics.median(ms), 2) if ms else float("nan"),
            "ws_frames_during_drag": during, "release_to_idle_ms": round(commit["shown"] - commit["up"], 1),
            "reruns_per_release": len(reruns), "fragment_rerun": bool(reruns) and all(_rerun(p) for p in reruns),
            "commits": int(await view.get_attribute("data-commits")),
            "pointer_moves_per_s": round(len(moves) / moved_s, 1),
            "browser_frame_ms_p95": round(float(np.percentile(np.diff(raf), 95)), 1), "gaps": gaps.tolist()}


def _rerun(payload) -> bool | None:
    """For a websocket message the page sent: None if it asks for no rerun, else whether it asks for a fragment's
    rerun (True) or the whole script's (False)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg.FromString(payload if isinstance(payload, bytes) else payload.encode())
    return bool(msg.rerun_script.fragment_id) if msg.WhichOneof("type") == "rerun_script" else None


async def _parity(page, base_url: str, name: str) -> tuple[int, float]:
    """(blob bytes, max |decoder.js - torch|) for the model on a few codes, with the decoder.js the server serves."""
    import aeviz
    from aeviz import io, webmodel

    model = aeviz.load(io.PRETRAINED / f"{name}.safetensors")
    wm = webmodel.exported(model)
    z = torch.randn(6, model.config.latent_dim, generator=torch.Generator().manual_seed(0)) * 3.0
    got = await page.evaluate(PARITY, [base_url + DECODER_URL, base64.b64encode(wm.blob).decode(), z.tolist()])
    with torch.no_grad():
        want = model.decode(z).reshape(len(z), -1).numpy()
    return len(wm.blob), float(np.abs(np.asarray(got) - want).max())


async def _run(names: list[str], seconds: float, log: Path) -> dict[str, dict]:
    from playwright.async_api import async_playwright

    port = browser.free_port()
    server, start, per = browser.start_server(port, log), time.perf_counter(), {}
    try:
        async with async_playwright() as p:
            chromium = await p.chromium.launch(executable_path=browser.CHROMIUM, args=browser.CHROMIUM_ARGS)
            page = await chromium.new_page(viewport={"width": 1500, "height": 1100})
            cdp = await page.context.new_cdp_session(page)
            sent: list = []
            page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    await page.goto(url + "/", wait_until="domcontentloaded")
                    break
                except Exception:
                    if time.perf_counter() > start + 120:
                        raise
                    await asyncio.sleep(0.1)
            await page.wait_for_selector(browser.IDLE, timeout=120_000)
            for name in names:
                await pick_model(page, name)
                r = per[name] = await _drag(page, cdp, sent, seconds)
                r["weights_bytes"], r["parity_max_abs_err"] = await _parity(page, url, name)
                print(f"{name:16} {r['mode']:7} frames {r['frames']:4}  fps median {r['fps_median']:5.1f}  frame p95 "
                      f"{r['frame_ms_p95']:5.1f} ms  decode median {r['decode_ms_median']:5.2f} ms  ws frames while "
                      f"dragging {r['ws_frames_during_drag']}  release to idle {r['release_to_idle_ms']:6.1f} ms  "
                      f"reruns {r['reruns_per_release']} (fragment: {r['fragment_rerun']})  weights "
                      f"{r['weights_bytes']:,} B  parity {r['parity_max_abs_err']:.1e}  pointer moves "
                      f"{r['pointer_moves_per_s']:.0f}/s  the browser's own frame p95 {r['browser_frame_ms_p95']:.1f} ms",
                      flush=True)
            await chromium.close()
    except Exception:
        print(f"The app did not behave; the server's log is {log}:\n" + log.read_text()[-3000:])
        raise
    finally:
        server.terminate()
        server.wait(timeout=30)
    return per


def bench_drag(seconds: float = 5.0, models: str = ",".join(MODELS)) -> dict:
    """Drag in the Explorer for `seconds` per model (comma-separated zoo names); print and return the figures."""
    import tempfile

    names = [m for m in models.split(",") if m]
    log = Path(tempfile.mkdtemp(prefix="aeviz-bench-drag-")) / "server.log"
    per = asyncio.run(_run(names, seconds, log))
    gaps = np.concatenate([r.pop("gaps") for r in per.values()])
    out = {"frames": sum(r["frames"] for r in per.values()),
           "fps_median": round(1000 / float(np.median(gaps)), 1),
           "frame_ms_p95": round(float(np.percentile(gaps, 95)), 1),
           "decode_ms_median": round(statistics.median(r["decode_ms_median"] for r in per.values()), 2),
           "ws_frames_during_drag": sum(r["ws_frames_during_drag"] for r in per.values()),
           "release_to_idle_ms": round(statistics.median(r["release_to_idle_ms"] for r in per.values()), 1),
           "reruns_per_release": max(r["reruns_per_release"] for r in per.values()),
           "weights_bytes": sum(r["weights_bytes"] for r in per.values()),
           "parity_max_abs_err": max(r["parity_max_abs_err"] for r in per.values()),
           "browser_frame_ms_p95": max(r["browser_frame_ms_p95"] for r in per.values()),
           "seconds_per_model": seconds, "load_average": round(os.getloadavg()[0], 1), "models": per}
    met = (out["fps_median"] >= 55, out["frame_ms_p95"] <= 33, out["ws_frames_during_drag"] == 0,
           out["parity_max_abs_err"] <= 1e-5, all(r["reruns_per_release"] == 1 for r in per.values()))
    print(f"overall: fps median {out['fps_median']} (goal >= 55), frame p95 {out['frame_ms_p95']} ms (<= 33), "
          f"{out['ws_frames_during_drag']} ws frames while dragging (0), parity {out['parity_max_abs_err']:.1e} "
          f"(<= 1e-5), reruns per release {out['reruns_per_release']} (1); the browser's own frame p95 "
          f"{out['browser_frame_ms_p95']} ms at load average {out['load_average']}: "
          f"{'all goals met' if all(met) else 'NOT all goals met'}")
    return out
