"""Datasets: folder of audio → clean, captioned, split dataset (manifest + report), and token caches."""
