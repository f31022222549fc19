"""The officially assigned ISO 3166-1 alpha-2 country codes, from pycountry (not typed by hand).

`country` must be one of them (else `bad_value`); the `country` column of account_risk is an enum
of exactly this list.
"""

from __future__ import annotations

import pycountry

ISO_COUNTRIES: list[str] = sorted(c.alpha_2 for c in pycountry.countries)
