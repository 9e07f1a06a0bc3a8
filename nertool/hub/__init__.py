"""Sharing a model: its card (``RUN/model/README.md``) and its upload to the Hugging Face Hub.

``card`` builds the card from ``CardFacts`` (pure), ``sections`` writes its text, ``run_card``
gathers the facts from a run folder and writes the card, ``push`` uploads a model folder.
"""

from nertool._lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "CardFacts": "card",
        "card_text": "card",
        "write_run_card": "run_card",
        "open_repo": "push",
        "upload_model": "push",
        "check_login": "push",
        "HubError": "push",
    },
)
