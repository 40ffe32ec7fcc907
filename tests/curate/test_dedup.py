"""Pure de-duplication parts: normalisation, fingerprints, MinHash signatures and LSH band keys."""

from __future__ import annotations

import numpy as np
from datasketch import MinHash
from hypothesis import given
from hypothesis import strategies as st

from dynosaur.curate import dedup
from dynosaur.curate.dedup import NearDuplicateIndex
from dynosaur.store.tasks import fingerprint_key, stored_fingerprints
from tests.curate.factory import StoreFactory


def test_normalisation_ignores_case_spacing_final_punctuation_and_label_suffix() -> None:
    a = dedup.normalize_instruction("Classify the  Review.\n")
    b = dedup.normalize_instruction("classify the review! Answers must be one of good, bad.")
    assert a == b == "classify the review"


def test_fingerprint_ignores_input_order_but_not_fields_config_or_dataset() -> None:
    base = dedup.fingerprint("org/ds", "en", "Translate it.", ["a", "b"], "c")
    assert base == dedup.fingerprint("org/ds", "en", "translate it", ["b", "a"], "c")
    assert base != dedup.fingerprint("org/ds", "fr", "Translate it.", ["a", "b"], "c")
    assert base != dedup.fingerprint("org/other", "en", "Translate it.", ["a", "b"], "c")
    assert base != dedup.fingerprint("org/ds", "en", "Translate it.", ["a"], "c")
    assert base != dedup.fingerprint("org/ds", "en", "Translate it.", ["a", "b"], "d")


def test_signature_equals_datasketch_minhash() -> None:
    shingles = dedup.shingles("Given the premise and the hypothesis, decide if it follows.")
    reference = MinHash(num_perm=dedup.NUM_PERM, seed=dedup._SEED, scheme="affine32")
    reference.update_batch([s.encode() for s in shingles])
    assert np.array_equal(dedup.minhash(shingles), reference.hashvalues)


def test_identical_shingles_share_every_band_and_scopes_never_share_keys() -> None:
    def keys_of(config: str, text: str) -> list[int]:
        return dedup.lsh_keys("org/ds", config, text, ["article"], "summary")

    keys = keys_of("default", "Summarise the article.")
    assert keys == keys_of("default", "summarise  the article")
    other_config = keys_of("other", "Summarise the article.")
    assert not set(keys) & set(other_config)
    assert len(keys) == dedup.BANDS


def test_rewordings_collide_in_some_band_and_unrelated_instructions_do_not() -> None:
    scope = ("org/ds", "default", ["question", "context"], "answer")
    long = "Given the context paragraph and a question about it, extract the answer span"
    near = long + " from the paragraph"
    far = "Write a short poem about the sea using the context as inspiration"
    k_long, k_near, k_far = (
        dedup.lsh_keys(scope[0], scope[1], text, scope[2], scope[3]) for text in (long, near, far)
    )
    assert dedup.jaccard(dedup.shingles(long), dedup.shingles(near)) >= dedup.NEAR_THRESHOLD
    assert set(k_long) & set(k_near)
    assert not set(k_long) & set(k_far)


def test_near_duplicate_index_verifies_candidates_with_exact_jaccard() -> None:
    text = "Given the context paragraph and a question about it, extract the answer span"
    keys = dedup.lsh_keys("d", "c", text, ["q"], "a")
    index = NearDuplicateIndex({keys[0]: [(7, text + " please")]})
    match = index.find(keys, dedup.shingles(text))
    assert match is not None and match[0] == 7 and match[1] >= dedup.NEAR_THRESHOLD
    # a candidate sharing a key but not similar enough is not a match
    unrelated = NearDuplicateIndex({keys[0]: [(8, "Something else entirely, about cats")]})
    assert unrelated.find(keys, dedup.shingles(text)) is None


def test_one_word_and_empty_instructions_have_shingles() -> None:
    assert dedup.shingles("Summarize.") == frozenset({"summarize"})
    assert dedup.shingles("...") == frozenset()
    assert dedup.jaccard(frozenset(), frozenset()) == 1.0


@given(st.text(max_size=200))
def test_normalisation_is_idempotent(text: str) -> None:
    once = dedup.normalize_instruction(text)
    assert dedup.normalize_instruction(once) == once


def test_fingerprint_key_is_what_postgres_computes_and_lookups_verify_the_whole_fingerprint(
    factory: StoreFactory,
) -> None:
    config = factory.sentiment_config()
    factory.task(config, "Classify the review.", ["text"], "label")
    factory.curate("day1")
    stored = factory.rows("SELECT id, fingerprint, fingerprint_key FROM task")[0]
    assert stored.fingerprint_key == fingerprint_key(stored.fingerprint)
    with factory.engine.connect() as conn:
        assert stored_fingerprints(conn, [stored.fingerprint]) == {stored.fingerprint: stored.id}
        # Same first 64 bits, another fingerprint: a key collision is not a duplicate.
        twin = stored.fingerprint[:16] + "0" * 48
        assert twin != stored.fingerprint and stored_fingerprints(conn, [twin]) == {}
