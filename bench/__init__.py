"""Host Checker's benchmarks (`make bench`; bench/README.md). Never part of `make test`'s timing."""
