"""Bring your own data: a table (CSV/TSV), arrays (.npy/.npz), a .zip of images or a time series, parsed into a
Dataset with a seeded train/test split. Never imports streamlit, never unpickles (allow_pickle=False), never
extracts a zip to disk. Bad input raises DataError with one sentence a student can act on.

Scaling: every decoder ends in a sigmoid, so every dataset lives in [0,1]. Pixels are divided by 255. Other
numbers are standardised with the training split's mean and standard deviation per feature, then squashed by a
logistic curve, v = 1 / (1 + exp(-z / SQUASH)): no value is clipped, and unscale() undoes both steps. The scaler
rides in the dataset's extras["preprocessing"] and, through aeviz.save(..., preprocessing=...), in the checkpoint.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from .data import Dataset, DatasetUnavailable

PREFIX = "user:"  # user datasets are loaded by data.load("user:NAME")
FORMAT = "aeviz-userdata/1"

# Caps, stated once. The messages quote them.
MAX_BYTES = 20_000_000  # one uploaded file, any kind (20 MB)
MAX_ROWS = 50_000  # samples: table rows, series, windows or images
MAX_VALUES = 25_000_000  # numbers held in memory for one dataset (100 MB as float32)
MAX_FEATURES = 4_096  # numbers in one sample (a 64x64 image, a 4,096-step series)
MIN_ROWS = 20  # fewer samples cannot be split into a training and a test set worth the name
MIN_FEATURES = 2  # an autoencoder squeezes several numbers through a smaller code
MAX_CLASSES = 50  # a label with more distinct values is an id or free text, not a class
MAX_SIDE, MIN_SIDE = 64, 4  # images in a zip are resized to side x side
MAX_UNZIPPED = 100_000_000  # all members of a zip together, uncompressed (100 MB)
MAX_MEMBER = 10_000_000  # one member of a zip, uncompressed (10 MB)
MAX_PIXELS = 16_000_000  # one image before resizing (16 megapixels): a decompression bomb is refused unread
SQUASH = 4.0  # v = sigmoid(z / SQUASH): near-linear for |z| < 4 (slope >= 79 % of the centre's); z = 20 -> 0.993

KINDS = ("auto", "table", "series", "images")
MISSING = ("refuse", "drop", "fill")
CHANNELS = ("gray", "keep")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MISSING_TOKENS = {"", "na", "n/a", "#n/a", "nan", "null", "none", "?"}
JUNK = re.compile(r"(^|/)(__MACOSX/|\.[^/]*$|Thumbs\.db$|desktop\.ini$)", re.I)  # OS clutter inside zips
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class DataError(ValueError):
    """A file cannot become a dataset; the message is one sentence that says what to change."""


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file. Every field is a flag of `aeviz train --data`."""

    kind: str = "auto"  # what the samples are: auto (from the file), table, series or images
    label_column: str = ""  # a table's column of classes (colours the latent map) or of anomaly flags
    anomaly_value: str = ""  # the label that marks an anomaly: train on the other samples, test on all
    missing: str = "refuse"  # gaps in the numbers: refuse, drop (those rows) or fill (column mean; series: interpolate)
    ignore: tuple[str, ...] = ()  # table columns to leave out (ids, dates, free text)
    side: int = 28  # images from a zip are resized to side x side pixels
    channels: str = "gray"  # colour images in arrays: gray (luminance) or keep (channels first)
    window: int = 0  # series: cut one long series into windows of this many steps (0: one series per row)
    stride: int = 0  # series: steps from one window's start to the next (0: the window length)
    test_fraction: float = 0.2  # share of the samples held out for testing
    split_seed: int = 0  # seeds the train/test split

    def __post_init__(self):
        object.__setattr__(self, "ignore", tuple(str(c) for c in self.ignore))
        _check(self.kind in KINDS, f"Unknown kind '{self.kind}'; choose one of {', '.join(KINDS)}.")
        _check(self.missing in MISSING, f"Unknown way to handle gaps '{self.missing}'; choose refuse, drop or fill.")
        _check(self.channels in CHANNELS, f"Unknown channels '{self.channels}'; choose gray or keep.")
        _check(MIN_SIDE <= self.side <= MAX_SIDE,
               f"The image side must be between {MIN_SIDE} and {MAX_SIDE} pixels, not {self.side}.")
        _check(self.window == 0 or 2 <= self.window <= MAX_FEATURES,
               f"The window must be between 2 and {MAX_FEATURES:,} steps (or 0 for one series per row), not {self.window}.")
        _check(self.stride >= 0, f"The stride must be a positive number of steps (or 0 for the window), not {self.stride}.")
        _check(0.05 <= self.test_fraction <= 0.5,
               f"The test fraction must be between 0.05 and 0.5, not {self.test_fraction}.")

    def changed(self) -> dict:
        """The options that differ from the defaults (what a script has to spell out)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DataError(message)


def _n(count: int, word: str) -> str:
    """'1 row', '2,000 rows'."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _gaps_sentence(count: int, unit: str, of: str, first: str, drop: str, fill: str) -> str:
    """Why rows (steps, samples, ...) with gaps are refused, and the two ways out, e.g. 3 rows of 'a.csv' have gaps
    (the first at line 5, column 'b'): choose 'drop' to leave those rows out or 'fill' to fill each gap with its
    column's mean."""
    return (f"{_n(count, unit)} of {of} {'has' if count == 1 else 'have'} gaps ({first}): choose 'drop' to {drop} "
            f"or 'fill' to {fill}.")


def _names(items, limit: int = 5) -> str:
    """'a', 'b' and 'c' (at most limit, then 'and 3 more')."""
    quoted = [f"'{s}'" for s in items]
    if len(quoted) > limit:
        quoted = quoted[:limit] + [f"{len(items) - limit} more"]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _mb(size: float) -> str:
    """'12 MB', or '0.4 MB' below 10 MB."""
    return f"{size / 1e6:,.0f} MB" if size >= 10e6 else f"{size / 1e6:.1f} MB"


# Reading the bytes.

def _source(source, file_name: str) -> tuple[bytes, str, str]:
    """(bytes, file name, absolute path or '') with the size cap checked before anything is read."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw, name, path = bytes(source), file_name or "upload", ""
        size = len(raw)
    else:
        p = Path(source)
        name = file_name or p.name
        _check(p.is_file(), f"There is no file '{p}'.")
        size, path, raw = p.stat().st_size, str(p.resolve()), b""
    _check(size <= MAX_BYTES, f"'{name}' is {size / 1e6:.1f} MB; aeviz reads files of at most "
                              f"{MAX_BYTES / 1e6:.0f} MB, so keep a sample of the rows or images.")
    _check(size > 0, f"'{name}' is empty.")
    return raw or Path(source).read_bytes(), name, path


def _text(raw: bytes, name: str) -> str:
    """Decode UTF-8 (with or without BOM), UTF-16 with a BOM, or Windows-1252 (older Excel exports)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\x00" not in raw[:65536]:  # a NUL byte means binary (a spreadsheet, a zip renamed .csv)
        for encoding in ("utf-8-sig", "cp1252"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
    raise DataError(f"'{name}' is not readable text (not UTF-8, UTF-16 or Windows-1252); "
                    f"save it again as 'CSV UTF-8' from your spreadsheet.")


def _rows(text: str, name: str) -> tuple[list[list[str]], list[int], str]:
    """Non-empty CSV rows, their 1-based line numbers, and the delimiter (sniffed among , tab ; |)."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if name.lower().endswith(".tsv"):
        delim = "\t"
    else:
        try:
            delim = csv.Sniffer().sniff("\n".join(lines), delimiters=",\t;|").delimiter
        except csv.Error:
            counts = {d: lines[0].count(d) for d in ",\t;|"} if lines else {",": 0}
            delim = max(counts, key=counts.get) if max(counts.values()) else ","
    rows, numbers = [], []
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append([cell.strip() for cell in row])
                numbers.append(reader.line_num)
    except csv.Error as err:
        raise DataError(f"Line {reader.line_num} of '{name}' cannot be read as CSV ({err}).") from err
    _check(bool(rows), f"'{name}' has no rows.")
    return rows, numbers, delim


def _number(cell: str, decimal_comma: bool) -> float | None:
    """The cell as a float; nan for a gap (empty, NA, inf...); None when it is not a number."""
    if cell.lower() in MISSING_TOKENS:
        return float("nan")
    if decimal_comma and "," in cell and "." not in cell:
        cell = cell.replace(",", ".")
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if np.isfinite(v) else float("nan")


def _column(cells: list[str], decimal_comma: bool) -> tuple[np.ndarray, int | None]:
    """(float values with nan for gaps, index of the first non-number or None)."""
    try:  # fast path: plain numbers only
        values = np.asarray(cells, dtype=np.float64)
        return np.where(np.isfinite(values), values, np.nan), None
    except ValueError:
        pass
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        v = _number(cell, decimal_comma)
        if v is None:
            return values, i
        values[i] = v
    return values, None


def _is_header(row: list[str], decimal_comma: bool) -> bool:
    return any(_number(c, decimal_comma) is None for c in row)


def _header(row: list[str]) -> tuple[list[str], list[str]]:
    """Column names (blank ones named by position, repeats numbered) and notes."""
    names, seen, notes = [], {}, []
    for j, cell in enumerate(row):
        base = cell or f"column {j + 1}"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} ({seen[base]})")
    if len(set(row)) < len(row):
        notes.append("Some column names were blank or repeated; they were named by position or numbered.")
    return names, notes


def _find(names: list[str], wanted: str, what: str) -> int:
    """Index of a column by exact name, else by unique case-insensitive match."""
    if wanted in names:
        return names.index(wanted)
    loose = [i for i, n in enumerate(names) if n.lower() == wanted.strip().lower()]
    _check(len(loose) == 1, f"There is no column '{wanted}' to use as {what}; the columns are {_names(names, 8)}.")
    return loose[0]


# Gaps, constant columns, counts.

def _gaps(x: np.ndarray, opts: ReadOptions, name: str, where) -> tuple[np.ndarray, np.ndarray, list[float] | None, str]:
    """Apply opts.missing to the rows of x (N, D) with nan gaps: (x, rows kept, fill values, note).

    where(i, j) describes the first gap for the message, e.g. "line 5, column 'age'".
    """
    bad = np.isnan(x).any(axis=1)
    keep = np.arange(len(x))
    if not bad.any():
        return x, keep, None, ""
    n_bad = int(bad.sum())
    i = int(np.flatnonzero(bad)[0])
    j = int(np.flatnonzero(np.isnan(x[i]))[0])
    if opts.missing == "refuse":
        raise DataError(_gaps_sentence(n_bad, "row", f"'{name}'", f"the first at {where(i, j)}", "leave those rows out",
                                       "fill each gap with its column's mean"))
    if opts.missing == "drop":
        return x[~bad], keep[~bad], None, f"Left out {_n(n_bad, 'row')} with gaps."
    with np.errstate(all="ignore"):
        means = np.nanmean(x, axis=0)
    means = np.where(np.isnan(means), 0.0, means)
    filled = np.where(np.isnan(x), means, x)
    return filled, keep, means.tolist(), f"Filled the gaps in {_n(n_bad, 'row')} with their column's mean."


def _drop_constant(x: np.ndarray, columns: list[str], name: str) -> tuple[np.ndarray, list[str], str]:
    """Leave out columns with one value throughout; refuse when fewer than MIN_FEATURES vary."""
    varies = np.ptp(x, axis=0) > 0
    if varies.all():
        return x, columns, ""
    constant = [c for c, v in zip(columns, varies) if not v]
    kept = [c for c, v in zip(columns, varies) if v]
    if len(kept) < MIN_FEATURES:
        only = f"only {_names(kept)} varies" if kept else "no column varies"
        raise DataError(f"In '{name}' {only} ({_names(constant)} {'is' if len(constant) == 1 else 'are'} the "
                        f"same in every row); an autoencoder needs at least {MIN_FEATURES} columns that change.")
    note = (f"Left out {_n(len(constant), 'constant column')} ({_names(constant)}): "
            f"{'it is' if len(constant) == 1 else 'they are'} the same in every row.")
    return x[:, varies], kept, note


def _count(n: int, per_sample: int, name: str, what: str = "row") -> None:
    """Refuse too few or too many samples, or too many numbers."""
    _check(n >= MIN_ROWS, f"'{name}' has {_n(n, 'usable ' + what)}; aeviz needs at least {MIN_ROWS} to train "
                          f"and test a model.")
    _check(n <= MAX_ROWS, f"'{name}' has {_n(n, what)}; aeviz reads at most {MAX_ROWS:,}, so keep a sample of them.")
    _check(per_sample <= MAX_FEATURES, f"Each sample of '{name}' has {per_sample:,} numbers; aeviz takes at most "
                                       f"{MAX_FEATURES:,} per sample (a 64x64 image).")
    _check(n * per_sample <= MAX_VALUES, f"'{name}' holds {n * per_sample:,} numbers; aeviz keeps at most "
                                         f"{MAX_VALUES:,} in memory, so keep fewer {what}s.")


# What came out of a file, before labels, split and scaling.

@dataclass
class _Parsed:
    x: np.ndarray  # (N, *sample_shape) in raw units: float64, or float32 for pixels (half the memory at the cap)
    kind: str  # Dataset.kind: image, points or sequence
    what: str  # what was read: table, series, arrays or images
    scaler: str  # standard, pixels (already in [0,1] or 0..255) or minmax
    labels: np.ndarray | None = None  # one raw label per sample
    label_title: str = ""  # how a message names the labels: "label column 'kind'", "folder", "y"
    columns: list[str] = dataclasses.field(default_factory=list)  # feature names of vectors
    fill: list[float] | None = None  # column means used for gaps
    notes: list[str] = dataclasses.field(default_factory=list)
    split: tuple[np.ndarray, np.ndarray] | None = None  # fixed (train, test) indices: time-ordered windows
    y: np.ndarray | None = None  # fixed targets (a window's start step) when there are no labels


def _table(text: str, name: str, opts: ReadOptions) -> _Parsed:
    rows, lines, delim = _rows(text, name)
    comma = delim != ","
    notes = []
    if _is_header(rows[0], comma):
        columns, header_notes = _header(rows[0])
        rows, lines = rows[1:], lines[1:]
        notes += header_notes
    else:
        columns = [f"column {j + 1}" for j in range(len(rows[0]))]
        notes.append("The first line holds numbers, so it was read as data and the columns are named "
                     "'column 1', 'column 2', ...")
    _check(len(rows) <= MAX_ROWS, f"'{name}' has {_n(len(rows), 'row')}; aeviz reads at most {MAX_ROWS:,}, "
                                  f"so keep a sample of them.")
    width = len(columns)
    for k, row in enumerate(rows):
        if len(row) > width and not any(row[width:]):
            rows[k] = row[:width]  # trailing empty cells, as spreadsheets write them
        elif len(row) != width:
            raise DataError(f"Line {lines[k]} of '{name}' has {_n(len(row), 'cell')} but the header has {width}; "
                            f"every row needs one cell per column.")
    label = _find(columns, opts.label_column, "the label column") if opts.label_column else None
    skip = {_find(columns, c, "a column to ignore") for c in opts.ignore}
    features = [j for j in range(width) if j != label and j not in skip]
    values, bad = [], []
    for j in features:
        col, first_bad = _column([r[j] for r in rows], comma)
        values.append(col)
        if first_bad is not None:
            bad.append((j, first_bad))
    if bad:
        j, i = bad[0]
        names = [columns[j] for j, _ in bad]
        subject = f"Column '{names[0]}' is" if len(names) == 1 else f"Columns {_names(names)} are"
        raise DataError(f"{subject} not numeric (e.g. '{rows[i][j]}' on line {lines[i]}); pick "
                        f"{'it' if len(names) == 1 else 'one'} as the label column or leave "
                        f"{'it' if len(names) == 1 else 'them'} out.")
    names = [columns[j] for j in features]
    if len(names) < MIN_FEATURES:
        _check(bool(names), f"'{name}' has no numeric column besides the label; an autoencoder needs at least "
                            f"{MIN_FEATURES}.")
        raise DataError(f"'{name}' has a single numeric column ('{names[0]}'); an autoencoder needs at least "
                        f"{MIN_FEATURES} features, so add columns or read it as a time series cut into windows.")
    x = np.stack(values, axis=1)
    empty = [c for c, col in zip(names, x.T) if np.isnan(col).all()]
    if empty:
        keep = [c not in empty for c in names]
        x, names = x[:, keep], [c for c in names if c not in empty]
        notes.append(f"Left out {_n(len(empty), 'empty column')} ({_names(empty)}).")
    x, kept, fill, note = _gaps(x, opts, name, lambda i, j: f"line {lines[i]}, column '{names[j]}'")
    notes += [note] if note else []
    _count(len(x), len(names), name)
    x, names2, note = _drop_constant(x, names, name)
    if fill is not None:
        fill = [f for c, f in zip(names, fill) if c in names2]
    notes += [note] if note else []
    labels = np.array([rows[i][label] for i in kept], dtype=object) if label is not None else None
    return _Parsed(x, "points", "table", "standard", labels, f"label column '{columns[label]}'" if label is not None
                   else "", names2, fill, notes)


def _interpolate(v: np.ndarray) -> np.ndarray:
    """Fill nan gaps along the first axis by linear interpolation (the ends take the nearest value)."""
    v = v.copy()
    steps = np.arange(len(v))
    for col in v.reshape(len(v), -1).T if v.ndim > 1 else [v]:
        gap = np.isnan(col)
        if gap.any() and not gap.all():
            col[gap] = np.interp(steps[gap], steps[~gap], col[~gap])
    return v


def _windows(v: np.ndarray, opts: ReadOptions, name: str, columns: list[str], notes: list[str]) -> _Parsed:
    """Cut one long series v (T, F) into windows; the first (1 - test_fraction) of the steps train, the rest test."""
    steps, feats = v.shape
    w, stride = opts.window, opts.stride or opts.window
    _check(steps >= 2 * w, f"The series in '{name}' has {_n(steps, 'step')}, fewer than two windows of {w}; "
                           f"choose a shorter window.")
    gaps = np.isnan(v).any(axis=1)
    if gaps.any():
        _check(opts.missing != "refuse", _gaps_sentence(
            int(gaps.sum()), "step", f"the series in '{name}'", f"the first at step {int(np.flatnonzero(gaps)[0]) + 1}",
            "leave out the windows they fall in", "interpolate them"))
        if opts.missing == "fill":
            v = _interpolate(v)
            notes.append(f"Filled {_n(int(gaps.sum()), 'gap')} by interpolating between the neighbouring steps.")
    starts = np.arange(0, steps - w + 1, stride)
    _check(len(starts) <= MAX_ROWS, f"Windows of {w} every {stride} steps cut '{name}' into {len(starts):,} "
                                    f"samples; aeviz takes at most {MAX_ROWS:,}, so choose a longer stride.")
    cut = int(round(steps * (1 - opts.test_fraction)))
    ok = ~np.array([np.isnan(v[s:s + w]).any() for s in starts], bool)
    if not ok.all():
        notes.append(f"Left out {_n(int((~ok).sum()), 'window')} with gaps.")
    train = np.flatnonzero(ok & (starts + w <= cut))
    test = np.flatnonzero(ok & (starts >= cut))
    straddle = int((ok & (starts < cut) & (starts + w > cut)).sum())
    if straddle:
        notes.append(f"Left out {_n(straddle, 'window')} that straddled the cut between the training steps and "
                     f"the test steps, so no step is in both.")
    n = len(train) + len(test)
    _check(n >= MIN_ROWS and len(test) >= 1 and len(train) >= 1,
           f"Windows of {w} every {stride} steps cut the {steps:,} steps of '{name}' into {_n(n, 'usable window')} "
           f"(train and test apart); aeviz needs at least {MIN_ROWS}, so choose a shorter window or stride.")
    _count(n, w * feats, name, "window")
    keep = np.concatenate([train, test])
    x = np.stack([v[s:s + w] for s in starts[keep]])
    notes.append(f"Cut {steps:,} steps into windows of {w} every {stride}; the first "
                 f"{100 * (1 - opts.test_fraction):.0f} % of the series trains, the last "
                 f"{100 * opts.test_fraction:.0f} % tests; colour is where a window starts.")
    return _Parsed(x, "sequence", "series", "standard", columns=columns, notes=notes,
                   split=(np.arange(len(train)), np.arange(len(train), n)), y=starts[keep].astype(np.float32))


def _series(text: str, name: str, opts: ReadOptions) -> _Parsed:
    rows, lines, delim = _rows(text, name)
    comma = delim != ","
    notes: list[str] = []
    header = _is_header(rows[0], comma)
    columns = _header(rows[0])[0] if header else [f"column {j + 1}" for j in range(len(rows[0]))]
    rows, lines = (rows[1:], lines[1:]) if header else (rows, lines)
    _check(bool(rows), f"'{name}' has a header but no numbers.")
    if opts.window:  # one long series: rows are steps, numeric columns are features
        skip = {_find(columns, c, "a column to ignore") for c in opts.ignore}
        used = [j for j in range(len(columns)) if j not in skip]
        values = []
        for j in used:
            col, bad = _column([r[j] if j < len(r) else "" for r in rows], comma)
            if bad is not None:
                raise DataError(f"Column '{columns[j]}' is not numeric (e.g. '{rows[bad][j]}' on line {lines[bad]}); "
                                f"leave it out (ignore): the order of the rows is the time axis.")
            values.append(col)
        return _windows(np.stack(values, axis=1), opts, name, [columns[j] for j in used], notes)
    # One series per row: every cell is a step, except a label column.
    label = _find(columns, opts.label_column, "the label column") if opts.label_column else None
    skip = {label} | {_find(columns, c, "a column to ignore") for c in opts.ignore}
    series, labels = [], []
    for row, line in zip(rows, lines):
        cells = [c for j, c in enumerate(row) if j not in skip]
        while cells and not cells[-1]:
            cells.pop()  # a shorter series ends early: that is raggedness, not gaps
        if series and len(cells) != len(series[0]):
            raise DataError(f"The series on line {line} of '{name}' has {_n(len(cells), 'step')} but the first has "
                            f"{len(series[0])}; every series must be as long as the others (ragged sequences), "
                            f"or cut one long series into windows.")
        values = [_number(c, comma) for c in cells]
        if None in values:
            bad = cells[values.index(None)]
            raise DataError(f"Line {line} of '{name}' has '{bad}' where a number should be; a series holds "
                            f"numbers only (name a label column for the rest).")
        series.append(values)
        if label is not None:
            labels.append(row[label] if label < len(row) else "")
    _check(len(series) <= MAX_ROWS, f"'{name}' has {_n(len(series), 'series')}; aeviz reads at most {MAX_ROWS:,}, "
                                    f"so keep a sample of them.")
    x = np.array(series, np.float64)
    _check(x.shape[1] >= MIN_FEATURES, f"The series in '{name}' have a single step; a series needs at least "
                                       f"{MIN_FEATURES}.")
    gaps = np.isnan(x).any(axis=1)
    keep = np.arange(len(x))
    if gaps.any():
        n_bad = int(gaps.sum())
        _check(opts.missing != "refuse", _gaps_sentence(n_bad, "series", f"'{name}'",
                                                        f"the first on line {lines[int(np.flatnonzero(gaps)[0])]}",
                                                        "leave them out", "interpolate the gaps"))
        if opts.missing == "drop":
            keep = np.flatnonzero(~gaps)
            notes.append(f"Left out {_n(n_bad, 'series')} with gaps.")
        else:
            x = _interpolate(x.T).T
            notes.append(f"Filled the gaps in {_n(n_bad, 'series')} by interpolating between neighbouring steps.")
    x = x[keep]
    _count(len(x), x.shape[1], name, "series")
    lab = np.array(labels, dtype=object)[keep] if label is not None else None
    return _Parsed(x[..., None], "sequence", "series", "standard", lab,
                   f"label column '{columns[label]}'" if label is not None else "", notes=notes)


# Arrays.

def _zip_sizes(zf: zipfile.ZipFile, name: str, member_cap: int | None = None) -> list[zipfile.ZipInfo]:
    """Members, after checking every declared size and their total against the caps (zip bombs)."""
    members = [m for m in zf.infolist() if not m.is_dir()]
    cap = MAX_MEMBER if member_cap is None else member_cap
    for m in members:
        _check(m.file_size <= cap, f"'{m.filename}' in '{name}' unpacks to {_mb(m.file_size)}, more than the "
                                   f"{_mb(cap)} aeviz unpacks per file; it may be a zip bomb, so it was not opened.")
    total = sum(m.file_size for m in members)
    _check(total <= MAX_UNZIPPED, f"'{name}' would unpack to {_mb(total)}, more than the {_mb(MAX_UNZIPPED)} aeviz "
                                  f"unpacks; it may be a zip bomb, so it was not opened.")
    return members


def _read_member(zf: zipfile.ZipFile, m: zipfile.ZipInfo, name: str) -> bytes:
    """A member's bytes in memory, never more than its declared size (a lying header is a zip bomb too)."""
    try:
        with zf.open(m) as f:
            raw = f.read(m.file_size + 1)
    except RuntimeError as err:  # encrypted
        raise DataError(f"'{m.filename}' in '{name}' is password-protected; zip the files without a password.") from err
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise DataError(f"'{m.filename}' in '{name}' cannot be unpacked ({err}).") from err
    _check(len(raw) <= m.file_size, f"'{m.filename}' in '{name}' unpacks to more than its header says; it may be a "
                                    f"zip bomb, so it was not opened.")
    return raw


def _np_load(raw: bytes, name: str, suffix: str) -> tuple[np.ndarray, np.ndarray | None]:
    """x (and y from an .npz) with allow_pickle=False, always."""
    try:
        if suffix == ".npz":
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                _zip_sizes(zf, name, member_cap=MAX_UNZIPPED)  # one array may fill the whole budget
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                keys = list(z.keys())
                key = "x" if "x" in keys else (keys[0] if len(keys) == 1 else None)
                _check(key is not None, f"'{name}' has no array named 'x' (it has {_names(keys) if keys else 'none'}); "
                                        f"save it with np.savez(path, x=samples, y=labels).")
                return z[key], (z["y"] if "y" in keys and key == "x" else None)
        return np.load(io.BytesIO(raw), allow_pickle=False), None
    except DataError:
        raise
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise DataError(f"'{name}' holds Python objects, which aeviz never unpickles; save plain numbers "
                            f"(np.save with allow_pickle=False).") from err
        raise DataError(f"'{name}' is not a readable {suffix} file ({err}).") from err
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"'{name}' is not a readable {suffix} file ({err}).") from err


def _gray(x: np.ndarray, axis: int) -> np.ndarray:
    """Luminance (ITU-R 601) of RGB(A) along axis; alpha is ignored; one channel stays."""
    x = np.moveaxis(x, axis, -1)
    if x.shape[-1] == 1:
        return x[..., 0]
    return x[..., :3] @ np.array([0.299, 0.587, 0.114], x.dtype)


def _image_array(x: np.ndarray, opts: ReadOptions, name: str, notes: list[str]) -> np.ndarray:
    """(N, C, H, W) from (N, H, W), (N, H, W, C) or (N, C, H, W); gray unless channels='keep'."""
    if x.ndim == 3:
        return x[:, None]
    last, first = x.shape[-1] in (1, 3, 4), x.shape[1] in (1, 3, 4)
    _check(last or first, f"'{name}' holds arrays of shape {x.shape[1:]}; colour images need 1, 3 or 4 channels, "
                          f"first or last (N x H x W x C or N x C x H x W).")
    axis = -1 if last else 1
    if opts.channels == "keep":
        return np.moveaxis(x, axis, 1) if last else x
    if x.shape[axis] > 1:
        notes.append("Colour images were converted to grayscale (channels='keep' keeps the colours).")
    return _gray(x, axis)[:, None]


def _arrays(raw: bytes, name: str, suffix: str, opts: ReadOptions) -> _Parsed:
    x, y = _np_load(raw, name, suffix)
    _check(x.dtype.kind in "biuf", f"'{name}' holds {x.dtype} values, not numbers.")
    notes: list[str] = []
    if opts.window and x.ndim in (1, 2):  # one long series
        v = x.astype(np.float64).reshape(len(x), -1)
        return _windows(v, opts, name, [f"feature {j + 1}" for j in range(v.shape[1])], notes)
    _check(x.ndim >= 2, f"'{name}' holds one number per sample (shape {x.shape}); an autoencoder needs vectors "
                        f"(N x D), images (N x H x W) or sequences (N x T x F), or a window to cut one long series.")
    _check(x.ndim <= 4, f"'{name}' holds an array of shape {x.shape}; aeviz reads vectors (N x D), images "
                        f"(N x H x W or N x H x W x C) or sequences (N x T x F).")
    _check(opts.kind != "table" or x.ndim == 2, f"'{name}' holds an array of shape {x.shape}, not a table of "
                                                f"vectors (N x D); choose kind 'auto', 'images' or 'series'.")
    if y is not None:
        y = np.asarray(y)
        _check(y.ndim == 1 and len(y) == len(x), f"'{name}' has {_n(len(x), 'sample')} in x but y has shape "
                                                 f"{y.shape}; y needs one label per sample.")
        _check(y.dtype.kind in "biufUS", f"The labels y in '{name}' are {y.dtype}, not numbers or text.")
    _check(len(x) <= MAX_ROWS, f"'{name}' has {_n(len(x), 'sample')}; aeviz reads at most {MAX_ROWS:,}, so keep "
                               f"a sample of them.")
    as_images = opts.kind == "images" or (opts.kind == "auto" and x.ndim == 4) or \
        (opts.kind == "auto" and x.ndim == 3 and min(x.shape[1:]) >= 4)
    labels, title = (y, "y") if y is not None else (None, "")
    if x.ndim == 2 and opts.kind in ("auto", "table"):
        columns = [f"column {j + 1}" for j in range(x.shape[1])]
        _check(x.shape[1] >= MIN_FEATURES, f"'{name}' has a single feature per sample; an autoencoder needs at "
                                           f"least {MIN_FEATURES}.")
        v, keep, fill, note = _gaps(x.astype(np.float64), opts, name, lambda i, j: f"sample {i + 1}, column {j + 1}")
        notes += [note] if note else []
        _count(len(v), v.shape[1], name, "sample")
        v, kept, note = _drop_constant(v, columns, name)
        notes += [note] if note else []
        fill = [f for c, f in zip(columns, fill) if c in kept] if fill is not None else None
        return _Parsed(v, "points", "arrays", "standard", labels[keep] if labels is not None else None, title,
                       kept, fill, notes)
    if as_images:
        _check(x.ndim in (3, 4), f"'{name}' holds an array of shape {x.shape}, not images (N x H x W).")
        x = _image_array(x.astype(np.float32), opts, name, notes)
        if x.ndim == 4 and opts.kind == "auto" and x.shape[1] == 1:
            notes.append(f"Read as {_n(len(x), 'image')} of {x.shape[2]}x{x.shape[3]} pixels (kind='series' reads "
                         f"them as sequences).")
        kind, scaler = "image", "pixels"
    else:
        _check(x.ndim == 3, f"'{name}' holds an array of shape {x.shape}; sequences are N x T x F.")
        kind, scaler = "sequence", "standard"
        x = x.astype(np.float64)
    flat = x.reshape(len(x), -1)
    bad = np.isnan(flat).any(axis=1)
    keep = np.arange(len(x))
    if bad.any():
        _check(opts.missing != "refuse", _gaps_sentence(int(bad.sum()), "sample", f"'{name}'",
                                                        f"nan, the first in sample {int(np.flatnonzero(bad)[0]) + 1}",
                                                        "leave them out", "fill them"))
        if opts.missing == "drop":
            keep = np.flatnonzero(~bad)
            notes.append(f"Left out {_n(int(bad.sum()), 'sample')} with gaps.")
        elif kind == "sequence":
            x = np.stack([_interpolate(s) for s in x])
            notes.append(f"Filled the gaps in {_n(int(bad.sum()), 'sample')} by interpolating along time.")
        else:
            with np.errstate(all="ignore"):
                mean = np.nan_to_num(np.nanmean(x, axis=0))
            x = np.where(np.isnan(x), mean, x)
            notes.append(f"Filled the gaps in {_n(int(bad.sum()), 'sample')} with the mean of that value.")
    x = x[keep]
    _count(len(x), int(np.prod(x.shape[1:])), name, "sample")
    return _Parsed(x, kind, "arrays", scaler, labels[keep] if labels is not None else None, title, notes=notes)


# Images in a zip.

def _safe_path(member: str, name: str) -> PurePosixPath:
    path = member.replace("\\", "/")
    parts = PurePosixPath(path).parts
    _check(not (path.startswith("/") or re.match(r"^[A-Za-z]:", path) or ".." in parts),
           f"'{name}' contains '{member}', a path that leaves the folder; aeviz refuses such archives.")
    return PurePosixPath(path)


def _images(raw: bytes, name: str, opts: ReadOptions) -> _Parsed:
    from PIL import Image, UnidentifiedImageError

    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as err:
        raise DataError(f"'{name}' is not a readable zip file.") from err
    with zf:
        members = _zip_sizes(zf, name)
        paths = [_safe_path(m.filename, name) for m in members]
        keep = [(m, p) for m, p in zip(members, paths) if not JUNK.search(str(p))]
        skipped = len(members) - len(keep)
        for m, p in keep:
            _check(p.suffix.lower() in IMAGE_SUFFIXES, f"'{name}' contains '{m.filename}', which is not a PNG or "
                                                       f"JPEG image; take it out and zip the folder again.")
        _check(bool(keep), f"'{name}' holds no PNG or JPEG images.")
        n, side = len(keep), opts.side
        fits = int((MAX_VALUES / n) ** 0.5) if n else MAX_SIDE
        _check(n * side * side <= MAX_VALUES, f"'{name}' holds {n:,} images, which at {side}x{side} make "
                                              f"{n * side * side:,} numbers, more than the {MAX_VALUES:,} aeviz keeps "
                                              f"in memory; choose a side of at most {fits} or fewer images.")
        _count(n, side * side, name, "image")
        keep.sort(key=lambda mp: str(mp[1]))
        parts = [p.parts for _, p in keep]
        root = parts[0][0] if all(len(q) > 2 for q in parts) and len({q[0] for q in parts}) == 1 else None
        folders = [(q[1] if root else q[0]) if len(q) > (2 if root else 1) else "" for q in parts]
        x = np.empty((n, 1, side, side), np.float32)
        sizes, stretched = set(), 0
        for k, (m, _) in enumerate(keep):
            data = _read_member(zf, m, name)
            try:
                img = Image.open(io.BytesIO(data))
                _check(img.format in ("PNG", "JPEG"), f"'{m.filename}' in '{name}' is a {img.format} image inside, "
                                                      f"not PNG or JPEG.")
                w, h = img.size
                _check(w * h <= MAX_PIXELS, f"'{m.filename}' in '{name}' is {w}x{h} pixels; aeviz opens images of at "
                                            f"most {MAX_PIXELS / 1e6:.0f} megapixels.")
                img = img.convert("L").resize((side, side), Image.Resampling.LANCZOS)
            except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as err:
                raise DataError(f"'{m.filename}' in '{name}' cannot be read as an image.") from err
            sizes.add((w, h))
            stretched += w != h
            x[k, 0] = np.asarray(img, np.float32) / 255.0
    notes = []
    if skipped:
        notes.append(f"Skipped {_n(skipped, 'system file')} (__MACOSX, hidden files).")
    if len(sizes) > 1:
        notes.append(f"The images came in {len(sizes)} sizes (from {min(sizes)[0]}x{min(sizes)[1]} to "
                     f"{max(sizes)[0]}x{max(sizes)[1]}); all were converted to grayscale and resized to {side}x{side}.")
    elif sizes != {(side, side)}:
        (w, h), = sizes
        notes.append(f"The {w}x{h} images were converted to grayscale and resized to {side}x{side}.")
    if stretched:
        notes.append(f"{_n(stretched, 'image')} that {'was' if stretched == 1 else 'were'} not square "
                     f"{'was' if stretched == 1 else 'were'} stretched to a square.")
    labels = np.array([f or "(top level)" for f in folders], dtype=object) if any(folders) else None
    return _Parsed(x, "image", "images", "pixels", labels, "folder", notes=notes)


# Labels, split, scaling.

def _label_text(v) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace").strip()
    return str(v).strip()


def _labels(raw: np.ndarray, title: str, opts: ReadOptions) -> tuple[np.ndarray, tuple[str, ...], bool]:
    """(y, label_names, anomaly mode): classes, a continuous colour (no names), or normal 0 / anomaly 1."""
    text = [_label_text(v) for v in raw]
    numbers = [_number(t, False) if t else None for t in text]
    numeric = None not in numbers and not any(np.isnan(v) for v in numbers)
    if opts.anomaly_value:
        want = opts.anomaly_value.strip()
        want_num = _number(want, False)
        flags = np.array([t == want or (want_num is not None and v is not None and v == want_num)
                          for t, v in zip(text, numbers)])
        values = sorted(set(text))
        _check(flags.any(), f"No sample has {title} = '{want}'; its values include {_names(values)}.")
        _check(not flags.all(), f"Every sample has {title} = '{want}'; the anomaly value must mark the exceptions.")
        return flags.astype(np.int64), ("normal", "anomaly"), True
    if numeric:
        v = np.array(numbers)
        if (v != np.round(v)).any() or len(np.unique(v)) > MAX_CLASSES:
            return v.astype(np.float32), (), False  # a continuous colour, like the manifolds' position
        classes = [_label_text(u) for u in np.unique(v)]
    else:
        classes = sorted(set(text))
        _check(len(classes) <= MAX_CLASSES, f"The {title} has {len(classes):,} different values; a label may have "
                                            f"at most {MAX_CLASSES} classes (is it an id or free text?).")
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[t] for t in text], np.int64), tuple(c or "(blank)" for c in classes), False


def _split(n: int, y: np.ndarray, classes: bool, anomaly: bool, opts: ReadOptions, name: str):
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    if anomaly:  # train on normal samples only; every anomaly is tested
        normal = idx[y == 0]
        _check(len(normal) >= MIN_ROWS, f"Only {_n(len(normal), 'sample')} of '{name}' are normal; aeviz needs at "
                                        f"least {MIN_ROWS} to learn what normal looks like.")
        tr, te = train_test_split(normal, test_size=opts.test_fraction, random_state=opts.split_seed)
        return tr, np.sort(np.concatenate([te, idx[y == 1]])), "normal samples train; the test set adds every anomaly"
    if classes:
        try:
            tr, te = train_test_split(idx, test_size=opts.test_fraction, random_state=opts.split_seed, stratify=y)
            return tr, te, "stratified by label"
        except ValueError:
            pass  # a class with a single sample cannot be stratified
    tr, te = train_test_split(idx, test_size=opts.test_fraction, random_state=opts.split_seed)
    return tr, te, "random"


def fit_scaler(x_train: np.ndarray, how: str = "standard") -> dict:
    """A JSON-able scaler fit on training samples (N, ..., F): per-feature standard + logistic, pixels or min-max."""
    if how == "pixels":
        lo, hi = float(x_train.min()), float(x_train.max())
        if lo >= 0 and hi <= 1:
            return {"type": "none"}
        if lo >= 0 and hi <= 255:  # 8-bit pixels (after a grayscale conversion they need not be whole)
            return {"type": "divide", "by": 255.0}
        return {"type": "minmax", "min": lo, "max": hi if hi > lo else lo + 1.0}
    x_train = np.asarray(x_train, np.float64)
    axes = tuple(range(x_train.ndim - 1))
    mean, std = x_train.mean(axis=axes), x_train.std(axis=axes)
    return {"type": "standard-logistic", "mean": mean.tolist(), "std": np.where(std > 0, std, 1.0).tolist(),
            "squash": SQUASH}


def _scaler_of(pre: dict) -> dict:
    return pre.get("scaler", pre)


def scale(x, preprocessing: dict) -> np.ndarray:
    """Raw values (N, ..., F), features in the stored column order, into the model's [0,1] units (float32).

    Gaps (nan) take the stored column means when the data were filled.
    """
    s = _scaler_of(preprocessing)
    if s["type"] in ("none", "divide"):  # pixels: float32 throughout
        x = np.asarray(x, np.float32)
        return x / np.float32(s["by"]) if s["type"] == "divide" else x
    x = np.asarray(x, np.float64)
    fill = preprocessing.get("fill")
    if fill is not None and np.isnan(x).any():
        x = np.where(np.isnan(x), np.asarray(fill), x)
    if s["type"] == "standard-logistic":
        z = (x - np.asarray(s["mean"])) / np.asarray(s["std"])
        return (0.5 * (1.0 + np.tanh(z / (2.0 * s["squash"])))).astype(np.float32)  # = sigmoid(z / squash)
    return np.clip((x - s["min"]) / (s["max"] - s["min"]), 0.0, 1.0).astype(np.float32)  # minmax


def unscale(v, preprocessing: dict) -> np.ndarray:
    """The model's [0,1] values (inputs or reconstructions) back in the file's units."""
    v = np.asarray(v, np.float64)
    s = _scaler_of(preprocessing)
    if s["type"] == "standard-logistic":
        v = np.clip(v, 1e-7, 1 - 1e-7)
        return s["squash"] * np.log(v / (1.0 - v)) * np.asarray(s["std"]) + np.asarray(s["mean"])
    if s["type"] == "divide":
        return v * s["by"]
    if s["type"] == "minmax":
        return v * (s["max"] - s["min"]) + s["min"]
    return v


def _tensor(a, dtype=torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)


def _describe(p: _Parsed, file: str, n_train: int, n_test: int, names: tuple, anomaly: bool) -> str:
    shape = {"points": f"{len(p.columns)} numeric columns", "image": "x".join(map(str, p.x.shape[2:])) + " images",
             "sequence": f"sequences of {p.x.shape[1]} steps"}[p.kind]
    labels = ("; anomalies are tested, never trained on" if anomaly else
              f"; {p.label_title}: {len(names)} classes" if names else
              f"; colour from {p.label_title}" if p.label_title else "")
    return f"Your file '{file}': {shape}{labels}; {n_train:,} train / {n_test:,} test."


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:64]
    return slug or "data"


def read_data(source: str | Path | bytes, name: str = "", file_name: str = "", **options) -> Dataset:
    """A Dataset named 'user:NAME' from a file path or an upload's bytes (then give file_name).

    options are ReadOptions fields. The Dataset's extras hold "preprocessing" (JSON-able: source, options,
    columns, labels, scaler, split, notes: what aeviz.save(..., preprocessing=...) stores) and "notes"
    (sentences about what was done to the data).
    """
    fields = {f.name for f in dataclasses.fields(ReadOptions)}
    unknown = sorted(set(options) - fields)
    _check(not unknown, f"Unknown option '{unknown[0] if unknown else ''}'; the options are {', '.join(sorted(fields))}.")
    opts = ReadOptions(**options)
    raw, file, path = _source(source, file_name)
    suffix = Path(file).suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text = _text(raw, file)
        series = opts.kind == "series" or (opts.kind == "auto" and opts.window > 0)
        _check(opts.kind != "images", f"'{file}' is text; images come as a .zip of PNG or JPEG files.")
        parsed = _series(text, file, opts) if series else _table(text, file, opts)
        fmt = suffix.lstrip(".")
    elif suffix in ARRAY_SUFFIXES:
        parsed, fmt = _arrays(raw, file, suffix, opts), suffix.lstrip(".")
    elif suffix == ".zip":
        _check(opts.kind in ("auto", "images"), f"'{file}' is a zip; aeviz reads zips of PNG or JPEG images only.")
        parsed, fmt = _images(raw, file, opts), "zip"
    else:
        raise DataError(f"'{file}' is not a file type aeviz reads; use CSV or TSV (a table or a time series), "
                        f".npy or .npz (arrays) or a .zip of PNG or JPEG images.")
    return _finish(parsed, opts, name or _slug(Path(file).stem), {
        "file": file, "path": path, "format": fmt, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})


def _finish(p: _Parsed, opts: ReadOptions, name: str, source: dict) -> Dataset:
    file = source["file"]
    n = len(p.x)
    if p.labels is not None:
        y, label_names, anomaly = _labels(p.labels, p.label_title, opts)
    else:
        _check(not opts.anomaly_value, f"'{file}' has no labels to find the anomaly value in; name a label column.")
        y = p.y if p.y is not None else np.zeros(n, np.int64)
        label_names, anomaly = (), False
    if p.split is not None:
        tr, te, how = p.split[0], p.split[1], "time: the first part of the series trains, the last part tests"
    else:
        tr, te, how = _split(n, y, bool(label_names), anomaly, opts, file)
    scaler = fit_scaler(p.x[tr], p.scaler)
    pre = {"format": FORMAT, "source": source, "options": dataclasses.asdict(opts), "read_as": p.what,
           "columns": p.columns, "fill": p.fill, "label": {"title": p.label_title, "names": list(label_names),
                                                           "anomaly_value": opts.anomaly_value},
           "scaler": scaler, "split": {"train": len(tr), "test": len(te), "how": how}, "notes": p.notes}
    pre = json.loads(json.dumps(pre))  # plain JSON, as a checkpoint gives it back (tuples become lists)
    x = scale(p.x, scaler)
    ydt = torch.int64 if y.dtype.kind in "iub" else torch.float32
    description = _describe(p, file, len(tr), len(te), label_names, anomaly)
    return Dataset(PREFIX + _valid_name(name), _tensor(x[tr]), _tensor(y[tr], ydt), _tensor(x[te]),
                   _tensor(y[te], ydt), p.kind, description, label_names,
                   extras={"preprocessing": pre, "notes": list(p.notes)})


def builtin_table(name: str, x, y, train, test, label_names: tuple[str, ...], columns: list[str],
                  description: str, source: str) -> Dataset:
    """A built-in table (scikit-learn's) standardised like a user table, with its scaler in extras."""
    x = np.asarray(x, np.float64)
    scaler = fit_scaler(x[train])
    v = scale(x, scaler)
    pre = {"format": FORMAT, "source": {"builtin": source}, "read_as": "table", "columns": list(columns),
           "fill": None, "label": {"names": list(label_names)}, "scaler": scaler,
           "split": {"train": len(train), "test": len(test)}, "notes": []}
    return Dataset(name, _tensor(v[train]), _tensor(np.asarray(y)[train], torch.int64), _tensor(v[test]),
                   _tensor(np.asarray(y)[test], torch.int64), "points", description, tuple(label_names),
                   extras={"preprocessing": pre, "notes": []})


# The user-dataset registry: in memory, and on disk under AEVIZ_DATA as .safetensors (never pickled).

_USER: dict[str, Dataset] = {}


def data_dir() -> Path:
    """Where registered user datasets are kept: a folder in the one data folder (store.data_dir())."""
    from .workspace import data_dir as root

    return root() / "datasets"


def _valid_name(name: str) -> str:
    name = name.removeprefix(PREFIX)
    _check(bool(NAME.match(name)), f"A dataset name may use letters, digits, '.', '_' and '-' (at most 64, "
                                   f"starting with a letter or digit), not '{name}'.")
    return name


def register_user_dataset(name: str, dataset: Dataset, persist: bool = True) -> str:
    """Make a dataset loadable as 'user:NAME' (aeviz.config_for, aeviz.train); returns that name.

    persist=True also writes it to data_dir()/NAME.safetensors, so other processes find it.
    """
    from safetensors.torch import save_file

    key = PREFIX + _valid_name(name)
    if dataset.name != key:
        dataset = dataclasses.replace(dataset, name=key)
    _USER[key] = dataset
    if persist:
        folder = data_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tensors, meta = _stored(dataset)
        save_file(tensors, str(folder / f"{key[len(PREFIX):]}.safetensors"), metadata=meta)
    return key


def _stored(dataset: Dataset) -> tuple[dict, dict]:
    """(tensors, metadata) of a dataset as register_user_dataset and dataset_bytes store it."""
    tensors = {k: getattr(dataset, k).contiguous() for k in ("x_train", "y_train", "x_test", "y_test")}
    meta = {"format": FORMAT, "kind": dataset.kind, "description": dataset.description,
            "label_names": json.dumps(list(dataset.label_names)),
            "preprocessing": json.dumps(dataset.extras.get("preprocessing", {})),
            "notes": json.dumps(dataset.extras.get("notes", []))}
    return tensors, meta


def dataset_bytes(dataset: Dataset) -> bytes:
    """A dataset as read (split, scaled, with its preprocessing and notes) as .safetensors bytes: what the app keeps
    in a student's workspace, so that it comes back after a reload without the original file or its options."""
    from safetensors.torch import save

    tensors, meta = _stored(dataset)
    return save(tensors, metadata=meta)


def dataset_from_bytes(raw: bytes, name: str) -> Dataset:
    """The Dataset 'user:NAME' that dataset_bytes wrote (not registered; DataError when the bytes are not one)."""
    from safetensors.torch import load

    key = PREFIX + _valid_name(name)
    try:
        header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
        meta = header.get("__metadata__") or {}
        _check(meta.get("format") == FORMAT, "")
        t = load(bytes(raw))
        return Dataset(key, t["x_train"], t["y_train"], t["x_test"], t["y_test"], meta["kind"], meta["description"],
                       tuple(json.loads(meta.get("label_names", "[]"))),
                       extras={"preprocessing": json.loads(meta.get("preprocessing", "{}")),
                               "notes": json.loads(meta.get("notes", "[]"))})
    except Exception as err:  # safetensors raises its own errors; any of them means the same thing here
        raise DataError(f"The stored dataset '{name}' is unreadable; read the file again.") from err


def check_dataset(dataset: Dataset) -> Dataset:
    """A dataset that came back from bytes (a class's shared dataset, say) held to what a read file must be: the
    caps on samples and numbers, a known kind, labels for every sample, and every value finite and in [0, 1] (as
    the sigmoid decoders need). Returns it; DataError with one sentence otherwise."""
    name = dataset.name.removeprefix(PREFIX)
    x_train, x_test = dataset.x_train, dataset.x_test
    _check(dataset.kind in ("points", "image", "sequence"), f"The dataset '{name}' has an unknown kind "
                                                            f"'{dataset.kind}'.")
    _check(x_train.dtype == torch.float32 and x_test.dtype == torch.float32 and x_train.dim() >= 2
           and x_train.shape[1:] == x_test.shape[1:], f"The samples of the dataset '{name}' are not float32 arrays "
                                                      f"of one shape.")
    _check(len(dataset.y_train) == len(x_train) and len(dataset.y_test) == len(x_test),
           f"The dataset '{name}' does not have one label for every sample.")
    per_sample = int(np.prod(dataset.sample_shape))
    _count(len(x_train) + len(x_test), per_sample, name, "sample")
    _check(per_sample >= MIN_FEATURES, f"Each sample of '{name}' has {per_sample} number; an autoencoder needs at "
                                       f"least {MIN_FEATURES}.")
    _check(len(x_test) > 0, f"The dataset '{name}' has no test samples.")
    for x in (x_train, x_test):
        _check(bool(torch.isfinite(x).all()) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0,
               f"The dataset '{name}' holds values outside [0, 1]; read its file again.")
    return dataset


def sample_text(dataset: Dataset) -> str:
    """What one sample of a dataset read from a file is, in a few words: '4 features', '16 steps',
    '28 × 28 pixels'."""
    shape = dataset.sample_shape
    if dataset.kind == "image" or len(shape) == 3:
        return " × ".join(map(str, shape[-2:])) + " pixels"
    if len(shape) == 2:
        return f"{shape[0]} steps" + (f" × {shape[1]} features" if shape[1] > 1 else "")
    return f"{shape[0]} features"


def columns(source: bytes, file_name: str) -> list[str]:
    """The column names of a CSV/TSV's header as read_data names them ([] when the first line holds numbers), read
    from its first lines only: what a form offers as the label column before the whole file is read."""
    head = bytes(source[:65536])
    if len(source) > len(head):
        head = head[:head.rfind(b"\n") + 1] or head  # whole lines only
    rows, _, delim = _rows(_text(head, file_name), file_name)
    return _header(rows[0])[0] if _is_header(rows[0], delim != ",") else []


def user_names() -> list[str]:
    """'user:NAME' of every registered user dataset, in memory or on disk."""
    on_disk = {PREFIX + p.stem for p in data_dir().glob("*.safetensors")} if data_dir().is_dir() else set()
    return sorted(set(_USER) | on_disk)


def load_user(name: str) -> Dataset:
    """A registered user dataset by 'user:NAME' (data.load calls this)."""
    key = PREFIX + name.removeprefix(PREFIX)
    if key in _USER:
        return _USER[key]
    short = key[len(PREFIX):]
    path = data_dir() / f"{short}.safetensors"
    if not NAME.match(short) or not path.is_file():
        raise DatasetUnavailable(f"There is no user dataset '{short}'; read your file first with "
                                 f"aeviz.read_data(...) and aeviz.register_user_dataset(...), or 'aeviz train --data FILE'.")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k) for k in ("x_train", "y_train", "x_test", "y_test")}
        _check(meta.get("format") == FORMAT, "")
        extras = {"preprocessing": json.loads(meta.get("preprocessing", "{}")),
                  "notes": json.loads(meta.get("notes", "[]"))}
        d = Dataset(key, t["x_train"], t["y_train"], t["x_test"], t["y_test"], meta["kind"], meta["description"],
                    tuple(json.loads(meta.get("label_names", "[]"))), extras=extras)
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise DatasetUnavailable(f"The stored user dataset '{short}' ({path}) is unreadable; read the file again.") from err
    _USER[key] = d
    return d
