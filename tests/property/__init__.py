"""Property layer: hypothesis-generated inputs, checked against the independent scalar reference
(tests/support/reference.py) or a textbook formula written in the test."""
