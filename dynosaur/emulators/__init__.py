"""Offline stand-ins for the Hugging Face Hub (with its Dataset Viewer) and an OpenAI-compatible
LLM, as real HTTP servers on loopback: production code talks to them through its normal clients.

``HubEmulator`` lives in :mod:`dynosaur.emulators.hub`, ``LLMEmulator`` in
:mod:`dynosaur.emulators.llm`; both start in a background thread (``with``) or in the foreground
(``dynosaur emulate hub|llm``).
"""

from __future__ import annotations

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator

__all__ = ["HubEmulator", "LLMEmulator"]
