"""Tests of v2xfusion_tools/models (a package, so test modules may share basenames with other
suites and import their helpers relatively)."""
