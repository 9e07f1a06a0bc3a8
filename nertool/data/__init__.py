"""Data: SPEC → per-language splits of word-level sentences.

``sources`` resolves a SPEC (local file, corpus folder, ``hub:``) into splits; ``readers`` decodes
every local file format line by line with file:line errors; ``sampling`` draws training sets by
fractions or temperature.
"""
