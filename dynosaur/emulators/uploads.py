"""Dataset repos pushed to the emulated Hub: the endpoints ``huggingface_hub`` uses to create a
repo, commit files, tag a commit and read the files back.

What is emulated, as the real Hub answers it:

- ``POST /api/repos/create`` (409 ``RepoAlreadyExists`` when it exists, which ``create_repo(...,
  exist_ok=True)`` accepts);
- ``POST /api/validate-yaml`` (the card's metadata check ``create_commit`` makes first);
- ``POST /api/datasets/{id}/preupload/{revision}``: every file is uploaded ``regular`` (inline
  in the commit, base64) and the answer carries the stored file's git blob id as ``oid``, so the
  client itself drops files that did not change and skips a commit that changes nothing;
- ``POST /api/datasets/{id}/commit/{revision}`` (the ndjson payload: a header, then ``file``,
  ``deletedFile`` and ``deletedFolder`` lines);
- ``POST /api/datasets/{id}/tag/{revision}`` and ``GET /api/datasets/{id}/refs``;
- ``GET``/``HEAD /datasets/{id}/resolve/{revision}/{path}`` and
  ``GET /api/datasets/{id}/revision/{revision}`` for pushed repos (the snapshot's datasets are
  served by :mod:`.hub` as before).

Not emulated: LFS and Xet transfers (the real Hub asks for them for large or binary files; here
everything goes inline), pull requests, branches other than ``main``. Writes need a token
(``Authorization``), as on the real Hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dynosaur.emulators._server import json_response
from dynosaur.emulators.repos import REPO_NOT_FOUND, ErrorAnswer, authenticated
from dynosaur.emulators.snapshot import git_blob_sha

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Commit:
    """One commit of a pushed repo: its id, message, parent and the full tree it leaves."""

    oid: str
    message: str
    parent: str | None
    files: dict[str, bytes]
    created_at: float


@dataclass
class PushedRepo:
    """A dataset repo created through the API: commits on ``main`` (oldest first) and tags."""

    repo_id: str
    private: bool = False
    commits: list[Commit] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def head(self) -> Commit | None:
        return self.commits[-1] if self.commits else None

    def commit(self, revision: str) -> Commit | None:
        """The commit a revision names: ``main``, a tag or a commit id (None when unknown)."""
        if revision == "main":
            return self.head
        oid = self.tags.get(revision, revision)
        return next((c for c in self.commits if c.oid == oid), None)


class PushedRepos:
    """Every repo pushed to this emulator, shared by its handlers (thread-safe)."""

    def __init__(self) -> None:
        self._repos: dict[str, PushedRepo] = {}
        self._lock = threading.Lock()

    def get(self, repo_id: str) -> PushedRepo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def create(self, repo_id: str, private: bool) -> bool:
        """Create ``repo_id``; False when it already exists."""
        with self._lock:
            if repo_id in self._repos:
                return False
            self._repos[repo_id] = PushedRepo(repo_id, private)
            return True

    def commit(
        self, repo: PushedRepo, message: str, changes: list[tuple[str, str, bytes | None]]
    ) -> Commit:
        """Apply ``changes`` (kind, path, content) on top of ``main`` as one new commit."""
        with self._lock:
            head = repo.head
            files = dict(head.files) if head else {}
            for kind, path, content in changes:
                if kind == "file" and content is not None:
                    files[path] = content
                elif kind == "deletedFile":
                    files.pop(path, None)
                elif kind == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            digest = hashlib.sha1(
                json.dumps(
                    [head.oid if head else None, message, sorted(files), len(repo.commits)]
                ).encode()
                + b"".join(files[p] for p in sorted(files))
            ).hexdigest()
            commit = Commit(digest, message, head.oid if head else None, files, time.time())
            repo.commits.append(commit)
            return commit

    def summary(self) -> dict[str, dict[str, Any]]:
        """Each pushed repo's commit count and tags."""
        with self._lock:
            return {
                repo_id: {"commits": len(repo.commits), "tags": dict(repo.tags)}
                for repo_id, repo in self._repos.items()
            }

    def tag(self, repo: PushedRepo, tag: str, oid: str) -> None:
        with self._lock:
            if tag in repo.tags:
                raise ErrorAnswer(409, f"Tag {tag} already exists", "TagAlreadyExists")
            repo.tags[tag] = oid


def _repo_id(request: Request) -> str:
    params = request.path_params
    return f"{params['namespace']}/{params['name']}"


def _need_token(request: Request) -> None:
    if not authenticated(request):
        raise ErrorAnswer(401, "Invalid credentials in Authorization header", "Unauthorized")


class UploadAPI:
    """The write endpoints and the read-back of pushed repos. ``fallback_resolve`` and
    ``fallback_info`` answer for ids that were never pushed (the snapshot's datasets)."""

    def __init__(self, fallback_resolve: Handler, fallback_info: Handler) -> None:
        self.repos = PushedRepos()
        self._fallback_resolve = fallback_resolve
        self._fallback_info = fallback_info

    def routes(self) -> list[BaseRoute]:
        """Routes to place before the Hub API's: they answer pushed repos and pass the rest on."""
        repo = "/api/datasets/{namespace}/{name}"
        return [
            Route("/api/repos/create", self.create_repo, methods=["POST"]),
            Route("/api/validate-yaml", self.validate_yaml, methods=["POST"]),
            Route(repo + "/preupload/{revision}", self.preupload, methods=["POST"]),
            Route(repo + "/commit/{revision}", self.commit, methods=["POST"]),
            Route(repo + "/tag/{revision}", self.tag, methods=["POST"]),
            Route(repo + "/refs", self.refs, methods=["GET"]),
            Route(repo + "/revision/{revision:path}", self.info, methods=["GET"]),
            Route(
                "/datasets/{namespace}/{name}/resolve/{revision}/{filename:path}",
                self.resolve,
                methods=["GET"],
            ),
        ]

    def _repo(self, request: Request) -> PushedRepo:
        found = self.repos.get(_repo_id(request))
        if found is None:
            raise ErrorAnswer(404, REPO_NOT_FOUND, "RepoNotFound")
        return found

    def _revision(self, repo: PushedRepo, revision: str) -> Commit:
        commit = repo.commit(revision)
        if commit is None:
            raise ErrorAnswer(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    async def create_repo(self, request: Request) -> Response:
        _need_token(request)
        body = await request.json()
        if body.get("type") != "dataset":
            raise ErrorAnswer(400, "this emulator hosts dataset repos only", "BadRequest")
        name, organization = body.get("name"), body.get("organization")
        if not name:
            raise ErrorAnswer(400, "name is required", "BadRequest")
        repo_id = f"{organization or 'user'}/{name}"
        private = body.get("visibility", "public") == "private" or bool(body.get("private"))
        url = f"{request.base_url}datasets/{repo_id}"
        if not self.repos.create(repo_id, private):
            # The real 409 carries the repo's url too: create_repo(exist_ok=True) returns it.
            message = "You already created this dataset repo"
            return json_response(
                {"error": message, "url": url},
                409,
                {"X-Error-Code": "RepoAlreadyExists", "X-Error-Message": message},
            )
        return json_response({"url": url, "name": repo_id})

    async def validate_yaml(self, request: Request) -> Response:
        await request.json()
        return json_response({"errors": [], "warnings": []})

    async def preupload(self, request: Request) -> Response:
        _need_token(request)
        repo = self._repo(request)
        head = repo.commit(request.path_params["revision"])
        stored = head.files if head else {}
        files = (await request.json()).get("files", [])
        answer = [
            {
                "path": f["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": git_blob_sha(stored[f["path"]]) if f["path"] in stored else None,
            }
            for f in files
        ]
        return json_response({"files": answer})

    async def commit(self, request: Request) -> Response:
        _need_token(request)
        repo = self._repo(request)
        if request.path_params["revision"] != "main":
            raise ErrorAnswer(400, "the emulator commits to main only", "BadRequest")
        message = ""
        changes: list[tuple[str, str, bytes | None]] = []
        for line in (await request.body()).splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value.get("summary", "")
                parent = value.get("parentCommit")
                if parent is not None and repo.head is not None and parent != repo.head.oid:
                    raise ErrorAnswer(412, "A commit has happened since", "PreconditionFailed")
            elif key == "file":
                changes.append(("file", value["path"], base64.b64decode(value["content"])))
            elif key in ("deletedFile", "deletedFolder"):
                changes.append((key, value["path"], None))
            else:
                raise ErrorAnswer(400, f"the emulator does not take {key!r} lines", "BadRequest")
        commit = self.repos.commit(repo, message, changes)
        url = f"{request.base_url}datasets/{repo.repo_id}/commit/{commit.oid}"
        return json_response(
            {"success": True, "commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None}
        )

    async def tag(self, request: Request) -> Response:
        _need_token(request)
        repo = self._repo(request)
        commit = self._revision(repo, request.path_params["revision"])
        body = await request.json()
        self.repos.tag(repo, str(body["tag"]), commit.oid)
        return json_response({"name": body["tag"]})

    async def refs(self, request: Request) -> Response:
        repo = self._repo(request)
        head = repo.head
        branches = (
            [{"name": "main", "ref": "refs/heads/main", "targetCommit": head.oid}] if head else []
        )
        tags = [
            {"name": name, "ref": f"refs/tags/{name}", "targetCommit": oid}
            for name, oid in sorted(repo.tags.items())
        ]
        return json_response(
            {"branches": branches, "tags": tags, "converts": [], "pullRequests": []}
        )

    async def info(self, request: Request) -> Response:
        if self.repos.get(_repo_id(request)) is None:
            return await self._fallback_info(request)
        repo = self._repo(request)
        commit = self._revision(repo, request.path_params["revision"])
        return json_response(
            {
                "id": repo.repo_id,
                "sha": commit.oid,
                "private": repo.private,
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            }
        )

    async def resolve(self, request: Request) -> Response:
        if self.repos.get(_repo_id(request)) is None:
            return await self._fallback_resolve(request)
        repo = self._repo(request)
        commit = self._revision(repo, request.path_params["revision"])
        filename = request.path_params["filename"]
        content = commit.files.get(filename)
        if content is None:
            raise ErrorAnswer(
                404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid}
            )
        return Response(
            content,
            headers={
                "ETag": f'"{git_blob_sha(content)}"',
                "X-Repo-Commit": commit.oid,
                "Accept-Ranges": "bytes",
            },
            media_type="application/octet-stream",
        )
