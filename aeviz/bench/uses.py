"""`aeviz bench applications`: the figures the application pages show, computed in one run without a browser.

Pretrained models come from pretrained/; sizes without one are trained here with sweep.quick_configs, as the
pages do. Each part prints its figures and returns them as flat JSON-able keys.
"""
from __future__ import annotations

import numpy as np

from .. import analysis, io
from ..data import load
from ..train import train
from ..uses import augmentation, compression, features, imputation, reduction, sweep

PARTS = ("reduction", "features", "compression", "augmentation", "imputation")
SCALE = 0.5  # the augmentation page's default scale s


def _pretrained(name: str):
    path = io.PRETRAINED / f"{name}.safetensors"
    return io.load(path) if path.is_file() else None


def _sweep_model(k: int, dataset: str = "mnist"):
    """(model, source) as the pages pick it: the pretrained model for size k, else a quick model trained now."""
    name = sweep.pretrained_for(k, dataset, io.pretrained())
    if name is not None:
        return io.load(io.PRETRAINED / f"{name}.safetensors"), f"pretrained {name}"
    mc, tc = sweep.quick_configs(dataset, k)
    model, hist = train(mc, tc)
    return model, f"trained here ({tc.epochs} epochs, {hist.seconds:.0f} s)"


def reduction_maps(umap: bool, tsne: bool) -> dict:
    """Trustworthiness, 5-NN score, unrolling and seconds of each 2-D map, per dataset."""
    out = {}
    for name in ("swiss-roll", "s-curve", "mnist"):
        d = load(name)
        x, y, continuous = d.x_test.numpy(), d.y_test.numpy(), not d.label_names
        (model, source), train_s = analysis.timed(_sweep_model, 2, name)
        ae, ae_s = analysis.timed(analysis.embed, model, x)
        maps = {"autoencoder": (ae, ae_s + (train_s if "trained" in source else 0.0)),
                "pca": analysis.timed(reduction.pca_map, d.x_train.numpy(), x)}
        maps.update({m: analysis.timed(analysis.project, x, m) for m, on in (("umap", umap), ("tsne", tsne)) if on})
        print(f"{name}: autoencoder {source}")
        for method, (xy, sec) in maps.items():
            row = reduction.map_scores(x, xy, y, continuous)
            print(f"  {method:<12} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()) + f"  seconds {sec:.2f}")
            out.update({f"{name}_{method}_{_key(k)}": round(v, 4) for k, v in row.items()})
            out[f"{name}_{method}_seconds"] = round(sec, 2)
    return out


def _key(label: str) -> str:
    return {"trustworthiness": "tw", "5-NN accuracy": "knn", "5-NN R² of position": "knn_r2",
            "unrolled (linear R²)": "unrolled"}[label]


def feature_accuracies() -> dict:
    """Linear-probe and 5-NN accuracy on autoencoder codes, PCA and raw pixels over the latent sizes."""
    d = load("mnist")
    x_tr, y_tr, x_te, y_te = d.x_train.numpy(), d.y_train.numpy(), d.x_test.numpy(), d.y_test.numpy()
    raw = features.feature_scores(x_tr, y_tr, x_te, y_te)
    print(f"raw pixels: probe {raw['linear probe']:.3f}  5-NN {raw['5-NN']:.3f}")
    out = {"raw_probe": raw["linear probe"], "raw_knn": raw["5-NN"]}
    for k in sweep.LATENT_SIZES:
        model, source = _sweep_model(k)
        ae = features.feature_scores(analysis.embed(model, x_tr), y_tr, analysis.embed(model, x_te), y_te)
        pca_tr, pca_te = features.pca_features(x_tr, x_te, k)
        pca = features.feature_scores(pca_tr, y_tr, pca_te, y_te)
        print(f"z={k:<3} autoencoder probe {ae['linear probe']:.3f} 5-NN {ae['5-NN']:.3f} ({source})   "
              f"PCA probe {pca['linear probe']:.3f} 5-NN {pca['5-NN']:.3f}")
        out.update({f"ae_z{k}_probe": ae["linear probe"], f"ae_z{k}_knn": ae["5-NN"],
                    f"pca_z{k}_probe": pca["linear probe"], f"pca_z{k}_knn": pca["5-NN"]})
    return out


def compression_points() -> dict:
    """Bytes per image, MSE and PSNR of the autoencoder and PCA at 32 and 8 bits, and of JPEG."""
    d = load("mnist")
    x_tr, x_te = d.x_train.numpy(), d.x_test.numpy()
    points = []
    for k in sweep.LATENT_SIZES:
        points += compression.autoencoder_points(_sweep_model(k)[0], x_tr, x_te)[0]
        points += compression.pca_points(x_tr, x_te, k)[0]
    points += compression.jpeg_points(x_te)[0]
    out = {}
    for p in points:
        tag = f"jpeg_q{p['quality']}" if p["method"] == "JPEG" else f"{p['method'].lower()}_z{p['k']}_{p['bits']}bit"
        extra = f" ({p['bytes_without_tables']:.0f} B without tables)" if p["method"] == "JPEG" else ""
        print(f"  {tag:<22} {p['bytes']:7.1f} B{extra}  MSE {p['mse']:.5f}  PSNR {p['psnr']:5.2f} dB")
        out.update({f"{tag}_bytes": round(p["bytes"], 1), f"{tag}_mse": round(p["mse"], 5),
                    f"{tag}_psnr": round(p["psnr"], 2)})
        if p["method"] == "JPEG":
            out[f"{tag}_bytes_without_tables"] = round(p["bytes_without_tables"], 1)
    return out


def augmentation_gains(seeds: int) -> dict:
    """Few-shot logistic regression on raw pixels, real only vs real + variants, mean and std over seeds."""
    d = load("mnist")
    out = {}
    for name, mode in (("vae-mlp-z16", "posterior"), ("ae-mlp-z16", "code")):
        model = _pretrained(name)
        if model is None:
            print(f"{name}: not in pretrained/, skipped")
            continue
        spread = augmentation.code_spread(model, d.x_train)
        for per_class in (10, 20):
            r = augmentation.few_shot_gain(model, d, per_class, 5, SCALE, tuple(range(seeds)), spread, mode)
            real, aug = np.array(r["real only"]), np.array(r["real + augmented"])
            gain = aug - real
            tag = f"{name}_{mode}_{per_class}pc"
            print(f"{name} ({mode}, s={SCALE}, 5 variants each), {per_class} real per digit, {seeds} seeds: real "
                  f"{real.mean():.3f}±{real.std():.3f}  +variants {aug.mean():.3f}±{aug.std():.3f}  "
                  f"change {gain.mean() * 100:+.1f}±{gain.std() * 100:.1f} points")
            out.update({f"{tag}_real": round(real.mean(), 4), f"{tag}_real_std": round(real.std(), 4),
                        f"{tag}_aug": round(aug.mean(), 4), f"{tag}_aug_std": round(aug.std(), 4),
                        f"{tag}_gain": round(gain.mean(), 4), f"{tag}_gain_std": round(gain.std(), 4)})
    return out


def imputation_errors(iterations: int = 10, steps: int = 100) -> dict:
    """Missing-pixel MSE over the test set: mean-image fill vs iterated reconstruction vs fitting the code."""
    d = load("mnist")
    x, mean_image = d.x_test.numpy(), d.x_train.numpy().mean(0)
    out = {}
    for name in ("ae-mlp-z2", "ae-mlp-z16", "dae-mlp-z16", "vae-mlp-z16"):
        model = _pretrained(name)
        if model is None:
            continue
        for kind in ("top half", "left half", "box", "random pixels"):
            missing = imputation.make_mask(28, 28, kind, 0.5, (7, 7, 14))
            it = [float(imputation.missing_mse(x, s, missing).mean())
                  for s in imputation.iter_impute(model, x, missing, mean_image, iterations)]
            fit = [float(imputation.missing_mse(x, s, missing).mean())
                   for s in imputation.iter_fit_code(model, x, missing, mean_image, steps)]
            tag = f"{name}_{kind.replace(' ', '_')}"
            print(f"{name:<12} {kind:<14} mean-image {it[0]:.4f}  iterated x{iterations} {it[-1]:.4f}  "
                  f"fit the code x{steps} {fit[-1]:.4f}")
            out.update({f"{tag}_mean_fill": round(it[0], 4), f"{tag}_iterated": round(it[-1], 4),
                        f"{tag}_fit_code": round(fit[-1], 4)})
    return out


def run(part: str = "all", umap: bool = False, tsne: bool = True, seeds: int = 5) -> dict:
    """Every part (or one) in turn."""
    parts = PARTS if part == "all" else (part,)
    if any(p not in PARTS for p in parts):
        raise SystemExit(f"Unknown part '{part}'; choose all or one of {', '.join(PARTS)}.")
    jobs = {"reduction": lambda: reduction_maps(umap, tsne), "features": feature_accuracies,
            "compression": compression_points, "augmentation": lambda: augmentation_gains(seeds),
            "imputation": imputation_errors}
    out = {}
    for p in parts:
        print(f"== {p}")
        out.update(jobs[p]())
    return out
