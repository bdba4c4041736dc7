"""Progress for long work: a tqdm bar on a terminal, plain periodic lines in a log file.

A redirected log (CI, batch jobs, ``nohup``) must stay readable: tqdm's carriage-return frames turn a benchmark log
into a megabyte of bar fragments. :func:`progress` therefore decides once per loop:

- stderr is a terminal -> ``tqdm`` (as before);
- otherwise -> :class:`LineProgress`, which prints ``desc: done/total (pct) elapsed, rate`` at most every
  ``interval`` seconds (default 30 s, ``L1TAGGER_PROGRESS_INTERVAL`` overrides) and once at the end.

Both accept the tqdm calls the code uses (``update``, ``set_postfix``/``set_postfix_str``, ``close``, iteration, context manager), and
:func:`write` prints a line without breaking a bar.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("L1TAGGER_PROGRESS_INTERVAL", "30")))
    except ValueError:
        return 30.0


class LineProgress:
    """tqdm's interface, printing one plain line per ``interval`` seconds instead of redrawing a bar."""

    def __init__(self, iterable: Iterable | None = None, desc: str = "", total: int | None = None, initial: int = 0,
                 unit: str = "it", disable: bool = False, interval: float | None = None, stream=None, leave: bool = True,
                 **_ignored):
        self.iterable = iterable
        self.desc = desc
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total = total
        self.n = initial
        self.unit = unit
        self.disable = disable
        self.interval = _interval() if interval is None else interval
        self.stream = stream or sys.stderr
        self.leave = leave  # tqdm's leave=False: no closing line (an inner loop's summary is printed elsewhere)
        self.postfix = ""
        self._start = time.monotonic()
        self._last = self._start
        self._closed = False

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100.0 * self.n / self.total:.0f}%)" if self.total else ""
        rate = f", {self.n / elapsed:.3g} {self.unit}/s" if elapsed > 0 and self.n else ""
        post = f" {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {done} {self.unit}{pct} in {elapsed:.0f} s{rate}{post}"

    def _emit(self) -> None:
        if not self.disable:
            print(self.line(), file=self.stream, flush=True)
        self._last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._emit()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**dict(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.leave:
                self._emit()

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:  # type: ignore[union-attr]
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def write(s: str, file=None) -> None:
        print(s, file=file or sys.stderr, flush=True)


def progress(iterable: Iterable | None = None, **kwargs):
    """A progress bar on a terminal, periodic plain lines otherwise (see the module docstring)."""
    if _is_terminal(kwargs.get("file") or sys.stderr):
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
    return LineProgress(iterable, **kwargs)


def write(s: str) -> None:
    """Print a line without breaking a bar (tqdm.write on a terminal, a plain line otherwise)."""
    if _is_terminal(sys.stderr):
        from tqdm.auto import tqdm

        tqdm.write(s)
    else:
        print(s, flush=True)
