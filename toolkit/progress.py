"""Progress of long work on stderr: tqdm bars on a terminal, plain lines everywhere else.

A bar redraws itself with carriage returns, which a log file, CI or ``nohup`` keeps as one
ever-growing line (or not at all until it ends). So where stderr is not a terminal, progress
is a plain, complete line now and then instead: after a step when ``min_interval_s`` seconds
have passed since the last line, or ``every`` steps (the first and the last step always), so a
log shows that work goes on and how far it got without flooding.

``mode``: ``None`` = automatic (bars on a terminal, lines otherwise), ``True`` / ``"bar"`` =
bars, ``"lines"`` = lines, ``False`` / ``"off"`` = nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

MODES = ("bar", "lines", "off")


def resolve_mode(mode: bool | str | None, stream: TextIO | None = None) -> str:
    """``"bar"``, ``"lines"`` or ``"off"`` for a ``--progress/--no-progress`` value."""
    if mode is None:
        stream = stream or sys.stderr
        isatty = getattr(stream, "isatty", None)
        return "bar" if isatty is not None and isatty() else "lines"
    if mode is True:
        return "bar"
    if mode is False:
        return "off"
    if mode not in MODES:
        raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


class Progress:
    """A count of done steps out of ``total``, shown as a bar or as plain lines (see module)."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        mode: bool | str | None = None,
        initial: int = 0,
        min_interval_s: float = 10.0,
        every: int | None = None,
        line_unit: str | None = None,
        stream: TextIO | None = None,
        **bar_options: Any,
    ) -> None:
        self.stream = stream or sys.stderr
        self.mode = resolve_mode(mode, self.stream)
        self.total, self.desc, self.unit = int(total), desc, unit
        self.n = int(initial)
        self.min_interval_s = float(min_interval_s)
        self.every = every
        self.line_unit = line_unit or unit
        self._last_line, self._last_n = -float("inf"), self.n
        self._info = ""
        self.bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream,
                            **bar_options)

    def add_total(self, n: int) -> None:
        """Grow the total (work discovered while running, e.g. a video's frame count)."""
        self.total += int(n)
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def update(self, n: int = 1, info: str = "") -> None:
        """``n`` more steps done; ``info`` (e.g. ``loss 0.012``) goes into the line or bar."""
        self.n += int(n)
        if info:
            self._info = info
        if self.bar is not None:
            if info:
                self.bar.set_postfix_str(info, refresh=False)
            self.bar.update(n)
        elif self.mode == "lines":
            now = time.monotonic()
            if ((self.total > 0 and self.n >= self.total)
                    or now - self._last_line >= self.min_interval_s
                    or (self.every and self.n - self._last_n >= self.every)):
                self._last_line, self._last_n = now, self.n
                self.line()

    def line(self) -> None:
        """Print the current state as one line (lines mode only)."""
        if self.mode != "lines":
            return
        of = f"/{self.total:,}" if self.total else ""
        text = f"{self.desc}: {self.n:,}{of} {self.line_unit}"
        text += f", {self._info}" if self._info else ""
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class VideoBars:
    """Progress of videos and source frames (the total: each work item's frames as probed when
    planning, corrected when its worker starts, plus a motion-channels pass's when it starts):
    tqdm bars on a terminal, else plain lines every few videos and every minute of decoding."""

    def __init__(self, n_videos: int, enabled: bool | None):
        mode = resolve_mode(enabled) if n_videos > 0 else "off"
        self.enabled = mode != "off"
        if not self.enabled:
            return
        if mode == "bar":
            from tqdm import tqdm

            tqdm.monitor_interval = 0
        every = max(1, n_videos // 20)  # about 20 lines over a run in a log
        self.v = Progress(n_videos, "videos", "video", mode=mode, position=0, min_interval_s=60,
                          every=every, line_unit="done")
        self.f = Progress(0, "frames", "fr", mode=mode, position=1, unit_scale=True,
                          min_interval_s=60, line_unit="decoded")
        self.failed = 0

    def add_total(self, n: int) -> None:
        if self.enabled:
            self.f.add_total(n)

    def frames(self, n: int) -> None:
        if self.enabled:
            self.f.update(n)

    def video_done(self, failed: bool = False) -> None:
        if self.enabled:
            self.failed += failed
            self.v.update(1, f"{self.failed} failed" if self.failed else "")

    def close(self) -> None:
        if self.enabled:
            self.f.close()
            self.v.close()
