"""The one module that talks to ``flame``: the relink watcher's life and the farm menu actions.

Every function here runs on Flame's main thread (a hook callback or an idle event). Work that waits on
the network runs in a thread that never touches ``flame``; its answer is picked up by an idle event.

One Flame process has one :class:`FlameApp` (:func:`app_for`). It is kept here, in comfyfarm's package, and not
in the hook file: "Rescan Python Hooks" imports the hook file again (the packages it imported stay loaded), and
the watcher that was running must stay the only one. Flame calls ``app_initialized`` after each project it
loads (Autodesk's Python Hooks Reference: appInitialized "is called whenever the project changes"):
:meth:`FlameApp.project_loaded` then starts the watcher afresh for that project.
"""

from __future__ import annotations

import getpass
import logging
import queue
import threading
from pathlib import Path
from typing import Any, List, Optional

from flame_submitter.config import Config, ConfigError, load_config
from flame_submitter.flame.relink import RelinkWatcher

logger = logging.getLogger(__name__)

RESULT_POLL_SECONDS = 1
JOBS_SHOWN = 15


class FlameApp:
    """comfyfarm inside one Flame session: its configuration and its relink watcher."""

    def __init__(self, flame: Any, config: Config) -> None:
        self.flame = flame
        self.config = config
        self.watcher: Optional[RelinkWatcher] = None
        self.relink_wanted = False  # app_initialized asked for the watcher (it may have had no inbox then)

    @property
    def user(self) -> str:
        return self.config.deadline_user or getpass.getuser()

    def project_loaded(self, project_name: str) -> None:
        """``app_initialized``: Flame has started or loaded ``project_name``. The watcher forgets what it knew of
        the project before (the records it set aside as another project's are that project's now, maybe) and
        watches for this one."""
        logger.info("comfyfarm: project %s loaded", project_name)
        if self.watcher is not None:
            self.watcher.reset()
        self.start_relink()

    def resume_relink(self) -> None:
        """Start the watcher if it is not running and an inbox is configured, without a word otherwise: the hook
        file was loaded by "Rescan Python Hooks", which calls no app_initialized."""
        if self.config.inbox_root and (self.watcher is None or not self.watcher.running):
            self.start_relink()

    def start_relink(self) -> None:
        """Start watching the inbox (``app_initialized``); says so in the console if it cannot."""
        self.relink_wanted = True
        if not self.config.inbox_root:
            self.flame.messages.show_in_console(
                "comfyfarm: no inbox_root configured: finished farm renders will not come back by themselves "
                "(set inbox_root or COMFYFARM_INBOX_ROOT)", "warning", 10)
            return
        if self.watcher is None:
            self.watcher = RelinkWatcher(self.flame, Path(self.config.inbox_root).expanduser(), user=self.user,
                                         library=self.config.flame_library,
                                         poll_s=max(1, int(self.config.relink_poll_s)))
        self.watcher.start()

    def close(self) -> None:
        """This Flame session is over for comfyfarm (another took its place): the watcher stops."""
        if self.watcher is not None:
            self.watcher.stop()

    def apply_config(self, config: Config) -> None:
        """Use a new configuration from now on (Settings saved); the watcher follows a new inbox or user."""
        before, self.config = self.config, config
        relink = ("inbox_root", "deadline_user", "flame_library", "relink_poll_s")
        if any(getattr(before, key) != getattr(config, key) for key in relink) and self.relink_wanted:
            if self.watcher is not None:
                self.watcher.stop()
                self.watcher = None
            self.start_relink()

    def settings_dialog(self) -> Any:
        """The menu action: the artist's settings; saving them applies them to this session."""
        return open_settings(self.flame)

    def import_finished_renders(self) -> int:
        """The menu action: import every pending record now; with none waiting (or no inbox), offer to import a
        finished job from a folder the artist picks, e.g. a Deadline Cloud job's output folder (bundle_import.py).
        Returns how many records or clips were handled."""
        from flame_submitter.flame.bundle_import import offer_folder_import

        inbox = Path(self.config.inbox_root).expanduser() if self.config.inbox_root else None
        if inbox is not None:
            if self.watcher is None:
                self.start_relink()
            assert self.watcher is not None
            outcomes = self.watcher.import_all()
            if outcomes:
                return len(outcomes)
            self.flame.messages.show_in_console("comfyfarm: no finished renders waiting", "info", 5)
        return offer_folder_import(self.flame, library=self.config.flame_library, inbox=inbox)

    def show_farm_jobs(self) -> None:
        """The menu action: this user's recent jobs, fetched off the main thread, shown when they arrive."""
        answers: queue.Queue[str] = queue.Queue()
        config, user = self.config, self.user

        def fetch() -> None:
            answers.put(describe_jobs(config, user))

        threading.Thread(target=fetch, name="comfyfarm-jobs", daemon=True).start()

        def show() -> None:
            try:
                text = answers.get_nowait()
            except queue.Empty:
                self.flame.schedule_idle_event(show, RESULT_POLL_SECONDS)
                return
            self.flame.messages.show_in_dialog("ComfyUI Farm: your jobs", text, "info", ["OK"])

        self.flame.schedule_idle_event(show, 0)

    def run_locally_dialog(self, selection: Any) -> Any:
        """The menu action: the same dialog in local mode; run-local runs in the background, with progress
        and Stop, and the finished renders are imported into the library."""
        from farm_plugin.errors import ComfyfarmError
        from farm_plugin.workflow.package import load_package
        from flame_submitter.dialog import SubmitDialog, flame_main_window
        from flame_submitter.dialog.model import SubmitResult
        from flame_submitter.flame.launch import clean_environment, comfyfarm_command
        from flame_submitter.flame.media import SelectionError, describe
        from flame_submitter.flame.preview import PreviewRunner
        from flame_submitter.flame.relink import as_layers, import_render, passes_at
        from flame_submitter.flame.submit import clip_summary, local_requests, run_locally

        try:
            sources = describe(tuple(selection), self.flame, use_marks=False)
        except SelectionError as exc:
            self.flame.messages.show_in_dialog("ComfyUI Farm", str(exc), "error", ["OK"])
            return None
        dialog = SubmitDialog.from_config([clip_summary(s) for s in sources], self.config, local=True,
                                          parent=flame_main_window())
        dialog.preview_runner = PreviewRunner(self.flame, self.config, dialog, sources)
        stop = threading.Event()
        dialog.cancel_requested.connect(stop.set)

        def start(choice: Any) -> None:
            try:  # main thread: the program that runs comfyfarm, the frames on disk (an export), the passes
                launcher = comfyfarm_command(str(self.flame.get_version()))
                requests = local_requests(self.flame, sources, choice, self.config)
                package = load_package(choice.workflow_path)
            except ComfyfarmError as exc:  # no comfyfarm to run, an export or a selection problem: in words
                dialog.show_result(SubmitResult(error=str(exc)))
                return
            except Exception as exc:  # the dialog must not stay busy: the artist gets words, the log the traceback
                logger.exception("comfyfarm: Run locally could not start")
                dialog.show_result(SubmitResult(error=f"Run locally could not start: an unexpected error ({exc!r})"))
                return
            title, pass_names = package.title, [output.name for output in package.outputs]
            rendered = [(r.name, passes_at(r.output_pattern, pass_names, r.frames, exr_layers=choice.exr_layers))
                        for r in requests]
            answers: queue.Queue[Any] = queue.Queue()
            gpus, env = tuple(self.config.gpus), clean_environment()
            threading.Thread(target=lambda: answers.put(run_locally(requests, choice, progress=dialog.post_progress,
                                                                    stop=stop, gpus=gpus, launcher=launcher,
                                                                    env=env)),
                             name="comfyfarm-local", daemon=True).start()

            def finish() -> None:
                try:
                    result = answers.get_nowait()
                except queue.Empty:
                    self.flame.schedule_idle_event(finish, RESULT_POLL_SECONDS)
                    return
                if result.ok:
                    names: List[str] = []
                    try:
                        for name, passes in rendered:
                            names += import_render(self.flame, self.config.flame_library, workflow=choice.workflow,
                                                   workflow_title=title, clip_name=name, passes=passes)
                    except Exception as exc:  # the frames are on disk: say where, in words
                        where = ", ".join(item.output_pattern for item in passes)
                        done = f"; {', '.join(names)} imported before it" if names else ""
                        result = SubmitResult(error=f"Rendered, but Flame could not import it ({exc}): the frames "
                                                    f"are in {where}{done}")
                    else:
                        layers = next((passes for _name, passes in rendered if as_layers(passes)), None)
                        kind = "a multi-channel clip" if len(rendered) == 1 else "multi-channel clips"
                        held = (f": {kind} with the passes {', '.join(p.name for p in layers)} as layers" if layers
                                else "")
                        result = SubmitResult(
                            message=f"Imported {', '.join(names)} into {self.config.flame_library}{held}")
                dialog.show_result(result)

            self.flame.schedule_idle_event(finish, 0)

        dialog.submit_requested.connect(start)
        dialog.show()
        return dialog

    def submit_dialog(self, selection: Any) -> Any:
        """The menu action: describe the selection, open the dialog, and submit off the main thread."""
        from flame_submitter.dialog import SubmitDialog, flame_main_window
        from flame_submitter.dialog.model import SubmitResult
        from flame_submitter.flame.media import SelectionError, describe
        from flame_submitter.flame.preview import PreviewRunner, watch_farm
        from flame_submitter.flame.submit import clip_summary, shared_check, start_submission

        try:
            sources = describe(tuple(selection), self.flame, use_marks=False)
        except SelectionError as exc:
            self.flame.messages.show_in_dialog("ComfyUI Farm", str(exc), "error", ["OK"])
            return None
        dialog = SubmitDialog.from_config([clip_summary(s, shared_check(self.config)) for s in sources], self.config,
                                          local=False, parent=flame_main_window())
        dialog.preview_runner = PreviewRunner(self.flame, self.config, dialog, sources)

        def submitted(result: SubmitResult) -> None:
            dialog.show_result(result)
            if result.ok and result.job_ids:  # results as they arrive, in the dialog while it stays open
                dialog.farm_watcher = watch_farm(self.flame, dialog, result.job_ids)

        # start_submission answers every outcome through show_result (a failed export too), never by raising
        dialog.submit_requested.connect(
            lambda choice: start_submission(self.flame, sources, choice, self.config, submitted))
        dialog.show()
        return dialog


def describe_jobs(config: Config, user: str) -> str:
    """Lines about ``user``'s recent comfyfarm jobs, or why they cannot be listed (no flame calls here)."""
    from farm_plugin.errors import ComfyfarmError
    from flame_submitter.deadline.jobs import recent_jobs, state_of, task_counts
    from flame_submitter.deadline.submit import deadline_client

    try:
        jobs = recent_jobs(deadline_client(config).get_jobs(), user)
    except ComfyfarmError as exc:  # no Deadline configured (bad input), or the Web Service failed
        return f"The farm's jobs cannot be listed: {exc}"
    if not jobs:
        return f"No comfyfarm jobs for {user} on the farm."
    lines: List[str] = []
    for job in jobs[:JOBS_SHOWN]:
        done, total = task_counts(job)
        lines.append(f"{(job.get('Props') or {}).get('Name', job.get('_id'))}: {state_of(job)}, {done}/{total} tasks")
    return "\n".join(lines)


def open_settings(flame: Any) -> Any:
    """The Settings dialog, parented to Flame's window. It opens even when the configuration cannot be read
    (that is where to fix it); once saved, the session's app uses the new configuration, or is created."""
    from flame_submitter.config.settings_model import SettingsModel
    from flame_submitter.dialog import flame_main_window, use_flame_binding

    use_flame_binding(str(flame.get_version()))
    from flame_submitter.dialog.settings_dialog import SettingsDialog

    dialog = SettingsDialog(SettingsModel.load(), parent=flame_main_window())

    def saved(path: str) -> None:
        try:
            config = load_config()
        except ConfigError as exc:
            flame.messages.show_in_console(f"comfyfarm: settings saved in {path}, but {exc}", "error", 15)
            return
        app = running_app(flame)
        if app is not None:
            app.apply_config(config)
        else:
            app = _adopt(FlameApp(flame, config))
            app.start_relink()
        flame.messages.show_in_console(f"comfyfarm: settings saved in {path}", "info", 5)

    dialog.saved.connect(saved)
    dialog.show()
    return dialog


# The FlameApp of this Flame process. Flame has one ``flame`` module; a new one (a test's next emulated Flame)
# replaces the app, whose watcher stops. Here and not in the hook file, which a rescan imports again.
_CURRENT: List[FlameApp] = []


def running_app(flame: Any) -> Optional[FlameApp]:
    """The FlameApp already serving this ``flame`` module, if any."""
    return next((app for app in _CURRENT if app.flame is flame), None)


def _adopt(app: FlameApp) -> FlameApp:
    for old in _CURRENT:
        old.close()
    _CURRENT[:] = [app]
    return app


def app_for(flame: Any) -> Optional[FlameApp]:
    """The FlameApp of this Flame session, or None with a console message (the configuration cannot be read).
    Before anything opens a dialog, the Qt binding is set from Flame's version."""
    from flame_submitter.dialog import use_flame_binding

    app = running_app(flame)
    if app is not None:
        return app
    use_flame_binding(str(flame.get_version()))
    try:
        config = load_config()
    except ConfigError as exc:
        flame.messages.show_in_console(f"comfyfarm: {exc}", "error", 15)
        return None
    return _adopt(FlameApp(flame, config))
