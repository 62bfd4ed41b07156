"""The service's memory: every tagged frame, its probabilities and corrections, in SQLite.

Tables: ``frames`` (one row per (source, frame): where it came from, geometry, tags, error),
``probs`` (frame, tag, probability; indexed for range filters), ``frame_tags`` (frame, tag
at or above threshold) and ``labels`` (corrections, newest last). WAL journal, so readers
never wait for the writer; a restarted service reopens the file and knows what it has seen.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL, frame INTEGER NOT NULL,
    location TEXT NOT NULL, folder TEXT NOT NULL, name TEXT NOT NULL,
    time REAL NOT NULL, tagged_at REAL NOT NULL,
    setup TEXT NOT NULL, mask TEXT,
    beam_x REAL, beam_y REAL, beam_source TEXT NOT NULL,
    tags TEXT NOT NULL, error TEXT NOT NULL, extra TEXT NOT NULL,
    UNIQUE (source, frame)
);
CREATE INDEX IF NOT EXISTS frames_time ON frames (time);
CREATE INDEX IF NOT EXISTS frames_folder ON frames (folder);
CREATE TABLE IF NOT EXISTS probs (
    frame_id INTEGER NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
    tag TEXT NOT NULL, p REAL NOT NULL, PRIMARY KEY (frame_id, tag)
);
CREATE INDEX IF NOT EXISTS probs_tag_p ON probs (tag, p);
CREATE TABLE IF NOT EXISTS frame_tags (
    frame_id INTEGER NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
    tag TEXT NOT NULL, PRIMARY KEY (frame_id, tag)
);
CREATE INDEX IF NOT EXISTS frame_tags_tag ON frame_tags (tag);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    frame_id INTEGER NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
    time REAL NOT NULL, labels TEXT NOT NULL, note TEXT NOT NULL
);
"""


@dataclass
class Record:
    """One tagged frame as stored.

    source : the file (or Tiled node) as named in results; frame : index within it.
    location : what the readers open (a path, maybe with ``::/dataset``).
    folder : the served folder, ``uploads`` or the Tiled URI it came from; name : display name.
    time : when the frame was made (file mtime, upload time), Unix seconds.
    setup : the geometry asked for, as a dict; beam_center : (x, y) the beam centre used
    (the predictor's own when it reports one, else the setup's); beam_source : where it
    came from.
    probabilities : tag -> probability (empty when ``error``); tags : tags at or above threshold.
    extra : any further per-frame outputs of the predictor (e.g. ``ood``).
    """

    source: str
    frame: int
    location: str
    folder: str
    name: str
    time: float
    tagged_at: float
    setup: dict
    beam_source: str
    probabilities: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    error: str = ""
    mask: str | None = None
    extra: dict = field(default_factory=dict)
    id: int | None = None
    labels: dict[str, int | None] | None = None
    beam_center: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.beam_center is None and self.setup.get("beam_center") is not None:
            self.beam_center = tuple(self.setup["beam_center"])

    def to_json(self) -> dict:
        """The record as the API returns it."""
        beam = self.beam_center
        out = {
            "id": self.id,
            "path": self.source,
            "frame": self.frame,
            "name": self.name,
            "folder": self.folder,
            "time": self.time,
            "tagged_at": self.tagged_at,
            "tags": self.tags,
            "probabilities": self.probabilities,
            "beam_center": list(beam) if beam else None,
            "beam_center_source": self.beam_source,
            "geometry": self.setup,
            "error": self.error,
            "labels": self.labels,
        }
        out.update(self.extra)
        return out


@dataclass
class Query:
    """Filters of ``GET /api/frames``; None means no filter.

    tag with min_p/max_p: that tag's probability in [min_p, max_p]; tag alone: frames tagged
    with it. since/until: Unix seconds on ``time``. errors: True only failed frames, False
    only tagged ones.
    """

    tag: str | None = None
    min_p: float | None = None
    max_p: float | None = None
    since: float | None = None
    until: float | None = None
    folder: str | None = None
    errors: bool | None = None
    after_id: int | None = None

    def where(self) -> tuple[str, list]:
        """The SQL WHERE clause (on ``frames f``) and its parameters."""
        sql, args = ["1"], []
        if self.tag is not None and (self.min_p is not None or self.max_p is not None):
            sql.append(
                "EXISTS (SELECT 1 FROM probs "
                "WHERE frame_id = f.id AND tag = ? AND p >= ? AND p <= ?)"
            )
            args += [
                self.tag,
                0.0 if self.min_p is None else self.min_p,
                1.0 if self.max_p is None else self.max_p,
            ]
        elif self.tag is not None:
            sql.append("EXISTS (SELECT 1 FROM frame_tags WHERE frame_id = f.id AND tag = ?)")
            args.append(self.tag)
        for column, op, value in (
            ("time", ">=", self.since),
            ("time", "<=", self.until),
            ("folder", "=", self.folder),
            ("id", ">", self.after_id),
        ):
            if value is not None:
                sql.append(f"f.{column} {op} ?")
                args.append(value)
        if self.errors is not None:
            sql.append("f.error != ''" if self.errors else "f.error = ''")
        return " AND ".join(sql), args


#: Time bins the counts plot may use, in seconds (1 s to 1 week).
BUCKETS = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)


def nice_bucket(span: float, bins: int = 40) -> float:
    """The smallest of BUCKETS that cuts ``span`` seconds into at most ``bins`` bins."""
    return float(next((b for b in BUCKETS if span / b <= bins), BUCKETS[-1]))


class Store:
    """SQLite file of tagged frames; safe to call from several threads (one lock)."""

    def __init__(self, path: str | Path, vocabulary: Sequence[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.vocabulary = list(vocabulary)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path}: not a usable SQLite database ({exc})") from exc
        stored = self._meta("vocabulary")
        if stored is None:
            self._set_meta("vocabulary", json.dumps(self.vocabulary))
        elif json.loads(stored) != self.vocabulary:
            raise ValueError(
                f"{self.path}: holds results of a model with another tag vocabulary; "
                "use another --state or --db for this model"
            )

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def add(self, records: Iterable[Record]) -> list[Record]:
        """Store records (replacing any with the same source and frame); they get their ids."""
        records = list(records)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for r in records:
                    self._db.execute(
                        "DELETE FROM frames WHERE source = ? AND frame = ?", (r.source, r.frame)
                    )
                    cur = self._db.execute(
                        "INSERT INTO frames (source, frame, location, folder, name, time, "
                        "tagged_at, setup, mask, beam_x, beam_y, beam_source, tags, error, extra) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            r.source,
                            r.frame,
                            r.location,
                            r.folder,
                            r.name,
                            r.time,
                            r.tagged_at,
                            json.dumps(r.setup),
                            r.mask,
                            *(r.beam_center or (None, None)),
                            r.beam_source,
                            ";".join(r.tags),
                            r.error,
                            json.dumps(r.extra),
                        ),
                    )
                    r.id = cur.lastrowid
                    self._db.executemany(
                        "INSERT INTO probs VALUES (?, ?, ?)",
                        [(r.id, t, p) for t, p in r.probabilities.items()],
                    )
                    self._db.executemany(
                        "INSERT INTO frame_tags VALUES (?, ?)", [(r.id, t) for t in r.tags]
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return records

    def sources(self, folder: str | None = None) -> set[str]:
        """Every source stored (of one folder if given)."""
        sql, args = "SELECT DISTINCT source FROM frames", []
        if folder is not None:
            sql, args = sql + " WHERE folder = ?", [folder]
        with self._lock:
            return {row[0] for row in self._db.execute(sql, args)}

    def find(self, source: str, setup: dict) -> list[Record]:
        """The stored frames of ``source`` if they were tagged with this geometry, else []."""
        with self._lock:
            rows = self._db.execute(
                f"{self._select} WHERE f.source = ? ORDER BY f.frame", (source,)
            ).fetchall()
            records = [self._record(r) for r in rows]
        return records if records and all(r.setup == setup for r in records) else []

    def get(self, frame_id: int) -> Record | None:
        """One stored frame by id."""
        with self._lock:
            row = self._db.execute(f"{self._select} WHERE f.id = ?", (frame_id,)).fetchone()
            return None if row is None else self._record(row)

    def query(self, q: Query, limit: int = 50, offset: int = 0) -> tuple[int, list[Record]]:
        """(number of matches, one page of them, newest first)."""
        where, args = q.where()
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM frames f WHERE {where}", args)
            total = total.fetchone()[0]
            rows = self._db.execute(
                f"{self._select} WHERE {where} ORDER BY f.id DESC LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
            return total, [self._record(r) for r in rows]

    def counts(self, bucket: float | None, q: Query) -> dict:
        """Frames and frames per tag in time bins: {bucket, times, frames, counts: {tag: [n]}}."""
        where, args = q.where()
        with self._lock:
            if bucket is None:
                span = self._db.execute(
                    f"SELECT MAX(f.time) - MIN(f.time) FROM frames f WHERE {where}", args
                ).fetchone()[0]
                bucket = nice_bucket(span or 0.0)
            frames = self._db.execute(
                f"SELECT CAST(f.time / ? AS INTEGER), COUNT(*) FROM frames f WHERE {where} "
                "GROUP BY 1 ORDER BY 1",
                [bucket, *args],
            ).fetchall()
            tagged = self._db.execute(
                f"SELECT CAST(f.time / ? AS INTEGER), t.tag, COUNT(*) FROM frames f "
                f"JOIN frame_tags t ON t.frame_id = f.id WHERE {where} GROUP BY 1, 2",
                [bucket, *args],
            ).fetchall()
        index = {b: i for i, (b, _) in enumerate(frames)}
        counts = {t: [0] * len(frames) for t in self.vocabulary}
        for b, tag, n in tagged:
            counts.setdefault(tag, [0] * len(frames))[index[b]] = n
        return {
            "bucket": bucket,
            "times": [b * bucket for b, _ in frames],
            "frames": [n for _, n in frames],
            "counts": counts,
        }

    def folders(self) -> list[str]:
        """Every folder (or Tiled URI, or 'uploads') with stored frames."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT folder FROM frames ORDER BY 1")]

    def add_labels(self, frame_id: int, labels: dict, note: str, time: float) -> None:
        """Record a correction of one frame's tags (tag -> 1, 0 or None)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO labels (frame_id, time, labels, note) VALUES (?, ?, ?, ?)",
                (frame_id, time, json.dumps(labels), note),
            )

    _select = (
        "SELECT f.id, f.source, f.frame, f.location, f.folder, f.name, f.time, f.tagged_at, "
        "f.setup, f.mask, f.beam_source, f.tags, f.error, f.extra, f.beam_x, f.beam_y, "
        "(SELECT labels FROM labels WHERE frame_id = f.id ORDER BY id DESC LIMIT 1) "
        "FROM frames f"
    )

    def _record(self, row: tuple) -> Record:
        """A Record from a row of ``_select``, probabilities in vocabulary order (lock held)."""
        (id_, source, frame, location, folder, name, time, tagged_at, setup, mask) = row[:10]
        beam_source, tags, error, extra, beam_x, beam_y, labels = row[10:]
        probs = dict(
            self._db.execute("SELECT tag, p FROM probs WHERE frame_id = ?", (id_,)).fetchall()
        )
        return Record(
            id=id_,
            source=source,
            frame=frame,
            location=location,
            folder=folder,
            name=name,
            time=time,
            tagged_at=tagged_at,
            setup=json.loads(setup),
            mask=mask,
            beam_source=beam_source,
            beam_center=None if beam_x is None else (beam_x, beam_y),
            tags=[t for t in tags.split(";") if t],
            error=error,
            extra=json.loads(extra),
            probabilities={t: probs[t] for t in self.vocabulary if t in probs},
            labels=json.loads(labels) if labels else None,
        )
