"""Releasing a model directory: ``soundgen model release`` and ``soundgen model verify``.

A release is a model directory (``codec/``, ``lm/``, ``prompts.json``, as ``soundgen lm export`` writes it) plus
a ``MODEL_CARD.md`` assembled from what the training chain left behind: the corpus recipe's report (hours per
category, licences, attributions), the runs' configs and training time, the ``soundgen eval codec`` and
``soundgen eval generation`` reports, the classifier's own accuracy and the benchmarks' JSON. The card ends with
a table of every file's SHA-256, which ``soundgen model verify`` (and the test of the bundled model) checks.

- :mod:`.reports`: those reports read into typed records (the one place that knows their files and keys);
- :mod:`.card`: the one writer of ``MODEL_CARD.md`` (``soundgen lm export`` writes its card with it too);
- :mod:`.hashes`: the card's file table, written and verified;
- :mod:`.assemble`: the release itself.
"""

from soundgen.release.assemble import MAX_BYTES_DEFAULT, ReleaseError, release_model
from soundgen.release.card import ReleaseInputs
from soundgen.release.hashes import VerifyError, card_hashes, verify_model

__all__ = [
    "MAX_BYTES_DEFAULT",
    "ReleaseError",
    "ReleaseInputs",
    "VerifyError",
    "card_hashes",
    "release_model",
    "verify_model",
]
