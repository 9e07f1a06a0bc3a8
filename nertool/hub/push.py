"""Upload a model folder to the Hugging Face Hub: create the repository, then one commit of the folder.

Only the model folder goes up (weights, tokenizer, configuration, the card): never the run's
checkpoint, logs or data manifest, nor the temporary files of an interrupted save. Every failure
the Hub can give (not logged in, no right to the namespace, a bad repository id, no network)
is a ``HubError`` with one line saying what to do. ``api`` is a seam: tests pass a stub of
``huggingface_hub.HfApi``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.errors import NertoolError

LOGIN_ADVICE = "run `hf auth login` (or `huggingface-cli login`) or set HF_TOKEN"
# Temporary files a save may leave (``.README.md.xyz.part``, ``.model.partial``): never uploaded.
COMMIT_MESSAGE = "Upload a model trained with nertool"
IGNORED = [".*", "**/.*", "*.part", "*.partial", "*.old"]


class HubError(NertoolError):
    """The Hub refused or could not be reached; the message says what to do."""


@dataclass(frozen=True)
class HubRepo:
    """A repository on the Hub that exists (``open_repo``), and the client that made it."""

    api: Any
    repo_id: str


@dataclass(frozen=True)
class PushResult:
    """Where a model went: the repository id (with its namespace) and its address."""

    repo_id: str
    url: str
    folder: Path


def check_login(token: str | None = None) -> str:
    """The Hub token to push with; none (no login, no HF_TOKEN) is a ``HubError`` before any work."""
    from huggingface_hub import get_token

    found = token or get_token()
    if not found:
        raise HubError(f"not logged in to the Hugging Face Hub; {LOGIN_ADVICE}")
    return found


def open_repo(repo_id: str, *, private: bool = False, api: Any = None, token: str | None = None) -> HubRepo:
    """Log in and create ``repo_id`` (kept if it exists): the repository to upload to.

    The id the Hub returns has its namespace (``name`` becomes ``user/name``), so a card written
    after this names the repository a reader will load.
    """
    token = check_login(token)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with hub_errors(repo_id):
        url = api.create_repo(repo_id, private=private, exist_ok=True)
    return HubRepo(api, str(getattr(url, "repo_id", None) or repo_id))


def upload_model(repo: HubRepo, folder: Path, *, message: str = COMMIT_MESSAGE) -> PushResult:
    """One commit of ``folder`` (its hidden and temporary files left out) to the repository."""
    with hub_errors(repo.repo_id):
        repo.api.upload_folder(
            repo_id=repo.repo_id, folder_path=str(folder), commit_message=message, ignore_patterns=IGNORED
        )
    return PushResult(repo.repo_id, f"https://huggingface.co/{repo.repo_id}", folder)


@contextmanager
def hub_errors(repo_id: str) -> Iterator[None]:
    """What the Hub refuses becomes a ``HubError``; anything else is not the Hub's and propagates."""
    try:
        yield
    except Exception as error:
        message = hub_message(error, repo_id)
        if message is None:
            raise
        raise HubError(message) from None


def hub_message(error: Exception, repo_id: str) -> str | None:
    """One line for what the Hub said; None for an error that is not the Hub's (a bug)."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    if isinstance(error, HFValidationError):
        return f"{repo_id!r} is not a Hub repository id ({error}); write name or namespace/name"
    if isinstance(error, HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        if status in (401, 403):
            return (
                f"the Hub refused {repo_id} (HTTP {status}): the token is invalid or may not write "
                f"to that namespace; {LOGIN_ADVICE} with a token that has write access"
            )
        return f"the Hub refused {repo_id}: {' '.join(str(error).split())}"
    if _is_network_error(error):
        return f"cannot reach the Hugging Face Hub ({type(error).__name__}: {error}); check the network"
    return None


def _is_network_error(error: Exception) -> bool:
    """No answer from the Hub: the HTTP client's transport errors (and the built-in ones)."""
    from huggingface_hub.errors import HTTPError  # the client's base error (httpx's, in hub >= 1.0)

    return isinstance(error, (HTTPError, ConnectionError, TimeoutError))
