"""Inputs: find, read and type-check the seven input tables of docs/rules.md §6.

Schema problems (a missing table, a missing or ill-typed column, a time-zone-naive timestamp, an
unreadable file) raise `InputSchemaError` naming the table and column: the run stops before anything
is written. Row problems are not handled here; they become data issues (`data_issues.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from crossmargin.errors import InputSchemaError
from crossmargin.io.schemas import INPUT_SCHEMAS, UTC_TS

_TRUE = ["true", "t", "1", "yes", "y"]
_FALSE = ["false", "f", "0", "no", "n"]


@dataclass(frozen=True)
class InputFile:
    table: str
    path: Path
    rows: int

    def sha256(self) -> str:
        return sha256_file(self.path)


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks into one buffer (input checksums, merged outputs,
    verify). An output the job writes is hashed as it is written instead (outputs.OutputFile)."""
    h, buffer = hashlib.sha256(), bytearray(1 << 20)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            h.update(view[:n])
    return h.hexdigest()


def changed_inputs(recorded: dict[str, Any], input_dir: Path) -> list[str]:
    """The tables of a run's record of its inputs (manifest.json `inputs`: table -> file, rows, sha256)
    whose file in `input_dir` is now another one (name) or holds other bytes (sha256), in table order;
    a table without a file raises InputSchemaError, as `find_file`."""
    changed = []
    for table in INPUT_SCHEMAS:
        entry = recorded.get(table)
        path = find_file(input_dir, table)
        same_file = isinstance(entry, dict) and entry.get("file") == path.name
        if not (same_file and sha256_file(path) == entry.get("sha256")):
            changed.append(table)
    return changed


def find_file(input_dir: Path, table: str) -> Path:
    for suffix in (".parquet", ".csv"):
        path = input_dir / f"{table}{suffix}"
        if path.is_file():
            return path
    raise InputSchemaError(
        f"input table '{table}' is missing: expected {input_dir / (table + '.parquet')} or {table}.csv"
    )


def _expected_name(dtype: pl.DataType) -> str:
    if dtype == UTC_TS:
        return "a UTC timestamp (time zone set)"
    return {pl.Int64: "an integer", pl.Float64: "a number", pl.Boolean: "a boolean", pl.String: "a string"}[
        dtype.base_type()
    ]


def _conform(table: str, column: str, actual: pl.DataType, expected: pl.DataType) -> pl.Expr:
    """Cast one parquet column to its contract dtype, or raise naming table/column/expectation."""
    col = pl.col(column)
    bad = InputSchemaError(
        f"input table '{table}', column '{column}': expected {_expected_name(expected)}, found {actual}"
    )
    if expected == UTC_TS:
        if not isinstance(actual, pl.Datetime):
            raise bad
        if actual.time_zone is None:
            raise InputSchemaError(
                f"input table '{table}', column '{column}': timestamp is time-zone-naive; "
                "expected a UTC timestamp (time zone set)"
            )
        return col.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if expected == pl.Int64:
        if not actual.is_integer():
            raise bad
        return col.cast(pl.Int64)
    if expected == pl.Float64:
        if not actual.is_numeric():
            raise bad
        return col.cast(pl.Float64)
    if expected == pl.Boolean:
        if actual != pl.Boolean:
            raise bad
        return col
    if expected == pl.String:
        if not (actual == pl.String or isinstance(actual, (pl.Categorical, pl.Enum))):
            raise bad
        return col.cast(pl.String)
    raise AssertionError(expected)  # pragma: no cover


def _parse_text(table: str, column: str, expected: pl.DataType) -> pl.Expr:
    """Parse one CSV text column into its contract dtype (failures are checked by the caller)."""
    s = pl.col(column).str.strip_chars()
    s = pl.when(s == "").then(None).otherwise(s)
    if expected == UTC_TS:
        return s.str.to_datetime(time_unit="us", strict=False, time_zone="UTC")
    if expected == pl.Int64:
        return s.cast(pl.Int64, strict=False)
    if expected == pl.Float64:
        return s.cast(pl.Float64, strict=False)
    if expected == pl.Boolean:
        low = s.str.to_lowercase()
        return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False).otherwise(None)
    return s


def _first_line(exc: Exception) -> str:
    """A reader's error as one line (polars appends multi-line hints meant for library users)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _read_parquet(table: str, path: Path) -> tuple[pl.LazyFrame, int]:
    try:
        schema = pl.read_parquet_schema(path)  # reads the footer: a truncated file fails here
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()  # from the footer too
    except Exception as exc:
        raise InputSchemaError(f"input table '{table}': cannot read {path}: {_first_line(exc)}") from None
    expected = INPUT_SCHEMAS[table]
    missing = [c for c in expected if c not in schema]
    if missing:
        raise InputSchemaError(
            f"input table '{table}': missing column '{missing[0]}' in {path.name} "
            f"(expected {_expected_name(expected[missing[0]])})"
        )
    exprs = [_conform(table, c, schema[c], t).alias(c) for c, t in expected.items()]
    return pl.scan_parquet(path).select(exprs), rows


# Delimiters a spreadsheet's "CSV" export may use instead of ',' (a locale whose decimal mark is a
# comma exports ';'), as named in the message
OTHER_DELIMITERS = {";": "';'", "\t": "tabs", "|": "'|'"}
_DECIMAL_COMMA = r"^[+-]?\d*,\d+([eE][+-]?\d+)?$"  # 1,5  -0,25  ,5  1,5E3
_NUMERIC = (pl.Int64, pl.Float64)


def _header(path: Path) -> str:
    """The first line of a file as text (at most 64 KiB of it; a byte-order mark dropped)."""
    with path.open("rb") as f:
        line = f.readline(1 << 16)
    return line.decode("utf-8", errors="replace").rstrip("\r\n").lstrip("\ufeff")


def _other_delimiter(header: str, columns: list[str]) -> str | None:
    """The delimiter a header without a ',' is split by, if one of OTHER_DELIMITERS splits it into
    names that include one of the table's columns."""
    if "," in header:
        return None
    for delimiter in OTHER_DELIMITERS:
        fields = {f.strip().strip('"') for f in header.split(delimiter)}
        if delimiter in header and fields & set(columns):
            return delimiter
    return None


def _decimal_comma(text: pl.Series) -> int | None:
    """The index of the first value of a text column written with a decimal comma (`1,5`), if any."""
    found = text.str.strip_chars().str.contains(_DECIMAL_COMMA).fill_null(False)
    return int(found.arg_max()) if found.any() else None


def _decimal_commas(path: Path, delimiter: str, expected: dict[str, pl.DataType]) -> str:
    """', and ...' naming the first numeric column of a file read with `delimiter` that holds a value
    with a decimal comma (its value and row); "" if none does or the file does not read that way."""
    try:
        frame = pl.read_csv(path, separator=delimiter, infer_schema=False)
    except Exception:
        return ""
    for c, t in expected.items():
        row = _decimal_comma(frame[c]) if t in _NUMERIC and c in frame.columns else None
        if row is not None:
            return f", and writes numbers with a decimal comma (column '{c}': {frame[c][row]!r} at data row {row + 1})"
    return ""


def _check_delimiter(table: str, path: Path, expected: dict[str, pl.DataType]) -> None:
    """Stop on a CSV delimited by something else than ',' (read with ',' it would be one column, and
    every column would be reported missing), naming the delimiter and any decimal comma it holds."""
    delimiter = _other_delimiter(_header(path), list(expected))
    if delimiter is None:
        return
    commas = _decimal_commas(path, delimiter, expected)
    fix = (
        "export it with commas between fields and a decimal point in numbers"
        if commas
        else "export it with commas"
    )
    raise InputSchemaError(
        f"input table '{table}': {path.name} is delimited by {OTHER_DELIMITERS[delimiter]}, not ','{commas}; {fix}"
    )


def _read_csv(table: str, path: Path) -> tuple[pl.LazyFrame, int]:
    expected = INPUT_SCHEMAS[table]
    try:
        _check_delimiter(table, path, expected)
        raw = pl.read_csv(path, infer_schema=False)  # every column as text; "" and missing fields -> null
        with path.open("rb") as f:  # a file cut short (interrupted copy) ends mid-row, without a newline
            f.seek(max(path.stat().st_size - 1, 0))
            last = f.read(1)
    except InputSchemaError:
        raise
    except Exception as exc:
        raise InputSchemaError(f"input table '{table}': cannot read {path}: {_first_line(exc)}") from None
    if last not in (b"\n", b"\r"):
        raise InputSchemaError(
            f"input table '{table}': {path.name} does not end with a line break: truncated file? "
            "(expected complete CSV rows, each ending with a newline)"
        )
    missing = [c for c in expected if c not in raw.columns]
    if missing:
        raise InputSchemaError(
            f"input table '{table}': missing column '{missing[0]}' in {path.name} "
            f"(expected {_expected_name(expected[missing[0]])})"
        )
    parsed = raw.select([_parse_text(table, c, t).alias(c) for c, t in expected.items()])
    for c, t in expected.items():
        text = raw[c].str.strip_chars()
        if t == UTC_TS:  # checked first: a naive value makes polars infer a naive format for the column
            naive = text.str.contains(r"^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?$").fill_null(False)
            if naive.any():
                raise InputSchemaError(
                    f"input table '{table}', column '{c}': timestamp {text[int(naive.arg_max())]!r} at data row "
                    f"{int(naive.arg_max()) + 1} is time-zone-naive; expected a UTC timestamp (with Z or +00:00)"
                )
        failed = (text.is_not_null() & (text != "")) & parsed[c].is_null()
        if failed.any():
            first = int(failed.arg_max())
            value = text[first]
            if t in _NUMERIC and _decimal_comma(text[first : first + 1]) is not None:
                raise InputSchemaError(
                    f"input table '{table}', column '{c}': {value!r} at data row {first + 1} is written with a "
                    "decimal comma; export numbers with a decimal point (and no thousands separator)"
                )
            hint = ""
            if t == UTC_TS and value is not None and not any(z in value for z in ("Z", "+", "-0", "UTC")):
                hint = " (time-zone-naive? give timestamps with Z or +00:00)"
            raise InputSchemaError(
                f"input table '{table}', column '{c}': expected {_expected_name(t)}, "
                f"found {value!r} at data row {first + 1}{hint}"
            )
        if t == UTC_TS:
            naive = text.is_not_null() & (text != "") & ~text.str.contains(r"(Z|[+-]\d\d:?\d\d|UTC)$")
            if naive.any():
                raise InputSchemaError(
                    f"input table '{table}', column '{c}': timestamp {text[int(naive.arg_max())]!r} is "
                    "time-zone-naive; expected a UTC timestamp (with Z or +00:00)"
                )
    return parsed.lazy(), raw.height


def load_tables(input_dir: Path) -> dict[str, pl.LazyFrame]:
    """Every input table as a typed LazyFrame (schema checked; rows not yet checked)."""
    return {t: frame for t, (frame, _) in load_inputs(input_dir).items()}


def load_inputs(input_dir: Path) -> dict[str, tuple[pl.LazyFrame, InputFile]]:
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise InputSchemaError(f"input directory {input_dir} does not exist")
    out: dict[str, tuple[pl.LazyFrame, InputFile]] = {}
    for table in INPUT_SCHEMAS:
        path = find_file(input_dir, table)
        reader = _read_parquet if path.suffix == ".parquet" else _read_csv
        frame, rows = reader(table, path)
        out[table] = (frame, InputFile(table, path, rows))
    return out


def in_account_order(f: InputFile) -> bool:
    """Whether a bucket can read `f` in part: a CSV (read into memory) or a parquet file whose row groups
    hold ascending, disjoint account_id ranges (their statistics then let a bucket's filter skip the
    others). Read from the file's footer only."""
    if f.path.suffix != ".parquet":
        return True
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(f.path).metadata
    column = meta.schema.names.index("account_id")
    previous = None
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max:
            return False
        if previous is not None and stats.min < previous:
            return False
        previous = stats.max
    return True


def unreadable_table(files: list[InputFile]) -> InputSchemaError | None:
    """After the engine failed while reading: the first input whose data does not decode, if any.

    A parquet footer can be intact while a column's pages are corrupt; that only shows when the scan
    runs. Reading each file in full (only on this failure path) names the table.
    """
    import pyarrow.parquet as pq  # only on this failure path: a reader independent of polars'

    for f in files:
        if f.path.suffix != ".parquet":
            continue
        try:
            pq.read_table(f.path)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return InputSchemaError(f"input table '{f.table}': cannot read {f.path}: {first}")
    return None
