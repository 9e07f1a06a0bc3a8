"""Training: the Accelerate loop (``loop``) and what it is built from.

``settings`` (``LoopSettings`` and the one mapping from a recipe's ``[train]``), ``reporters``
(progress and ``train_log.jsonl``), ``checkpoint`` (the atomic, verified checkpoint folder),
``state`` (the loop's progress, saved and resumed by every process together) and ``runtime``
(the accelerator, stop signals, the clock and test hooks).
"""
