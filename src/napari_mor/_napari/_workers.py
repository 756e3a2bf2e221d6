"""The one way the docks run a workflow in the background: progress, cancel, errors.

:func:`start_worker` wraps a Qt-free generator (or plain function) in napari's
``create_worker``, so napari's activity dock shows its progress too, and wires it
to the dock: an optional in-dock ``QProgressBar`` driven from the yielded values,
a Cancel button enabled while it runs (``worker.quit()`` stops the work between
chunks), a run button disabled while it runs, errors shown as notifications
(never raised into Qt), and the dock's ``on_returned`` called on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

from napari_mor._errors import MorError

__all__ = ["notify_worker_error", "start_worker"]


def notify_worker_error(desc: str) -> Callable[[Exception], None]:
    """A handler showing a worker's exception (a MorError's message, else its repr)."""

    def show(err: Exception) -> None:
        show_error(str(err) if isinstance(err, MorError) else f"{desc} failed: {err!r}")

    return show


def start_worker(
    work: Callable,
    *args,
    desc: str,
    on_returned: Callable,
    on_yielded: Callable | None = None,
    fraction_of: Callable | None = None,
    progress_bar=None,
    cancel_button=None,
    run_button=None,
    on_aborted: Callable | None = None,
    on_finished: Callable | None = None,
    total: int = 0,
    **kwargs,
):
    """Start ``work(*args, **kwargs)`` in a thread and wire it to a dock.

    Parameters
    ----------
    work : callable
        A generator function (yields progress; its return value is the result)
        or a plain function. Qt-free.
    desc : str
        What runs, for napari's activity dock and error messages.
    on_returned : callable(result)
        Called on the GUI thread with the result.
    on_yielded : callable(value), optional
        Called with every yielded value.
    fraction_of : callable(value) -> float, optional
        Progress (0-1) of a yielded value, for ``progress_bar`` (range 0-1000).
    progress_bar : QProgressBar, optional
    cancel_button, run_button : QPushButton, optional
        Enabled / disabled while the worker runs (the dock connects its Cancel
        button to ``worker.quit()``, which stops the work between chunks).
    on_aborted, on_finished : callable, optional
        Extra handlers after cancel / when the worker ends either way.
    total : int
        Steps for napari's activity dock (0: indeterminate).

    Returns
    -------
    worker : napari.qt.threading.WorkerBase
        Started.
    """
    worker = create_worker(
        work,
        *args,
        _progress={"total": total, "desc": desc},
        _ignore_errors=True,
        **kwargs,
    )
    if on_yielded is not None:
        worker.yielded.connect(on_yielded)
    if progress_bar is not None:
        progress_bar.setRange(0, 1000)
        progress_bar.setValue(0)
        progress_bar.setFormat(f"{desc}… %p%")
        if fraction_of is not None:
            worker.yielded.connect(
                lambda value: progress_bar.setValue(round(1000 * fraction_of(value)))
            )

    def returned(result) -> None:
        if progress_bar is not None:
            progress_bar.setValue(1000)
            progress_bar.setFormat("done")
        on_returned(result)

    def errored(err: Exception) -> None:
        notify_worker_error(desc)(err)
        if progress_bar is not None:
            progress_bar.setFormat("failed")

    def aborted() -> None:
        if progress_bar is not None:
            progress_bar.setValue(0)
            progress_bar.setFormat("cancelled")
        if on_aborted is not None:
            on_aborted()

    def finished() -> None:
        if cancel_button is not None:
            cancel_button.setEnabled(False)
        if run_button is not None:
            run_button.setEnabled(True)
        if on_finished is not None:
            on_finished()

    worker.returned.connect(returned)
    worker.errored.connect(errored)
    worker.aborted.connect(aborted)
    worker.finished.connect(finished)
    if cancel_button is not None:
        cancel_button.setEnabled(True)
    if run_button is not None:
        run_button.setEnabled(False)
    worker.start()
    return worker
