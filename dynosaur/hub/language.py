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

# Detection: text shorter than this (letters) says nothing; a language needs this share of the
# identified text of a field to count, and fields need this many letters in all.
_MIN_ROW_LETTERS = 12
_MIN_FIELD_LETTERS = 60
_MIN_SHARE = 0.3
_MAX_ROWS = 30  # rows read per field: enough for a vote, cheap
_MAX_CHARS = 400  # characters of one value read
_URL = re.compile(r"https?://\S+|\S+@\S+")


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


def before_rows(
    name: str, card: CardInfo, info: Any, allowed: frozenset[str], *, allow_code: bool
) -> ConfigLanguage:
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
    if card_codes:
        if CODE in card_codes and allow_code:
            return ConfigLanguage(tuple(card_codes), "card")
        others = [c for c in card_codes if c != CODE]
        # One language for the whole dataset, or only allowed ones: every config has them.
        if len(others) == 1 or (allowed and set(others) <= allowed):
            return ConfigLanguage(tuple(card_codes), "card")
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
        out.append(value[:_MAX_CHARS])
    elif depth < 3 and isinstance(value, list):
        for item in value[:20]:
            _texts(item, out, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for item in list(value.values())[:20]:
            _texts(item, out, depth + 1)


def _letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


def detect(rows: Sequence[Mapping[str, Any]], field_names: Sequence[str]) -> tuple[str, ...]:
    """Languages of the text fields of the sample rows, most text first: per field, a vote of
    the identifier over its rows; a language counts when it has at least 30% of a field's
    identified text. Empty when no field holds enough text (numbers, ids, dates)."""
    weights: Counter[str] = Counter()
    ident = None
    for name in field_names:
        votes: Counter[str] = Counter()
        letters_in_field = 0
        for row in rows[:_MAX_ROWS]:
            texts: list[str] = []
            _texts(row.get(name), texts)
            text = _URL.sub(" ", " ".join(texts))
            letters = _letters(text)
            if letters < _MIN_ROW_LETTERS:
                continue
            ident = ident or identifier()
            lang, _ = ident.classify(text)
            votes[lang] += letters
            letters_in_field += letters
        if letters_in_field < _MIN_FIELD_LETTERS:
            continue
        for lang, weight in votes.items():
            if weight >= _MIN_SHARE * letters_in_field:
                weights[lang] += weight
    return tuple(lang for lang, _ in weights.most_common())


def after_rows(
    known: ConfigLanguage, rows: Sequence[Mapping[str, Any]], field_names: Sequence[str]
) -> ConfigLanguage:
    """The config's language once its rows are read: what was known, else detected."""
    if known.known:
        return known
    found = detect(rows, field_names)
    return ConfigLanguage(found, "detected") if found else ConfigLanguage((), None)


def rank(
    names: Sequence[str], languages: Mapping[str, ConfigLanguage], allowed: frozenset[str]
) -> list[str]:
    """Configs to try, in order: known allowed first, then unknown ones (viewer order kept
    inside each group). Known foreign configs are not in the list."""
    if not allowed:
        return list(names)
    known = [n for n in names if languages[n].known]
    unknown = [n for n in names if not languages[n].known]
    return known + unknown
