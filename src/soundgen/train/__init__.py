"""Training loops for the codec and the LM, and what they share."""
