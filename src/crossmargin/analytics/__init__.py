"""Analyst surfaces over a run's outputs: SQL reports, day-over-day diff, HTML report.

Nothing here computes a SPEC formula: everything reads account_risk / actions / data_issues.
"""
