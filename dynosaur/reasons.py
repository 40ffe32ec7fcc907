"""Every reason code the pipeline stores, with the stage that sets it and what it means.

Reasons are data: ``dynosaur db upgrade`` copies this catalogue into the ``reason`` table, and
every ``reason`` column references it, so an unknown code cannot be stored and SQL can
join a code to its description. Add a member here before storing a new code.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """Where in the data path a reason is set."""

    DISCOVER = "discover"
    COLLECT = "collect"
    GENERATE = "generate"
    CURATE = "curate"
    PUBLISH = "publish"
    RETRACT = "retract"


class Reason(StrEnum):
    """Machine-readable reason codes (value = the code stored in SQL)."""

    # discover
    INVALID_ID = "invalid_id"
    # collect: dataset level
    NO_LICENSE = "no_license"
    LANGUAGE_NOT_ALLOWED = "language_not_allowed"
    GATED = "gated"
    PRIVATE = "private"
    NOT_FOUND = "not_found"
    CARD_MISSING = "card_missing"
    CARD_UNPARSEABLE = "card_unparseable"
    CARD_TOO_LARGE = "card_too_large"
    VIEWER_NOT_READY = "viewer_not_ready"
    VIEWER_GAVE_UP = "viewer_gave_up"
    HUB_ERROR = "hub_error"
    RATE_LIMITED = "rate_limited"
    NO_CONFIGS = "no_configs"
    LICENSE_NOT_ALLOWED = "license_not_allowed"
    NO_USABLE_CONFIG = "no_usable_config"
    # collect: the Dataset Viewer's permanent answers, one code per family of its error codes
    VIEWER_DISABLED = "viewer_disabled"
    VIEWER_SCRIPT = "viewer_script"
    VIEWER_BLOCKED = "viewer_blocked"
    VIEWER_TOO_LARGE = "viewer_too_large"
    VIEWER_UNSUPPORTED_FEATURES = "viewer_unsupported_features"
    VIEWER_NOT_SUPPORTED = "viewer_not_supported"
    VIEWER_DATASET_ERROR = "viewer_dataset_error"
    VIEWER_STALE_REVISION = "viewer_stale_revision"
    # collect: config level
    CONFIG_CAP = "config_cap"
    TOO_FEW_FIELDS = "too_few_fields"
    MEDIA_FIELD = "media_field"
    NO_ROWS = "no_rows"
    ROW_VALUES_TRUNCATED = "row_values_truncated"
    TEXT_CLEANED = "text_cleaned"
    NO_TEXT = "no_text"
    # generate
    BUDGET_EXHAUSTED = "budget_exhausted"
    LLM_AUTH_ERROR = "llm_auth_error"
    LLM_BAD_REQUEST = "llm_bad_request"
    LLM_RATE_LIMITED = "llm_rate_limited"
    LLM_SERVER_ERROR = "llm_server_error"
    LLM_TIMEOUT = "llm_timeout"
    LLM_CONNECTION_ERROR = "llm_connection_error"
    LLM_ERROR = "llm_error"
    RESPONSE_TRUNCATED = "response_truncated"
    NO_TASKS = "no_tasks"
    LLM_QUOTA_EXHAUSTED = "llm_quota_exhausted"
    LLM_UNUSABLE_ANSWER = "llm_unusable_answer"
    # curate: task filters, in the order they are applied
    UNPARSEABLE = "unparseable"
    EMPTY_OUTPUT_FIELD = "empty_output_field"
    MULTIPLE_OUTPUT_FIELDS = "multiple_output_fields"
    UNKNOWN_FIELD = "unknown_field"
    INPUT_IS_OUTPUT = "input_is_output"
    DUPLICATE_INSTRUCTION = "duplicate_instruction"
    DUPLICATE_IN_STORE = "duplicate_in_store"
    NEAR_DUPLICATE_IN_STORE = "near_duplicate_in_store"
    ANSWER_IN_INPUT = "answer_in_input"
    SUSPICIOUS_CONTENT = "suspicious_content"
    # curate: instance construction
    NON_SCALAR_OUTPUT = "non_scalar_output"
    IMBALANCED_LABELS = "imbalanced_labels"
    NO_INSTANCES = "no_instances"
    VALUE_TRUNCATED = "value_truncated"
    # publish
    EMPTY_BATCH = "empty_batch"
    RUN_FAILED = "run_failed"
    # runs (issue 12)
    SERVICE_UNAVAILABLE = "service_unavailable"
    RUN_ABANDONED = "run_abandoned"
    # retract: why a source's instances were withdrawn from later versions
    SOURCE_WITHDRAWN = "source_withdrawn"
    SOURCE_GATED = "source_gated"
    LICENSE_WITHDRAWN = "license_withdrawn"
    RETRACTED_BY_HAND = "retracted_by_hand"
    # benchmark decontamination (collect, curate, retract)
    BENCHMARK_SOURCE = "benchmark_source"
    BENCHMARK_OVERLAP = "benchmark_overlap"


_CATALOGUE: dict[Reason, tuple[Stage, str]] = {
    Reason.INVALID_ID: (Stage.DISCOVER, "The dataset id is not a valid Hub repo id."),
    Reason.NO_LICENSE: (Stage.COLLECT, "The card declares no license."),
    Reason.LANGUAGE_NOT_ALLOWED: (
        Stage.COLLECT,
        "None of the card's or the configuration's languages is allowed.",
    ),
    Reason.GATED: (Stage.COLLECT, "The dataset is gated: its files need an accepted agreement."),
    Reason.PRIVATE: (Stage.COLLECT, "The dataset is private."),
    Reason.NOT_FOUND: (Stage.COLLECT, "The Hub does not know this dataset (deleted or renamed)."),
    Reason.CARD_MISSING: (Stage.COLLECT, "The dataset has no README.md card."),
    Reason.CARD_UNPARSEABLE: (
        Stage.COLLECT,
        "The card's YAML header could not be parsed; what could be read was kept.",
    ),
    Reason.CARD_TOO_LARGE: (Stage.COLLECT, "The card is larger than the limit; it was cut."),
    Reason.VIEWER_NOT_READY: (
        Stage.COLLECT,
        "The Dataset Viewer has not processed the dataset yet; a later run retries it.",
    ),
    Reason.VIEWER_GAVE_UP: (
        Stage.COLLECT,
        "The Dataset Viewer was still not ready after the maximum number of attempts.",
    ),
    Reason.HUB_ERROR: (Stage.COLLECT, "The Hub answered with an error after retries."),
    Reason.RATE_LIMITED: (Stage.COLLECT, "The Hub kept rate-limiting the requests (HTTP 429)."),
    Reason.NO_CONFIGS: (Stage.COLLECT, "The dataset exposes no configuration with rows."),
    Reason.NO_USABLE_CONFIG: (Stage.COLLECT, "Every configuration of the dataset was skipped."),
    Reason.VIEWER_DISABLED: (
        Stage.COLLECT,
        "The Dataset Viewer is disabled for the dataset (viewer: false in its card, or by Hub).",
    ),
    Reason.VIEWER_SCRIPT: (
        Stage.COLLECT,
        "The dataset needs a loading script or a manual download; the viewer does not serve it.",
    ),
    Reason.VIEWER_BLOCKED: (
        Stage.COLLECT,
        "The viewer refuses the dataset: on its block list or tagged not-for-all-audiences.",
    ),
    Reason.VIEWER_TOO_LARGE: (
        Stage.COLLECT,
        "The dataset exceeds the viewer's limits (configs, splits, files, columns or size).",
    ),
    Reason.VIEWER_UNSUPPORTED_FEATURES: (
        Stage.COLLECT,
        "None of the dataset's features is of a type the viewer supports.",
    ),
    Reason.VIEWER_NOT_SUPPORTED: (
        Stage.COLLECT,
        "The viewer does not support the dataset (HTTP 501, another error code).",
    ),
    Reason.VIEWER_DATASET_ERROR: (
        Stage.COLLECT,
        "The viewer could not process this revision of the dataset (empty, unreadable files...).",
    ),
    Reason.VIEWER_STALE_REVISION: (
        Stage.COLLECT,
        "The viewer's answer is for an older revision than the one discovered; retried later.",
    ),
    Reason.CONFIG_CAP: (Stage.COLLECT, "Beyond the cap on configurations per dataset."),
    Reason.LICENSE_NOT_ALLOWED: (
        Stage.COLLECT,
        "The license's class (e.g. no-derivatives, unknown terms) is not one the settings take.",
    ),
    Reason.NO_TEXT: (
        Stage.COLLECT,
        "No language is declared and the sample rows hold no text to identify one in.",
    ),
    Reason.TOO_FEW_FIELDS: (Stage.COLLECT, "The rows have at most one field."),
    Reason.MEDIA_FIELD: (Stage.COLLECT, "The rows have an image, audio or video field."),
    Reason.NO_ROWS: (Stage.COLLECT, "No sample rows could be read."),
    Reason.ROW_VALUES_TRUNCATED: (Stage.COLLECT, "Some row values were too large and were cut."),
    Reason.TEXT_CLEANED: (Stage.COLLECT, "NUL bytes or invalid text were removed."),
    Reason.BUDGET_EXHAUSTED: (
        Stage.GENERATE,
        "The run's LLM budget was reached before this call started; a later run sends it.",
    ),
    Reason.LLM_AUTH_ERROR: (
        Stage.GENERATE,
        "The LLM endpoint rejected the API key; a later run with a valid key sends the call.",
    ),
    Reason.LLM_BAD_REQUEST: (Stage.GENERATE, "The LLM endpoint rejected the request as invalid."),
    Reason.LLM_RATE_LIMITED: (Stage.GENERATE, "Still rate-limited (HTTP 429) after retries."),
    Reason.LLM_SERVER_ERROR: (Stage.GENERATE, "The LLM endpoint kept failing (HTTP 5xx)."),
    Reason.LLM_TIMEOUT: (Stage.GENERATE, "The LLM call timed out on every attempt."),
    Reason.LLM_CONNECTION_ERROR: (Stage.GENERATE, "The LLM endpoint could not be reached."),
    Reason.LLM_ERROR: (Stage.GENERATE, "The LLM call failed for another reason."),
    Reason.RESPONSE_TRUNCATED: (
        Stage.GENERATE,
        "The answer stopped at the token limit; the complete tasks in it were kept.",
    ),
    Reason.NO_TASKS: (Stage.GENERATE, "The answer contained no task at all."),
    Reason.LLM_QUOTA_EXHAUSTED: (
        Stage.GENERATE,
        "The LLM account has no quota left (insufficient_quota); a run after a top-up sends it.",
    ),
    Reason.LLM_UNUSABLE_ANSWER: (
        Stage.GENERATE,
        "Every allowed answer was unusable (not JSON, or cut short without a complete task).",
    ),
    Reason.UNPARSEABLE: (Stage.CURATE, "The proposal could not be parsed into a task."),
    Reason.EMPTY_OUTPUT_FIELD: (Stage.CURATE, "The task names no output field."),
    Reason.MULTIPLE_OUTPUT_FIELDS: (
        Stage.CURATE,
        "The task names several output fields (rejected only with multiple_output_fields=reject;"
        " by default the first is the output, as in the original).",
    ),
    Reason.UNKNOWN_FIELD: (Stage.CURATE, "The task names a field the data does not have."),
    Reason.INPUT_IS_OUTPUT: (Stage.CURATE, "An input field is also the output field."),
    Reason.DUPLICATE_INSTRUCTION: (
        Stage.CURATE,
        "Another task of the same dataset has the same instruction.",
    ),
    Reason.DUPLICATE_IN_STORE: (Stage.CURATE, "An identical task is already in the store."),
    Reason.NEAR_DUPLICATE_IN_STORE: (
        Stage.CURATE,
        "A task of the same dataset with a near-identical instruction is already in the store.",
    ),
    Reason.ANSWER_IN_INPUT: (
        Stage.CURATE,
        "The output equals the whole value of an input field in most sample rows (the task is "
        "trivial); as a note: such single instances were dropped.",
    ),
    Reason.SUSPICIOUS_CONTENT: (
        Stage.CURATE,
        "The task's text carries a link, an instruction to the reader or a secret-like string "
        "that its source rows do not contain.",
    ),
    Reason.NON_SCALAR_OUTPUT: (Stage.CURATE, "The output field holds lists or dicts."),
    Reason.IMBALANCED_LABELS: (
        Stage.CURATE,
        "Classification output too imbalanced (majority > 70% binary, > 50% otherwise).",
    ),
    Reason.NO_INSTANCES: (Stage.CURATE, "No sample row gave a non-empty input and output."),
    Reason.VALUE_TRUNCATED: (Stage.CURATE, "An input or output was cut at 2,000 characters."),
    Reason.EMPTY_BATCH: (Stage.PUBLISH, "The run found nothing new; no version was published."),
    Reason.RUN_FAILED: (Stage.PUBLISH, "The run failed before publishing; nothing is visible."),
    Reason.SERVICE_UNAVAILABLE: (
        Stage.PUBLISH,
        "The LLM or the Hub could not be reached for the run's work; re-running it after "
        "recovery completes it.",
    ),
    Reason.RUN_ABANDONED: (
        Stage.PUBLISH,
        "The process building the batch stopped without a trace (no heartbeat within the lease); "
        "its work went back to the queues.",
    ),
    Reason.SOURCE_WITHDRAWN: (
        Stage.RETRACT,
        "The source dataset was deleted or made private (the Hub answers 'not found').",
    ),
    Reason.SOURCE_GATED: (Stage.RETRACT, "The source dataset became gated."),
    Reason.LICENSE_WITHDRAWN: (
        Stage.RETRACT,
        "The source dataset's license changed to a class the collection does not take.",
    ),
    Reason.RETRACTED_BY_HAND: (Stage.RETRACT, "Retracted by hand (dynosaur retract)."),
    Reason.BENCHMARK_SOURCE: (
        Stage.COLLECT,
        "The dataset is a listed evaluation benchmark (DYNOSAUR_BENCHMARKS): never a source.",
    ),
    Reason.BENCHMARK_OVERLAP: (
        Stage.CURATE,
        "An input or output shares a 13-word span with a listed benchmark's row; at retraction: "
        "a published instance of the source does.",
    ),
}


def describe(reason: Reason | str) -> str:
    """Human description of a reason code."""
    return _CATALOGUE[Reason(reason)][1]


def catalogue() -> list[tuple[str, str, str]]:
    """(code, stage, description) for every reason, as stored in the ``reason`` table."""
    missing = set(Reason) - set(_CATALOGUE)
    if missing:  # a programming error: caught by the tests at once
        raise RuntimeError(f"reasons without a description: {sorted(missing)}")
    return [(r.value, stage.value, text) for r, (stage, text) in _CATALOGUE.items()]
