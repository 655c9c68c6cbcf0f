"""An example third-party cmhbench plugin."""
