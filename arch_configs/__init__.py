"""Hardware presets (YAML). Each file cites where its numbers come from; `ttvsim archs` lists them."""
