"""Tests of v2xfusion_tools/data (a package: its helpers serve tests/training too)."""
