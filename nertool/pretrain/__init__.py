"""Pre-training: masked-LM text sources and language mix (``text``), masking and packing (``masking``)."""

from nertool._lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "mask_tokens": "masking",
        "mlm_stats": "masking",
        "PackedBlock": "packing",
        "pack_documents": "packing",
        "collate_blocks": "packing",
        "TextSource": "text",
        "read_text_sources": "text",
        "mix_documents": "text",
    },
)
