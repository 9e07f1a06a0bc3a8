"""The user jobs, each a short sequence of stages: train, evaluate, transfer, pretrain, inspect.

Workflows return typed results and write files; they never print. Only ``nertool.cli`` imports them.
"""
