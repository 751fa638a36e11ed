"""One place that checks the result tables read from disk (``per_image.csv``, ``summary.csv``,
``timings.csv``, ``meta.json``) before anything uses them.

Every problem raises :class:`TableError` (a ``ValueError``) whose message names the file and says
in plain words what is wrong: an empty or binary file, a row with more or fewer fields than the
header, a missing column, text where a number belongs, an unknown noise kind, noise parameters
that do not make a noise, a seed out of range, a ``meta.json`` that is not an object or holds a
face size of 0 or 10^9, and a table that is shorter than what was written (cut short).

Truncation is caught three ways: a CSV must end with a newline (``write_tables`` always writes
one), its row count must match ``meta.json``'s ``rows`` record (written since issue #12; older
``meta.json`` files have none), and the per-image rows must agree with the faces ``meta.json``
lists per method and with the summary's ``n_images``.

The strength sweep's files (``sweep_per_image.parquet``, ``sweep_summary.csv``, ``sweep_meta.json``)
get the same treatment (:func:`read_sweep_results`): the Parquet file's size, its magic bytes at both
ends (a cut-short file loses its footer), its column names and types, and, when its rows are read,
finite values in range; its row count against ``sweep_meta.json``'s ``rows`` (written since issue
#12) and against the summary's ``n_images``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from denoising.catalogue import METRICS, NOISE_KINDS
from denoising.noise import NoiseSpec

#: The result tables' files (written by :func:`denoising.evaluation.write_tables`) and per-image columns.
FILES = {"per_image": "per_image.csv", "summary": "summary.csv", "timings": "timings.csv", "meta": "meta.json"}
PER_IMAGE_COLUMNS = ["test_set", "image_id", "noise", "noise_params", "noise_seed", "method",
                     "mae", "psnr", "ssim", "seconds"]
#: The strength sweep's tables (:mod:`denoising.sweep`): the per-image columns plus ``strength``, in Parquet.
SWEEP_FILES = {"per_image": "sweep_per_image.parquet", "summary": "sweep_summary.csv",
               "timings": "sweep_timings.csv", "meta": "sweep_meta.json"}
SWEEP_PER_IMAGE_COLUMNS = ["test_set", "image_id", "noise", "strength", "noise_params", "noise_seed", "method",
                           "mae", "psnr", "ssim"]
SWEEP_PER_IMAGE_DTYPES = {"test_set": "str", "image_id": "str", "noise": "str", "strength": "float64",
                          "noise_params": "str", "noise_seed": "int64", "method": "str",
                          "mae": "float64", "psnr": "float64", "ssim": "float64"}
SWEEP_TIMING_COLUMNS = ["test_set", "noise", "strength", "method", "n_images", "seconds_per_image"]

#: Largest table file read (bytes); the shipped per_image.csv is about 5 MB.
MAX_TABLE_BYTES = 512 * 1024 * 1024
#: Largest meta.json read (bytes).
MAX_META_BYTES = 4 * 1024 * 1024
#: Face sizes (pixels on a side) a meta.json may record: the faces the tables were scored on (28 or 64 in
#: practice). The dashboard builds its face banks at this size, so it is bounded well below
#: :data:`denoising.faces.MAX_SIZE` (100 faces at 256 px are about 80 MB of float32).
FACE_SIZE_RANGE = (4, 256)
#: Highest noise seed: seeds are non-negative int64 (``derive_seed`` gives values below 2**63).
MAX_SEED = 2**63 - 1
#: Names of test sets and methods: short identifiers.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
#: Accepted range of each per-face metric (PSNR: positive infinity for an exact copy).
METRIC_RANGES = {"mae": (0.0, 1.0), "psnr": (-1e3, math.inf), "ssim": (-1.0, 1.0)}


class TableError(ValueError):
    """A result table or its ``meta.json`` that cannot be used; the message names the file, for the reader."""


def read_bytes(path: Path, limit: int) -> bytes:
    """The file's bytes, refusing empty, oversized, binary and non-UTF-8 files."""
    name = path.name
    try:
        size = path.stat().st_size
        if size > limit:
            raise TableError(f"{name} is {size:,} bytes, more than the {limit:,} a table may have.")
        data = path.read_bytes()
    except OSError as error:
        raise TableError(f"{name} could not be read ({error.strerror or type(error).__name__}).") from None
    if not data.strip():
        raise TableError(f"{name} is empty.")
    if b"\x00" in data:
        raise TableError(f"{name} is not a text file (it holds binary data).")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise TableError(f"{name} is not UTF-8 text (binary or another encoding).") from None
    return data


def read_csv(path: Path, required: list[str]) -> pd.DataFrame:
    """A CSV file as text columns, each row with exactly the header's fields and every ``required`` column.

    Raises
    ------
    TableError
        Empty, binary, cut short (no final newline), a row with extra or missing fields, a missing
        column, or no rows.
    """
    name = path.name
    data = read_bytes(path, MAX_TABLE_BYTES)
    if not data.endswith(b"\n"):
        raise TableError(f"{name} ends in the middle of a line: the file was cut short.")
    _check_widths(name, data.decode("utf-8"))
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, on_bad_lines="error",
                            encoding="utf-8")
    except (ValueError, pd.errors.ParserError) as error:  # EmptyDataError is a ValueError
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise TableError(f"{name} is not a well-formed CSV table ({detail}).") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise TableError(f"{name} lacks the column{'s' * (len(missing) > 1)} {', '.join(missing)} "
                         f"(it has {', '.join(map(str, frame.columns[:12]))}).")
    if frame.empty:
        raise TableError(f"{name} has no rows.")
    return frame


def _check_widths(name: str, text: str) -> None:
    """Every record of a CSV text has as many fields as its header (pandas pads short rows silently)."""
    try:
        widths = [len(record) for record in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as error:
        raise TableError(f"{name} is not a well-formed CSV table ({error}).") from None
    header = widths[0] if widths else 0
    for line, width in enumerate(widths[1:], start=2):
        if width and width != header:
            more = "more" if width > header else "fewer"
            raise TableError(f"{name}, line {line}: the row has {width} fields, {more} than the header's {header}.")


def _bad_line(name: str, frame: pd.DataFrame, bad: pd.Series, column: str, what: str) -> TableError:
    row = int(np.flatnonzero(bad.to_numpy())[0])
    value = str(frame[column].iloc[row])[:40]
    return TableError(f"{name}, line {row + 2}: {column} is {value!r}, {what}.")


def numbers(name: str, frame: pd.DataFrame, column: str, allow_missing: bool = False,
            bounds: tuple[float, float] | None = None) -> pd.Series:
    """``column`` as float64, naming the first line whose text is not a number (or is out of ``bounds``)."""
    text = frame[column].astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce").astype("float64")
    empty = text.isin(["", "nan", "NaN"])
    bad = values.isna() & ~(empty if allow_missing else False)
    if bad.any():
        raise _bad_line(name, frame, bad, column, "not a number")
    if bounds is not None:
        low, high = bounds
        outside = values.notna() & ((values < low) | (values > high))
        if outside.any():
            raise _bad_line(name, frame, outside, column, f"outside {low:g} to {high:g}")
    return values


def counts(name: str, frame: pd.DataFrame, column: str, high: int) -> pd.Series:
    """``column`` as int64, every value a whole number from 0 to ``high``."""
    text = frame[column].astype(str).str.strip()
    bad = ~text.str.fullmatch(r"\d{1,19}")
    if not bad.any():
        # vectorised (a Python int per row took a third of reading per_image.csv): digit strings of
        # equal length compare as their numbers do
        digits = text.str.lstrip("0").replace("", "0")
        limit = str(high)
        bad = (digits.str.len() > len(limit)) | ((digits.str.len() == len(limit)) & (digits > limit))
    if bad.any():
        raise _bad_line(name, frame, bad, column, f"not a whole number from 0 to {high}")
    return pd.Series(text.to_numpy(dtype=object).astype(np.int64), index=frame.index, dtype="int64")


def names(name: str, frame: pd.DataFrame, column: str) -> None:
    """Check that ``column`` holds short identifiers (test sets, methods)."""
    bad = ~frame[column].astype(str).str.fullmatch(NAME_PATTERN.pattern)
    if bad.any():
        raise _bad_line(name, frame, bad, column, "not a name (letters, digits and _ . + - only)")


def kinds(name: str, frame: pd.DataFrame) -> None:
    """Check that ``noise`` holds only the catalogue's noise kinds."""
    bad = ~frame["noise"].isin(NOISE_KINDS)
    if bad.any():
        raise _bad_line(name, frame, bad, "noise", f"not a noise kind ({', '.join(NOISE_KINDS)})")


def noise_params(name: str, frame: pd.DataFrame) -> None:
    """Check that every distinct ``noise_params`` text makes a valid noise of its row's kind."""
    for (kind, text), rows in frame.groupby(["noise", "noise_params"], sort=False).groups.items():
        try:
            spec = NoiseSpec.from_json(text)
        except (ValueError, TypeError, KeyError, OverflowError):
            spec = None
        if spec is None or spec.kind != kind:
            line = int(frame.index.get_loc(rows[0])) + 2
            raise TableError(f"{name}, line {line}: noise_params {text[:60]!r} is not a valid {kind} noise.")


# ----------------------------------------------------------------------------- the four files


def _named_rows(path: Path, columns: list[str]) -> tuple[str, pd.DataFrame]:
    """A result table's file name and rows, with its test-set and method names and noise kinds checked."""
    frame = read_csv(path, columns)
    for column in ("test_set", "method"):
        names(path.name, frame, column)
    kinds(path.name, frame)
    return path.name, frame


def per_image_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """``per_image.csv`` checked: names, known noise kinds, valid noise parameters, seeds, metrics in range."""
    name, frame = _named_rows(path, columns)
    empty_id = frame["image_id"].astype(str).str.len().eq(0) | frame["image_id"].astype(str).str.len().gt(200)
    if empty_id.any():
        raise _bad_line(name, frame, empty_id, "image_id", "not an image id")
    noise_params(name, frame)
    frame["noise_seed"] = counts(name, frame, "noise_seed", MAX_SEED)
    for metric in METRICS:
        frame[metric] = numbers(name, frame, metric, bounds=METRIC_RANGES[metric])
    return frame


def summary_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """``summary.csv`` checked: names, known noise kinds, whole ``n_images``, numbers (blank allowed) elsewhere."""
    name, frame = _named_rows(path, columns)
    frame["n_images"] = counts(name, frame, "n_images", 10**9)
    text = {"test_set", "noise", "method", "family", "n_images"}
    for column in [c for c in columns if c not in text]:
        frame[column] = numbers(name, frame, column, allow_missing=True)
    return frame


def timings_table(path: Path) -> pd.DataFrame:
    """``timings.csv`` checked: a well-formed table whose time and count columns hold numbers."""
    name = path.name
    frame = read_csv(path, ["test_set", "noise", "method"])
    for column in ("seconds_per_image", "seconds"):
        if column in frame.columns:
            frame[column] = numbers(name, frame, column, allow_missing=True, bounds=(0.0, 1e9))
    if "n_images" in frame.columns:
        frame["n_images"] = counts(name, frame, "n_images", 10**9)
    return frame


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_meta(meta: object, name: str = "meta.json") -> dict:
    """``meta`` as read from ``meta.json``, its fields the dashboard and the checks use type-checked and bounded."""
    if not isinstance(meta, dict):
        raise TableError(f"{name} holds a {type(meta).__name__}, not an object of named fields.")
    for key in ("size", "image_size", "face_size"):
        if key in meta and not _whole(meta[key], *FACE_SIZE_RANGE):
            raise TableError(f"{name}: {key} is {str(meta[key])[:40]!r}, not a face size from "
                             f"{FACE_SIZE_RANGE[0]} to {FACE_SIZE_RANGE[1]} pixels.")
    if "seed" in meta and meta["seed"] is not None and not _whole(meta["seed"], 0, MAX_SEED):
        raise TableError(f"{name}: seed is {str(meta['seed'])[:40]!r}, not a whole number from 0 to {MAX_SEED}.")
    rows = meta.get("rows", {})
    if not isinstance(rows, dict) or not all(_whole(v, 0, 10**9) for v in rows.values()):
        raise TableError(f"{name}: rows must map each table to its number of rows.")
    methods = meta.get("methods", [])
    if not isinstance(methods, list) or not all(isinstance(m, dict) for m in methods):
        raise TableError(f"{name}: methods must be a list of objects.")
    for record in methods:
        if not isinstance(record.get("name"), str) or not isinstance(record.get("display_name", ""), str):
            raise TableError(f"{name}: every method needs a name, and its name and display_name must be text.")
        faces = record.get("faces", {})
        # a count per test set; the sweep records two (preset_strength, other_strengths) per test set
        counts_ok = isinstance(faces, dict) and all(
            _whole(v, 0, 10**8) or (isinstance(v, dict) and all(_whole(c, 0, 10**8) for c in v.values()))
            for v in faces.values())
        if not counts_ok:
            raise TableError(f"{name}: method {str(record.get('name'))[:40]!r} has faces that are not counts.")
    return meta


def meta_file(path: Path) -> dict:
    """``meta.json`` read and checked (:func:`check_meta`)."""
    data = read_bytes(path, MAX_META_BYTES)
    try:
        meta = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise TableError(f"{path.name} is not valid JSON ({str(error).splitlines()[0][:80]}).") from None
    return check_meta(meta, path.name)


# ----------------------------------------------------------------------------- the tables together


def check_row_count(name: str, rows: int, meta_name: str, written: int | None) -> None:
    """A table ``name`` of ``rows`` rows against the count its meta file recorded (None: not recorded)."""
    if written is not None and rows != written:
        raise TableError(f"{name} has {rows} rows but {meta_name} says {written} were written: the file is incomplete.")


def _check_rows(frames: dict[str, pd.DataFrame | None], files: dict[str, str], meta: dict) -> None:
    for key, frame in frames.items():
        if frame is not None:
            check_row_count(files[key], len(frame), files["meta"], meta.get("rows", {}).get(key))


def _check_faces(per_image: pd.DataFrame, files: dict[str, str], meta: dict) -> None:
    found = per_image.groupby(["test_set", "method"])["image_id"].nunique()
    for record in meta.get("methods", []):
        for test_set, n in record.get("faces", {}).items():
            if isinstance(n, dict):  # the sweep's per-strength counts: checked by _check_sweep_faces
                continue
            have = int(found.get((test_set, record.get("name")), 0))
            if have != n:
                raise TableError(f"{files['per_image']} has {have} faces of {record.get('name')} on {test_set} but "
                                 f"{files['meta']} says {n} were scored: the table is incomplete.")


def _check_summary(per_image: pd.DataFrame, summary: pd.DataFrame, files: dict[str, str]) -> None:
    keys = ["test_set", "noise", "method"]
    if summary.duplicated(keys).any():
        row = summary[summary.duplicated(keys)].iloc[0]
        raise TableError(f"{files['summary']} has two rows for {row['method']} on {row['noise']} ({row['test_set']}).")
    sizes = per_image.groupby(keys).size().rename("rows")
    both = sizes.to_frame().join(summary.set_index(keys)["n_images"], how="outer")
    wrong = both[both["rows"].fillna(0) != both["n_images"].fillna(0)]
    if not wrong.empty:
        (test_set, noise, method), row = wrong.index[0], wrong.iloc[0]
        raise TableError(f"{files['summary']} and {files['per_image']} disagree on {method} on {noise} ({test_set}): "
                         f"{int(row['n_images'] if pd.notna(row['n_images']) else 0)} faces in the summary, "
                         f"{int(row['rows'] if pd.notna(row['rows']) else 0)} rows in the per-image table; "
                         "one of them is incomplete.")


def read_results(folder: str | Path, files: dict[str, str], per_image_columns: list[str],
                 summary_columns: list[str]) -> dict[str, pd.DataFrame | dict | None]:
    """Read and check the result tables of ``folder``; a missing file gives None (``meta``: an empty dict).

    Parameters
    ----------
    folder : str or Path
        The tables folder.
    files : dict
        Key (``per_image``, ``summary``, ``timings``, ``meta``) -> file name.
    per_image_columns, summary_columns : list of str
        Columns each table must have.

    Returns
    -------
    dict
        ``per_image``, ``summary``, ``timings`` (checked frames or None) and ``meta`` (dict).

    Raises
    ------
    TableError
        When any present file is malformed, a summary has no per-image table beside it, or a
        table is shorter than ``meta.json`` and the other table say (message names the file).
    """
    folder = Path(folder)
    paths = {key: folder / name for key, name in files.items()}
    present = {key: path.is_file() for key, path in paths.items()}
    if present["summary"] and not present["per_image"]:
        raise TableError(f"{files['summary']} is there but {files['per_image']} is missing: the per-face "
                         "results are needed too.")
    meta = meta_file(paths["meta"]) if present["meta"] else {}
    per_image = per_image_table(paths["per_image"], per_image_columns) if present["per_image"] else None
    summary = summary_table(paths["summary"], summary_columns) if present["summary"] else None
    timings = timings_table(paths["timings"]) if present["timings"] else None
    _check_rows({"per_image": per_image, "summary": summary, "timings": timings}, files, meta)
    if per_image is not None:
        _check_faces(per_image, files, meta)
        if summary is not None:
            _check_summary(per_image, summary, files)
    return {"per_image": per_image, "summary": summary, "timings": timings, "meta": meta}


# ----------------------------------------------------------------------------- the strength sweep's files

#: Largest Parquet file read (bytes); the shipped sweep_per_image.parquet is about 5 MB.
MAX_PARQUET_BYTES = 1024 * 1024 * 1024
#: What each Parquet column's type must be (pyarrow type families).
_ARROW_KINDS = {"str": "text", "float64": "float", "int64": "integer"}


def _arrow_kind(arrow_type) -> str:
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_integer(arrow_type):
        return "integer"
    return str(arrow_type)


def parquet_file(path: Path, dtypes: dict[str, str]):
    """A ``pyarrow.parquet.ParquetFile`` whose footer is whole and whose columns have ``dtypes``' types.

    Only the footer is read (a few kilobytes): the size, the ``PAR1`` magic bytes at both ends (a file
    cut short loses its closing ones), the footer itself, and every column of ``dtypes`` (name -> pandas
    dtype: ``str``, ``float64`` or ``int64``) present with a type of that family.

    Raises
    ------
    TableError
        Empty, oversized, not Parquet, cut short, an unreadable footer, a missing column or a wrong type.
    """
    import pyarrow.parquet as pq

    name = path.name
    try:
        size = path.stat().st_size
        if size > MAX_PARQUET_BYTES:
            raise TableError(f"{name} is {size:,} bytes, more than the {MAX_PARQUET_BYTES:,} a table may have.")
        with path.open("rb") as handle:
            head = handle.read(4)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except OSError as error:
        raise TableError(f"{name} could not be read ({error.strerror or type(error).__name__}).") from None
    if size == 0:
        raise TableError(f"{name} is empty.")
    if head != b"PAR1":
        raise TableError(f"{name} is not a Parquet table (it does not start like one).")
    if tail != b"PAR1" or size < 12:
        raise TableError(f"{name} ends before its closing footer: the file was cut short.")
    try:
        handle = pq.ParquetFile(path)
        schema = handle.schema_arrow
    except Exception as error:  # noqa: BLE001 - pyarrow raises several kinds for a corrupt footer
        raise TableError(f"{name} is not a readable Parquet table (its footer is damaged).") from error
    missing = [column for column in dtypes if column not in schema.names]
    if missing:
        raise TableError(f"{name} lacks the column{'s' * (len(missing) > 1)} {', '.join(missing)} "
                         f"(it has {', '.join(schema.names[:12])}).")
    for column, dtype in dtypes.items():
        found, wanted = _arrow_kind(schema.field(column).type), _ARROW_KINDS[dtype]
        if found != wanted:
            raise TableError(f"{name}: column {column} holds {found} values, not {wanted} ones.")
    if handle.metadata.num_rows == 0:
        raise TableError(f"{name} has no rows.")
    return handle


def _bad_row(name: str, frame: pd.DataFrame, bad: np.ndarray, column: str, what: str) -> TableError:
    row = int(np.flatnonzero(bad)[0])
    return TableError(f"{name}, row {row + 1}: {column} is {str(frame[column].iloc[row])[:40]!r}, {what}.")


def _sweep_values(name: str, frame: pd.DataFrame) -> None:
    """Check a sweep per-image frame's values: names, kinds, strengths, seeds and metrics in range."""
    for column in ("test_set", "method"):
        bad = ~frame[column].astype(str).str.fullmatch(NAME_PATTERN.pattern).to_numpy(bool)
        if bad.any():
            raise _bad_row(name, frame, bad, column, "not a name (letters, digits and _ . + - only)")
    bad = ~frame["noise"].isin(NOISE_KINDS).to_numpy(bool)
    if bad.any():
        raise _bad_row(name, frame, bad, "noise", f"not a noise kind ({', '.join(NOISE_KINDS)})")
    lengths = frame["image_id"].astype(str).str.len().to_numpy()
    if ((lengths == 0) | (lengths > 200)).any():
        raise _bad_row(name, frame, (lengths == 0) | (lengths > 200), "image_id", "not an image id")
    strength = frame["strength"].to_numpy(float)
    if not (np.isfinite(strength) & (strength > 0)).all():
        raise _bad_row(name, frame, ~(np.isfinite(strength) & (strength > 0)), "strength", "not a positive number")
    if (frame["noise_seed"].to_numpy() < 0).any():
        raise _bad_row(name, frame, frame["noise_seed"].to_numpy() < 0, "noise_seed", f"not from 0 to {MAX_SEED}")
    for metric in METRICS:
        low, high = METRIC_RANGES[metric]
        values = frame[metric].to_numpy(float)
        finite = np.isfinite(values) | ((values == np.inf) & (high == math.inf))  # PSNR: inf for an exact copy
        bad = ~finite | (values < low) | (values > high)
        if bad.any():
            raise _bad_row(name, frame, bad, metric, f"not a finite number from {low:g} to {high:g}")
    _sweep_noise(name, frame)


def _sweep_noise(name: str, frame: pd.DataFrame) -> None:
    """Every distinct (kind, strength, noise_params) makes a noise of that kind at that strength."""
    from denoising.catalogue import STRENGTHS

    distinct = frame.drop_duplicates(["noise", "strength", "noise_params"])
    for row, kind, strength, text in zip(distinct.index, distinct["noise"], distinct["strength"],
                                         distinct["noise_params"], strict=True):
        try:
            spec = NoiseSpec.from_json(text)
            value = float(spec.params[STRENGTHS[kind].parameter])
        except (ValueError, TypeError, KeyError, OverflowError):
            spec, value = None, math.nan
        if spec is None or spec.kind != kind or value != strength:
            raise TableError(f"{name}, row {int(frame.index.get_loc(row)) + 1}: noise_params {str(text)[:60]!r} is "
                             f"not {kind} noise of strength {strength:g}.")


def sweep_per_image_table(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    """``sweep_per_image.parquet`` read and checked: footer and types (:func:`parquet_file`), then every value.

    Parameters
    ----------
    path : Path
        The Parquet file.
    dtypes : dict
        Column -> pandas dtype (``str``, ``float64``, ``int64``), in the order returned.

    Raises
    ------
    TableError
        Naming the file and, for a bad value, its row.
    """
    handle = parquet_file(path, dtypes)
    try:
        frame = handle.read(columns=list(dtypes)).to_pandas()
    except Exception as error:  # noqa: BLE001 - corrupt pages inside a whole footer
        raise TableError(f"{path.name} could not be read: its data is damaged.") from error
    frame = frame[list(dtypes)].astype(dtypes)
    _sweep_values(path.name, frame)
    return frame


def sweep_summary_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """``sweep_summary.csv`` checked: names, kinds, positive finite strengths, whole ``n_images``, one row per key.

    Returns the frame with exactly ``columns``, numbers as float64 (``n_images`` int64); the strength
    text is read back to the exact float it was written from.
    """
    name, frame = _named_rows(path, columns)
    frame = frame[list(columns)].copy()
    frame["n_images"] = counts(name, frame, "n_images", 10**9)
    for column in [c for c in columns if c not in {"test_set", "noise", "method", "family", "n_images"}]:
        frame[column] = numbers(name, frame, column, allow_missing=column != "strength")
    strength = frame["strength"].to_numpy(float)
    bad = pd.Series(~(np.isfinite(strength) & (strength > 0)), index=frame.index)
    if bad.any():
        raise _bad_line(name, frame, bad, "strength", "not a positive number")
    repeated = frame.duplicated(["test_set", "noise", "strength", "method"])
    if repeated.any():
        row = frame[repeated].iloc[0]
        raise TableError(f"{name} has two rows for {row['method']} at {row['noise']} {row['strength']:g} "
                         f"on {row['test_set']}.")
    return frame


def _check_sweep_counts(per_image_rows: int, summary: pd.DataFrame | None, files: dict[str, str],
                        meta: dict) -> None:
    """The Parquet file's row count against ``sweep_meta.json``'s record and the summary's ``n_images``."""
    check_row_count(files["per_image"], per_image_rows, files["meta"], meta.get("rows", {}).get("per_image"))
    if summary is not None and int(summary["n_images"].sum()) != per_image_rows:
        raise TableError(f"{files['summary']} counts {int(summary['n_images'].sum())} faces in all but "
                         f"{files['per_image']} has {per_image_rows} rows: one of them is incomplete.")


def _check_sweep_groups(per_image: pd.DataFrame, summary: pd.DataFrame, files: dict[str, str]) -> None:
    """Every (test set, noise, strength, method) has as many per-image rows as the summary's ``n_images``."""
    keys = ["test_set", "noise", "strength", "method"]
    sizes = per_image.groupby(keys).size().rename("rows")
    both = sizes.to_frame().join(summary.set_index(keys)["n_images"], how="outer").fillna(0)
    wrong = both[both["rows"] != both["n_images"]]
    if not wrong.empty:
        (test_set, noise, strength, method), row = wrong.index[0], wrong.iloc[0]
        raise TableError(f"{files['summary']} and {files['per_image']} disagree on {method} at {noise} {strength:g} "
                         f"({test_set}): {int(row['n_images'])} faces in the summary, {int(row['rows'])} rows in "
                         "the per-image table; one of them is incomplete.")


def read_sweep_results(folder: str | Path, files: dict[str, str], per_image_dtypes: dict[str, str],
                       summary_columns: list[str], read_rows: bool = True) -> dict:
    """Read and check the strength sweep's tables of ``folder``; a missing file gives None (``meta``: {}).

    Parameters
    ----------
    folder : str or Path
        The tables folder.
    files : dict
        Key (``per_image``, ``summary``, ``meta``) -> file name.
    per_image_dtypes : dict
        The Parquet file's columns -> pandas dtype.
    summary_columns : list of str
        Columns ``sweep_summary.csv`` must have.
    read_rows : bool
        Read the per-image rows and check every value (scripts); when False only the Parquet footer
        is read (the dashboard, which shows the summary: about a millisecond instead of half a second).

    Returns
    -------
    dict
        ``per_image`` (frame, or None when missing or not read), ``summary`` (frame or None), ``meta``.

    Raises
    ------
    TableError
        When a present file is malformed, or a table is shorter than ``sweep_meta.json`` or the other
        table says (the message names the file).
    """
    folder = Path(folder)
    paths = {key: folder / name for key, name in files.items()}
    meta = meta_file(paths["meta"]) if paths["meta"].is_file() else {}
    summary = sweep_summary_table(paths["summary"], summary_columns) if paths["summary"].is_file() else None
    if summary is not None:
        check_row_count(files["summary"], len(summary), files["meta"], meta.get("rows", {}).get("summary"))
    per_image = None
    if paths["per_image"].is_file():
        if read_rows:
            per_image = sweep_per_image_table(paths["per_image"], per_image_dtypes)
            n_rows = len(per_image)
        else:
            n_rows = parquet_file(paths["per_image"], per_image_dtypes).metadata.num_rows
        _check_sweep_counts(n_rows, summary, files, meta)
        if per_image is not None and summary is not None:
            _check_sweep_groups(per_image, summary, files)
    return {"per_image": per_image, "summary": summary, "meta": meta}


__all__ = ["TableError", "read_results", "check_row_count", "check_meta", "meta_file", "per_image_table", "summary_table",
           "timings_table", "read_csv", "MAX_SEED", "FACE_SIZE_RANGE", "parquet_file", "sweep_per_image_table",
           "sweep_summary_table", "read_sweep_results"]
