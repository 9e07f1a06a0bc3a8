"""The user jobs, each a short sequence of stages: train, evaluate, transfer, pretrain, inspect, predict.

``jobs`` holds a command's run folder while its workflow writes it; ``choices`` names the values
the commands accept.

Workflows return typed results and write files; they never print. Only ``nertool.cli`` imports them.
"""
