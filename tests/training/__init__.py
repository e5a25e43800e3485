"""Tests of v2xfusion_tools/training (a package, so module basenames may repeat other suites')."""
