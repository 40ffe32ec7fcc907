"""De-duplication of tasks: normalised instructions, exact fingerprints, MinHash LSH.

Scope (decided from the original pipeline and the reference tasks): the unit of "the same dataset"
is one **config** of a dataset (``dataset_id`` + ``config_name``), the original's ``task_name``.
The original kept identical instructions on different configs (34 of the 492 reference tasks are
the same task on another config of the same dataset: different rows, different instances) and on
different datasets, so neither check is global:

* **exact** (``duplicate_in_store``): same dataset id, config name, normalised instruction, input
  field set and output field. Fingerprint = SHA-256 of those, unique among valid tasks (0001).
* **near** (``near_duplicate_in_store``): same dataset id, config name, input field set and output
  field (so the two tasks would yield the *same* input/output pairs), and instructions whose word
  bigram sets have Jaccard similarity >= 0.8 (:data:`NEAR_THRESHOLD`). Candidates come from
  MinHash LSH band keys kept in Postgres (``task_lsh``, migration 0003), so a batch costs index
  probes in proportion to its own size; every candidate is verified by the exact Jaccard of the two
  instructions (:class:`NearDuplicateIndex`). The original removed only identical tasks, so by
  default a near-duplicate stays valid, flagged (a note on the task, the ``near_duplicates``
  figure of the step); ``DYNOSAUR_NEAR_DUPLICATES=reject`` rejects it. A task whose input or
  output fields differ from its match is never a near-duplicate: the fields are in the scope.

Exact lookups probe ``task.fingerprint_key`` (the fingerprint's first 64 bits, migration 0090)
and verify the whole fingerprint of what they find.

The dataset revision is not part of either key: a new revision of a dataset proposing the same task
again adds nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from datasketch import MinHash
from datasketch.hashfunc import sha1_hash32

# Word-bigram Jaccard at or above which two tasks in the same scope are near-duplicates.
NEAR_THRESHOLD = 0.8
# LSH: BANDS bands of ROWS MinHash values. P(candidate) = 1 - (1 - J**ROWS)**BANDS: 0.997 at
# J = 0.8, 0.66 at J = 0.5; false candidates only cost one exact Jaccard each.
BANDS = 8
ROWS = 3
NUM_PERM = BANDS * ROWS
_SEED = 20230

_LABEL_SUFFIX = re.compile(r"\s*answers\s+must\s+be\s+one\s+of\b.*\Z", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_TRAILING = re.compile(r"[\s.!?;:,]+\Z")


def strip_label_suffix(instruction: str) -> str:
    """The instruction without a trailing "Answers must be one of ..." (the builder adds one)."""
    return _LABEL_SUFFIX.sub("", instruction).rstrip()


def normalize_instruction(instruction: str) -> str:
    """Case-, space- and punctuation-insensitive form used to compare instructions exactly."""
    text = unicodedata.normalize("NFKC", strip_label_suffix(instruction)).casefold()
    text = _SPACES.sub(" ", text).strip()
    return _TRAILING.sub("", text)


def scope_key(
    dataset_id: str, config_name: str, input_fields: Sequence[str], output_field: str
) -> str:
    """Identity of "the same data": config plus the field set. Near-duplicates share it."""
    return json.dumps([dataset_id, config_name, sorted(set(input_fields)), output_field])


def fingerprint(
    dataset_id: str,
    config_name: str,
    instruction: str,
    input_fields: Sequence[str],
    output_field: str,
) -> str:
    """Exact identity of a task: its scope plus the normalised instruction (hex SHA-256)."""
    scope = scope_key(dataset_id, config_name, input_fields, output_field)
    payload = json.dumps([scope, normalize_instruction(instruction)])
    return hashlib.sha256(payload.encode()).hexdigest()


def shingles(instruction: str) -> frozenset[str]:
    """Word bigrams of the normalised instruction (the single word for one-word instructions)."""
    words = _WORD.findall(normalize_instruction(instruction))
    if len(words) < 2:
        return frozenset(words)
    return frozenset(f"{a} {b}" for a, b in itertools.pairwise(words))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Exact Jaccard similarity of two shingle sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


_SCHEME = "affine32"
_PERM_A, _PERM_B = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME).permutations
_EMPTY = np.full(NUM_PERM, np.iinfo(np.uint32).max, dtype=np.uint32)


def minhash(shingle_set: Iterable[str]) -> np.ndarray:
    """MinHash signature (NUM_PERM uint32 values) of a shingle set.

    Exactly datasketch's ``MinHash(num_perm=NUM_PERM, seed=_SEED, scheme="affine32")`` after
    ``update_batch`` (a test checks it), computed in one vectorised step instead of through a
    MinHash object, which is several times slower per task.
    """
    hashes = [sha1_hash32(s.encode()) for s in shingle_set]
    if not hashes:
        return _EMPTY.copy()
    mixed = _fmix32(np.asarray(hashes, dtype=np.uint32))
    return (mixed[:, None] * _PERM_A + _PERM_B).min(axis=0)


def _fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (datasketch's affine32 pre-mix)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


_SALTS = [band.to_bytes(16, "little") for band in range(BANDS)]


def band_keys(scope: str, signature: np.ndarray) -> list[int]:
    """One signed 64-bit key per LSH band; the scope is hashed in, so keys never cross scopes."""
    raw = signature.astype("<u4", copy=False).tobytes()
    width = 4 * ROWS
    scope_key_bytes = hashlib.blake2b(scope.encode(), digest_size=32).digest()
    keys = []
    for band in range(BANDS):
        part = raw[band * width : (band + 1) * width]
        digest = hashlib.blake2b(part, digest_size=8, key=scope_key_bytes, salt=_SALTS[band])
        keys.append(int.from_bytes(digest.digest(), "little", signed=True))
    return keys


def lsh_keys(
    dataset_id: str,
    config_name: str,
    instruction: str,
    input_fields: Sequence[str],
    output_field: str,
) -> list[int]:
    """The LSH band keys of a task (what ``task_lsh`` stores and what a check probes)."""
    scope = scope_key(dataset_id, config_name, input_fields, output_field)
    return band_keys(scope, minhash(shingles(instruction)))


class NearDuplicateIndex:
    """LSH band key -> (task id, shingles) of valid tasks: the store's candidates for a chunk plus
    the tasks accepted so far in it. ``find`` verifies candidates with the exact Jaccard."""

    def __init__(self, stored: dict[int, list[tuple[int, str]]]) -> None:
        self._by_key: dict[int, list[tuple[int, frozenset[str]]]] = defaultdict(list)
        cache: dict[int, frozenset[str]] = {}
        for key, entries in stored.items():
            for task_id, instruction in entries:
                if task_id not in cache:
                    cache[task_id] = shingles(instruction)
                self._by_key[key].append((task_id, cache[task_id]))

    def add(self, task_id: int, keys: Sequence[int], shingle_set: frozenset[str]) -> None:
        """Index a task accepted in this chunk."""
        for key in keys:
            self._by_key[key].append((task_id, shingle_set))

    def find(self, keys: Sequence[int], shingle_set: frozenset[str]) -> tuple[int, float] | None:
        """The most similar indexed task at or above the threshold, with its similarity."""
        best: tuple[int, float] | None = None
        for key in keys:
            for task_id, other in self._by_key.get(key, ()):
                similarity = jaccard(shingle_set, other)
                if similarity >= NEAR_THRESHOLD and (best is None or similarity > best[1]):
                    best = (task_id, similarity)
        return best
