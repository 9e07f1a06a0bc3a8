"""Hand-made gold and predicted IOB2 tags shared by the scoring tests (seqeval oracle, the metric)."""

GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC", "O"],
    ["O", "B-ORG", "I-ORG", "I-ORG", "O", "B-PER"],
    ["B-LOC", "O", "O"],
    ["O", "O"],
]
PRED = [
    ["B-PER", "I-PER", "O", "B-ORG", "O"],
    ["O", "I-ORG", "I-ORG", "O", "O", "B-PER"],
    ["B-LOC", "O", "B-MISC"],
    ["O", "O"],
]
