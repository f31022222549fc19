"""The compiled code: numba set-up (compiled), runs of an account's rows (runs), the one valuation
(valuation), the path search (search)."""
