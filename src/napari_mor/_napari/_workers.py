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

__all__ = [
    "iter_reported_progress",
    "keep_activity_indicator_still",
    "notify_worker_error",
    "start_worker",
]


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
    if hasattr(worker, "aborted"):  # generator workers only
        worker.aborted.connect(aborted)
    worker.finished.connect(finished)
    if cancel_button is not None:
        cancel_button.setEnabled(True)
    if run_button is not None:
        run_button.setEnabled(False)
    worker.start()
    keep_activity_indicator_still(worker)  # the GIF would slow the worker
    return worker


def iter_reported_progress(
    run: Callable,
    *args,
    callback: str = "on_progress",
    should_stop: Callable[[], bool] | None = None,
    **kwargs,
):
    """Drive a core function that reports through a callback as a generator.

    Qt-free adapter for :func:`start_worker`: ``run(*args, **kwargs)`` runs in a
    helper thread with ``callback=report``; every ``report(*values)`` it makes
    (from any thread, e.g. dask's) is yielded here as the tuple ``values``, so the
    worker's progress bar moves as for a generator core.

    Parameters
    ----------
    run : callable
        A core function with a progress callback keyword (e.g.
        ``napari_mor.group.batch.run_batch`` and its ``on_progress``).
    callback : str
        Name of that keyword.
    should_stop : callable() -> bool, optional
        Polled at every report; when true (or when this generator is closed)
        the next report raises inside ``run``, so the work stops at its next
        progress point (e.g. between subjects), and this generator returns None.

    Yields
    ------
    values : tuple
        The arguments of each report, in order.

    Returns
    -------
    object
        ``run``'s return value (None when stopped); ``run``'s exception is
        re-raised here.
    """
    import queue
    import threading

    class _Stopped(Exception):
        """Raised inside ``run`` by its progress callback to stop it."""

    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def report(*values) -> None:
        if stop.is_set() or (should_stop is not None and should_stop()):
            stop.set()
            raise _Stopped
        events.put(("progress", values))

    def target() -> None:
        try:
            events.put(("returned", run(*args, **{callback: report}, **kwargs)))
        except BaseException as err:  # handed to the generator's thread
            events.put(("raised", err))

    threading.Thread(
        target=target, name="napari-mor callback work", daemon=True
    ).start()
    try:
        while True:
            kind, value = events.get()
            if kind == "progress":
                yield value
            elif kind == "returned":
                return value
            elif isinstance(value, _Stopped):
                return None
            else:
                raise value
    finally:
        stop.set()  # closed early (worker quit): stop at the next report


def keep_activity_indicator_still(worker) -> None:
    """Pause napari's animated "in progress" indicator while ``worker`` runs.

    napari animates a GIF in its status bar while any progress bar is active.
    Each GIF frame (~28 per second) repaints the main window, and a window
    holding an OpenGL canvas is recomposed whole: with software OpenGL (Mesa
    llvmpipe: VMs, remote desktops, Xvfb) that costs 0.5-1.5 cores at 1-3
    megapixels, taken from the worker on a small machine (the Group dock's
    statistics ran up to 6x slower than the CLI). The indicator stays visible,
    frozen; the activity dock and the dock's own bar still move; napari starts
    the animation afresh for later workers. Public Qt API only: a no-op if
    napari's status bar holds no animated label.

    Parameters
    ----------
    worker : napari.qt.threading.WorkerBase
        Started (e.g. by :func:`start_worker`).
    """
    import contextlib

    from qtpy.QtGui import QMovie
    from qtpy.QtWidgets import QApplication, QLabel, QStatusBar

    app = QApplication.instance()
    if app is None:
        return
    movies = [
        label.movie()
        for top in app.topLevelWidgets()
        for bar in top.findChildren(QStatusBar)
        for label in bar.findChildren(QLabel)
        if label.movie() is not None
    ]

    def pause() -> None:
        for movie in movies:
            if movie.state() == QMovie.MovieState.Running:
                movie.setPaused(True)

    def release() -> None:
        for movie in movies:
            with contextlib.suppress(RuntimeError, TypeError):  # disconnected
                movie.started.disconnect(pause)

    for movie in movies:
        movie.started.connect(pause)  # napari starts it on the worker's start
    worker.finished.connect(release)
    pause()  # already animating for another worker
