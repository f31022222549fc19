"""Schema problems stop the run before anything is written (docs/rules.md §6).

Every case goes through the CLI (`crossmargin run`): exit code 3 (InputSchemaError), one message on
stderr naming the table, the column and what was expected, no traceback, and `--out` untouched:
absent if it did not exist, byte-identical to the previous run if it did, and no temporary or
rejected sibling left next to it. Parquet and CSV inputs both; plus positive controls (the same
input as CSV and parquet, or with non-UTC time zones, gives the same account_risk), without which a
reader that rejects everything would pass every negative case.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from crossmargin.synthetic.writer import write_inputs
from support.cli import cli, cli_process
from support.inputs import NEW_TEXT, clean_tables

SCHEMA_EXIT = 3


@pytest.fixture(scope="module")
def good() -> dict[str, pl.DataFrame]:
    return clean_tables(40, seed=11)


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory: pytest.TempPathFactory, good: dict[str, pl.DataFrame]) -> Path:
    """A complete earlier run's output directory (copied into --out before each failing run)."""
    base = tmp_path_factory.mktemp("prev")
    inp = write_inputs(good, base / "in")
    out = base / "out"
    res = invoke(inp, out)
    assert res.exit_code == 0, res.output
    return out


def invoke(inp: Path, out: Path, *extra: str):
    return cli("run", "--as-of", NEW_TEXT, "--input", str(inp), "--out", str(out), *extra)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def assert_schema_error(res, words: list[str]) -> str:
    """Exit 3, one clear stderr message containing every word, no traceback, no stdout summary."""
    text = res.stderr
    assert res.exit_code == SCHEMA_EXIT, f"exit {res.exit_code}: {res.output!r} {res.exception!r}"
    assert isinstance(res.exception, SystemExit), repr(res.exception)  # no uncaught exception
    assert "Traceback" not in res.output
    assert text.startswith("crossmargin: error: ")
    assert text.count("\n") == 1, f"expected one line, got {text!r}"
    for w in words:
        assert w in text, f"{w!r} not in {text!r}"
    assert res.stdout == ""
    return text


def run_bad(
    tmp_path: Path,
    tables: dict[str, pl.DataFrame],
    fmt: str,
    mutate: Callable[[Path], None],
    previous: Path | None,
    words: list[str],
) -> str:
    """Write the input, break it, run; check the failure and that --out is exactly as before."""
    inp = write_inputs(tables, tmp_path / "in", fmt)
    mutate(inp)
    parent = tmp_path / "runs"
    parent.mkdir()
    out = parent / "out"
    if previous is not None:
        shutil.copytree(previous, out)
        before = snapshot(out)
    res = invoke(inp, out)
    msg = assert_schema_error(res, words)
    if previous is None:
        assert not out.exists()
        assert list(parent.iterdir()) == []
    else:
        assert snapshot(out) == before
        assert [p.name for p in parent.iterdir()] == ["out"]  # no staging or .rejected sibling
    return msg


# ---------------------------------------------------------------------------- mutations


def drop_file(name: str) -> Callable[[Path], None]:
    def mutate(inp: Path) -> None:
        for p in inp.glob(f"{name}.*"):
            p.unlink()

    return mutate


def edit_parquet(name: str, fn: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Path], None]:
    def mutate(inp: Path) -> None:
        path = inp / f"{name}.parquet"
        fn(pl.read_parquet(path)).write_parquet(path)

    return mutate


def edit_csv_text(name: str, fn: Callable[[str], str]) -> Callable[[Path], None]:
    def mutate(inp: Path) -> None:
        path = inp / f"{name}.csv"
        path.write_text(fn(path.read_text()))

    return mutate


def truncate(name: str, ext: str, keep: float) -> Callable[[Path], None]:
    def mutate(inp: Path) -> None:
        path = inp / f"{name}.{ext}"
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return mutate


def overwrite(name: str, ext: str, data: bytes) -> Callable[[Path], None]:
    def mutate(inp: Path) -> None:
        (inp / f"{name}.{ext}").write_bytes(data)

    return mutate


def replace_col(col: str, expr: pl.Expr) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda df: df.with_columns(expr.alias(col))


# ---------------------------------------------------------------------------- parquet cases

PARQUET_CASES = {
    # id: (mutation, words the message must contain)
    "missing_table": (drop_file("prices"), ["'prices'", "missing", "prices.parquet"]),
    "missing_column": (
        edit_parquet("balances", lambda d: d.drop("interest")),
        ["'balances'", "'interest'", "number"],
    ),
    "missing_ts_column": (
        edit_parquet("collateral_tiers", lambda d: d.drop("effective_from")),
        ["'collateral_tiers'", "'effective_from'", "timestamp"],
    ),
    "id_as_string": (
        edit_parquet("accounts", replace_col("account_id", pl.col("account_id").cast(pl.String))),
        ["'accounts'", "'account_id'", "integer"],
    ),
    "id_as_float": (
        edit_parquet("open_orders", replace_col("order_id", pl.col("order_id").cast(pl.Float64))),
        ["'open_orders'", "'order_id'", "integer"],
    ),
    "number_as_string": (
        edit_parquet("balances", replace_col("free", pl.col("free").cast(pl.String))),
        ["'balances'", "'free'", "number"],
    ),
    "bool_as_int": (
        edit_parquet(
            "accounts", replace_col("cross_margin_activated", pl.col("cross_margin_activated").cast(pl.Int8))
        ),
        ["'accounts'", "'cross_margin_activated'", "boolean"],
    ),
    "timestamp_as_string": (
        edit_parquet("prices", replace_col("priced_at", pl.col("priced_at").dt.to_string())),
        ["'prices'", "'priced_at'", "timestamp"],
    ),
    "timestamp_tz_naive": (
        edit_parquet(
            "mode_switches", replace_col("switched_at", pl.col("switched_at").dt.replace_time_zone(None))
        ),
        ["'mode_switches'", "'switched_at'", "naive", "UTC"],
    ),
    "nullable_timestamp_tz_naive": (
        edit_parquet(
            "accounts",
            replace_col("terms_agreed_at", pl.col("terms_agreed_at").dt.replace_time_zone(None)),
        ),
        ["'accounts'", "'terms_agreed_at'", "naive"],
    ),
    "date_not_timestamp": (
        edit_parquet("liability_brackets", replace_col("effective_from", pl.col("effective_from").dt.date())),
        ["'liability_brackets'", "'effective_from'", "timestamp"],
    ),
    "truncated_half": (
        truncate("balances", "parquet", 0.5),
        ["'balances'", "cannot read", "balances.parquet"],
    ),
    "truncated_last_byte": (truncate("accounts", "parquet", 0.999), ["'accounts'", "cannot read"]),
    "empty_file": (overwrite("open_orders", "parquet", b""), ["'open_orders'", "cannot read"]),
    "not_parquet": (
        overwrite("prices", "parquet", b"asset,price_usdt\nBTC,1\n"),
        ["'prices'", "cannot read"],
    ),
}


@pytest.mark.parametrize("case", list(PARQUET_CASES))
@pytest.mark.parametrize("has_previous", [False, True], ids=["fresh_out", "existing_out"])
def test_parquet_schema_error(case, has_previous, tmp_path, good, previous_run):
    mutate, words = PARQUET_CASES[case]
    run_bad(tmp_path, good, "parquet", mutate, previous_run if has_previous else None, words)


# ---------------------------------------------------------------------------- CSV cases


def _replace_first_value(col: str, new: str) -> Callable[[str], str]:
    """Replace the first data row's value of one column (no quoting in our generated CSVs)."""

    def fn(text: str) -> str:
        lines = text.split("\n")
        header = lines[0].split(",")
        row = lines[1].split(",")
        row[header.index(col)] = new
        lines[1] = ",".join(row)
        return "\n".join(lines)

    return fn


def _drop_column(col: str) -> Callable[[str], str]:
    def fn(text: str) -> str:
        lines = [ln for ln in text.split("\n")]
        i = lines[0].split(",").index(col)
        return "\n".join(
            ",".join(v for j, v in enumerate(ln.split(",")) if j != i) if ln else ln for ln in lines
        )

    return fn


CSV_CASES = {
    "missing_table": (drop_file("liability_brackets"), ["'liability_brackets'", "missing"]),
    "missing_column": (
        edit_csv_text("accounts", _drop_column("country")),
        ["'accounts'", "'country'", "string"],
    ),
    "bad_integer": (
        edit_csv_text("balances", _replace_first_value("account_id", "12x")),
        ["'balances'", "'account_id'", "integer", "'12x'", "row 1"],
    ),
    "float_in_integer_column": (
        edit_csv_text("accounts", _replace_first_value("classic_leverage", "3.5")),
        ["'accounts'", "'classic_leverage'", "integer"],
    ),
    "bad_number": (
        edit_csv_text("open_orders", _replace_first_value("price", "1e")),
        ["'open_orders'", "'price'", "number"],
    ),
    "bad_boolean": (
        edit_csv_text("accounts", _replace_first_value("pro_quiz_passed", "maybe")),
        ["'accounts'", "'pro_quiz_passed'", "boolean", "'maybe'"],
    ),
    "bad_timestamp": (
        edit_csv_text("prices", _replace_first_value("priced_at", "yesterday")),
        ["'prices'", "'priced_at'", "timestamp"],
    ),
    "timestamp_tz_naive": (
        edit_csv_text("prices", _replace_first_value("priced_at", "2020-01-01T00:00:00")),
        ["'prices'", "'priced_at'", "naive"],
    ),
    "timestamp_tz_naive_space": (
        edit_csv_text("mode_switches", _replace_first_value("switched_at", "2025-01-21 09:00:00")),
        ["'mode_switches'", "'switched_at'", "naive"],
    ),
    "truncated_mid_row": (truncate("balances", "csv", 0.5), ["'balances'", "truncated"]),
    "truncated_mid_last_field": (
        # cut inside the last field of the last row: field count is right, only the newline is missing
        edit_csv_text("balances", lambda t: t.rstrip("\n")[:-1]),
        ["'balances'", "truncated"],
    ),
    "empty_file": (overwrite("accounts", "csv", b""), ["'accounts'", "cannot read"]),
    "binary_garbage": (overwrite("open_orders", "csv", bytes(range(256)) * 4), ["'open_orders'"]),
    "too_many_fields": (
        edit_csv_text("accounts", lambda t: t.replace("\n", ",extra\n", 2).replace(",extra", "", 1)),
        ["'accounts'", "cannot read"],
    ),
    # a spreadsheet's export in another delimiter: named, not reported as a missing column
    "semicolon_delimited": (
        edit_csv_text("balances", lambda t: t.replace(",", ";")),
        ["input table 'balances': balances.csv is delimited by ';', not ','; export it with commas"],
    ),
    "tab_delimited": (
        edit_csv_text("accounts", lambda t: t.replace(",", "\t")),
        ["input table 'accounts': accounts.csv is delimited by tabs, not ','; export it with commas"],
    ),
    "pipe_delimited": (
        edit_csv_text("open_orders", lambda t: t.replace(",", "|")),
        ["input table 'open_orders': open_orders.csv is delimited by '|', not ','; export it with commas"],
    ),
    # decimal commas: with ';' (the usual export of a locale that writes 1,5), both are named
    "semicolons_and_decimal_commas": (
        edit_csv_text("balances", lambda t: t.replace(",", ";").replace(".", ",")),
        [
            "input table 'balances': balances.csv is delimited by ';', not ',', and writes numbers with a "
            "decimal comma (column 'free': ",
            "at data row 1); export it with commas between fields and a decimal point in numbers",
        ],
    ),
    "decimal_comma_in_a_quoted_cell": (
        edit_csv_text("open_orders", _replace_first_value("price", '"1,5"')),
        [
            "input table 'open_orders', column 'price': '1,5' at data row 1 is written with a decimal comma; "
            "export numbers with a decimal point"
        ],
    ),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
@pytest.mark.parametrize("has_previous", [False, True], ids=["fresh_out", "existing_out"])
def test_csv_schema_error(case, has_previous, tmp_path, good, previous_run):
    mutate, words = CSV_CASES[case]
    run_bad(tmp_path, good, "csv", mutate, previous_run if has_previous else None, words)


def test_missing_input_directory(tmp_path):
    res = invoke(tmp_path / "nope", tmp_path / "out")
    assert_schema_error(res, ["nope", "does not exist"])
    assert not (tmp_path / "out").exists()


def test_first_missing_table_is_named_when_all_are_missing(tmp_path):
    (tmp_path / "in").mkdir()
    res = invoke(tmp_path / "in", tmp_path / "out")
    assert_schema_error(res, ["'accounts'", "missing"])


# ---------------------------------------------------------------------------- positive controls


def _run_ok(inp: Path, out: Path) -> pl.DataFrame:
    res = invoke(inp, out)
    assert res.exit_code == 0, res.output
    return pl.read_parquet(out / "account_risk.parquet")


def test_csv_and_parquet_inputs_give_the_same_results(tmp_path, good):
    a = _run_ok(write_inputs(good, tmp_path / "pq", "parquet"), tmp_path / "out_pq")
    b = _run_ok(write_inputs(good, tmp_path / "csv", "csv"), tmp_path / "out_csv")
    assert a.height == good["accounts"].height
    assert a.equals(b)
    assert pl.read_parquet(tmp_path / "out_csv" / "data_issues.parquet").height == 0


def test_csv_with_windows_line_endings_and_offsets(tmp_path, good):
    """CRLF rows and '+00:00' / '+01:00' offsets are complete, time-zone-aware input, not errors."""
    a = _run_ok(write_inputs(good, tmp_path / "pq", "parquet"), tmp_path / "out_pq")
    inp = write_inputs(good, tmp_path / "csv", "csv")
    for p in inp.glob("*.csv"):
        p.write_bytes(
            p.read_bytes().replace(b"Z\n", b"+00:00\n").replace(b"Z,", b"+00:00,").replace(b"\n", b"\r\n")
        )
    # the same instant written in another offset
    prices = inp / "prices.csv"
    prices.write_bytes(
        prices.read_bytes().replace(b"2025-01-21T00:00:00.000000+00:00", b"2025-01-21T01:00:00.000000+01:00")
    )
    assert b"+01:00" in prices.read_bytes()
    assert _run_ok(inp, tmp_path / "out_csv").equals(a)


def test_parquet_timestamps_in_other_zones_and_units_are_converted(tmp_path, good):
    """A timestamp with a time zone (any) and any unit is the same instant: same results as UTC/us."""
    a = _run_ok(write_inputs(good, tmp_path / "pq", "parquet"), tmp_path / "out_a")
    other = dict(good)
    other["prices"] = good["prices"].with_columns(
        pl.col("priced_at").dt.convert_time_zone("Asia/Tokyo").dt.cast_time_unit("ns")
    )
    other["mode_switches"] = good["mode_switches"].with_columns(
        pl.col("switched_at").dt.convert_time_zone("America/New_York").dt.cast_time_unit("ms")
    )
    b = _run_ok(write_inputs(other, tmp_path / "pq2", "parquet"), tmp_path / "out_b")
    assert a.equals(b)


def test_narrower_numeric_types_and_extra_columns_are_accepted(tmp_path, good):
    other = dict(good)
    other["accounts"] = good["accounts"].with_columns(
        pl.col("classic_leverage").cast(pl.Int8), pl.lit("x").alias("unused_extra_column")
    )
    other["balances"] = good["balances"].with_columns(pl.col("account_id").cast(pl.Int32))
    a = _run_ok(write_inputs(good, tmp_path / "a", "parquet"), tmp_path / "out_a")
    b = _run_ok(write_inputs(other, tmp_path / "b", "parquet"), tmp_path / "out_b")
    assert a.equals(b)


# ---------------------------------------------------------------------------- a real process


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_subprocess_prints_one_line_and_no_traceback(tmp_path, good, fmt):
    """The installed command, not the test runner: stderr is one line, exit code 3."""
    inp = write_inputs(good, tmp_path / "in", fmt)
    truncate("balances", fmt, 0.6)(inp)
    proc = cli_process(
        "run", "--as-of", NEW_TEXT, "--input", inp, "--out", tmp_path / "out",
        env={**os.environ, "COLUMNS": "200"}, timeout=120,
    )  # fmt: skip
    assert proc.exit_code == SCHEMA_EXIT, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("crossmargin: error: input table 'balances'")
    assert proc.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_corrupt_column_data_is_a_clean_error(tmp_path, good):
    inp = write_inputs(good, tmp_path / "in", "parquet")
    path = inp / "balances.parquet"
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(0).column(1)  # 'asset': a dictionary-encoded, compressed string column
    start, size = col.data_page_offset, col.total_compressed_size
    data = bytearray(path.read_bytes())
    for i in range(start, start + size):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    res = invoke(inp, out)
    assert not out.exists()  # holds today already: nothing is published when the run fails
    assert_schema_error(res, ["'balances'"])


def test_schema_errors_name_expected_dtypes_for_every_column(tmp_path, good):
    """Each column of each table, turned into an unrelated type, is rejected naming table and column."""
    bad_for = {
        pl.Int64: pl.lit("x"),
        pl.Float64: pl.lit("x"),
        pl.String: pl.lit(1.5),
        pl.Boolean: pl.lit("x"),
    }
    from crossmargin.io.schemas import INPUT_SCHEMAS, UTC_TS

    inp = write_inputs(good, tmp_path / "in", "parquet")
    checked = 0
    for table, schema in INPUT_SCHEMAS.items():
        original = (inp / f"{table}.parquet").read_bytes()
        for col, dtype in schema.items():
            bad = pl.lit(1.5) if dtype == UTC_TS else bad_for[dtype.base_type()]
            df = (
                good[table].with_columns(bad.alias(col))
                if good[table].height
                else good[table].with_columns(
                    pl.Series(col, [], dtype=pl.Float64 if dtype != pl.Float64 else pl.String)
                )
            )
            df.write_parquet(inp / f"{table}.parquet")
            res = invoke(inp, tmp_path / "out")
            assert_schema_error(res, [f"'{table}'", f"'{col}'", "expected"])
            checked += 1
        (inp / f"{table}.parquet").write_bytes(original)
    assert checked == sum(len(s) for s in INPUT_SCHEMAS.values())
    assert not (tmp_path / "out").exists()
