"""The text-to-sound token language model.

``config`` (LMConfig, LMRunConfig), ``patterns`` (the delay pattern), ``transformer`` (blocks, KV cache),
``model`` (LMModel), ``conditioners`` (MiniLM and hashed text encoders), ``sampling`` (top-k/top-p/CFG),
``generate`` (the decoding loop), ``fused_step`` (its one decoding step) over ``step_weights`` (the step's weights,
laid out for products of a few rows) and ``io`` (``lm/`` directories). A run becomes a model directory in
:mod:`soundgen.train.export`.
Generation for users goes through :class:`soundgen.pipeline.TextToSound`.
"""
