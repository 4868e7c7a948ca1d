"""A small Hugging Face Hub stand-in on 127.0.0.1, so tests drive the real `huggingface_hub` client end to end.

It answers the endpoints huggingface_hub 2.x calls for `snapshot_download` (model info, the recursive tree
listing, HEAD/GET on `resolve/` with ETag, X-Repo-Commit and Content-Length, and `Range` requests, which the
client sends to resume a partial file) and for `create_repo` + `upload_folder` (create, validate-yaml,
preupload, the NDJSON commit with base64 file contents, whoami). Point a client at it with HF_ENDPOINT.

Access follows the Hub's answers: a missing repo is 404 `RepoNotFound`; a private one without an accepted
token is 401 `RepoNotFound` (the Hub never says "private"); a gated one lists its files but refuses
downloads with 403 `GatedRepo` unless the token was granted access; a token the server does not know is
401 "Invalid credentials in Authorization header".

Every file is answered as a regular (non-LFS) upload: the preupload step says `regular` for all files, so
uploads travel base64 inside the commit. Test files stay small (the Hub's LFS threshold is 10 MB); the
LFS/Xet upload protocols are not implemented.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

INVALID_TOKEN = "Invalid credentials in Authorization header"


@dataclass
class Repo:
    files: dict[str, bytes] = field(default_factory=dict)
    private: bool = False
    gated: bool = False
    granted: set[str] = field(default_factory=set)  # tokens that accepted a gated repo's terms
    commits: list[str] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1] if self.commits else "0" * 40

    def commit(self, files: dict[str, bytes], message: str) -> str:
        self.files.update(files)
        digest = hashlib.sha1(f"{len(self.commits)}{message}{sorted(self.files)}".encode()).hexdigest()
        self.commits.append(digest)
        return digest


def git_oid(data: bytes) -> str:
    """The git blob id the Hub reports as a file's `oid` (and its ETag for non-LFS files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubStandIn:
    """Start with `with HubStandIn() as hub:`; `hub.url` is the HF_ENDPOINT."""

    def __init__(self, tokens: set[str] | None = None, user: str = "tester", bytes_per_s: float | None = None):
        self.repos: dict[str, Repo] = {}
        self.tokens = tokens if tokens is not None else {"hf_test_token"}
        self.user = user
        self.bytes_per_s = bytes_per_s  # throttle file bodies, so a test can interrupt a download
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) seen
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_repo(self, repo_id: str, files: dict[str, bytes], **options: Any) -> Repo:
        repo = Repo(**options)
        repo.commit(files, "initial commit")
        self.repos[repo_id] = repo
        return repo

    def __enter__(self) -> HubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


ROUTES = [
    ("GET", re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)"), "model_info"),
    ("GET", re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<path>/.*)?"), "tree"),
    ("HEAD", re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"), "resolve"),
    ("GET", re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"), "resolve"),
    ("GET", re.compile(r"/api/whoami-v2"), "whoami"),
    ("POST", re.compile(r"/api/repos/create"), "create"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("POST", re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)"), "preupload"),
    ("POST", re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)"), "commit"),
]


def _handler_for(hub: HubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_HEAD(self) -> None:
            self._route("HEAD")

        def do_POST(self) -> None:
            self._route("POST")

        def _route(self, method: str) -> None:
            path = unquote(urlparse(self.path).path)
            with hub.lock:
                hub.requests.append((method, path, {k.lower(): v for k, v in self.headers.items()}))
            for verb, pattern, name in ROUTES:
                match = pattern.fullmatch(path)
                if verb == method and match:
                    return getattr(self, name)(method, **{k: v for k, v in match.groupdict().items() if v})
            self._send(404, {"error": f"no route for {method} {path}"})

        # -- helpers -------------------------------------------------------------------------------------

        def _send(self, code: int, body: Any, headers: dict[str, str] | None = None, head: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def _token(self) -> str | None:
            auth = self.headers.get("authorization") or ""
            return auth[7:] if auth.lower().startswith("bearer ") else None

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def _repo(self, repo_id: str, method: str, download: bool = False) -> Repo | None:
            """The repo, or None after answering as the Hub would (invalid token, missing, private, gated)."""
            token, head = self._token(), method == "HEAD"
            if token is not None and token not in hub.tokens:
                self._send(401, {"error": INVALID_TOKEN}, {"X-Error-Message": INVALID_TOKEN}, head)
                return None
            repo = hub.repos.get(repo_id)
            if repo is None or (repo.private and token is None):
                code = 404 if repo is None else 401
                self._send(code, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}, head)
                return None
            if download and repo.gated and token not in repo.granted:
                message = f"Access to model {repo_id} is restricted. You must have access to it and be authenticated."
                self._send(403, {"error": message}, {"X-Error-Code": "GatedRepo", "X-Error-Message": message}, head)
                return None
            return repo

        def _revision_ok(self, repo: Repo, rev: str, head: bool = False) -> bool:
            if rev in ("main", repo.sha) or rev in repo.commits:
                return True
            self._send(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"}, head)
            return False

        # -- download ------------------------------------------------------------------------------------

        def model_info(self, method: str, repo: str, rev: str) -> None:
            found = self._repo(repo, method)
            if found and self._revision_ok(found, rev):
                siblings = [{"rfilename": name} for name in sorted(found.files)]
                body = {"id": repo, "sha": found.sha, "private": found.private, "gated": found.gated}
                self._send(200, {**body, "siblings": siblings, "tags": [], "downloads": 0, "likes": 0})

        def tree(self, method: str, repo: str, rev: str, path: str = "") -> None:
            found = self._repo(repo, method)
            if found and self._revision_ok(found, rev):
                entries = [
                    {"type": "file", "path": name, "size": len(data), "oid": git_oid(data)}
                    for name, data in sorted(found.files.items())
                ]
                self._send(200, entries)

        def resolve(self, method: str, repo: str, rev: str, path: str) -> None:
            head = method == "HEAD"
            found = self._repo(repo, method, download=True)
            if not found or not self._revision_ok(found, rev, head):
                return
            if path not in found.files:
                headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": found.sha}
                return self._send(404, {"error": "Entry not found"}, headers, head)
            data = found.files[path]
            start, status = 0, 200
            ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("range") or "")
            if ranged and not head:
                start, status = int(ranged.group(1)), 206
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("ETag", f'"{git_oid(data)}"')
            self.send_header("X-Repo-Commit", found.sha)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if not head:
                self._stream(data[start:])

        def _stream(self, data: bytes) -> None:
            chunk = 64 * 1024
            for offset in range(0, len(data), chunk):
                try:
                    self.wfile.write(data[offset : offset + chunk])
                except (BrokenPipeError, ConnectionResetError):
                    return
                if hub.bytes_per_s:
                    time.sleep(chunk / hub.bytes_per_s)

        # -- upload --------------------------------------------------------------------------------------

        def whoami(self, method: str) -> None:
            token = self._token()
            if token not in hub.tokens:
                return self._send(401, {"error": INVALID_TOKEN}, {"X-Error-Message": INVALID_TOKEN})
            self._send(200, {"type": "user", "name": hub.user, "orgs": [], "auth": {"type": "access_token"}})

        def create(self, method: str) -> None:
            payload = json.loads(self._body() or b"{}")
            if self._token() not in hub.tokens:
                return self._send(401, {"error": INVALID_TOKEN}, {"X-Error-Message": INVALID_TOKEN})
            repo_id = f"{payload.get('organization') or hub.user}/{payload['name']}"
            if repo_id in hub.repos:
                return self._send(409, {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"})
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            hub.repos[repo_id] = Repo(private=private)
            self._send(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})

        def validate_yaml(self, method: str) -> None:
            import yaml

            content = json.loads(self._body() or b"{}").get("content", "")
            match = re.match(r"---\n(.*?)\n---", content, re.S)
            try:
                meta = yaml.safe_load(match.group(1)) if match else {}
            except yaml.YAMLError as exc:
                return self._send(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
            if not isinstance(meta, dict):
                return self._send(400, {"errors": [{"message": "metadata must be a mapping"}]})
            self._send(200, {"errors": [], "warnings": []})

        def preupload(self, method: str, repo: str, rev: str) -> None:
            found = self._repo(repo, method)
            if found is None:
                return
            files = json.loads(self._body())["files"]
            modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            self._send(200, {"files": modes, "commitOid": found.sha})

        def commit(self, method: str, repo: str, rev: str) -> None:
            found = self._repo(repo, method)
            if found is None:
                return
            if self._token() is None:
                return self._send(401, {"error": "write access needs a token"}, {"X-Error-Code": "RepoNotFound"})
            files, message = {}, ""
            for line in self._body().splitlines():
                item = json.loads(line)
                if item["key"] == "header":
                    message = item["value"].get("summary", "")
                elif item["key"] == "file":
                    value = item["value"]
                    files[value["path"]] = base64.b64decode(value["content"])
                else:
                    return self._send(400, {"error": f"the stand-in does not implement {item['key']}"})
            sha = found.commit(files, message)
            self._send(200, {"commitUrl": f"{hub.url}/{repo}/commit/{sha}", "commitOid": sha, "success": True})

    return Handler
