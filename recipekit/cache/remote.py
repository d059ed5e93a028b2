"""A remote cache on any fsspec URL (s3://, gs://, az://, file:// on a shared mount).

Layout under the URL (content-addressed, so two writers of one key can never mix their files):

    blobs/<sha[:2]>/<sha256>        every file of every entry, named by the sha256 of its bytes
    entries/<key[:2]>/<key>.json    an entry's meta.json ("files": name -> sha256), uploaded last

Write-back uploads the blobs first and the entry's meta last: a reader that finds a meta finds
every blob it names. Read-through downloads the meta and the blobs into a local cache writer and
checks every digest before the entry is committed locally; an entry that fails any check is
reported and ignored (the step is rebuilt). Credentials come only from fsspec's own mechanisms
(environment, config files, instance roles): the URL is shown redacted and never recorded.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from recipekit.cache.digests import file_sha256

MODES = ("read-write", "read-only", "off")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_META_BYTES = 32 << 20


class RemoteRejected(Exception):
    """A remote entry that failed verification (its meta or one of its blobs: `blob`)."""

    def __init__(self, msg: str, blob: str | None = None) -> None:
        super().__init__(msg)
        self.blob = blob


def redact(url: str) -> str:
    """The URL without user, password or query string (which may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def safe_name(name: Any) -> bool:
    """A file name an entry may hold: relative, no `..`, no backslash or NUL."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    p = PurePosixPath(name)
    return not p.is_absolute() and all(part not in ("", ".", "..") for part in p.parts)


def check_meta(key: str, raw: bytes) -> dict[str, Any]:
    """The parsed meta of remote entry `key`, or RemoteRejected saying what is wrong with it."""
    if len(raw) > MAX_META_BYTES:
        raise RemoteRejected(f"meta is {len(raw)} bytes (limit {MAX_META_BYTES})")
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise RemoteRejected(f"meta is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("key") != key:
        raise RemoteRejected("meta does not name this key")
    files = meta.get("files")
    if not isinstance(files, dict):
        raise RemoteRejected("meta has no file list")
    for name, sha in files.items():
        if not safe_name(name) or name == "meta.json":
            raise RemoteRejected(f"unsafe file name {name!r}")
        if not isinstance(sha, str) or not _HEX64.match(sha):
            raise RemoteRejected(f"{name}: digest {sha!r} is not a sha256")
    return meta


@dataclass
class RemoteCache:
    """The remote cache at `url`. `read_only`: fetch but never upload (an untrusted CI job)."""

    url: str
    read_only: bool = False

    def __post_init__(self) -> None:
        self._fs: Any = None
        self._root = ""

    @property
    def shown(self) -> str:
        return redact(self.url)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            self._fs, self._root = fsspec.core.url_to_fs(self.url)
            self._root = self._root.rstrip("/")
        return self._fs

    def _path(self, *parts: str) -> str:
        _ = self.fs
        return "/".join([self._root, *parts])

    def meta_path(self, key: str) -> str:
        return self._path("entries", key[:2], f"{key}.json")

    def blob_path(self, sha: str) -> str:
        return self._path("blobs", sha[:2], sha)

    @property
    def _local(self) -> bool:
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, tuple | list) else (protocol,))

    # ---- reading ------------------------------------------------------------------------------

    def read_meta(self, key: str) -> dict[str, Any] | None:
        """The verified-looking meta of `key` (None if absent); RemoteRejected if malformed."""
        try:
            raw = self.fs.cat_file(self.meta_path(key))
        except FileNotFoundError:
            return None
        return check_meta(key, raw)

    def download(self, meta: dict[str, Any], work: Path) -> None:
        """Every blob the meta names into `work`, each digest checked; RemoteRejected on any mismatch."""
        for name, sha in sorted(meta["files"].items()):
            dest = work / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.fs.get_file(self.blob_path(sha), str(dest))
            except FileNotFoundError:
                raise RemoteRejected(f"{name}: blob {sha[:12]} is missing") from None
            got = file_sha256(dest)
            if got != sha:
                raise RemoteRejected(f"{name}: content sha256 {got[:12]} != recorded {sha[:12]}", blob=sha)

    def fetch(self, key: str, store: Any) -> Any:
        """Read-through: the remote entry `key` verified and committed into the local `store`, or None."""
        meta = self.read_meta(key)
        if meta is None:
            return None
        with store.writer(key) as work:
            self.download(meta, work)
            kept = {k: v for k, v in meta.items() if k not in ("key", "files", "created")}
            return store.commit(key, work, {**kept, "origin": "remote"})

    # ---- writing ------------------------------------------------------------------------------

    def _put(self, local: Path | None, data: bytes | None, dest: str) -> None:
        """Upload a file (or bytes) so that `dest` appears whole: object stores' PUT is atomic;
        on a file system it is written beside and renamed."""
        fs = self.fs
        target = f"{dest}.{uuid.uuid4().hex}.part" if self._local else dest
        fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
        if local is not None:
            fs.put_file(str(local), target)
        else:
            fs.pipe_file(target, data)
        if target != dest:
            os.replace(target, dest)

    def push(self, entry: Any) -> bool:
        """Write-back: blobs first, meta last. False when read-only or already there."""
        if self.read_only or self.fs.exists(self.meta_path(entry.key)):
            return False
        for name, sha in sorted(entry.digests.items()):
            if name != "meta.json" and not self.fs.exists(self.blob_path(sha)):
                self._put(entry.path / name, None, self.blob_path(sha))
        files = {n: d for n, d in entry.digests.items() if n != "meta.json"}
        doc = {**{k: v for k, v in entry.meta.items() if k != "origin"}, "key": entry.key, "files": files}
        self._put(None, json.dumps(doc, indent=1, sort_keys=True).encode(), self.meta_path(entry.key))
        return True

    # ---- administration (recipekit cache --remote) --------------------------------------------

    def keys(self) -> Iterator[str]:
        try:
            found = self.fs.find(self._path("entries"))
        except FileNotFoundError:
            return
        for path in sorted(found):
            name = path.rsplit("/", 1)[-1]
            if name.endswith(".json") and _HEX64.match(name[:-5]):
                yield name[:-5]

    def blobs(self) -> dict[str, dict[str, Any]]:
        """sha256 -> fsspec info of every blob (and of stray upload parts)."""
        try:
            found = self.fs.find(self._path("blobs"), detail=True)
        except FileNotFoundError:
            return {}
        return {path.rsplit("/", 1)[-1]: info for path, info in found.items()}

    def verify(self, key: str) -> str | None:
        """What is wrong with remote entry `key` (None: meta well-formed and every blob's digest right)."""
        import tempfile

        try:
            meta = self.read_meta(key)
            if meta is None:
                return "meta is missing"
            with tempfile.TemporaryDirectory(prefix="recipekit-verify-") as tmp:
                self.download(meta, Path(tmp))
        except RemoteRejected as exc:
            return str(exc)
        return None

    def forget(self, key: str, why: RemoteRejected) -> bool:
        """Drop a rejected entry (its meta and the bad blob) so the rebuilt one can be uploaded."""
        if self.read_only:
            return False
        for path in [self.meta_path(key), *([self.blob_path(why.blob)] if why.blob else [])]:
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass
        return True

    def delete(self, key: str) -> None:
        if not self.read_only:
            self.fs.rm_file(self.meta_path(key))


def check_url(url: str) -> str | None:
    """Why `url` cannot be a remote cache here (unknown protocol, its fsspec package missing), or None."""
    import importlib.util

    from fsspec.core import split_protocol
    from fsspec.registry import known_implementations

    protocol = split_protocol(url)[0] or "file"
    impl = known_implementations.get(protocol)
    if impl is None:
        return f"unknown protocol {protocol}:// (fsspec knows: s3, gs, az, abfs, file, ...)"
    module = impl["class"].rsplit(".", 1)[0]
    if importlib.util.find_spec(module.split(".")[0]) is None:
        return f"{protocol}:// needs the {module.split('.')[0]} package ({impl.get('err', 'not installed')})"
    return None


def url_and_mode(values: list[str] | None, env_url: str | None) -> tuple[str | None, str]:
    """(url, mode) from the --remote-cache values: a URL and/or a mode word (read-only, read-write,
    off); the URL defaults to $RECIPEKIT_REMOTE_CACHE. Raises ValueError with the reason."""
    modes = [v for v in values or [] if v in MODES]
    urls = [v for v in values or [] if v not in MODES]
    if len(urls) > 1 or len(modes) > 1:
        raise ValueError(f"expected at most one URL and one of {', '.join(MODES)}, got {', '.join(values or [])}")
    url, mode = (urls[0] if urls else env_url) or None, modes[0] if modes else "read-write"
    if mode == "off":
        return None, mode
    if url is None and modes:
        raise ValueError(f"{mode} needs a URL (--remote-cache URL or RECIPEKIT_REMOTE_CACHE)")
    why = check_url(url) if url else None
    if why:
        raise ValueError(f"{redact(url)}: {why}")
    return url, mode


def from_settings(settings: dict[str, Any]) -> RemoteCache | None:
    """The remote cache a build's settings name (`remote_cache`, `remote_mode`), or None."""
    url = settings.get("remote_cache")
    if not url or settings.get("remote_mode") == "off":
        return None
    return RemoteCache(url, read_only=settings.get("remote_mode") == "read-only")
