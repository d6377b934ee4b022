# the systems `soundgen eval codec` compares (soundgen's own and the ffmpeg baselines); here, torch- and numpy-free,
# so that the CLI can list them without importing the evaluation
CODEC_SYSTEMS = ("soundgen", "opus", "mp3", "codec2")
