"""Shapes of a synthetic book: how many rows of each kind an account has, how many accounts are Pro,
how the prices are laid out and how many accounts need a bad price (`crossmargin sample --shape`).

* `sample` (the default): the book the project has always generated, byte for byte: about 4.65
  balance rows, 1.0 open order (42 % of accounts hold some) and 0.53 mode switches per account, 25 %
  Pro; prices daily from 2024-11-01 and hourly around the showcase as_of; no bad price.
* `exchange`: a book shaped like a real exchange's export: about 3.4 balance rows, 1.7 open orders
  (63 % of accounts hold some) and 2.2 mode switches per account, 41 % Pro; prices as daily
  heartbeats (00:00 UTC, one row per asset and day over about ten months, the last one 10 h before
  the showcase as_of); 0.8 % of the accounts hold a listed asset (HALTED) whose latest heartbeat has
  a null price, so the engine reports them as `missing_price`.

Only the numbers below differ between shapes: the generators draw the same random numbers in the
same order for every shape, and the extra draws of a shape (the HALTED rows) come after all others.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossmargin.synthetic.universe import US_DAY, epoch_us, utc


@dataclass(frozen=True)
class Shape:
    name: str
    pro_share: float = 0.25
    # held assets: breadth ~ LogNormal(breadth_mu, 1.25) (see population._balances)
    breadth_mu: float = 1.05
    # open orders: an account holds some with probability order_holders, then Geometric(orders_p) of them
    order_holders: float = 0.42
    orders_p: float = 0.42
    # mode switches: Pro 1 + (u < pro_more_switches) * Geometric(switches_p), Classic
    # (u < classic_switchers) * Geometric(switches_p), plus the same-day bursts of every shape
    pro_more_switches: float = 0.25
    classic_switchers: float = 0.12
    switches_p: float = 0.6
    heartbeat_days: int = 0  # > 0: daily price heartbeats over that many days, ending before as_of
    bad_price_share: float = 0.0  # share of accounts given a balance in the null-priced HALTED asset


SAMPLE = Shape("sample")
EXCHANGE = Shape(
    "exchange",
    pro_share=0.41,
    breadth_mu=0.50,
    order_holders=0.63,
    orders_p=0.63 / 1.7,
    pro_more_switches=0.7,
    classic_switchers=0.57,
    switches_p=0.35,
    heartbeat_days=303,
    bad_price_share=0.008,
)
SHAPES = {s.name: s for s in (SAMPLE, EXCHANGE)}

# The listed asset whose latest heartbeat is null (exchange shape): symbol, price before the
# null, collateral class, quantity decimals, daily volatility.
HALTED = ("HALTED", 0.52, "small", 2, 0.09)
LAST_HEARTBEAT_US = epoch_us(utc("2025-01-21T00:00:00Z"))  # 10 h before the showcase as_of


def heartbeat_times(days: int) -> list[int]:
    """Daily 00:00 UTC instants (microseconds), `days` of them, the last one LAST_HEARTBEAT_US."""
    return [LAST_HEARTBEAT_US - k * US_DAY for k in range(days - 1, -1, -1)]
