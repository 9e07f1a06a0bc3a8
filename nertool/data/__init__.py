"""Data: SPEC → per-language splits of word-level sentences.

``sources`` resolves a SPEC (local file, corpus folder, ``hub:``, ``datasets`` folder) into splits;
``hf`` turns ``datasets`` splits (hub, ``save_to_disk``, Parquet) into sentences; ``readers`` decodes
every local file format line by line with file:line errors; ``sampling`` draws training sets by
fractions or temperature.
"""

from nertool._lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "Corpus": "sources",
        "load_corpus": "sources",
        "locate": "sources",
        "plan_sample": "sources",
        "sample_sentences": "sources",
        "is_hub_spec": "sources",
        "Sentence": "readers",
        "ReadReport": "readers",
        "read_sentences": "readers",
        "sniff_format": "readers",
        "file_lines": "lines",
        "decode_lines": "lines",
        "fraction_counts": "sampling",
        "temperature_counts": "sampling",
        "choose_indices": "sampling",
    },
)
