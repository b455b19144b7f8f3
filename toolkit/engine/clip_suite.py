"""``adtk bench --suite ped2``: the video benchmark's protocols and the paper's tables as parts.

The suite starts from a crop manifest (``adtk extract`` of the whole dataset) and a
frame-labels file; the clips the frame labels list are the test clips. It writes one split
manifest per protocol and seed under ``OUT/splits/`` (kept when already there, so a suite
resumes with the same run ids) and plans these parts, each a small grid:

* ``official``: the methods that train without anomalies, trained on every non-test clip and
  scored on every test clip (directly comparable with published unsupervised numbers); with
  motion crops in the manifest, once per input (appearance, motion, both);
* ``table2``: few-shot, per seed a seeded choice of ``labelled_clips`` test clips holding
  labelled anomalies moves into training; baseline and ADNL of that seed share the one split
  manifest, so both are scored on exactly the same test clips (the paper's Table 2 form);
* ``table3`` (normal vs oversize crops), ``table4`` (naive vs scaled negative loss) and
  ``input`` (appearance vs motion vs both; only where the manifest has motion crops), on the
  few-shot splits of their seeds;
* ``unseen``: ADNL given only clips whose anomalies are all of the ``seen`` kind (bike on
  Ped2) as labelled clips, scored per kind on the clips of the kinds it never saw;
* ``labels``: region vs interval labels for ADNL's negatives, where the bench has a
  ``train_labels`` setting and the manifest has region labels (otherwise skipped, with why).

A run shared by parts (ADNL, normal crops, seed 1 is in Table 2 and Table 3) trains once: the
grid de-duplicates by run id. The plan, with every part's run ids and seeds and the parts
skipped and why, goes to ``OUT/suite_plan.json`` for the report's tables.

Each part names the setting it varies, the methods that vary it and its seeds; a new part
(another ablation) is one more entry in :func:`_parts`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import AdtkError

SUITE = "ped2"
DEFAULT_METHODS = ("baseline", "adnl")
DEFAULT_LABELLED_CLIPS = 3
#: The anomaly kind the unseen-kind part labels; every other kind stays out of training.
SEEN_KINDS = ("bike",)

#: Per preset: settings every run of the suite gets unless given on the command line or in the
#: config file, and how many of the suite's seeds (default 1-8) the parts other than Table 2
#: take. ``quick`` is sized for the whole suite within 45 minutes on a 2-core CPU (README
#: "UCSD Ped2"): 32-pixel crops, the normal crops of every 8th training frame (test frames
#: are all scored), 3 seeds for the ablations (46 runs on Ped2 with motion crops).
#: ``paper`` is for a GPU: 64-pixel crops, every frame, eight seeds everywhere, and the crops
#: preset's epochs and batch (toolkit/engine/run.py).
#: ADNL's negative loss in the suite is the scaled exp(-MSE) (eq. 4; Table 4 still runs both):
#: on Ped2's few-shot splits (motion crops, quick preset, seeds 1-3, frame AUROC micro with
#: track 5 + frame 9 smoothing) scaled gave 0.952 against naive's 0.932 (raw 0.815 against
#: 0.681), the paper's Table 4 direction; naive's outputs saturate (many normal crops reach
#: its error ceiling), so a frame's highest crop stops ranking frames.
SUITE_PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"settings": {"size": 32, "epochs": 15, "train_every": 8, "neg_loss": "scaled"},
              "part_seeds": 3},
    "paper": {"settings": {"size": 64, "train_every": 1, "neg_loss": "scaled"}, "part_seeds": 8},
}


@dataclass
class Part:
    """One part of the suite: which protocol, which setting it varies, for which methods."""

    name: str
    title: str
    protocol: str  # official | fewshot | unseen
    seeds: tuple[int, ...] = ()
    methods: tuple[str, ...] = ()
    axis: str | None = None  # the setting this part varies (None: the methods only)
    values: tuple[Any, ...] = ()
    axis_methods: tuple[str, ...] = ()  # methods that take every value (others: the default)
    caption: str = ""
    skipped: str = ""  # why this part does not run (empty: it runs)
    splits: dict[int, str] = field(default_factory=dict)  # seed -> split manifest
    run_ids: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, list[Any]] = field(default_factory=dict)  # axes every run of it takes

    def axis_sets(self) -> list[dict[str, list[Any]]]:
        """Grid axis sets, each tagged with ``_part`` (the grid records which runs it holds)."""
        if self.skipped:
            return []
        out = []
        for s in self.seeds:
            base = {"_part": [self.name], "data": [self.splits[s]], "seed": [s],
                    **{k: list(v) for k, v in self.fixed.items() if k != self.axis}}
            varied = [m for m in self.methods if m in self.axis_methods] if self.axis else []
            plain = [m for m in self.methods if m not in varied]
            if varied:
                out.append({**base, "method": varied, self.axis: list(self.values)})
            if plain:
                out.append({**base, "method": plain})
        return out

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["splits"] = {str(k): v for k, v in self.splits.items()}
        return d


@dataclass
class SuitePlan:
    parts: list[Part]
    preset: str
    settings: dict[str, Any]
    seeds: list[int]
    out: Path

    def axis_sets(self) -> list[dict[str, list[Any]]]:
        return [a for p in self.parts for a in p.axis_sets()]

    def notes(self) -> list[str]:
        return [f"suite {SUITE}: part {p.name} skipped: {p.skipped}" for p in self.parts
                if p.skipped]

    def write(self, members: dict[str, list[str]]) -> Path:
        """Record each part's run ids; write ``OUT/suite_plan.json`` (atomic)."""
        from toolkit import __version__
        from toolkit.eval.suite_tables import PLAN_FILE
        from toolkit.io import atomic_write_json

        for p in self.parts:
            p.run_ids = list(dict.fromkeys(members.get(p.name, [])))
        path = self.out / PLAN_FILE
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {
            "suite": SUITE, "adtk_version": __version__, "preset": self.preset,
            "settings": self.settings, "seeds": self.seeds,
            "parts": [p.to_json() for p in self.parts],
        })
        return path


def suite_defaults(preset: str | None, flags: dict[str, Any],
                   config: str | os.PathLike | None = None) -> tuple[str, dict[str, Any]]:
    """The preset's settings that neither a flag nor the config file sets: (preset, settings)."""
    from toolkit.config import load_yaml

    yaml = load_yaml(config, "bench") if config else {}
    name = preset or yaml.get("preset") or "quick"
    if name not in SUITE_PRESETS:
        raise AdtkError(f"unknown preset {name!r}; use one of {', '.join(SUITE_PRESETS)}")
    fill = {k: v for k, v in SUITE_PRESETS[name]["settings"].items()
            if flags.get(k) is None and k not in yaml}
    return name, fill


def plan_suite(
    data: str | os.PathLike | None,
    out: str | os.PathLike,
    frame_labels: str | os.PathLike | None,
    labelled_clips: int | None = None,
    seeds: list[int] | None = None,
    methods: list[str] | None = None,
    preset: str = "quick",
    settings: dict[str, Any] | None = None,
) -> SuitePlan:
    """Write the protocol split manifests; return the parts (their grid axis sets inside)."""
    from toolkit.data import manifest as mf
    from toolkit.data import protocols as P
    from toolkit.engine.grid import PAPER_SEEDS
    from toolkit.eval.frames import match_videos, read_frame_labels
    from toolkit.methods import get_method

    if not data:
        raise AdtkError(
            "suite ped2 needs --data: the crop manifest of every clip (adtk extract of the "
            "dataset folder: crops/manifest.parquet, or the folder crops/)"
        )
    if not frame_labels:
        raise AdtkError(
            "suite ped2 needs --frame-labels FILE (video,frame_idx,time_s,abnormal): its clips "
            "are the test clips, and every frame of them is scored"
        )
    given = data
    data = mf.manifest_file(data)  # the folder adtk extract wrote stands for its manifest
    if not data.is_file():
        raise AdtkError(f"--data {given}: no such manifest file or folder")
    df = mf.read_manifest(data)
    inc, _ = mf.incomplete_marks(mf.read_meta(data))
    if inc:  # a suite over the finished clips only would look complete
        raise AdtkError(f"--data {data}: INCOMPLETE: {mf.incomplete_text(inc)}")
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
    n_part = int(SUITE_PRESETS[preset]["part_seeds"])
    methods = list(methods or DEFAULT_METHODS)
    unsupervised = [m for m in methods if not get_method(m).uses_abnormal]
    folder = Path(out) / "splits"
    videos = df["video"].astype(str).tolist()
    meta = {"suite": SUITE}

    def write(split: Any) -> str:
        return str(P.write_protocol_manifest(
            data, folder / f"ped2-{split.name}.parquet", split, df=df, extra_meta=meta).path)

    has_motion = "path_motion" in df.columns
    parts: list[Part] = []
    if unsupervised:
        off = write(P.official_split(videos, test))
        # Several seeds here too (the preset's part_seeds): the same split and settings moved
        # by 0.04 micro between two trainings of one seed (1 vs 2 threads), so one is no result.
        off_seeds = tuple(seeds[:n_part])
        parts.append(Part(
            "official", "Official protocol", "official", off_seeds, tuple(unsupervised),
            *(("input", ("appearance", "motion", "both"), tuple(unsupervised)) if has_motion
              else (None, (), ())),
            caption="Trained on the training clips (normal only), every test clip scored.",
            splits={s: off for s in off_seeds},
        ))
    if k == 0:  # no labelled clips: the official protocol alone
        if not parts:
            raise AdtkError("--labelled-clips 0 runs the official protocol only, which trains "
                            "no method that needs anomalies; add --method baseline")
        return SuitePlan(parts, preset, dict(settings or {}), seeds, Path(out))
    candidates = P.abnormal_clips(df)
    few = {s: write(P.fewshot_split(videos, test, k, s, candidates=candidates)) for s in seeds}
    parts += _parts(df, P, few, seeds, seeds[:n_part], methods, has_motion, k, test, videos,
                    write, len(seeds) > n_part)
    return SuitePlan(_motion_first(parts, has_motion), preset, dict(settings or {}), seeds,
                     Path(out))


def _motion_first(parts: list[Part], has_motion: bool) -> list[Part]:
    """With motion crops in the manifest, the parts that do not vary the input train on them.

    Measured on Ped2 (official protocol, AAE, 32-pixel crops, 5 epochs, every training frame):
    frame AUROC micro 0.851 on the flow crops, 0.678 on appearance + flow, 0.354 on appearance
    alone; the input part still compares all three. ``--input`` on the command line overrides.
    """
    if has_motion:
        for p in parts:
            if p.axis != "input":
                p.fixed["input"] = ["motion"]
                p.caption = (p.caption + " Input: the crops' motion channels.").strip()
    return parts


def _parts(df, P, few, seeds, part_seeds, methods, has_motion, k, test, videos, write,
           fewer) -> list[Part]:
    """The few-shot parts: Table 2, its ablations, unseen kinds, label strength."""
    from toolkit.config import BenchConfig

    labelled = [m for m in methods if m != "baseline"] or methods
    ps = tuple(part_seeds)
    fewer_note = (f" Seeds {', '.join(map(str, ps))}: fewer than Table 2's {len(seeds)} to keep "
                  "the suite affordable (the preset's part_seeds)." if fewer else "")

    def fewshot(name, title, axis=None, values=(), caption="", skipped="", on=None):
        return Part(name, title, "fewshot", ps if name != "table2" else tuple(seeds),
                    tuple(methods), axis, tuple(values), tuple(on or methods),
                    caption + ("" if name == "table2" else fewer_note), skipped,
                    splits=dict(few))

    parts = [
        fewshot("table2", "Table 2: baseline vs ADNL",
                caption=f"{k} test clips per seed move into training with their labels."),
        fewshot("table3", "Table 3: normal vs oversize crops", "crop", ("normal", "oversize"),
                caption="Oversize crop: 2.5x the box width, 1.5x its height, same centre."),
        fewshot("table4", "Table 4: naive vs scaled negative loss", "neg_loss",
                ("naive", "scaled"), on=labelled,
                caption="naive: maximise the MSE (eq. 3); scaled: minimise exp(-MSE) (eq. 4)."),
        fewshot("input", "Appearance vs motion vs both", "input",
                ("appearance", "motion", "both"),
                caption="motion: the crop's optical flow (or frame difference) at the same box; "
                "both: the two stacked.",
                skipped="" if has_motion else "the manifest has no motion crops (path_motion); "
                "extract with --motion-channels flow"),
    ]
    # Region vs interval labels for ADNL's negatives: runs once the bench has the setting.
    has_setting = "train_labels" in {f.name for f in dataclasses.fields(BenchConfig)}
    has_regions = "label_source" in df.columns and bool((df["label_source"] == "region").any())
    parts.append(fewshot(
        "labels", "Region vs interval labels for ADNL's negatives", "train_labels",
        ("region", "interval"), on=labelled,
        caption="region: a crop is abnormal when it overlaps an anomalous object's box; "
        "interval: every crop of an abnormal frame is, and ADNL's defaults there choose one "
        "negative per abnormal frame once (the crop it scores highest after a normal-only "
        "third of the epochs) and bound the negative term.",
        skipped=("" if has_setting and has_regions else
                 "this build's bench has no train_labels setting" if not has_setting else
                 "the manifest has no region labels (extract with --regions)"),
    ))
    # Unseen kinds: labelled clips only among clips whose anomalies are all of SEEN_KINDS.
    events = P.clip_events(df[df["video"].isin(test)])
    unseen_kinds = sorted({e for ev in events.values() for e in ev} - set(SEEN_KINDS))
    pool = [v for v, ev in events.items() if ev and ev <= set(SEEN_KINDS)]
    why = ("no test clip holds another kind than " + "+".join(SEEN_KINDS) if not unseen_kinds
           else f"only {len(pool)} test clip(s) hold only {'+'.join(SEEN_KINDS)} (need "
           f"--labelled-clips {k} of them)" if len(pool) < k else "")
    unseen = {}
    if not why:
        unseen = {s: write(P.unseen_kind_split(videos, test, k, s, events, SEEN_KINDS))
                  for s in ps}
    parts.append(Part(
        "unseen", f"Unseen kinds: ADNL labelled with {'+'.join(SEEN_KINDS)} clips only",
        "unseen", ps, tuple(methods),
        caption=(f"Per seed, {k} test clips whose anomalies are all "
                 f"{'+'.join(SEEN_KINDS)} move into training; each kind is scored on the "
                 "remaining test clips that hold it." + fewer_note),
        skipped=why, splits=unseen,
        extra={"seen": list(SEEN_KINDS), "unseen": unseen_kinds},
    ))
    return parts
