"""The local append-only event log: durable before acknowledging, then shipped to the lake.

Each kind of event (impressions, feedback, the feature sample) has its own folder of segments,
one JSON record a line. The active segment takes appends; `seal()` closes it so the shipper can
upload it. A feedback append returns only after `write` + `flush` + `fsync`, so an event that
got a 202 survives a crash of the process (kill -9, OOM kill; and node loss if the folder is on
a persistent volume). Impressions and the feature sample skip the fsync per request (they are
not acknowledged to a client) and are fsynced when sealed.

After a crash every segment found at start is a leftover and is shipped as is; a torn last
line (a write that never returned) is skipped, and it was never acknowledged.

A sealed segment the shipper cannot ship is moved, unchanged, to `directory/quarantine/<kind>/`
(with a `.error` note saying why) so it no longer holds back the segments after it. Nothing
deletes it: an operator copies it out, fixes or drops it (see the RecplatEventSegmentsQuarantined
alert).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson
from ranking_features.workload_env import ServiceEnv

log = logging.getLogger(__name__)

KINDS = ("impressions", "feedback", "features", "errors")
SEGMENT_SUFFIX = ".jsonl"
QUARANTINE_DIR = "quarantine"


class EventLogLockedError(RuntimeError):
    """Another live process owns this event log folder."""


class _ActiveSegment:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] = path.open("ab", buffering=0)


class EventLog:
    """Append-only segments under `directory/<kind>/`, one writer process at a time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._locks = {kind: threading.Lock() for kind in KINDS}
        self._active: dict[str, _ActiveSegment | None] = dict.fromkeys(KINDS)
        self._lock_file: IO[bytes] | None = None

    def open(self) -> None:
        """Take the folder's lock; segments already there become leftovers to ship."""
        for kind in KINDS:
            (self.directory / kind).mkdir(parents=True, exist_ok=True)
        lock_file = (self.directory / ".lock").open("ab")
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise EventLogLockedError(
                f"{self.directory}: another ranking service writes this event log; "
                f"give each replica its own {ServiceEnv.variable('event_log_dir')}"
            ) from None
        self._lock_file = lock_file
        leftovers = self.sealed_segments()
        if leftovers:
            log.info("event log: %d segment(s) from a previous run to ship", len(leftovers))
        quarantined = self.quarantined_segments()
        if quarantined:
            log.warning(
                "event log: %d quarantined segment(s) in %s wait for an operator",
                len(quarantined),
                self.quarantine_directory,
            )

    def close(self) -> None:
        """Seal the active segments (fsynced) and release the folder."""
        for kind in KINDS:
            self.seal(kind)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def append(self, kind: str, records: Iterable[Mapping[str, Any]], *, durable: bool) -> None:
        """Append records; with `durable`, return only once they are on disk."""
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        with self._locks[kind]:
            segment = self._active[kind]
            if segment is None:
                segment = self._active[kind] = _ActiveSegment(self._new_segment_path(kind))
            # One write call per batch, unbuffered: the bytes are in the page cache on return.
            segment.file.write(data)
            if durable:
                os.fsync(segment.file.fileno())

    def seal(self, kind: str) -> None:
        """Close the active segment of `kind`; the next append starts a new one."""
        with self._locks[kind]:
            segment, self._active[kind] = self._active[kind], None
        if segment is not None:
            # fsync outside the lock: appends (on the event loop) must not wait for the disk.
            os.fsync(segment.file.fileno())
            segment.file.close()

    def sealed_segments(self, kind: str | None = None) -> list[Path]:
        """Segments not taking appends, oldest first."""
        kinds = KINDS if kind is None else (kind,)
        found = [path for k in kinds for path in (self.directory / k).glob(f"*{SEGMENT_SUFFIX}")]
        # The active segments are read after the listing, under the appends' lock: an append
        # creates its file and makes it active under that lock, so a file listed here that is
        # not active now was sealed (or left by a crash). Read before, a segment created in
        # between would count as sealed: shipped, then deleted while appends still wrote to it.
        active = set()
        for k in kinds:
            with self._locks[k]:
                segment = self._active[k]
            if segment is not None:
                active.add(segment.path)
        return sorted((path for path in found if path not in active), key=lambda p: p.name)

    @property
    def quarantine_directory(self) -> Path:
        return self.directory / QUARANTINE_DIR

    def quarantine(self, kind: str, segment: Path, reason: str) -> Path:
        """Move a sealed segment aside, unchanged, with a note of `reason`; return its new path."""
        folder = self.quarantine_directory / kind
        folder.mkdir(parents=True, exist_ok=True)
        note = folder / (segment.name + ".error")
        note.write_text(reason + "\n", encoding="utf-8")
        target = folder / segment.name
        # Same file system: a rename, so the segment is in exactly one of the two folders.
        segment.replace(target)
        for changed in (folder, segment.parent):
            descriptor = os.open(changed, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        return target

    def quarantined_segments(self, kind: str | None = None) -> list[Path]:
        """Segments set aside by `quarantine`, oldest first."""
        kinds = KINDS if kind is None else (kind,)
        found = [
            path
            for k in kinds
            for path in (self.quarantine_directory / k).glob(f"*{SEGMENT_SUFFIX}")
        ]
        return sorted(found, key=lambda p: p.name)

    def _new_segment_path(self, kind: str) -> Path:
        # Time first so names sort by age; the random part keeps names unique across restarts.
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}{SEGMENT_SUFFIX}"
        return self.directory / kind / name


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a segment; a torn last line (crash mid-write) is skipped."""
    with path.open("rb") as file:
        lines = file.read().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if number < len(lines):
                log.error("%s:%d: unreadable event record skipped", path, number)
            else:
                log.warning("%s: torn last record (crash mid-write) skipped", path)
