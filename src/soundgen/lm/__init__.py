"""The text-to-sound token language model.

``config`` (LMConfig, LMRunConfig), ``patterns`` (the delay pattern), ``transformer`` (blocks, KV cache),
``model`` (LMModel), ``conditioners`` (MiniLM and hashed text encoders), ``sampling`` (top-k/top-p/CFG),
``generate`` (the decoding loop), ``io`` (``lm/`` directories) and ``export`` (run -> model directory).
Generation for users goes through :class:`soundgen.pipeline.TextToSound`.
"""
