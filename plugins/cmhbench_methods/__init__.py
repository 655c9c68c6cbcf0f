"""Built-in hashing-method plugins for cmhbench (one module per method)."""
