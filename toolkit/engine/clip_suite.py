"""``adtk bench --suite ped2``: the video benchmark's protocols as grid parts.

The suite starts from a crop manifest (``adtk extract`` of the whole dataset) and a
frame-labels file; the clips the frame labels list are the test clips. It writes one split
manifest per protocol and seed under ``OUT/splits/`` (kept when already there, so a suite
resumes with the same run ids) and returns the grid's axis sets:

* ``official``: the methods that train without anomalies, trained on every non-test clip and
  scored on every test clip (directly comparable with published unsupervised numbers);
* ``fewshot`` (unless ``labelled_clips`` is 0): per seed, a seeded choice of
  ``labelled_clips`` test clips holding labelled anomalies moves into training; baseline and
  ADNL of that seed share the one split manifest, so both are scored on exactly the same test
  clips. Eight seeds give the paper's Table 2 form.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from toolkit.errors import AdtkError

SUITE = "ped2"
DEFAULT_METHODS = ("baseline", "adnl")
DEFAULT_LABELLED_CLIPS = 3


def suite_parts(
    data: str | os.PathLike | None,
    out: str | os.PathLike,
    frame_labels: str | os.PathLike | None,
    labelled_clips: int | None = None,
    seeds: list[int] | None = None,
    methods: list[str] | None = None,
) -> list[dict[str, list[Any]]]:
    """Write the protocol split manifests and return one axis set per protocol and seed."""
    from toolkit.data import manifest as mf
    from toolkit.data import protocols as P
    from toolkit.engine.grid import PAPER_SEEDS
    from toolkit.eval.frames import match_videos, read_frame_labels
    from toolkit.methods import get_method

    if not data:
        raise AdtkError(
            "suite ped2 needs --data: the crop manifest of every clip (adtk extract of the "
            "dataset folder, e.g. crops/manifest.parquet)"
        )
    if not frame_labels:
        raise AdtkError(
            "suite ped2 needs --frame-labels FILE (video,frame_idx,time_s,abnormal): its clips "
            "are the test clips, and every frame of them is scored"
        )
    data = Path(data)
    if not data.is_file():
        raise AdtkError(f"--data {data}: no such manifest file")
    df = mf.read_manifest(data)
    if "split" in df.columns:
        raise AdtkError(
            f"--data {data}: is a split manifest; suite ped2 splits by clip itself, give the "
            "crop manifest it came from (adtk extract's manifest.parquet)"
        )
    labels = read_frame_labels(frame_labels)
    names = match_videos(labels["video"], df["video"].astype(str))
    test = sorted(names)
    if not test:
        raise AdtkError(
            f"--frame-labels {frame_labels}: none of its videos is in {data} (e.g. "
            f"{labels['video'].iloc[0]!r} vs {str(df['video'].iloc[0])!r})"
        )
    k = DEFAULT_LABELLED_CLIPS if labelled_clips is None else int(labelled_clips)
    seeds = list(seeds or PAPER_SEEDS)
    methods = list(methods or DEFAULT_METHODS)
    unsupervised = [m for m in methods if not get_method(m).uses_abnormal]
    folder = Path(out) / "splits"
    videos = df["video"].astype(str).tolist()
    parts: list[dict[str, list[Any]]] = []
    if unsupervised:
        off = P.write_protocol_manifest(
            data, folder / "ped2-official.parquet", P.official_split(videos, test), df=df,
            extra_meta={"suite": SUITE},
        )
        parts.append({"method": unsupervised, "data": [str(off.path)], "seed": seeds[:1]})
    if k == 0:  # no labelled clips: the official protocol alone
        if not parts:
            raise AdtkError("--labelled-clips 0 runs the official protocol only, which trains "
                            "no method that needs anomalies; add --method baseline")
        return parts
    candidates = P.abnormal_clips(df)
    for s in seeds:
        split = P.fewshot_split(videos, test, k, s, candidates=candidates)
        few = P.write_protocol_manifest(data, folder / f"ped2-{split.name}.parquet", split,
                                        df=df, extra_meta={"suite": SUITE})
        parts.append({"method": methods, "data": [str(few.path)], "seed": [s]})
    return parts
