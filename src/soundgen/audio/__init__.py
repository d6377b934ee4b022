"""Audio input/output, conversions and the `.sgc` compressed container."""
