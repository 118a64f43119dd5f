"""decoder.js in Chromium against torch: every zoo model and a fresh model of each architecture, decoder and
encoder, on fixed codes and inputs; the largest difference must stay within 1e-5."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import aeviz
from aeviz import webmodel

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
ASSETS = Path(aeviz.__file__).resolve().parent / "ui" / "components" / "assets"
ORIGIN = "http://aeviz.test"
TOL = 1e-5

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")]


def fresh(arch, objective, shape, cell="gru", sparsity="l1"):
    hidden = {"mlp": (48, 24), "conv": (8, 16), "rnn": (24,)}[arch]
    config = aeviz.ModelConfig(objective=objective, arch=arch, latent_dim=5, dataset="mnist", input_shape=shape,
                               hidden=hidden, rnn_cell=cell, sparsity=sparsity)
    torch.manual_seed(7)
    return aeviz.build(config).eval()


def models() -> dict[str, aeviz.Autoencoder]:
    out = {card.name: aeviz.load(card.path) for card in aeviz.pretrained()}  # *.views.safetensors are not models
    out |= {"fresh-mlp": fresh("mlp", "vanilla", (1, 8, 8)),
            "fresh-mlp-vae": fresh("mlp", "variational", (1, 28, 28)),
            "fresh-conv-vae": fresh("conv", "variational", (1, 28, 28)),
            "fresh-rnn-gru": fresh("rnn", "vanilla", (28, 28), "gru"),
            "fresh-rnn-lstm": fresh("rnn", "sparse", (128, 1), "lstm", sparsity="kl")}
    return out


RUN = """async (names) => {
  const { parseBlob, decode, encode } = await import('/decoder.js');
  const out = {};
  for (const name of names) {
    const m = parseBlob(new Uint8Array(await (await fetch('/blob/' + name)).arrayBuffer()));
    const ins = await (await fetch('/inputs/' + name)).json();
    out[name] = { hash: m.hash, dec: ins.z.map((z) => Array.from(decode(m, z))), enc: ins.x.map((x) => Array.from(encode(m, x))) };
  }
  return out;
}"""


def test_the_browser_decoder_and_encoder_match_torch(tmp_path):
    import json

    from playwright.sync_api import sync_playwright

    gen = torch.Generator().manual_seed(0)
    cases, blobs, inputs = {}, {}, {}
    for name, model in models().items():
        c = model.config
        z = torch.randn(3, c.latent_dim, generator=gen) * 2.0
        x = torch.rand(2, *c.input_shape, generator=gen)
        with torch.no_grad():
            cases[name] = (model.decode(z).reshape(3, -1).numpy(), model.encode(x).numpy())
        wm = webmodel.export(model, encoder=True)
        blobs[name] = wm
        inputs[name] = json.dumps({"z": z.tolist(), "x": x.reshape(2, -1).tolist()})
    assert len([n for n in cases if not n.startswith("fresh")]) >= 10, "the zoo is missing"

    def serve(route):
        path = route.request.url[len(ORIGIN):]
        if path == "/decoder.js":
            route.fulfill(body=(ASSETS / "decoder.js").read_text(), content_type="text/javascript")
        elif path.startswith("/blob/"):
            route.fulfill(body=blobs[path[6:]].blob, content_type="application/octet-stream")
        elif path.startswith("/inputs/"):
            route.fulfill(body=inputs[path[8:]], content_type="application/json")
        else:
            route.fulfill(body="<!doctype html><title>parity</title>", content_type="text/html")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/")
        got = page.evaluate(RUN, list(cases))
        browser.close()

    worst = {}
    for name, (dec, enc) in cases.items():
        js_dec, js_enc = np.array(got[name]["dec"]), np.array(got[name]["enc"])
        assert got[name]["hash"] == blobs[name].hash
        assert js_dec.shape == dec.shape and js_enc.shape == enc.shape, name
        worst[name] = (np.abs(js_dec - dec).max(), np.abs(js_enc - enc).max(), len(blobs[name].blob))
    print("\nmodel                  decode err   encode err   blob bytes (decoder+encoder)")
    for name, (d, e, n) in worst.items():
        print(f"{name:22} {d:10.2e}   {e:10.2e}   {n:>10,}")
    assert max(d for d, _, _ in worst.values()) <= TOL
    assert max(e for _, e, _ in worst.values()) <= TOL
