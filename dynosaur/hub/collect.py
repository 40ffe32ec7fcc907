"""Collect: for each discovered dataset revision, the card, the configs, their features and up to
``sample_rows`` sample rows, with the skip and defer rules applied and every outcome stored.

Per dataset, requests go in three waves, each wave's requests in parallel: the card at the
discovered revision; the viewer's splits and infos; one first-rows page per config. Many
datasets are in flight at once, so the ``hub_concurrency`` request slots stay busy. One
dataset's failure (an error answer, an unreadable card, a bug) is stored on that dataset and
never stops the others.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Engine

from dynosaur import decontam
from dynosaur.errors import HubRequestError
from dynosaur.hub.card import CardInfo, complete_card, needs_infos, parse_card
from dynosaur.hub.client import (
    VIEWER_FAMILIES,
    VIEWER_PERMANENT_REASONS,
    HubClient,
    ViewerAnswer,
    check_dataset_id,
)
from dynosaur.hub.features import (
    build_sample,
    features_from_viewer,
    has_media,
    normalise_features,
    sample_fields,
)
from dynosaur.hub.language import ConfigLanguage, allowed_set, before_rows, is_allowed
from dynosaur.hub.rules import (
    dataset_skip,
    fields_skip,
    language_code,
    language_skip,
    sample_skip,
)
from dynosaur.model import StepSummary
from dynosaur.progress import NullProgress, Progress
from dynosaur.reasons import Reason
from dynosaur.redact import redact
from dynosaur.settings import Settings
from dynosaur.store.datasets import (
    COLLECTABLE,
    ConfigOutcome,
    DatasetOutcome,
    PendingDataset,
    load_pending,
    save_batch,
    save_outcome,
)

log = logging.getLogger(__name__)

# Errors after which a later run may succeed: the dataset is deferred, not failed.
_DEFERRING = frozenset(
    {
        Reason.VIEWER_NOT_READY,
        Reason.RATE_LIMITED,
        Reason.HUB_ERROR,
        Reason.VIEWER_STALE_REVISION,
    }
)
_SPLIT_PREFERENCE = ("train", "validation")
_DATASETS_PER_SLOT = 4  # datasets in flight per request slot: enough to keep every slot busy
_WRITE_BATCH = 64  # outcomes per transaction at most
_WAVES = 3  # configs tried per dataset at most: this many times the cap
# Configs whose rows showed no allowed language: their place under the cap goes to the next.
_LANGUAGE_SKIPS = frozenset({Reason.LANGUAGE_NOT_ALLOWED, Reason.NO_TEXT})


def collect(
    settings: Settings,
    engine: Engine,
    dataset_row_ids: Sequence[int],
    *,
    progress: Progress | None = None,
) -> StepSummary:
    """Collect the ``hub_dataset`` rows ``dataset_row_ids`` that are waiting (discovered or
    deferred); rows already collected, skipped or failed are left as they are."""
    progress = progress or NullProgress()
    summary = StepSummary("collect")
    pending = load_pending(engine, dataset_row_ids)
    todo = [row for row in pending if row.status in COLLECTABLE]
    summary.figures["already_done"] = len(pending) - len(todo)
    summary.figures["unknown_ids"] = len(set(dataset_row_ids)) - len(pending)
    progress.start(len(todo), "collect")
    if todo:
        asyncio.run(_collect_all(settings, engine, todo, summary, progress))
    progress.finish()
    return summary


async def _collect_all(
    settings: Settings,
    engine: Engine,
    todo: Sequence[PendingDataset],
    summary: StepSummary,
    progress: Progress,
) -> None:
    loop = asyncio.get_running_loop()
    # `datasets` takes a second to import: load it beside the first requests, not after them.
    warm = loop.run_in_executor(None, importlib.import_module, "datasets")
    datasets = asyncio.Semaphore(settings.hub_concurrency * _DATASETS_PER_SLOT)
    outcomes: asyncio.Queue[DatasetOutcome | None] = asyncio.Queue()
    configs: Counter[tuple[str, str | None]] = Counter()

    def account(outcome: DatasetOutcome, saved: bool | None) -> None:
        if saved:
            summary.add(outcome.status, outcome.reason)
            for config in outcome.configs:
                configs[(config.status, config.reason)] += 1
        else:
            key = "taken_by_another" if saved is False else "not_stored"
            summary.figures[key] = int(summary.figures.get(key, 0)) + 1
        progress.advance(1, collected=summary.by_status().get("collected", 0))

    async def write(pool: ThreadPoolExecutor) -> None:
        # Writes run beside the requests, not between them, and whatever finished while the
        # last write ran goes in the next transaction: fewer commits when the Hub is fast.
        done = False
        while not done:
            batch = [await outcomes.get()]
            while not outcomes.empty() and len(batch) < _WRITE_BATCH:
                batch.append(outcomes.get_nowait())
            if batch[-1] is None:
                done = True
            items = [o for o in batch if o is not None]
            if items:
                flags = await loop.run_in_executor(pool, save_outcomes, engine, items)
                for outcome, saved in zip(items, flags, strict=True):
                    account(outcome, saved)

    async def one(client: HubClient, row: PendingDataset) -> None:
        async with datasets:
            try:
                outcome = await collect_dataset(client, settings, row)
            except Exception as exc:  # a bug must cost one dataset, not the run
                log.exception("collecting %s failed unexpectedly", row.dataset_id)
                outcome = _deferred(
                    settings,
                    row,
                    DatasetOutcome(row.id, "deferred"),
                    Reason.HUB_ERROR,
                    f"unexpected error: {type(exc).__name__}: {exc}"[:1000],
                )
        outcomes.put_nowait(outcome)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dynosaur-store") as pool:
        writer = asyncio.ensure_future(write(pool))
        async with HubClient(settings) as client:
            try:
                await asyncio.gather(*(one(client, row) for row in todo))
            finally:
                outcomes.put_nowait(None)
                await writer
            await warm
            summary.figures["requests"] = client.requests
            summary.figures["request_seconds"] = round(client.busy_s, 3)
    for (status, reason), n in sorted(configs.items(), key=str):
        key = f"configs_{status}" + (f"_{reason}" if reason else "")
        summary.figures[key] = n


def save_outcomes(engine: Engine, outcomes: Sequence[DatasetOutcome]) -> list[bool | None]:
    """Store outcomes in one transaction; if it fails, one by one, so a dataset whose write
    fails (None: it stays waiting for a later run) never costs the others theirs."""
    try:
        return list(save_batch(engine, outcomes))
    except Exception:
        log.exception("writing %d outcomes at once failed; writing them one by one", len(outcomes))
    flags: list[bool | None] = []
    for outcome in outcomes:
        try:
            flags.append(save_outcome(engine, outcome))
        except Exception:
            log.exception("storing the outcome of hub_dataset %s failed", outcome.row_id)
            flags.append(None)
    return flags


async def collect_dataset(
    client: HubClient, settings: Settings, row: PendingDataset
) -> DatasetOutcome:
    """Everything collect learns about one dataset revision (nothing is stored here)."""
    out = DatasetOutcome(row.id, "collected")
    problem = check_dataset_id(row.dataset_id)
    if problem is not None:
        return _final(out, "failed", Reason.INVALID_ID, problem)
    if decontam.is_benchmark(settings, row.dataset_id):
        return _final(out, "skipped", Reason.BENCHMARK_SOURCE, "a listed evaluation benchmark")
    if row.private or row.gated:  # known from the listing: no request needed to skip it
        skip = dataset_skip(CardInfo(), allowed_languages=(), gated=row.gated, private=row.private)
        assert skip is not None
        return _final(out, "skipped", skip.reason, skip.message)
    # The card at the discovered revision answers the questions the Hub's dataset info would
    # (does this revision still exist, is it gated) in the same request: no separate call.
    try:
        fetched = await client.card(row.dataset_id, row.sha)
    except HubRequestError as exc:
        return _after_error(settings, row, out, exc)
    if fetched is None:
        out.card = CardInfo()
        return _final(out, "skipped", Reason.CARD_MISSING, "the dataset has no README.md card")
    card = parse_card(fetched[0], truncated=fetched[1])
    infos = None
    if needs_infos(card):  # license and summary fallbacks: one more request, only if needed
        try:
            infos = await client.card(row.dataset_id, row.sha, "dataset_infos.json")
        except HubRequestError as exc:
            return _after_error(settings, row, out, exc)
    card = complete_card(card, infos[0] if infos and not infos[1] else None)
    out.card = card
    out.notes.extend(card.notes)
    skip = dataset_skip(
        card,
        allowed_languages=settings.languages,
        gated=False,
        private=False,
        allowed_licenses=settings.allowed_license_classes,
        allow_code=settings.allow_code,
    )
    if skip is not None:
        return _final(out, "skipped", skip.reason, skip.message)
    try:
        out.configs = await _configs(client, settings, row, card)
    except HubRequestError as exc:
        return _after_error(settings, row, out, exc)
    if card.problems:
        out.message = "; ".join(card.problems)[:1000]
    if not out.configs:
        return _final(out, "skipped", Reason.NO_CONFIGS, "the viewer lists no configuration")
    if not any(c.status == "collected" for c in out.configs):
        counts = Counter(c.reason for c in out.configs)
        shown = ", ".join(f"{reason} x{n}" for reason, n in counts.most_common())
        return _final(
            out, "skipped", Reason.NO_USABLE_CONFIG, f"every configuration was skipped: {shown}"
        )
    return out


def _final(out: DatasetOutcome, status: str, reason: str, message: str) -> DatasetOutcome:
    out.status, out.reason, out.message = status, reason, message
    return out


def _after_error(
    settings: Settings, row: PendingDataset, out: DatasetOutcome, exc: HubRequestError
) -> DatasetOutcome:
    """The outcome of a dataset whose request failed for good."""
    message = str(exc)[:1000]
    if exc.reason == Reason.GATED:
        out.gated = True
        return _final(out, "skipped", Reason.GATED, message)
    if exc.reason == Reason.NOT_FOUND:
        return _final(out, "failed", Reason.NOT_FOUND, message)
    if exc.reason in VIEWER_PERMANENT_REASONS or exc.reason == Reason.PRIVATE:
        # The viewer's answer will not change for this revision: no retry, no later run.
        return _final(out, "skipped", Reason(exc.reason), message)
    if exc.transient or exc.reason in _DEFERRING - {Reason.HUB_ERROR}:
        return _deferred(settings, row, out, Reason(exc.reason), message)
    return _final(out, "failed", Reason.HUB_ERROR, message)  # an answer retrying cannot change


def viewer_error_outcome(exc: HubRequestError) -> str:
    """What collect makes of a dataset whose viewer request failed with ``exc``: ``skipped``
    (a permanent answer: not found, gated, private, or a viewer family), ``deferred`` (a later
    run may succeed) or ``failed`` (an answer about our request, retrying cannot change it)."""
    if exc.reason in (Reason.NOT_FOUND, Reason.GATED, Reason.PRIVATE, *VIEWER_PERMANENT_REASONS):
        return "skipped"
    if exc.transient or exc.reason in _DEFERRING - {Reason.HUB_ERROR}:
        return "deferred"
    return "failed"


def _deferred(
    settings: Settings, row: PendingDataset, out: DatasetOutcome, reason: Reason, message: str
) -> DatasetOutcome:
    """Defer to a later run (waiting longer each time), or give up after the last attempt."""
    attempts = row.attempts + 1
    out.attempts = attempts
    out.configs = []  # a deferred dataset is collected again whole
    if attempts >= settings.viewer_max_attempts:
        final = Reason.VIEWER_GAVE_UP if reason == Reason.VIEWER_NOT_READY else reason
        return _final(out, "failed", final, f"gave up after {attempts} attempts: {message}")
    out.retry_in_s = settings.hub_defer_s * 2 ** (attempts - 1)
    return _final(out, "deferred", reason, f"attempt {attempts}: {message}")


# --- configs ----------------------------------------------------------------------------------


def _permanent(exc: HubRequestError) -> bool:
    """A viewer error that retrying will not change (its rows cannot be read): the config is
    skipped, where a transient one defers the dataset."""
    if exc.transient:
        return False
    return exc.reason in (Reason.HUB_ERROR, Reason.NOT_FOUND, *VIEWER_PERMANENT_REASONS)


def _config_reason(exc: HubRequestError) -> Reason:
    """The reason a config is skipped with after a permanent viewer error."""
    if exc.reason in VIEWER_PERMANENT_REASONS and exc.reason != Reason.VIEWER_DATASET_ERROR:
        return Reason(exc.reason)
    return Reason.NO_ROWS  # the viewer could not read this config's rows


def _failed_reason(item: dict[str, Any]) -> tuple[Reason, str]:
    """Reason and message of a config the viewer lists as ``failed``."""
    error = item.get("error") if isinstance(item.get("error"), dict) else {}
    assert isinstance(error, dict)
    code = error.get("error_code") or error.get("cause_exception")
    reason = VIEWER_FAMILIES.get(code, Reason.VIEWER_DATASET_ERROR) if code else None
    text = str(error.get("error") or "the viewer could not process this configuration")
    return reason or Reason.VIEWER_DATASET_ERROR, redact(text)[:1000]


async def _viewer_behind(client: HubClient, row: PendingDataset, revision: str) -> bool:
    """Whether the viewer's ``revision`` is older than the discovered one (then its answers
    describe data we do not collect): compared by the dates the Hub gives each revision."""
    try:
        shown = await client.dataset_info(row.dataset_id, revision=revision)
    except HubRequestError:
        return True  # a revision the Hub does not know: not the one we discovered
    if shown.last_modified is None or row.last_modified is None:
        return True
    return shown.last_modified < row.last_modified


async def _configs(
    client: HubClient, settings: Settings, row: PendingDataset, card: CardInfo
) -> list[ConfigOutcome]:
    """The dataset's configs as the viewer shows them, each collected or skipped: configs known
    to be in no allowed language are skipped without a request; the others are tried in waves,
    those in an allowed language first, ``max_configs_per_dataset`` of them (a config found
    foreign from its rows frees its place for the next)."""
    dataset_id = row.dataset_id
    splits_answer: ViewerAnswer | BaseException
    info_answer: ViewerAnswer | BaseException
    splits_answer, info_answer = await asyncio.gather(
        client.viewer("splits", dataset_id),
        client.viewer("info", dataset_id),
        return_exceptions=True,
    )
    if isinstance(splits_answer, BaseException):
        if not isinstance(splits_answer, HubRequestError):
            raise splits_answer
        if splits_answer.reason == Reason.NOT_FOUND:
            return []  # the viewer does not serve this dataset: no configs
        raise splits_answer  # skipped (a permanent family) or deferred, by collect_dataset
    revision = splits_answer.revision
    if revision and revision != row.sha and await _viewer_behind(client, row, revision):
        raise HubRequestError(
            f"viewer /splits of {dataset_id}: computed for revision {revision}, older than the "
            f"discovered {row.sha}",
            reason=Reason.VIEWER_STALE_REVISION,
            dataset_id=dataset_id,
            transient=True,
        )
    splits = _split_names(splits_answer)
    pending = _listed_configs(splits_answer.get("pending"))
    last_attempt = row.attempts + 1 >= settings.viewer_max_attempts
    if pending and not last_attempt:
        # Revisited whole in a later run, once the viewer has computed every config.
        raise HubRequestError(
            f"viewer /splits of {dataset_id}: {len(pending)} configuration(s) still computing "
            f"({', '.join(sorted(pending)[:5])})",
            reason=Reason.VIEWER_NOT_READY,
            dataset_id=dataset_id,
            transient=True,
        )
    unusable: list[ConfigOutcome] = [
        ConfigOutcome(
            name=name,
            status="skipped",
            reason=Reason.VIEWER_NOT_READY,
            message=f"still computing after {row.attempts + 1} attempts",
        )
        for name in sorted(pending - set(splits))
    ]
    failed = [
        item
        for item in splits_answer.get("failed") or []
        if isinstance(item, dict) and item.get("config") not in splits
    ]
    if failed and not splits and not pending:
        # Every config failed in the viewer: the dataset is skipped with the first failure.
        reason, message = _failed_reason(failed[0])
        raise HubRequestError(
            f"viewer /splits of {dataset_id}: every configuration failed ({len(failed)}): "
            + message,
            reason=reason,
            dataset_id=dataset_id,
        )
    infos: dict[str, Any] = {}
    if isinstance(info_answer, dict) and isinstance(info_answer.get("dataset_info"), dict):
        infos = info_answer["dataset_info"]
    allowed = allowed_set(settings.languages)
    code = settings.allow_code
    languages = {name: before_rows(name, card, infos.get(name), allowed) for name in splits}
    foreign = [
        n
        for n in splits
        if allowed
        and languages[n].known
        and not is_allowed(languages[n].codes, allowed, allow_code=code)
    ]
    names = rank_configs([n for n in splits if n not in foreign], settings.languages, languages)
    cap = settings.max_configs_per_dataset
    outcomes: list[ConfigOutcome] = []
    tried = 0
    while tried < len(names) and tried < cap * _WAVES:
        room = cap - sum(o.reason not in _LANGUAGE_SKIPS for o in outcomes)
        if room <= 0:
            break
        wave = names[tried : tried + room]
        tried += len(wave)
        try:
            # A TaskGroup: when one config defers the dataset, the others' requests are cancelled.
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(
                        _config(
                            client,
                            settings,
                            dataset_id,
                            name,
                            splits[name],
                            infos.get(name),
                            languages[name],
                        )
                    )
                    for name in wave
                ]
        except BaseExceptionGroup as group_error:
            first = next(
                (e for e in group_error.exceptions if isinstance(e, HubRequestError)), None
            )
            if first is None:
                raise
            raise first from None
        outcomes += [task.result() for task in tasks]
    beyond = names[tried:]
    outcomes += [
        ConfigOutcome(
            name=name,
            status="skipped",
            reason=Reason.LANGUAGE_NOT_ALLOWED,
            message=f"the config's languages ({', '.join(languages[name].codes)}, from "
            f"{languages[name].source}) include none of {', '.join(sorted(allowed))}",
            splits={split: None for split in splits[name]},
            language=list(languages[name].codes),
            language_source=languages[name].source,
        )
        for name in foreign
    ]
    outcomes += [
        ConfigOutcome(
            name=name,
            status="skipped",
            reason=Reason.CONFIG_CAP,
            message=f"beyond the first {cap} of {len(names)} configurations",
            splits={split: None for split in splits[name]},
            language=list(languages[name].codes),
            language_source=languages[name].source,
        )
        for name in beyond
    ]
    order = {name: i for i, name in enumerate(splits)}
    return sorted(outcomes, key=lambda o: order.get(o.name, len(order))) + unusable


def _listed_configs(items: Any) -> set[str]:
    """Config names of a ``pending`` or ``failed`` list of the viewer."""
    return {
        item["config"]
        for item in items or []
        if isinstance(item, dict) and isinstance(item.get("config"), str)
    }


def _split_names(answer: dict[str, Any]) -> dict[str, list[str]]:
    """config -> split names, in the viewer's order."""
    out: dict[str, list[str]] = {}
    for item in answer.get("splits") or []:
        if not isinstance(item, dict):
            continue
        config, split = item.get("config"), item.get("split")
        if isinstance(config, str) and isinstance(split, str):
            names = out.setdefault(config, [])
            if split not in names:
                names.append(split)
    return out


def rank_configs(
    names: Sequence[str],
    languages: Sequence[str],
    known: dict[str, ConfigLanguage] | None = None,
) -> list[str]:
    """Configs in the viewer's order, those known to be in an allowed language (``known``) or
    named after one first (so a cap on configs keeps ``en`` or ``de-en`` of a hundred-language
    dataset)."""
    allowed = {language_code(lang) for lang in languages if lang.strip()}
    if not allowed:
        return list(names)

    def speaks(name: str) -> bool:
        if known is not None and name in known and known[name].known:
            return bool(set(known[name].codes) & allowed) or "code" in known[name].codes
        return any(token in allowed for token in re.split(r"[-_.+ ]", name.lower()))

    return sorted(names, key=lambda name: not speaks(name))


def pick_split(splits: Sequence[str]) -> str | None:
    """train, else validation, else the first split."""
    for name in _SPLIT_PREFERENCE:
        if name in splits:
            return name
    return splits[0] if splits else None


def _split_sizes(split_names: Sequence[str], info: Any) -> dict[str, int | None]:
    sizes: dict[str, int | None] = dict.fromkeys(split_names)
    known = info.get("splits") if isinstance(info, dict) else None
    if isinstance(known, dict):
        for name, split in known.items():
            if name in sizes and isinstance(split, dict):
                count = split.get("num_examples")
                sizes[name] = count if isinstance(count, int) else None
    return sizes


async def _config(
    client: HubClient,
    settings: Settings,
    dataset_id: str,
    name: str,
    split_names: list[str],
    info: Any,
    language: ConfigLanguage | None = None,
) -> ConfigOutcome:
    """One config: features, then (unless they already rule it out) its sample rows, then its
    language when the card and its name did not tell it."""
    out = ConfigOutcome(name=name, status="collected", splits=_split_sizes(split_names, info))
    language = language or ConfigLanguage()
    out.language, out.language_source = list(language.codes), language.source
    raw_features = info.get("features") if isinstance(info, dict) else None
    problems: list[str] = []
    if raw_features is not None and _features(out, raw_features, problems):
        return out
    split = pick_split(split_names)
    if split is None:
        return _skip_config(out, Reason.NO_ROWS, "the config has no split")
    out.sample_split = split
    try:
        answer = await _rows(client, settings, dataset_id, name, split)
    except HubRequestError as exc:
        if _permanent(exc):
            return _skip_config(out, _config_reason(exc), str(exc)[:1000])
        raise
    if out.features is None and _features(
        out, features_from_viewer(answer.get("features")), problems
    ):
        return out
    items = [r for r in answer.get("rows") or [] if isinstance(r, dict)]
    truncated = any(item.get("truncated_cells") for item in items)
    sample = build_sample(
        out.features or {},
        [item.get("row") for item in items],
        max_rows=settings.sample_rows,
        max_chars=settings.max_value_chars,
        truncated_cells=truncated,
    )
    out.fields, out.sample_rows, out.notes = sample.fields, sample.rows, list(sample.notes)
    if sample.flattened:
        problems.append(f"the record field {sample.flattened!r} was flattened into its keys")
    skip = sample_skip(sample)
    if skip is None:
        found, skip = language_skip(
            language, sample.rows, sample.fields, settings.languages, allow_code=settings.allow_code
        )
        out.language, out.language_source = list(found.codes), found.source
    if skip is not None:
        return _skip_config(out, skip.reason, skip.message)
    out.message = "; ".join(problems)[:1000] or None
    return out


def _features(out: ConfigOutcome, raw: Any, problems: list[str]) -> bool:
    """Set the config's features and fields; True when they alone skip it."""
    features, problem = normalise_features(raw)
    if problem:
        problems.append(problem)
    out.features = features or {}
    fields, _ = sample_fields(out.features)
    out.fields = fields
    media = [name for name, feature in out.features.items() if has_media(feature)]
    skip = fields_skip(fields, media)
    if skip is not None:
        _skip_config(out, skip.reason, skip.message)
        return True
    return False


def _skip_config(out: ConfigOutcome, reason: Reason, message: str) -> ConfigOutcome:
    out.status, out.reason, out.message = "skipped", reason, message
    out.sample_rows = []
    return out


async def _rows(
    client: HubClient, settings: Settings, dataset_id: str, config: str, split: str
) -> dict[str, Any]:
    """The first rows of a split: /first-rows, else a /rows page (the viewer computes them
    differently, so one may work when the other cannot)."""
    try:
        return await client.viewer("first-rows", dataset_id, config=config, split=split)
    except HubRequestError as exc:
        if not _permanent(exc):
            raise
        first_error = exc
    try:
        return await client.viewer(
            "rows", dataset_id, config=config, split=split, offset=0, length=settings.sample_rows
        )
    except HubRequestError as exc:
        if not _permanent(exc):
            raise
        raise first_error from None
