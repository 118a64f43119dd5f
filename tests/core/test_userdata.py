"""Bring your own data: every kind of bad input gets its one sentence; every kind of good input its dataset."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

import aeviz
from aeviz import cli, userdata
from aeviz.bench.datafiles import zip_bytes
from aeviz.userdata import MAX_BYTES, MAX_ROWS, DataError, read_data, scale, unscale


@pytest.fixture(autouse=True)
def registry(tmp_path, monkeypatch):
    """Each test has its own on-disk registry and an empty in-memory one."""
    monkeypatch.setenv("AEVIZ_DATA", str(tmp_path / "registry"))
    userdata._USER.clear()
    yield tmp_path / "registry" / "datasets"
    userdata._USER.clear()


def table(n=40, seed=0, extra="") -> str:
    """n rows: three numeric columns and a label 'kind' (a/b/c in turn)."""
    rng = np.random.default_rng(seed)
    rows = [f"h,w,d,kind{extra}"]
    for i in range(n):
        h, w, d = rng.normal([10, 200, -3], [2, 50, 1])
        rows.append(f"{h:.4f},{w:.4f},{d:.4f},{'abc'[i % 3]}")
    return "\n".join(rows) + "\n"


def refused(source, *fragments, file_name="", **options) -> str:
    with pytest.raises(DataError) as err:
        read_data(source, file_name=file_name, **options)
    message = str(err.value)
    assert "\n" not in message and message.endswith(".")
    for fragment in fragments:
        assert fragment in message, message
    return message


def csv_bytes(text: str) -> bytes:
    return text.encode()


def png(w=8, h=8, value=128) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h), value).save(buf, "PNG")
    return buf.getvalue()


# Bad input: one sentence each.

def test_a_non_numeric_column_is_named_with_an_example():
    text = "city,temp,rain\nOslo,3.5,1\nParis,9.0,2\n" + "Rome,12,0\n" * 30
    assert refused(csv_bytes(text), file_name="t.csv") == (
        "Column 'city' is not numeric (e.g. 'Oslo' on line 2); pick it as the label column or leave it out.")


def test_several_non_numeric_columns_are_all_named():
    text = "city,country,temp,rain\n" + "Oslo,NO,3.5,1\n" * 30
    refused(csv_bytes(text), "Columns 'city' and 'country' are not numeric", "leave them out", file_name="t.csv")


def test_gaps_are_counted_and_drop_or_fill_as_asked():
    text = table(40).splitlines()
    text[3] = "nan,1,2,a"  # line 4
    text[7] = "5,,2,b"  # line 8
    raw = csv_bytes("\n".join(text))
    assert refused(raw, file_name="g.csv", label_column="kind") == (
        "2 rows of 'g.csv' have gaps (the first at line 4, column 'h'): choose 'drop' to leave those rows out or "
        "'fill' to fill each gap with its column's mean.")
    dropped = read_data(raw, file_name="g.csv", missing="drop", label_column="kind")
    assert len(dropped.x_train) + len(dropped.x_test) == 38
    assert "Left out 2 rows with gaps." in dropped.extras["notes"]
    filled = read_data(raw, file_name="g.csv", missing="fill", label_column="kind")
    pre = filled.extras["preprocessing"]
    assert len(filled.x_train) + len(filled.x_test) == 40
    heights = [float(line.split(",")[0]) for line in text[1:] if not line.startswith("nan")]
    assert len(heights) == 39 and pre["fill"][0] == pytest.approx(np.mean(heights))
    assert "Filled the gaps in 2 rows with their column's mean." in filled.extras["notes"]


def test_gaps_in_series_windows_and_arrays_are_counted_with_their_way_out():
    waves = [",".join(f"{np.sin(i + t / 3):.3f}" for t in range(8)) for i in range(30)]
    waves[4] = waves[4].split(",", 1)[0] + ",nan," + waves[4].split(",", 2)[2]  # line 5, its second step
    assert refused(csv_bytes("\n".join(waves)), file_name="w.csv", kind="series") == (
        "1 series of 'w.csv' has gaps (the first on line 5): choose 'drop' to leave them out or 'fill' to "
        "interpolate the gaps.")
    steps = [f"{np.sin(t / 5):.4f},{np.cos(t / 5):.4f}" for t in range(200)]
    steps[9] = steps[11] = "nan,0.5"
    assert refused(csv_bytes("a,b\n" + "\n".join(steps)), file_name="long.csv", window=20) == (
        "2 steps of the series in 'long.csv' have gaps (the first at step 10): choose 'drop' to leave out the "
        "windows they fall in or 'fill' to interpolate them.")
    x = np.random.default_rng(0).random((30, 8, 8)).astype(np.float32)
    x[[3, 7, 8], 2, 5] = np.nan
    buf = io.BytesIO()
    np.save(buf, x)
    assert refused(buf.getvalue(), file_name="x.npy", kind="images") == (
        "3 samples of 'x.npy' have gaps (nan, the first in sample 4): choose 'drop' to leave them out or 'fill' to "
        "fill them.")


def test_a_single_feature_is_refused_with_the_way_out():
    text = "temp\n" + "\n".join(str(v) for v in range(30))
    assert refused(csv_bytes(text), file_name="one.csv") == (
        "'one.csv' has a single numeric column ('temp'); an autoencoder needs at least 2 features, so add columns "
        "or read it as a time series cut into windows.")


def test_constant_columns_are_dropped_with_a_note_or_refused_when_too_few_vary():
    rows = ["a,b,c,d"] + [f"{i},{i * i},7,0" for i in range(30)]
    d = read_data(csv_bytes("\n".join(rows)), file_name="k.csv")
    assert d.sample_shape == (2,) and d.extras["preprocessing"]["columns"] == ["a", "b"]
    assert d.extras["notes"] == ["Left out 2 constant columns ('c' and 'd'): they are the same in every row."]
    rows = ["a,c,d"] + [f"{i},7,0" for i in range(30)]
    assert refused(csv_bytes("\n".join(rows)), file_name="k.csv") == (
        "In 'k.csv' only 'a' varies ('c' and 'd' are the same in every row); an autoencoder needs at least 2 "
        "columns that change.")


def test_too_few_rows_states_the_minimum():
    assert refused(csv_bytes(table(12)), file_name="few.csv", ignore=["kind"]) == (
        "'few.csv' has 12 usable rows; aeviz needs at least 20 to train and test a model.")


def test_too_many_rows_states_the_cap():
    text = "a,b\n" + "1,2\n" * (MAX_ROWS + 1)
    assert refused(csv_bytes(text), file_name="big.csv") == (
        "'big.csv' has 50,001 rows; aeviz reads at most 50,000, so keep a sample of them.")


def test_too_many_bytes_states_the_cap_before_reading(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: nothing is written, nothing should be read
    assert refused(path) == "'huge.csv' is 20.0 MB; aeviz reads files of at most 20 MB, so keep a sample of the rows or images."


def test_a_zip_bomb_is_refused_unopened(monkeypatch):
    bomb = zip_bytes({"zeros/a.png": bytes(userdata.MAX_MEMBER + 1)})  # 10 MB of zeros pack into about 10 kB
    assert len(bomb) < 100_000
    refused(bomb, "'zeros/a.png' in 'b.zip' unpacks to 10 MB", "it may be a zip bomb, so it was not opened",
            file_name="b.zip")
    monkeypatch.setattr(userdata, "MAX_UNZIPPED", 1_000_000)
    many = zip_bytes({f"x/{i}.png": bytes(400_000) for i in range(3)})
    assert refused(many, file_name="m.zip") == (
        "'m.zip' would unpack to 1.2 MB, more than the 1.0 MB aeviz unpacks; it may be a zip bomb, so it was not "
        "opened.")


@pytest.mark.parametrize("member", ["../evil.png", "cats/../../evil.png", "/etc/evil.png", "C:/evil.png"])
def test_paths_that_leave_the_folder_are_refused(member):
    assert refused(zip_bytes({"cats/a.png": png(), member: png()}), file_name="p.zip") == (
        f"'p.zip' contains '{member}', a path that leaves the folder; aeviz refuses such archives.")


def test_non_image_files_in_a_zip_are_named():
    assert refused(zip_bytes({"cats/a.png": png(), "cats/notes.txt": b"hello"}), file_name="n.zip") == (
        "'n.zip' contains 'cats/notes.txt', which is not a PNG or JPEG image; take it out and zip the folder again.")


def test_a_renamed_file_inside_a_zip_is_refused():
    refused(zip_bytes({**{f"cats/{i}.png": png() for i in range(20)}, "cats/b.png": b"not an image at all"}),
            "'cats/b.png' in 'r.zip' cannot be read as an image.", file_name="r.zip")


def test_ragged_sequences_are_refused():
    rows = ["1,2,3,4,5"] * 25 + ["1,2,3"] + ["1,2,3,4,5"] * 5
    assert refused(csv_bytes("\n".join(rows)), file_name="s.csv", kind="series") == (
        "The series on line 26 of 's.csv' has 3 steps but the first has 5; every series must be as long as the "
        "others (ragged sequences), or cut one long series into windows.")


def test_an_unknown_file_type_lists_what_is_read():
    assert refused(b"PK\x03\x04", file_name="marks.xlsx") == (
        "'marks.xlsx' is not a file type aeviz reads; use CSV or TSV (a table or a time series), .npy or .npz "
        "(arrays) or a .zip of PNG or JPEG images.")


@pytest.mark.parametrize("raw", [b"a,b\n\x81\x8d,1\n", b"a,b\x00\n1,2\n"])
def test_unreadable_encodings_say_how_to_save_again(raw):
    assert refused(raw, file_name="e.csv") == (
        "'e.csv' is not readable text (not UTF-8, UTF-16 or Windows-1252); save it again as 'CSV UTF-8' from your "
        "spreadsheet.")


def test_pickled_arrays_are_never_unpickled():
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}] * 30, dtype=object), allow_pickle=True)
    assert refused(buf.getvalue(), file_name="obj.npy") == (
        "'obj.npy' holds Python objects, which aeviz never unpickles; save plain numbers (np.save with "
        "allow_pickle=False).")


def test_a_missing_label_column_lists_the_columns():
    refused(csv_bytes(table()), "There is no column 'type' to use as the label column; the columns are 'h', 'w', 'd' "
            "and 'kind'.", file_name="t.csv", label_column="type")


def test_an_anomaly_value_that_never_occurs_lists_the_values():
    refused(csv_bytes(table()), "No sample has label column 'kind' = 'z'; its values include 'a', 'b' and 'c'.",
            file_name="t.csv", label_column="kind", anomaly_value="z")


def test_too_many_values_names_the_largest_side_that_fits(monkeypatch):
    monkeypatch.setattr(userdata, "MAX_VALUES", 30 * 16 * 16)
    refused(zip_bytes({f"x/{i}.png": png() for i in range(30)}), "'z.zip' holds 30 images, which at 28x28 make 23,520 "
            "numbers, more than the 7,680 aeviz keeps in memory; choose a side of at most 16 or fewer images.",
            file_name="z.zip")


def test_bad_options_are_one_sentence():
    with pytest.raises(DataError, match="^The image side must be between 4 and 64 pixels, not 100.$"):
        read_data(b"", file_name="x.zip", side=100)
    with pytest.raises(DataError, match="^Unknown option 'colour'"):
        read_data(b"", file_name="x.zip", colour="red")


# Good input.

def test_a_table_is_standardised_split_and_labelled(tmp_path):
    path = tmp_path / "shapes.csv"
    path.write_text(table(100))
    d = read_data(path, label_column="kind")
    pre = d.extras["preprocessing"]
    assert d.name == "user:shapes" and d.kind == "points" and d.recon == "mse" and d.sample_shape == (3,)
    assert (len(d.x_train), len(d.x_test)) == (80, 20) and d.label_names == ("a", "b", "c")
    assert torch.bincount(d.y_test).tolist() == [7, 7, 6]  # stratified
    assert pre["columns"] == ["h", "w", "d"] and pre["source"]["path"] == str(path.resolve())
    raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1, 2))
    back = unscale(d.x_train.numpy(), pre)  # the training rows in the file's units
    assert np.asarray(pre["scaler"]["mean"]) == pytest.approx(back.mean(0), rel=1e-4)
    assert np.asarray(pre["scaler"]["std"]) == pytest.approx(back.std(0), rel=1e-3)
    z = (back - back.mean(0)) / back.std(0)  # standardised: mean 0, sd 1 per column on the training rows
    assert z.mean(0) == pytest.approx(0, abs=1e-4) and z.std(0) == pytest.approx(1, abs=1e-3)
    assert np.abs(raw[:, None] - back[None]).max(2).min(0) == pytest.approx(0, abs=1e-3)  # each is a file row
    assert d.x_train.min() > 0 and d.x_train.max() < 1
    again = read_data(path, label_column="kind")
    assert torch.equal(again.x_train, d.x_train) and torch.equal(again.y_test, d.y_test)  # seeded split


def test_a_table_s_scaler_round_trips_through_a_checkpoint(tmp_path):
    path = tmp_path / "shapes.csv"
    path.write_text(table(60))
    d = read_data(path, label_column="kind")
    name = aeviz.register_user_dataset("shapes", d)
    mc = aeviz.config_for(name, hidden=(8,))
    tc = aeviz.TrainConfig(epochs=1, batch_size=16)
    model, _ = aeviz.train(mc, tc)  # no data given: train() finds user:shapes itself
    back = aeviz.load(aeviz.save(model, tmp_path / "m.safetensors", train_config=tc,
                                 preprocessing=d.extras["preprocessing"]))
    assert back.config == mc and back.train_config == tc and back.preprocessing == d.extras["preprocessing"]
    raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1, 2))
    rows = unscale(d.x_test.numpy(), back.preprocessing)
    assert np.abs(raw[:, None] - rows[None]).max(2).min(0) == pytest.approx(0, abs=1e-3)  # each is a file row
    assert scale(rows, back.preprocessing) == pytest.approx(d.x_test.numpy(), abs=1e-6)


def test_an_anomaly_value_trains_on_the_normal_rows_only():
    d = read_data(csv_bytes(table(100)), file_name="t.csv", label_column="kind", anomaly_value="c")
    assert d.label_names == ("normal", "anomaly") and (d.y_train == 0).all()
    assert int(d.y_test.sum()) == 33 and len(d.x_train) == 53 and len(d.x_test) == 14 + 33


def test_tsv_and_semicolons_with_decimal_commas_are_sniffed():
    tsv = table(30).replace(",", "\t")
    assert read_data(csv_bytes(tsv), file_name="t.tsv", ignore=("kind",)).extras["preprocessing"]["columns"] == ["h", "w", "d"]
    semi = table(30).replace(",", ";").replace(".", ",")
    d = read_data(csv_bytes(semi), file_name="t.csv", label_column="kind")
    comma = read_data(csv_bytes(table(30)), file_name="t.csv", label_column="kind")
    assert torch.allclose(d.x_train, comma.x_train)


def test_a_numeric_label_with_many_values_is_a_continuous_colour():
    rows = ["a,b,price"] + [f"{i},{i % 7},{i * 1.5}" for i in range(40)]
    d = read_data(csv_bytes("\n".join(rows)), file_name="p.csv", label_column="price")
    assert d.label_names == () and d.y_train.dtype == torch.float32 and d.sample_shape == (2,)


def test_arrays_of_vectors_images_and_sequences(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "v.npy", rng.normal(5, 3, (50, 6)))
    v = read_data(tmp_path / "v.npy")
    assert v.kind == "points" and v.sample_shape == (6,) and (len(v.x_train), len(v.x_test)) == (40, 10)
    rgb = rng.integers(0, 256, (30, 12, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", x=rgb, y=np.arange(30) % 2)
    im = read_data(tmp_path / "rgb.npz")
    assert im.kind == "image" and im.recon == "bce" and im.sample_shape == (1, 12, 16) and im.label_names == ("0", "1")
    assert im.extras["preprocessing"]["scaler"] == {"type": "divide", "by": 255.0}
    gray = rgb @ np.array([0.299, 0.587, 0.114]) / 255
    first = int(np.flatnonzero((np.abs(gray - im.x_train[0, 0].numpy()) < 1e-5).all((1, 2)))[0])
    assert first >= 0
    colour = read_data(tmp_path / "rgb.npz", channels="keep")
    assert colour.sample_shape == (3, 12, 16)
    np.save(tmp_path / "seq.npy", rng.normal(0, 1, (40, 25, 2)))
    s = read_data(tmp_path / "seq.npy")
    assert s.kind == "sequence" and s.sample_shape == (25, 2) and len(s.extras["preprocessing"]["scaler"]["mean"]) == 2


def test_a_zip_of_folders_gives_labelled_grayscale_images_at_the_chosen_side():
    members = {f"pets/cats/{i}.png": png(40, 30, 50) for i in range(12)}
    members |= {f"pets/dogs/{i}.jpg": _jpeg(20, 20) for i in range(10)}
    members |= {"__MACOSX/pets/._0.png": b"junk", "pets/.DS_Store": b"junk"}
    d = read_data(zip_bytes(members), file_name="pets.zip", side=16)
    assert d.kind == "image" and d.sample_shape == (1, 16, 16) and d.label_names == ("cats", "dogs")
    assert len(d.x_train) + len(d.x_test) == 22 and torch.bincount(torch.cat([d.y_train, d.y_test])).tolist() == [12, 10]
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1
    notes = d.extras["notes"]
    assert "Skipped 2 system files (__MACOSX, hidden files)." in notes
    assert "The images came in 2 sizes (from 20x20 to 40x30); all were converted to grayscale and resized to 16x16." in notes
    assert "12 images that were not square were stretched to a square." in notes
    cat = d.x_train[d.y_train == 0][0, 0]
    assert cat.numpy() == pytest.approx(50 / 255, abs=1e-6)


def _jpeg(w, h) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


def test_series_one_per_row_with_a_label():
    rng = np.random.default_rng(0)
    rows = ["kind," + ",".join(f"t{j}" for j in range(16))]
    rows += [f"{'up' if i % 2 else 'down'}," + ",".join(f"{v:.3f}" for v in rng.normal(0, 1, 16)) for i in range(30)]
    d = read_data(csv_bytes("\n".join(rows)), file_name="s.csv", kind="series", label_column="kind")
    assert d.kind == "sequence" and d.sample_shape == (16, 1) and d.label_names == ("down", "up")
    assert (len(d.x_train), len(d.x_test)) == (24, 6)


def test_one_long_series_is_cut_into_windows_split_in_time():
    steps = np.sin(np.arange(1000) / 10)
    raw = csv_bytes("level\n" + "\n".join(f"{v:.5f}" for v in steps))
    d = read_data(raw, file_name="long.csv", window=50, stride=25)
    assert d.kind == "sequence" and d.sample_shape == (50, 1)
    # steps 0..799 train (windows starting 0, 25, ..., 750), 800..999 test (800, 825, ..., 950)
    assert d.y_train.tolist() == [float(s) for s in range(0, 751, 25)]
    assert d.y_test.tolist() == [float(s) for s in range(800, 951, 25)]
    assert unscale(d.x_test[0, :, 0].numpy(), d.extras["preprocessing"]) == pytest.approx(steps[800:850], abs=1e-4)
    assert any("straddled the cut" in n for n in d.extras["notes"])


def test_user_datasets_are_found_by_name_in_memory_and_on_disk(registry):
    d = read_data(csv_bytes(table(40)), file_name="t.csv", label_column="kind")
    assert aeviz.register_user_dataset("mine", d) == "user:mine"
    assert (registry / "mine.safetensors").is_file()
    assert aeviz.config_for("user:mine").input_shape == (3,)
    userdata._USER.clear()  # another process: only the disk copy is left
    back = aeviz.load_dataset("user:mine")
    assert torch.equal(back.x_test, d.x_test) and back.label_names == d.label_names
    assert back.extras["preprocessing"] == d.extras["preprocessing"] and "user:mine" in userdata.user_names()
    with pytest.raises(aeviz.DatasetUnavailable, match="There is no user dataset 'nope'"):
        aeviz.load_dataset("user:nope")
    with pytest.raises(DataError, match="A dataset name may use letters"):
        aeviz.register_user_dataset("../up", d)


def test_cli_train_on_a_file_stores_its_source_scaler_and_train_config(tmp_path, capsys):
    path = tmp_path / "shapes.csv"
    path.write_text(table(40))
    out = tmp_path / "m.safetensors"
    assert cli.main(["train", "--data", str(path), "--label-column", "kind", "--hidden", "8", "--epochs", "1",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Your file 'shapes.csv': 3 numeric columns; label column 'kind': 3 classes; 32 train / 8 test." in printed
    model = aeviz.load(out)
    assert model.config.dataset == "user:shapes" and model.train_config == aeviz.TrainConfig(epochs=1)
    pre = model.preprocessing
    assert pre["source"]["file"] == "shapes.csv" and pre["options"]["label_column"] == "kind"
    assert cli.main(["train", "--label-column", "kind"]) == 2
    assert capsys.readouterr().err == "aeviz train: --label-column is an option for your own file: add --data PATH.\n"
    assert cli.main(["train", "--data", str(tmp_path / "none.csv")]) == 2
    assert capsys.readouterr().err.startswith("aeviz train: There is no file")


def test_breast_cancer_trains_on_benign_only_and_wine_has_three_cultivars():
    from sklearn.datasets import load_breast_cancer

    bc = aeviz.load_dataset("breast-cancer")
    assert (len(bc.x_train), len(bc.x_test)) == (257, 312) and bc.sample_shape == (30,) and bc.recon == "mse"
    assert (bc.y_train == 0).all() and torch.bincount(bc.y_test).tolist() == [100, 212]
    assert bc.label_names == ("benign", "malignant")
    pre = bc.extras["preprocessing"]
    back = unscale(bc.x_train.numpy(), pre)
    benign = load_breast_cancer().data[load_breast_cancer().target == 1]
    assert np.abs(benign[:, None] - back[None]).max(2).min(0) == pytest.approx(0, abs=1e-2)  # benign rows, in mm
    assert np.asarray(pre["scaler"]["mean"]) == pytest.approx(back.mean(0), rel=1e-4)
    wine = aeviz.load_dataset("wine")
    assert (len(wine.x_train), len(wine.x_test)) == (128, 50) and wine.sample_shape == (13,)
    assert torch.bincount(wine.y_test).tolist() == [17, 20, 13] and wine.label_names[0] == "cultivar 1"


def test_an_npz_may_hold_one_big_array_but_not_a_bomb(monkeypatch, tmp_path):
    monkeypatch.setattr(userdata, "MAX_MEMBER", 1_000)  # the per-image cap of zips does not apply to arrays
    x = np.random.default_rng(0).normal(size=(400, 64))  # 204,928 bytes as .npy
    np.savez_compressed(tmp_path / "a.npz", x=x)
    assert read_data(tmp_path / "a.npz").sample_shape == (64,)
    monkeypatch.setattr(userdata, "MAX_UNZIPPED", 100_000)
    assert refused(tmp_path / "a.npz") == (
        "'x.npy' in 'a.npz' unpacks to 0.2 MB, more than the 0.1 MB aeviz unpacks per file; it may be a zip bomb, "
        "so it was not opened.")


def test_a_dataset_as_bytes_comes_back_whole_and_bad_bytes_get_one_sentence():
    from aeviz.bench.datafiles import table_csv
    from aeviz.userdata import DataError, dataset_bytes, dataset_from_bytes

    d = read_data(table_csv(), file_name="parts.csv", label_column="kind")
    back = dataset_from_bytes(dataset_bytes(d), "parts-again")
    assert back.name == "user:parts-again" and back.label_names == d.label_names and back.kind == d.kind
    assert all(torch.equal(getattr(back, k), getattr(d, k)) for k in ("x_train", "y_train", "x_test", "y_test"))
    assert back.extras == d.extras  # the scaler, columns, split and notes
    with pytest.raises(DataError, match="The stored dataset 'junk' is unreadable; read the file again."):
        dataset_from_bytes(b"not a dataset", "junk")


def test_a_dataset_from_bytes_is_held_to_what_a_read_file_must_be():
    import dataclasses

    from aeviz.bench.datafiles import table_csv
    from aeviz.userdata import check_dataset, sample_text

    d = read_data(table_csv(), file_name="parts.csv", label_column="kind")
    assert check_dataset(d) is d and sample_text(d) == "4 features"
    assert (len(d.x_train), len(d.x_test)) == (48, 12)
    bad = {
        "outside [0, 1]": (dict(x_train=d.x_train * 2), "The dataset 'parts' holds values outside [0, 1]; read its file again."),
        "nan": (dict(x_test=d.x_test.clone().fill_(float("nan"))), "The dataset 'parts' holds values outside [0, 1]"),
        "float64": (dict(x_train=d.x_train.double()), "The samples of the dataset 'parts' are not float32 arrays of one shape."),
        "labels": (dict(y_test=d.y_test[:-1]), "The dataset 'parts' does not have one label for every sample."),
        "kind": (dict(kind="video"), "The dataset 'parts' has an unknown kind 'video'."),
        "few": (dict(x_train=d.x_train[:5], y_train=d.y_train[:5]), "'parts' has 17 usable samples; aeviz needs at least 20"),
        "many": (dict(x_train=d.x_train.repeat(MAX_ROWS // 48 + 1, 1), y_train=d.y_train.repeat(MAX_ROWS // 48 + 1)),
                 f"aeviz reads at most {MAX_ROWS:,}"),
    }
    for change, message in bad.values():
        with pytest.raises(DataError, match=message.replace("[", r"\[").replace("(", r"\(").replace(".", r"\.")):
            check_dataset(dataclasses.replace(d, name="user:parts", **change))



def test_sample_text_says_what_one_sample_is():
    from aeviz.bench.datafiles import images_zip, series_csv
    from aeviz.userdata import sample_text

    assert sample_text(read_data(images_zip(), file_name="shapes.zip")) == "28 × 28 pixels"
    assert sample_text(read_data(series_csv(), file_name="waves.csv", kind="series")) == "16 steps"


def test_columns_reads_the_header_only():
    from aeviz.userdata import columns

    big = b"a,b,kind\n" + b"1,2,x\n" * 200_000  # 1.2 MB: only its first 64 kB are looked at
    assert columns(big, "t.csv") == ["a", "b", "kind"]
    assert columns(b"1;2\n3;4\n", "t.csv") == []  # numbers in the first line: no header
    assert columns(b"x\ty\n1\t2\n", "t.tsv") == ["x", "y"]
