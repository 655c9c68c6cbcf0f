"""Built-in dataset plugins for cmhbench."""
