"""Scripts that measure the shipped models: held-out quality and latency."""
