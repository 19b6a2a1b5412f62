"""Studio: the web page for restoring photos by hand (see studio/server.py)."""
