"""One settings object for the whole library, read from ``DYNOSAUR_*`` environment variables.

Every knob lives here; nothing deeper in the code reads ``os.environ``. Airflow deployments map
their connections onto these fields in :mod:`dynosaur.airflow.connections`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dynosaur.licenses import LicenseClass, parse_classes


class ModelPrice(BaseModel):
    """USD per million tokens for one model."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


def _default_prices() -> dict[str, ModelPrice]:
    """The built-in price table (dynosaur.generate.cost.PRICES, with its source and date)."""
    from dynosaur.generate.cost import PRICES

    return dict(PRICES)


# Common instruction-tuning benchmarks, under the ids the Hub still resolves; those the shared
# Hub snapshot holds (the first nine) are indexable offline with the emulator.
DEFAULT_BENCHMARKS = (
    "hendrycks_test",  # MMLU (cais/mmlu)
    "gsm8k:main:test",
    "hellaswag::validation",
    "ai2_arc",  # ARC-Challenge and ARC-Easy
    "truthful_qa",
    "mbpp:full:test",
    "winogrande:winogrande_xl:validation",
    "piqa::validation",
    "boolq::validation",
    "openai_humaneval::test",  # HumanEval
    "lukaemon/bbh::test",  # BIG-Bench Hard
)


def default_data_dir() -> Path:
    """Per-user folder for the embedded Postgres and exports."""
    return Path(platformdirs.user_data_dir("dynosaur", appauthor=False))


class Settings(BaseSettings):
    """Everything configurable, with the defaults a new user should get."""

    model_config = SettingsConfigDict(
        env_prefix="DYNOSAUR_",
        env_file=None,
        extra="ignore",
        validate_default=True,
    )

    # --- store -------------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="Postgres URL of the store; unset = embedded Postgres in data_dir.",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    reader_role: str = Field(
        default="dynosaur_reader",
        description="Read-only role that may select from the views and nothing else.",
    )

    # --- Hugging Face Hub --------------------------------------------------------------------
    hub_endpoint: str = "https://huggingface.co"
    viewer_url: str = "https://datasets-server.huggingface.co"
    hub_token: SecretStr | None = None
    hub_concurrency: int = Field(default=8, ge=1, le=256)
    hub_timeout_s: float = Field(default=30.0, gt=0)
    hub_max_retries: int = Field(default=5, ge=0)
    languages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["en"],
        description="Allowed card languages; empty list allows every language.",
    )
    max_configs_per_dataset: int = Field(default=10, ge=1)
    allow_code: bool = Field(
        default=True,
        description="Datasets whose card declares the language `code` (source code) are kept.",
    )
    license_classes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["permissive", "share-alike", "non-commercial"],
        description="License classes that enter the collection (comma list of permissive, "
        "share-alike, non-commercial, no-derivatives, unknown); others are skipped at collect.",
    )
    sample_rows: int = Field(default=100, ge=1, le=100)
    max_value_chars: int = Field(
        default=10_000, ge=100, description="Longer row values are truncated at collect."
    )
    viewer_max_attempts: int = Field(
        default=5, ge=1, description="Runs that retry a dataset whose viewer is not ready."
    )
    hub_backoff_s: float = Field(
        default=1.0, ge=0, description="First wait before retrying a Hub 5xx; doubles per retry."
    )
    hub_backoff_max_s: float = Field(
        default=60.0, ge=0, description="Longest wait between Hub retries (Retry-After included)."
    )
    hub_defer_s: float = Field(
        default=3600.0,
        ge=0,
        description="Wait before a deferred dataset is collected again; doubles per attempt.",
    )
    max_card_bytes: int = Field(
        default=1_000_000, ge=1_000, description="Larger cards are cut (noted card_too_large)."
    )
    hub_quota_api: int | None = Field(
        default=None,
        ge=0,
        description="Hub API requests per quota window we send at most (unset: the Hub's "
        "documented quota, 500 anonymous, 1000 with a token; 0: no pacing).",
    )
    hub_quota_resolvers: int | None = Field(
        default=None,
        ge=0,
        description="File downloads (/resolve/) per quota window (unset: 3000 anonymous, "
        "5000 with a token; 0: no pacing).",
    )
    hub_quota_window_s: int = Field(
        default=300, ge=1, description="The Hub's quota window (5 minutes) until it says another."
    )

    # --- LLM ---------------------------------------------------------------------------------
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    llm_max_tokens: int = Field(default=512, ge=16)
    llm_concurrency: int = Field(default=32, ge=1, le=1024)
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=6, ge=0)
    llm_structured_output: bool = Field(
        default=False,
        description="Ask for a JSON schema response (only endpoints that support it).",
    )
    llm_prices: dict[str, ModelPrice] = Field(default_factory=_default_prices)
    tasks_per_config: int = Field(default=3, ge=1, le=10)
    budget_usd: float | None = Field(
        default=5.0, description="Spend cap per run in USD; empty or negative = no cap."
    )
    llm_backoff_s: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles per attempt, with jitter."
    )
    llm_backoff_max_s: float = Field(
        default=60.0, gt=0, description="Longest wait between attempts (Retry-After included)."
    )
    prompt_kinds: Literal["auto", "both"] = Field(
        default="auto",
        description="auto: description-aware prompt when the card has a summary, else unaware; "
        "both: also the unaware prompt for configs with a summary.",
    )
    llm_max_deferrals: int = Field(
        default=5,
        ge=1,
        description="Runs that retry a prompt whose calls failed transiently (unreachable, "
        "timeouts, 5xx, 429) before its config fails with that reason.",
    )
    llm_defer_s: float = Field(
        default=0.0,
        ge=0,
        description="Wait before a transiently failed prompt is due again (doubles per run); "
        "0: due at the next run.",
    )
    llm_max_unusable: int = Field(
        default=3,
        ge=1,
        description="Answers per prompt that may be unusable (not JSON, cut short) before its "
        "config fails with llm_unusable_answer.",
    )
    llm_reasoning_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["o1", "o3", "o4", "gpt-5"],
        description="Model-name families that take max_completion_tokens and no temperature.",
    )
    llm_token_parameter: Literal["auto", "max_tokens", "max_completion_tokens"] = Field(
        default="auto",
        description="auto: max_completion_tokens for reasoning-family models, else max_tokens.",
    )
    llm_reasoning_max_tokens: int = Field(
        default=4096,
        ge=16,
        description="Output allowance of reasoning-family models (their reasoning counts).",
    )
    llm_reasoning_effort: str | None = Field(
        default=None, description="reasoning_effort sent to reasoning-family models (e.g. low)."
    )

    # --- retraction -------------------------------------------------------------------------
    retraction_checks_per_run: int = Field(
        default=50,
        ge=0,
        description="Sources of the collection each growth run rechecks on the Hub (deleted, "
        "private, gated, relicensed), the longest unchecked first; 0 = no sweep.",
    )

    # --- benchmark decontamination ------------------------------------------------------------
    benchmarks: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_BENCHMARKS),
        description="Evaluation datasets kept out of the collection: comma list of "
        "DATASET[:CONFIG[:SPLIT]] (no config: every config; no split: test and validation).",
    )

    # --- curate ------------------------------------------------------------------------------
    answer_in_input_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A task whose output equals the whole value of an input field in more than "
        "this share of its sample rows is rejected (answer_in_input).",
    )
    leakage_filter: bool = Field(
        default=True,
        description="The answer_in_input rule (a task or instance whose output is written whole "
        "in one of its inputs is dropped); false keeps them, as the original did.",
    )
    multiple_output_fields: Literal["first", "reject"] = Field(
        default="first",
        description="A task naming several output fields: first builds its output from the "
        "first one, as the original did; reject rejects it (multiple_output_fields).",
    )
    near_duplicates: Literal["flag", "reject"] = Field(
        default="flag",
        description="Near-duplicate tasks (same config and fields, instruction Jaccard >= 0.8): "
        "flag keeps them valid with a note (the original removed only identical tasks); reject "
        "rejects them (near_duplicate_in_store).",
    )

    # --- export ------------------------------------------------------------------------------
    export_dir: Path | None = Field(
        default=None,
        description="Where the export DAG writes each new version; unset = <data_dir>/exports.",
    )
    export_formats: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["jsonl", "parquet"],
        description="Formats the export DAG writes (comma list of jsonl, parquet, hf).",
    )
    export_push_repo: str | None = Field(
        default=None,
        description="Hub dataset repo the export DAG pushes each version to (tag vN); "
        "unset = no push. Needs DYNOSAUR_HUB_TOKEN.",
    )

    # --- selection ---------------------------------------------------------------------------
    embedding_model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        description="sentence-transformers model (name or path); the default is bundled offline.",
    )
    embedding_batch_size: int = Field(default=64, ge=1)
    scorer_model: str | None = Field(
        default=None,
        description="Causal LM (name or path) that scores learning percentage, e.g. a 350M one.",
    )
    scorer_epochs: int = Field(default=3, ge=1, le=100)
    scorer_batch_size: int = Field(default=8, ge=1)
    scorer_learning_rate: float = Field(default=2e-5, gt=0)
    scorer_max_tokens: int = Field(default=512, ge=8)
    selection_clusters: int = Field(
        default=1000, ge=1, description="k of the k-means of learning percentage (the paper's)."
    )
    selection_device: str | None = Field(
        default=None, description="torch device of embeddings and scoring; unset = cuda if any."
    )

    # --- runs (issue 12) ------------------------------------------------------------------
    run_lease_s: float = Field(
        default=600.0,
        gt=0,
        description="A building batch whose process sent no heartbeat for this long is stale: "
        "the next run of its key adopts it, any other run releases its work.",
    )
    lock_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait for the publish and migration locks before a clear error.",
    )

    @field_validator("budget_usd", mode="before")
    @classmethod
    def _negative_budget_is_no_cap(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        try:
            return None if value is not None and float(value) < 0 else value  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return value  # pydantic reports it

    @field_validator(
        "languages", "export_formats", "llm_reasoning_models", "benchmarks", mode="before"
    )
    @classmethod
    def _split_languages(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("license_classes", mode="before")
    @classmethod
    def _split_license_classes(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("license_classes")
    @classmethod
    def _known_license_classes(cls, value: list[str]) -> list[str]:
        return sorted(c.value for c in parse_classes(value))  # ValueError names unknown ones

    @field_validator("hub_endpoint", "viewer_url", "llm_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def model_post_init(self, context: object, /) -> None:
        """Remember this configuration's secrets, so that no log line or stored message shows
        them (:mod:`dynosaur.redact`)."""
        from urllib.parse import urlsplit

        from dynosaur import redact

        password = urlsplit(self.database_url).password if self.database_url else None
        register = [s.get_secret_value() for s in (self.llm_api_key, self.hub_token) if s]
        redact.register(*register, password)

    @property
    def allowed_license_classes(self) -> frozenset[LicenseClass]:
        """The license classes that enter the collection."""
        return parse_classes(self.license_classes)

    @property
    def export_root(self) -> Path:
        """The export DAG's destination folder."""
        return self.export_dir or self.data_dir / "exports"

    @cached_property
    def embedded_pgdata(self) -> Path:
        """Data directory of the embedded Postgres."""
        return self.data_dir / "pgdata"

    def price_for(self, model: str) -> ModelPrice | None:
        """Price of ``model``, also matching dated variants such as ``gpt-4o-mini-2024-07-18``."""
        if model in self.llm_prices:
            return self.llm_prices[model]
        candidates = [name for name in self.llm_prices if model.startswith(name + "-")]
        return self.llm_prices[max(candidates, key=len)] if candidates else None


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags, DAG params) on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
