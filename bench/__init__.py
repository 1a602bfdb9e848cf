"""Benchmarks of migration 013 against their floors (issue 5): `invoke bench [--quick|--full]`."""
