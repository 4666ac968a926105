"""Reading a config.json into a frozen spec: typed fields, per-family facts as data, presets."""
