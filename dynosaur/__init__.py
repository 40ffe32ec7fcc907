"""Dynosaur: grows an instruction-tuning collection from newly published Hugging Face datasets."""

from dynosaur.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
__version__ = "0.1.0"
