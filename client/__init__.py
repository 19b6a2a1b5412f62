"""Clients of a running restoration-serve bundle (batch client, shared token handling)."""
