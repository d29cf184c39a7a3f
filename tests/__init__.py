"""The test suite (a package, so that benchmarks import tests.support by name)."""
