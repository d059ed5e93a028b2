"""`recipekit cache ls|du|verify|gc`: what the cache holds, whether every byte is intact, clean-up."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recipekit cache", description="Inspect, verify and clean the step cache.")
    p.add_argument(
        "--cache", default=os.environ.get("RECIPEKIT_CACHE", "cache"), help="cache folder (default: ./cache)"
    )
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument(
        "--remote-cache",
        action="append",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="act on the remote cache at this fsspec URL instead (s3://bucket/prefix, ...); ages are since upload",
    )
    p.add_argument("--remote-cache", action="append", metavar="URL", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("ls", parents=[remote], help="entries per recipe and step: size, time since last use, key")
    sub.add_parser("du", parents=[remote], help="sizes per step kind and in total")
    v = sub.add_parser("verify", parents=[remote], help="re-hash every file; exit 1 listing corrupt entries")
    v.add_argument("--repair", action="store_true", help="remove the corrupt entries (the next build rebuilds them)")
    g = sub.add_parser("gc", parents=[remote], help="remove unused entries (never one a running build holds)")
    g.add_argument("--older-than", help="entries unused for this long, e.g. 30d, 12h")
    g.add_argument("--max-size", help="then the least recently used until the cache fits, e.g. 20G")
    return p


def _ls(store) -> int:
    from recipekit.cache.maintain import human, rows, span

    for r in rows(store):
        print(f"{r.recipe:<28} {r.step:<36} {human(r.size):>8} {span(r.age):>5}  {r.entry.key[:16]}")
    return 0


def _du(store) -> int:
    from recipekit.cache.maintain import human, rows, total_size

    per: dict[str, list[int]] = {}
    for r in rows(store):
        per.setdefault(r.step.split(":", 1)[0], []).append(r.size)
    for kind, sizes in sorted(per.items()):
        print(f"{kind:<10} {len(sizes):>5} entries {human(sum(sizes)):>9}")
    print(
        f"{'total':<10} {sum(len(s) for s in per.values()):>5} entries {human(total_size(store.root)):>9}  {store.root}"
    )
    return 0


def _verify(store, repair: bool) -> int:
    from recipekit.cache.maintain import verify

    bad = verify(store, repair)
    for entry, problem in bad:
        print(f"CORRUPT {entry.key} {entry.meta.get('task', '?')}: {problem}" + ("  (removed)" if repair else ""))
    n = sum(1 for _ in store.entries()) + (len(bad) if repair else 0)
    print(f"verified {n} entries: {len(bad)} corrupt" + ("" if not bad or repair else " (--repair removes them)"))
    return 1 if bad else 0


def _gc_limits(args) -> tuple[float | None, int | None]:
    from recipekit.cache.maintain import parse_age, parse_size
    from recipekit.core.errors import UsageError

    try:
        older = parse_age(args.older_than) if args.older_than else None
        size = parse_size(args.max_size) if args.max_size else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if older is None and size is None:
        raise UsageError("cache gc: give --older-than AGE and/or --max-size SIZE")
    return older, size


def _remote(args) -> int:
    """The same actions on a remote cache (recipekit/cache/remote_admin.py)."""
    from recipekit.cache import remote_admin
    from recipekit.cache.remote import RemoteCache, url_and_mode
    from recipekit.core.errors import UsageError

    try:
        url, mode = url_and_mode(args.remote_cache, None)
    except ValueError as exc:
        raise UsageError(f"--remote-cache: {exc}") from None
    if url is None:
        raise UsageError("--remote-cache: give the URL of the remote cache")
    remote = RemoteCache(url, read_only=mode == "read-only")
    writes = args.action == "gc" or getattr(args, "repair", False)
    if writes and remote.read_only:
        raise UsageError(f"cache {args.action}: the remote cache is read-only here")
    if args.action == "ls":
        return remote_admin.ls(remote)
    if args.action == "du":
        return remote_admin.du(remote)
    if args.action == "verify":
        return remote_admin.verify(remote, args.repair)
    return remote_admin.gc(remote, *_gc_limits(args))


def _gc(store, args) -> int:
    from recipekit.cache.maintain import gc, human

    older, size = _gc_limits(args)
    removed, spared = gc(store, older, size)
    for r in removed:
        print(f"removed {r.entry.key[:16]} {r.recipe}:{r.step} {human(r.size)}")
    for r in spared:
        print(f"kept    {r.entry.key[:16]} {r.recipe}:{r.step} (held by a running build)")
    print(f"gc: removed {len(removed)} entries ({human(sum(r.size for r in removed))}), {len(spared)} held")
    return 0


def invoke(command: str, argv: list[str]) -> int:
    from recipekit.cache.store import Store
    from recipekit.core.errors import UsageError

    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code:
            raise UsageError("see the usage above") from None
        raise
    if getattr(args, "remote_cache", None):
        return _remote(args)
    root = Path(args.cache)
    if not root.is_dir():
        raise UsageError(f"--cache: no cache folder at {root.resolve()}")
    store = Store(root)
    if args.action == "ls":
        return _ls(store)
    if args.action == "du":
        return _du(store)
    if args.action == "verify":
        return _verify(store, args.repair)
    return _gc(store, args)
