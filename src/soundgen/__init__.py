"""soundgen: train a text-to-sound model on audio you own, and serve it."""

__version__ = "0.1.0"
