"""Offline stand-ins for the Hugging Face Hub (with its Dataset Viewer) and an OpenAI-compatible
LLM, as real HTTP servers on loopback: production code talks to them through its normal clients.

- :mod:`.hub`: ``HubEmulator`` and the Hub API; :mod:`.viewer`: the Dataset Viewer;
  :mod:`.faults`: latency, injected 429/5xx, the in-flight gauge; :mod:`.repos`: the datasets at
  the simulated now; :mod:`.snapshot`: the snapshot folder they serve.
- :mod:`.llm`: ``LLMEmulator``; :mod:`.tasks`: the tasks it answers with.
- :mod:`.options`: ``HubOptions`` and ``LLMOptions``, the one definition of their knobs.

Both start in a background thread (``with``) or in the foreground (``dynosaur emulate hub|llm``).
"""

from __future__ import annotations

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.emulators.options import HubOptions, LLMOptions

__all__ = ["HubEmulator", "HubOptions", "LLMEmulator", "LLMOptions"]
