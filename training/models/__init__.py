"""Plain nn.Module model definitions, one per file, each with named presets."""
