"""Pre-training: masked-LM text sources and language mix (``text``), masking and packing (``masking``)."""
