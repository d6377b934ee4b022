"""The ``.sgc`` compressed-audio format, all of it (docs/sgc_format.md describes it byte by byte).

- :mod:`.container`: the file itself: header, chunks of bit-packed or range-coded codes, checksums, trailer
  (:class:`~.container.SgcWriter`, :class:`~.container.SgcReader`, :func:`~.container.read_sgc`,
  :func:`~.container.write_sgc`); it needs no codec.
- :mod:`.files`: audio files to ``.sgc`` and back with a codec, streaming (:func:`~.files.encode_file`,
  :func:`~.files.decode_file`, :func:`~.files.write_codes`).

The range coder and its tables' contexts are generic and live in :mod:`soundgen.audio.rangecoder` and
:mod:`soundgen.audio.entropy`; a codec's own tables (fitting, ``entropy.safetensors``) in :mod:`soundgen.codec.entropy`.
"""
