"""The language of each config, not only of the dataset.

A card declares languages for the whole dataset; a multilingual dataset (OSCAR, MLSUM, GEM)
holds one language per config, and the collection wants the allowed ones (English by default).
Evidence, strongest first:

1. ``card_config``: an old card's per-config language mapping (``language: {en: [en]}``);
2. ``translation``: a ``Translation`` feature names its languages (``de``/``en``);
3. ``config_name``: the config's name holds a language the card declares (``mlsum_de``, ``en``)
   or a language's English name (``wiki_lingua`` ``arabic``);
4. ``card``: the card declares only allowed languages (or one language): every config has them;
5. ``detected``: otherwise a language identifier (``py3langid``, its model ships in the
   package) runs on each text field of the sample rows, after they are fetched.

``code`` is its own case: a card that declares ``code`` holds source code, allowed by default
(``allow_code``). ``unknown`` (and ``und``, ``other``...) declares nothing. A config whose rows
hold no text to identify (numbers, dates, ids: a time series) gets ``no_text``.

Pure functions except :func:`identifier`, which loads the model once per process.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dynosaur.hub.card import CardInfo

CODE = "code"
# Card language values that declare nothing.
UNDECLARED = frozenset({"", "unknown", "und", "other", "multilingual", "n/a", "none", "mul"})
# English names of languages, as config names spell them (wiki_lingua, xtreme, ...).
LANGUAGE_NAMES = {
    "english": "en", "arabic": "ar", "chinese": "zh", "czech": "cs", "dutch": "nl",
    "french": "fr", "german": "de", "hindi": "hi", "indonesian": "id", "italian": "it",
    "japanese": "ja", "korean": "ko", "portuguese": "pt", "russian": "ru", "spanish": "es",
    "thai": "th", "turkish": "tr", "vietnamese": "vi", "polish": "pl", "swedish": "sv",
    "danish": "da", "finnish": "fi", "norwegian": "no", "greek": "el", "hebrew": "he",
    "persian": "fa", "farsi": "fa", "bengali": "bn", "urdu": "ur", "tamil": "ta",
    "telugu": "te", "marathi": "mr", "gujarati": "gu", "swahili": "sw", "romanian": "ro",
    "hungarian": "hu", "ukrainian": "uk", "bulgarian": "bg", "catalan": "ca", "basque": "eu",
    "malay": "ms", "tagalog": "tl", "filipino": "tl", "amharic": "am", "yoruba": "yo",
    "hausa": "ha", "igbo": "ig", "zulu": "zu", "afrikaans": "af", "estonian": "et",
    "latvian": "lv", "lithuanian": "lt", "slovak": "sk", "slovenian": "sl", "croatian": "hr",
    "serbian": "sr", "icelandic": "is", "irish": "ga", "welsh": "cy", "nepali": "ne",
    "punjabi": "pa", "kannada": "kn", "malayalam": "ml", "burmese": "my", "khmer": "km",
}  # fmt: skip
_TOKEN = re.compile(r"[a-z]+")
# Spellings of language codes seen on cards, mapped to the ISO 639-1 code settings use.
_LANGUAGE_ALIASES = {"english": "en", "eng": "en"}

# Detection: a field needs this many letters (in words without digits: ids, hashes and
# numbers say nothing) to be identified; a language counts when it holds this share of the
# config's identified letters (else only the dominant one counts).
_MIN_FIELD_LETTERS = 40
_MIN_SHARE = 0.25
_MAX_FIELD_CHARS = 3000  # text read per field
_MAX_ROWS = 50
_WORD = re.compile(r"[^\W\d_]{2,}")
_URL = re.compile(r"https?://\S+|\S+@\S+")
_NO_LANGUAGE = frozenset({"zxx"})  # the identifier's "no linguistic content"


def language_code(value: str) -> str:
    """``en`` for ``en``, ``en-US``, ``en_GB``, ``eng``, ``English``."""
    code = value.strip().lower().replace("_", "-").split("-")[0]
    return _LANGUAGE_ALIASES.get(code, code)


@dataclass(frozen=True)
class ConfigLanguage:
    """What is known of a config's language before (or after) its rows are read."""

    codes: tuple[str, ...] = ()  # ISO 639-1 codes, or ``code``; empty: not known
    source: str | None = None  # card_config | translation | config_name | card | detected

    @property
    def known(self) -> bool:
        return bool(self.codes)


def declared(values: Iterable[str]) -> list[str]:
    """Language codes a card declares (``unknown`` and the like declare nothing)."""
    out: list[str] = []
    for value in values:
        if value.strip().lower() in UNDECLARED:
            continue
        code = language_code(value)
        if code and code not in UNDECLARED and code not in out:
            out.append(code)
    return out


def allowed_set(languages: Sequence[str]) -> frozenset[str]:
    """The allowed codes of the ``languages`` setting (empty: every language)."""
    return frozenset(language_code(lang) for lang in languages if lang.strip())


def is_allowed(codes: Iterable[str], allowed: frozenset[str], *, allow_code: bool) -> bool:
    """Whether a config with these languages enters: one allowed language is enough (a de-en
    translation pair is kept for English), ``code`` counts as allowed when ``allow_code``."""
    codes = set(codes)
    if not allowed:
        return True
    if CODE in codes and allow_code:
        return True
    return bool(codes & allowed)


def before_rows(name: str, card: CardInfo, info: Any, allowed: frozenset[str]) -> ConfigLanguage:
    """A config's language from the card, its features and its name (no request needed)."""
    per_config = card.config_languages.get(name)
    if per_config:
        codes = declared(per_config)
        if codes:
            return ConfigLanguage(tuple(codes), "card_config")
    translation = translation_languages(info)
    if translation:
        return ConfigLanguage(translation, "translation")
    card_codes = declared(card.languages)
    from_name = name_languages(name, card_codes)
    if from_name:
        return ConfigLanguage(from_name, "config_name")
    others = [c for c in card_codes if c != CODE]
    if card_codes and len(others) <= 1:
        # One language (or code, or code and one language) for the whole dataset: every
        # config has it. A card that lists code among many languages is not a code dataset.
        return ConfigLanguage(tuple(card_codes), "card")
    if allowed and others and set(others) <= allowed:
        return ConfigLanguage(tuple(card_codes), "card")  # only allowed languages
    return ConfigLanguage()


def name_languages(name: str, card_codes: Sequence[str]) -> tuple[str, ...]:
    """Languages a config's name states: tokens the card declares as languages, and English
    names of languages (a bare ``de`` in a name counts only when the card declares ``de``:
    ``as``, ``or``, ``it`` are words too)."""
    declared_codes = set(card_codes) - {CODE}
    found: list[str] = []
    for token in _TOKEN.findall(name.lower()):
        code = LANGUAGE_NAMES.get(token) or (token if token in declared_codes else None)
        if code and code not in found:
            found.append(code)
    return tuple(found)


def translation_languages(info: Any) -> tuple[str, ...]:
    """The languages of a config's ``Translation`` features (from the viewer's info)."""
    features = info.get("features") if isinstance(info, Mapping) else None
    if not isinstance(features, Mapping):
        return ()
    found: list[str] = []
    for feature in features.values():
        if isinstance(feature, Mapping) and feature.get("_type") in (
            "Translation",
            "TranslationVariableLanguages",
        ):
            for lang in feature.get("languages") or []:
                code = language_code(str(lang))
                if code and code not in found:
                    found.append(code)
    return tuple(found)


# --- detection on the sample rows -------------------------------------------------------------


_LOCK = threading.Lock()
_IDENTIFIER: Any = None


def identifier() -> Any:
    """py3langid's identifier with normalised probabilities (loaded once: about a second)."""
    global _IDENTIFIER
    with _LOCK:
        if _IDENTIFIER is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _IDENTIFIER = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _IDENTIFIER


def _texts(value: Any, out: list[str], depth: int = 0) -> None:
    """Strings inside a row value (lists and dicts walked a little)."""
    if isinstance(value, str):
        out.append(value[:_MAX_FIELD_CHARS])
    elif depth < 3 and isinstance(value, list):
        for item in value[:20]:
            _texts(item, out, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for item in list(value.values())[:20]:
            _texts(item, out, depth + 1)


def _field_text(rows: Sequence[Mapping[str, Any]], name: str) -> str:
    """The words of one field over the rows (no digits, no links), up to a few thousand chars."""
    words: list[str] = []
    size = 0
    for row in rows[:_MAX_ROWS]:
        texts: list[str] = []
        _texts(row.get(name), texts)
        for word in _WORD.findall(_URL.sub(" ", " ".join(texts))):
            words.append(word)
            size += len(word) + 1
            if size >= _MAX_FIELD_CHARS:
                return " ".join(words)
    return " ".join(words)


def detect(rows: Sequence[Mapping[str, Any]], field_names: Sequence[str]) -> tuple[str, ...]:
    """Languages of the sample rows, most text first: each text field's words are identified
    together; a language counts when its fields hold at least a quarter of the identified
    letters (an English label beside German sentences is not English), else only the dominant
    one. Empty when no field holds enough words (numbers, ids, dates: a time series)."""
    weights: Counter[str] = Counter()
    for name in field_names:
        text = _field_text(rows, name)
        letters = len(text) - text.count(" ")
        if letters < _MIN_FIELD_LETTERS:
            continue
        lang, _ = identifier().classify(text)
        if lang not in _NO_LANGUAGE:
            weights[lang] += letters
    total = sum(weights.values())
    if not total:
        return ()
    ranked = weights.most_common()
    return tuple(lang for lang, w in ranked if w >= _MIN_SHARE * total) or (ranked[0][0],)


def after_rows(
    known: ConfigLanguage, rows: Sequence[Mapping[str, Any]], field_names: Sequence[str]
) -> ConfigLanguage:
    """The config's language once its rows are read: what was known, else detected."""
    if known.known:
        return known
    found = detect(rows, field_names)
    return ConfigLanguage(found, "detected") if found else ConfigLanguage((), None)
