"""End-to-end layer: the command line and the jobs for real (destinations, atomic outputs, bad input,
backfill, Airflow, Ray, the analyst commands and pages, notebooks, the docs and their command blocks)."""
