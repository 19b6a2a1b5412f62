"""Start, wait for and stop the bundle's TorchServe (used by the Makefile and the tests)."""
