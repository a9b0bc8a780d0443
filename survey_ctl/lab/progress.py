"""Steps with elapsed times: live on a terminal, plain lines otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from survey_ctl import console


class _StateColumn(SpinnerColumn):
    """A spinner while the step runs, then a green ✓ or a red ✗."""

    def render(self, task: Task):
        if task.finished:
            ok = task.fields.get("ok", True)
            return Text("✓", style="green") if ok else Text("✗", style="red")
        return super().render(task)


class Steps:
    """Shows named steps (possibly several at once, from threads) while they run."""

    def __init__(self) -> None:
        self._live = console.is_interactive()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._progress: Progress | None = None

    def __enter__(self) -> Steps:
        if self._live:
            self._progress = Progress(
                _StateColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console.err,
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @property
    def elapsed(self) -> float:
        """Seconds since the steps began."""
        return time.monotonic() - self._started

    @contextmanager
    def step(self, title: str) -> Iterator[StepHandle]:
        """Run one step: shown while running, marked done (or failed) with its time."""
        handle = StepHandle(self, title)
        handle.begin()
        try:
            yield handle
        except BaseException:
            handle.end(ok=False)
            raise
        handle.end(ok=True)


class StepHandle:
    """One running step; `note` changes the text shown after its title."""

    def __init__(self, steps: Steps, title: str) -> None:
        self._steps = steps
        self.title = title
        self._task: TaskID | None = None
        self._t0 = time.monotonic()
        self._note = ""

    def begin(self) -> None:
        """Show the step as running."""
        progress = self._steps._progress
        if progress is not None:
            self._task = progress.add_task(escape(self.title), total=1)
        else:
            console.info(f"• {self.title} …")

    def note(self, text: str) -> None:
        """Say what the step is doing now, or what it found."""
        self._note = text
        progress = self._steps._progress
        if progress is not None and self._task is not None:
            progress.update(self._task, description=self._describe())

    def _describe(self) -> str:
        tail = f" [dim]({escape(self._note)})[/dim]" if self._note else ""
        return escape(self.title) + tail

    def end(self, ok: bool) -> None:
        """Mark the step done or failed, with its time."""
        seconds = time.monotonic() - self._t0
        progress = self._steps._progress
        if progress is not None and self._task is not None:
            mark = "" if ok else " [red]failed[/red]"
            progress.update(self._task, description=self._describe() + mark, completed=1, ok=ok)
            return
        suffix = f" ({self._note})" if self._note else ""
        line = f"{self.title}{suffix} [{seconds:.1f}s]"
        with self._steps._lock:
            if ok:
                console.success(line)
            else:
                console.warn(f"{line} failed")
