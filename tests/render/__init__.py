"""Tests of the pure renderer: what a reader sees, and that every part is valid."""
