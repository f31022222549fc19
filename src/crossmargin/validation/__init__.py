"""Every data-quality rule of the job, in one package: a bad item becomes a data issue, never a crash.

- `rules`: the mechanism (a named `Rule` per check; the first rule a row breaks becomes its issue);
- `rows`: the per-row rules of each input table (accounts, balances, open orders, mode switches),
  including the reference data each row needs (price in effect, tier tables);
- `prices`: which price is in effect for an asset at as_of, and why there may be none
  (ambiguous, missing, stale);
- `tier_tables`: whether a collateral tier / liability bracket table in effect is usable;
- `groups`: checks over an account's rows (repeated keys, rows of unknown accounts) and over its
  results (a sum or level that is not a finite number);
- `countries`: the officially assigned ISO 3166-1 alpha-2 codes.

Adding a rule means adding it to one of these lists; the engine applies them all.
"""
