"""The Hub emulator, driven only through real clients: HfApi, hf_hub_download, DatasetCard and
httpx on the Dataset Viewer endpoints (parsed with datasets.Features)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from datasets import ClassLabel, Features
from huggingface_hub import DatasetCard, HfApi, constants, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.snapshot import DEFAULT_SNAPSHOT
from tests.emulators.conftest import AFTER_ALL, SQUAD, at

COUNCIL = "civic-lab/city-council-motions"  # created 03-02, modified 03-04T16:02:44
GATED = "medtext-consortium/clinical-abbreviations"
SLOW_VIEWER = "slowviewer/event-descriptions"  # created 03-03T17:29:40, viewer ready a day later
MULTI = "langtools/sentence-pairs-multi"
SQUAD_TRAIN = {"dataset": SQUAD, "config": "plain_text", "split": "train"}


@pytest.fixture
def api(own_hub: HubEmulator) -> HfApi:
    return HfApi(endpoint=own_hub.url, token=False)


@pytest.fixture
def viewer(own_hub: HubEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=own_hub.url) as client:
        yield client


def features_of(answer: dict) -> Features:
    return Features.from_dict({f["name"]: f["type"] for f in answer["features"]})


# --- listing --------------------------------------------------------------------------------


def test_listing_sorted_by_creation_is_newest_first_and_complete(api: HfApi) -> None:
    listed = list(api.list_datasets(sort="created_at"))
    assert len(listed) == 25
    created = [d.created_at for d in listed]
    assert created == sorted(created, reverse=True)
    assert listed[-1].id == SQUAD
    assert all(d.sha and d.tags for d in listed)


def test_listing_follows_link_pagination_across_pages() -> None:
    with HubEmulator(now=AFTER_ALL, page_size=4) as hub:
        listed = list(HfApi(endpoint=hub.url, token=False).list_datasets(sort="created_at"))
        pages = hub.requests_to("/api/datasets")
    assert len(listed) == 25
    assert len({d.id for d in listed}) == 25
    assert len(pages) == 7
    assert "cursor" not in pages[0]["query"]
    assert all("cursor" in page["query"] for page in pages[1:])


def test_listing_limit_stops_after_limit_items_without_fetching_every_page() -> None:
    with HubEmulator(now=AFTER_ALL, page_size=4) as hub:
        listed = list(HfApi(endpoint=hub.url, token=False).list_datasets(limit=5))
        pages = hub.requests_to("/api/datasets")
    assert len(listed) == 5
    assert len(pages) == 2


def test_listing_sorted_by_last_modified_puts_modified_dataset_ahead(
    own_hub: HubEmulator, api: HfApi
) -> None:
    own_hub.now = at("2024-03-05T00:00:00")
    order = [d.id for d in api.list_datasets(sort="last_modified", expand=["lastModified"])]
    # modified on 03-04 at 16:02, so ahead of everything created before that moment
    assert order.index(COUNCIL) < order.index("timeline-data/historical-events")


def test_simulated_now_hides_datasets_not_yet_created(own_hub: HubEmulator, api: HfApi) -> None:
    own_hub.now = at("2024-03-02T12:00:00")
    listed = {d.id for d in api.list_datasets()}
    assert listed == {
        SQUAD,
        "dynosaur-fixtures/anli-like",
        "dynosaur-fixtures/mathqa-like",
        "dynosaur-fixtures/commongen-like",
        COUNCIL,
        "openreviews/product-reviews-5cat",
        "helpdesk-ai/ticket-priority",
    }
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info("timeline-data/historical-events")
    own_hub.now = at("2024-03-05T00:00:00")
    assert api.dataset_info("timeline-data/historical-events").id


def test_search_filter_and_author_narrow_the_listing(api: HfApi) -> None:
    assert {d.id for d in api.list_datasets(search="fixtures")} == {
        SQUAD,
        "dynosaur-fixtures/anli-like",
        "dynosaur-fixtures/mathqa-like",
        "dynosaur-fixtures/commongen-like",
    }
    german = {d.id for d in api.list_datasets(language="de")}
    assert german == {"polyglot-data/themen-saetze-de"}
    summarization = {d.id for d in api.list_datasets(filter="task_categories:summarization")}
    assert "newsroom-nlp/local-news-summaries" in summarization
    assert {d.id for d in api.list_datasets(author="wordsmith")} == {"wordsmith/one-liners"}
    assert {d.id for d in api.list_datasets(gated=True)} == {GATED}


def test_full_and_expand_control_the_fields_returned(api: HfApi) -> None:
    full = next(iter(api.list_datasets(search="squad-like", full=True)))
    assert full.card_data is not None and full.card_data.license == ["cc-by-4.0"]
    assert [s.rfilename for s in full.siblings] == ["README.md", "dataset_infos.json"]
    slim = next(iter(api.list_datasets(search="squad-like", expand=["createdAt"])))
    assert slim.created_at == at("2024-03-01T08:12:40")
    assert slim.sha is None and slim.tags is None


# --- dataset info, revisions, files ---------------------------------------------------------


def test_dataset_info_carries_card_data_tags_dates_and_siblings(api: HfApi) -> None:
    info = api.dataset_info(SQUAD, files_metadata=True)
    assert info.card_data.task_categories == ["question-answering"]
    assert "task_ids:extractive-qa" in info.tags and "license:cc-by-4.0" in info.tags
    assert info.created_at == info.last_modified == at("2024-03-01T08:12:40")
    assert info.gated is False and info.private is False
    assert info.description.startswith("A small reading-comprehension dataset")
    readme = next(s for s in info.siblings if s.rfilename == "README.md")
    assert readme.size == (DEFAULT_SNAPSHOT / "datasets" / SQUAD / "README.md").stat().st_size


def test_modified_dataset_shows_its_first_revision_until_last_modified(
    own_hub: HubEmulator, api: HfApi
) -> None:
    own_hub.now = at("2024-03-03T00:00:00")
    before = api.dataset_info(COUNCIL)
    own_hub.now = at("2024-03-05T00:00:00")
    after = api.dataset_info(COUNCIL)
    assert before.sha != after.sha
    assert before.last_modified == before.created_at == at("2024-03-02T07:55:12")
    assert after.last_modified == at("2024-03-04T16:02:44")
    # the old revision stays reachable, as on the Hub
    assert api.dataset_info(COUNCIL, revision=before.sha).sha == before.sha


def test_set_revision_makes_a_dataset_look_changed(own_hub: HubEmulator, api: HfApi) -> None:
    old = api.dataset_info("wordsmith/one-liners").sha
    moment = at("2024-06-01T10:00:00")
    own_hub.set_revision("wordsmith/one-liners", sha="ab" * 20, last_modified=moment)
    info = api.dataset_info("wordsmith/one-liners")
    assert (info.sha, info.last_modified) == ("ab" * 20, moment)
    assert api.dataset_info("wordsmith/one-liners", revision=old).sha == old
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info("wordsmith/one-liners", revision="cd" * 20)


def test_hf_hub_download_fetches_the_card_at_the_current_commit(
    own_hub: HubEmulator, tmp_path: Path
) -> None:
    path = hf_hub_download(
        SQUAD,
        "README.md",
        repo_type="dataset",
        endpoint=own_hub.url,
        cache_dir=tmp_path,
        token=False,
    )
    original = DEFAULT_SNAPSHOT / "datasets" / SQUAD / "README.md"
    assert Path(path).read_bytes() == original.read_bytes()
    sha = HfApi(endpoint=own_hub.url, token=False).dataset_info(SQUAD).sha
    assert f"snapshots/{sha}/README.md" in Path(path).as_posix()
    heads = [e for e in own_hub.request_log if e["method"] == "HEAD"]
    assert heads and heads[0]["status"] == 200


def test_dataset_card_load_parses_the_served_card(
    own_hub: HubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DatasetCard.load takes no endpoint: it reads HF_ENDPOINT, frozen into these at import
    monkeypatch.setattr(constants, "ENDPOINT", own_hub.url)
    template = own_hub.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    card = DatasetCard.load("dynosaur-fixtures/anli-like")
    assert card.data.license == ["cc-by-nc-4.0"]
    assert "### Dataset Summary" in card.text


def test_missing_file_and_unknown_revision_raise_the_clients_errors(
    own_hub: HubEmulator, tmp_path: Path
) -> None:
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(
            SQUAD, "data.csv", repo_type="dataset", endpoint=own_hub.url, cache_dir=tmp_path
        )
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(
            SQUAD,
            "README.md",
            repo_type="dataset",
            revision="0" * 40,
            endpoint=own_hub.url,
            cache_dir=tmp_path,
        )


def test_malformed_card_yaml_gives_no_card_data_but_the_card_downloads(
    api: HfApi, own_hub: HubEmulator, tmp_path: Path
) -> None:
    info = api.dataset_info("broken-cards/faq-pairs")
    assert info.card_data is None or not info.card_data.to_dict()
    path = hf_hub_download(
        "broken-cards/faq-pairs",
        "README.md",
        repo_type="dataset",
        endpoint=own_hub.url,
        cache_dir=tmp_path,
    )
    assert "task_categories: [question-answering" in Path(path).read_text()


# --- gated ----------------------------------------------------------------------------------


def test_gated_dataset_lists_as_gated_and_refuses_files_and_viewer(
    own_hub: HubEmulator, api: HfApi, viewer: httpx.Client, tmp_path: Path
) -> None:
    assert api.dataset_info(GATED).gated == "manual"
    with pytest.raises(GatedRepoError):
        hf_hub_download(
            GATED, "README.md", repo_type="dataset", endpoint=own_hub.url, cache_dir=tmp_path
        )
    answer = viewer.get("/splits", params={"dataset": GATED})
    assert answer.status_code == 401
    assert answer.headers["X-Error-Code"] == "ExternalUnauthenticatedError"
    assert "gated" in answer.json()["error"]


def test_gated_knob_gates_any_dataset(tmp_path: Path) -> None:
    with HubEmulator(now=AFTER_ALL, gated=["wordsmith/one-liners"]) as hub:
        assert HfApi(endpoint=hub.url).dataset_info("wordsmith/one-liners").gated == "manual"
        answer = httpx.get(f"{hub.url}/datasets/wordsmith/one-liners/resolve/main/README.md")
    assert answer.status_code == 401
    assert answer.headers["X-Error-Code"] == "GatedRepo"


# --- viewer ---------------------------------------------------------------------------------


def test_viewer_splits_info_and_first_rows_parse_with_datasets(viewer: httpx.Client) -> None:
    assert viewer.get("/is-valid", params={"dataset": SQUAD}).json()["viewer"] is True
    splits = viewer.get("/splits", params={"dataset": MULTI}).json()["splits"]
    assert {s["config"] for s in splits} == {"paraphrase", "simplification", "formality"}
    info = viewer.get("/info", params={"dataset": MULTI, "config": "paraphrase"}).json()
    features = Features.from_dict(info["dataset_info"]["features"])
    assert isinstance(features["label"], ClassLabel)
    assert features["label"].names == ["not_paraphrase", "paraphrase"]
    first = viewer.get(
        "/first-rows", params={"dataset": SQUAD, "config": "plain_text", "split": "train"}
    ).json()
    squad_features = features_of(first)
    assert list(squad_features) == ["id", "title", "context", "question", "answers"]
    assert [f["feature_idx"] for f in first["features"]] == [0, 1, 2, 3, 4]
    row = first["rows"][0]
    assert row["row_idx"] == 0 and row["truncated_cells"] == []
    answer = row["row"]["answers"]
    start = answer["answer_start"][0]
    assert row["row"]["context"][start : start + len(answer["text"][0])] == answer["text"][0]


def test_viewer_rows_pages_with_offset_and_length(viewer: httpx.Client) -> None:
    params = {"dataset": "mathgen/arithmetic-word-problems", "config": "default", "split": "train"}
    page = viewer.get("/rows", params={**params, "offset": 95, "length": 10}).json()
    assert page["num_rows_total"] == 100
    assert [r["row_idx"] for r in page["rows"]] == [95, 96, 97, 98, 99]
    assert features_of(page)["operation"].names[0] == "addition"


def test_viewer_info_without_config_lists_every_config(viewer: httpx.Client) -> None:
    answer = viewer.get("/info", params={"dataset": MULTI}).json()
    assert set(answer["dataset_info"]) == {"paraphrase", "simplification", "formality"}
    for info in answer["dataset_info"].values():
        Features.from_dict(info["features"])


def test_image_dataset_rows_hold_image_cells(viewer: httpx.Client) -> None:
    first = viewer.get(
        "/first-rows",
        params={"dataset": "pixelfarm/leaf-disease-images", "config": "default", "split": "train"},
    ).json()
    assert first["features"][0]["type"] == {"_type": "Image"}
    assert set(first["rows"][0]["row"]["image"]) == {"src", "height", "width"}


def test_viewer_is_not_ready_until_a_day_after_creation(own_hub: HubEmulator) -> None:
    params = {"dataset": SLOW_VIEWER}
    own_hub.now = at("2024-03-04T09:00:00")
    early = httpx.get(f"{own_hub.url}/splits", params=params)
    own_hub.now = at("2024-03-04T18:00:00")
    later = httpx.get(f"{own_hub.url}/splits", params=params)
    assert early.status_code == 500
    assert early.headers["X-Error-Code"] == "ResponseNotReady"
    assert "not ready" in early.json()["error"]
    assert later.status_code == 200


def test_unavailable_knob_answers_503_about_that_dataset_only() -> None:
    with HubEmulator(now=AFTER_ALL, unavailable=[SQUAD]) as hub:
        api = HfApi(endpoint=hub.url, token=False)
        with pytest.raises(HfHubHTTPError) as raised:
            api.dataset_info(SQUAD)
        assert raised.value.response.status_code == 503
        for path in (f"/datasets/{SQUAD}/resolve/main/README.md", "/splits"):
            answer = httpx.get(f"{hub.url}{path}", params={"dataset": SQUAD})
            assert answer.status_code == 503, path
        others = [d.id for d in api.list_datasets() if d.id != SQUAD]
        assert SQUAD in {d.id for d in api.list_datasets()}  # it still lists
        assert api.dataset_info(others[0]).id == others[0]
        hub.configure(unavailable=())
        assert api.dataset_info(SQUAD).id == SQUAD


def test_viewer_not_ready_knob(tmp_path: Path) -> None:
    with HubEmulator(now=AFTER_ALL, viewer_not_ready=[SQUAD]) as hub:
        answer = httpx.get(f"{hub.url}/first-rows", params={"dataset": SQUAD})
        other = httpx.get(f"{hub.url}/is-valid", params={"dataset": MULTI})
    assert answer.status_code == 500 and answer.headers["X-Error-Code"] == "ResponseNotReady"
    assert other.status_code == 200


# --- bad requests and faults ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/api/datasets", {"sort": "stars"}, 400, None),
        ("/api/datasets", {"limit": "ten"}, 400, None),
        ("/api/datasets", {"direction": "2"}, 400, None),
        ("/api/datasets", {"expand": "everything"}, 400, None),
        ("/api/datasets", {"cursor": "!!not-a-cursor!!"}, 400, None),
        ("/api/datasets/nobody/nothing", {}, 401, "RepoNotFound"),
        ("/api/datasets/a/b/c", {}, 404, None),
        ("/datasets/nobody/nothing/resolve/main/README.md", {}, 401, "RepoNotFound"),
        ("/splits", {}, 422, "MissingRequiredParameter"),
        ("/splits", {"dataset": "nobody/nothing"}, 401, "ExternalUnauthenticatedError"),
        ("/first-rows", {"dataset": SQUAD, "config": "plain_text"}, 422, None),
        ("/first-rows", {"dataset": SQUAD, "config": "nope", "split": "train"}, 404, None),
        ("/rows", {**SQUAD_TRAIN, "length": 101}, 422, "InvalidParameter"),
        ("/rows", {**SQUAD_TRAIN, "offset": -1}, 422, "InvalidParameter"),
        ("/rows", {**SQUAD_TRAIN, "offset": "a"}, 422, "InvalidParameter"),
        ("/rows", {**SQUAD_TRAIN, "split": "x"}, 404, "ResponseNotFound"),
        ("/no/such/page", {}, 404, None),
    ],
)
def test_bad_requests_get_real_looking_json_errors(
    viewer: httpx.Client, path: str, params: dict, status: int, code: str | None
) -> None:
    answer = viewer.get(path, params=params)
    assert answer.status_code == status
    assert isinstance(answer.json()["error"], str) and answer.json()["error"]
    if code:
        assert answer.headers["X-Error-Code"] == code
    # the server survives and keeps answering
    assert viewer.get("/healthcheck").text == "ok"


def test_unknown_dataset_is_404_when_authenticated(viewer: httpx.Client) -> None:
    headers = {"Authorization": "Bearer hf_test"}
    assert viewer.get("/api/datasets/nobody/nothing", headers=headers).status_code == 404
    answer = viewer.get("/splits", params={"dataset": "nobody/nothing"}, headers=headers)
    assert answer.status_code == 404
    assert answer.headers["X-Error-Code"] == "ExternalAuthenticatedError"


def test_rate_limit_answers_429_with_retry_after() -> None:
    with HubEmulator(now=AFTER_ALL, rate_429=1.0, retry_after=2.5) as hub:
        answer = httpx.get(f"{hub.url}/api/datasets/{SQUAD}")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert "error" in answer.json()


def test_faults_are_seeded_and_a_retried_request_can_succeed() -> None:
    def statuses(seed: int) -> list[int]:
        with (
            HubEmulator(now=AFTER_ALL, rate_429=0.3, rate_5xx=0.3, seed=seed) as hub,
            httpx.Client() as client,
        ):
            return [client.get(f"{hub.url}/api/datasets/{SQUAD}").status_code for _ in range(30)]

    first, again, other = statuses(1), statuses(1), statuses(2)
    assert first == again
    assert first != other
    assert 200 in first and 429 in first and any(s >= 500 for s in first)


def test_other_methods_get_a_json_405_with_allow(viewer: httpx.Client) -> None:
    answer = viewer.post(f"/api/datasets/{SQUAD}")
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) == {"GET", "HEAD"}
    assert "POST" in answer.json()["error"]


def test_a_failing_handler_answers_500_and_the_server_keeps_serving(tmp_path: Path) -> None:
    # dataset_infos.json whose config is not a mapping: the emulator's own code fails on it.
    folder = tmp_path / "datasets" / "odd" / "infos"
    folder.mkdir(parents=True)
    (folder / "dataset_infos.json").write_text('{"default": 5}')
    index = {
        "id": "odd/infos",
        "created_at": "2024-05-01T10:00:00.000Z",
        "sha": "c" * 40,
        "has_card": False,
        "has_dataset_infos": True,
        "configs": [{"name": "default", "status": "ok", "splits": {"train": 1}}],
    }
    (tmp_path / "index.jsonl").write_text(json.dumps(index) + "\n")
    with HubEmulator(tmp_path, now=AFTER_ALL) as hub:
        answer = httpx.get(f"{hub.url}/info", params={"dataset": "odd/infos", "config": "default"})
        healthy = httpx.get(f"{hub.url}/healthcheck")
        statuses = [e["status"] for e in hub.request_log]
    assert answer.status_code == 500
    assert answer.headers["X-Error-Code"] == "UnexpectedApiError"
    assert answer.headers["X-Request-Id"] and answer.json()["error"]
    assert healthy.text == "ok"
    assert statuses == [500, 200]


def test_configure_changes_knobs_between_requests_and_checks_them() -> None:
    with HubEmulator(now=AFTER_ALL) as hub, httpx.Client() as client:
        url = f"{hub.url}/api/datasets/{SQUAD}"
        assert client.get(url).status_code == 200
        hub.configure(rate_429=1.0, gated=[SQUAD])
        assert client.get(url).status_code == 429
        hub.configure(rate_429=0.0)
        assert client.get(url).json()["gated"] == "manual"
        with pytest.raises(ValueError):
            hub.configure(rate_429=0.7, rate_5xx=0.7)
        with pytest.raises(ValueError):
            hub.configure(seed=3)
        assert hub.status_counts == {200: 2, 429: 1}


def test_held_requests_go_once_enough_are_in_flight() -> None:
    async def three(url: str) -> list[int]:
        async with httpx.AsyncClient() as client:
            answers = await asyncio.gather(*(client.get(url) for _ in range(3)))
        return [a.status_code for a in answers]

    with HubEmulator(now=AFTER_ALL) as hub:
        hub.hold(3)
        assert asyncio.run(three(f"{hub.url}/healthcheck")) == [200, 200, 200]
        assert hub.peak_in_flight == 3
        assert httpx.get(f"{hub.url}/healthcheck").status_code == 200  # the hold is over
