"""Unit layer: literal input frames and examples worked by hand, at every boundary of docs/rules.md."""
