"""The typed configuration of ``scattertag serve``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from scattertag.geometry import GeometryOptions

#: Environment variable holding the API key when ``--api-key`` is not given.
API_KEY_ENV = "SCATTERTAG_API_KEY"


@dataclass
class ServeConfig:
    """Everything the service needs; the CLI only fills this in.

    folders : served folders; files in them are tagged (and, with ``watch``, new ones too).
    tiled : Tiled node URIs (``http://...`` or ``tiled+http://...``) whose arrays are tagged.
    state : folder holding ``scattertag.sqlite``, ``uploads/`` and ``labels.tsv`` by default.
    setup : default geometry of folder, Tiled and upload frames (None: uploads must give one).
    api_key : required for uploads and writes when set (None: the environment variable).
    max_upload_bytes : larger request bodies get 413.
    workers : preparing processes, forked at start and each driven by two threads of this
        process (None: one per usable core; 0: ``threads`` threads in this process, which
        share its GIL with the event loop and the model thread); with ``dask="local"``, the
        LocalCluster's worker processes (None or 0: one per usable core).
    dask : tag on a Dask cluster: a scheduler address or "local" (None: in this process;
        :class:`~scattertag.serve.cluster.ClusterTagger`). Its workers load ``model`` and
        read uploads from ``state/uploads``, which they must see at the same path.
    max_wait_s : how long a network batch may wait for the frames of items whose preparing
        was under way when its first frame came (never for items waiting for a preparing
        thread: :class:`~scattertag.serve.tagger.Prepared`).
    symmetries : the network's logits averaged over that many symmetries of the frame (1, 2,
        4 or 8; :mod:`scattertag.models.symmetry`).
    """

    folders: list[Path] = field(default_factory=list)
    watch: bool = False
    tiled: list[str] = field(default_factory=list)
    tiled_api_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    state: Path = Path("scattertag-serve")
    db: Path = Path()  # default: state / scattertag.sqlite
    labels: Path = Path()  # default: state / labels.tsv
    setup: GeometryOptions | None = None
    mask: str | None = None
    model: str | None = None
    api_key: str | None = None
    max_upload_bytes: int = 256 * 2**20
    workers: int | None = None
    dask: str | None = None
    threads: int = 2
    batch_size: int = 16
    max_wait_s: float = 0.03
    symmetries: int = 1
    interval_s: float = 1.0

    def __post_init__(self) -> None:
        self.folders = [Path(f).resolve() for f in self.folders]
        for folder in self.folders:
            if not folder.is_dir():
                raise ValueError(f"--folder {folder}: not a folder")
        if (self.folders or self.tiled) and self.setup is None:
            raise ValueError("--folder and --tiled need a geometry: --beam-center X Y or --poni")
        if self.watch and not (self.folders or self.tiled):
            raise ValueError("--watch needs --folder DIR or --tiled URI")
        if self.api_key is None:
            self.api_key = os.environ.get(API_KEY_ENV) or None
        for name in ("max_upload_bytes", "threads", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        self.state = Path(self.state)
        given = lambda p: p is not None and str(p) not in ("", ".")  # noqa: E731
        self.db = Path(self.db) if given(self.db) else self.state / "scattertag.sqlite"
        self.labels = Path(self.labels) if given(self.labels) else self.state / "labels.tsv"

    @property
    def uploads(self) -> Path:
        """Where uploaded files and arrays fetched from Tiled are kept (named by content hash)."""
        return (self.state / "uploads").absolute()  # items name it; Dask workers open them
