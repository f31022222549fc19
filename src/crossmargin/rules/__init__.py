"""Every formula, threshold and comparison, each written once and named after what it returns."""
