"""Reference implementation 1: the quantities and levels of the rules (docs/rules.md) in DuckDB SQL.

Written the way a competent analyst would: one SQL statement of CTEs over the parquet inputs
(as-of price and tier selection, joins, GROUP BY, CASE), result written to parquet so it does the
same I/O as the engine. It computes the §1 quantities and the six levels only: no validation, no
§3 decisions, no actions (the engine does all of those on top).

    python benchmarks/impl_duckdb.py --input DIR --out FILE.parquet --as-of 2025-01-21T10:00:00Z
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import impl_cli

from crossmargin.policy import resolve

SQL = """
COPY (
WITH
px AS (                                  -- latest price with priced_at <= as_of
    SELECT asset, arg_max(price_usdt, priced_at) AS price
    FROM read_parquet('{inp}/prices.parquet')
    WHERE priced_at <= TIMESTAMPTZ '{as_of}'
    GROUP BY asset
),
ct AS (                                  -- collateral tiers in force (latest effective_from <= as_of)
    SELECT asset, lower_usdt, upper_usdt, collateral_ratio
    FROM read_parquet('{inp}/collateral_tiers.parquet')
    WHERE effective_from <= TIMESTAMPTZ '{as_of}'
    QUALIFY effective_from = max(effective_from) OVER (PARTITION BY asset)
),
lb AS (                                  -- liability brackets in force
    SELECT asset, lower_usdt, upper_usdt, maintenance_margin_rate, initial_margin_rate
    FROM read_parquet('{inp}/liability_brackets.parquet')
    WHERE effective_from <= TIMESTAMPTZ '{as_of}'
    QUALIFY effective_from = max(effective_from) OVER (PARTITION BY asset)
),
bal AS (
    SELECT b.account_id, b.asset,
           (b.free + b.locked) * p.price       AS holding_usdt,
           (b.borrowed + b.interest) * p.price AS debt_usdt
    FROM read_parquet('{inp}/balances.parquet') b
    JOIN px p USING (asset)
),
tot AS (
    SELECT account_id,
           sum(holding_usdt) AS total_asset_usdt,
           sum(debt_usdt)    AS total_liability_usdt
    FROM bal GROUP BY account_id
),
coll AS (
    SELECT b.account_id,
           sum(t.collateral_ratio * greatest(least(b.holding_usdt - t.lower_usdt,
                                                   coalesce(t.upper_usdt - t.lower_usdt, 'inf'::DOUBLE)), 0))
               AS collateral_usdt
    FROM bal b JOIN ct t USING (asset)
    GROUP BY b.account_id
),
mar AS (
    SELECT b.account_id,
           sum(l.maintenance_margin_rate * greatest(least(b.debt_usdt - l.lower_usdt,
                                                          coalesce(l.upper_usdt - l.lower_usdt, 'inf'::DOUBLE)), 0))
               AS maintenance_margin_usdt,
           sum(l.initial_margin_rate * greatest(least(b.debt_usdt - l.lower_usdt,
                                                      coalesce(l.upper_usdt - l.lower_usdt, 'inf'::DOUBLE)), 0))
               AS initial_margin_usdt
    FROM bal b JOIN lb l USING (asset)
    WHERE b.debt_usdt > 0
    GROUP BY b.account_id
),
r0 AS (                                  -- first-slice collateral ratio per asset
    SELECT asset, collateral_ratio AS r FROM ct WHERE lower_usdt = 0
),
ool AS (
    SELECT o.account_id,
           sum(greatest(
               CASE WHEN o.side = 'BUY'
                    THEN o.remaining_qty * o.price * pq.price * rq.r - o.remaining_qty * pb.price * rb.r
                    ELSE o.remaining_qty * pb.price * rb.r - o.remaining_qty * o.price * pq.price * rq.r
               END, 0)) AS open_order_loss_usdt
    FROM read_parquet('{inp}/open_orders.parquet') o
    JOIN px pb ON pb.asset = o.base_asset
    JOIN px pq ON pq.asset = o.quote_asset
    JOIN r0 rb ON rb.asset = o.base_asset
    JOIN r0 rq ON rq.asset = o.quote_asset
    GROUP BY o.account_id
),
q AS (
    SELECT a.account_id, a.margin_mode,
           coalesce(tot.total_asset_usdt, 0)     AS total_asset_usdt,
           coalesce(tot.total_liability_usdt, 0) AS total_liability_usdt,
           coalesce(coll.collateral_usdt, 0)     AS collateral_usdt,
           coalesce(mar.maintenance_margin_usdt, 0) AS maintenance_margin_usdt,
           coalesce(mar.initial_margin_usdt, 0)     AS initial_margin_usdt,
           coalesce(ool.open_order_loss_usdt, 0)    AS open_order_loss_usdt
    FROM read_parquet('{inp}/accounts.parquet') a
    LEFT JOIN tot  USING (account_id)
    LEFT JOIN coll USING (account_id)
    LEFT JOIN mar  USING (account_id)
    LEFT JOIN ool  USING (account_id)
),
lv AS (
    SELECT *,
           total_asset_usdt - total_liability_usdt AS net_equity_usdt,
           collateral_usdt - total_liability_usdt  AS net_collateral_usdt,
           CASE WHEN total_liability_usdt = 0 THEN 'inf'::DOUBLE
                ELSE total_asset_usdt / total_liability_usdt END AS classic_margin_level,
           CASE WHEN total_liability_usdt = 0 THEN 'inf'::DOUBLE
                ELSE collateral_usdt / total_liability_usdt END AS classic_collateral_margin_level,
           CASE WHEN maintenance_margin_usdt = 0 THEN 'inf'::DOUBLE
                ELSE (total_asset_usdt - total_liability_usdt) / maintenance_margin_usdt END
               AS pro_margin_level_old,
           CASE WHEN maintenance_margin_usdt = 0 THEN 'inf'::DOUBLE
                ELSE ((collateral_usdt - total_liability_usdt) - open_order_loss_usdt) / maintenance_margin_usdt END
               AS pro_margin_level_new
    FROM q
)
SELECT account_id, margin_mode,
       total_asset_usdt, total_liability_usdt, collateral_usdt, net_equity_usdt, net_collateral_usdt,
       maintenance_margin_usdt, initial_margin_usdt, open_order_loss_usdt,
       classic_margin_level, classic_collateral_margin_level, pro_margin_level_old, pro_margin_level_new,
       {pro_level} AS pro_margin_level,
       CASE WHEN margin_mode = 'classic' THEN classic_margin_level ELSE {pro_level} END AS margin_level
FROM lv
ORDER BY account_id
) TO '{out}' (FORMAT parquet)
"""


def build_sql(input_dir: Path, out: Path, as_of: dt.datetime) -> str:
    new = resolve(as_of).new_formula
    return SQL.format(
        inp=str(input_dir),
        out=str(out),
        as_of=as_of.strftime("%Y-%m-%d %H:%M:%S+00"),
        pro_level="pro_margin_level_new" if new else "pro_margin_level_old",
    )


def main() -> None:
    input_dir, out, as_of = impl_cli.parse(__doc__)
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(build_sql(input_dir, out, as_of))
    impl_cli.report("duckdb", time.perf_counter() - t0)


if __name__ == "__main__":
    main()
