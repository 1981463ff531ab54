"""install.sh / uninstall.sh repository: the ComfyUI plugin in a Deadline repository (and an older comfyfarm's
ComfyUIRelink event taken away)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from farm_plugin import __version__
from farm_plugin.installation.manifest import file_sha256
from farm_plugin.jobrecord import SCHEMA_VERSION
from tests.doubles.deadline.store import JobStore
from tests.doubles.deadline_runtime import SITE_DIR
from tests.doubles.deadline_runtime.repository import StoreBackend
from tests.doubles.deadline_runtime.runtime import PluginHost, TaskSpec, WorkerSettings

from .conftest import REPO, Studio, run_installer, run_script, snapshot

SHIPPED = {
    "custom/plugins/ComfyUI/ComfyUI.py": "farm_plugin/ComfyUI/ComfyUI.py",
    "custom/plugins/ComfyUI/ComfyUI.param": "farm_plugin/ComfyUI/ComfyUI.param",
    "custom/plugins/ComfyUI/ComfyUI.options": "farm_plugin/ComfyUI/ComfyUI.options",
    "custom/plugins/ComfyUI/ComfyUI.ico": "farm_plugin/ComfyUI/ComfyUI.ico",
}
RETIRED_EVENT = ("custom/events/ComfyUIRelink/ComfyUIRelink.py", "custom/events/ComfyUIRelink/ComfyUIRelink.param")


def install(studio: Studio, *args: str):
    return run_installer("install", "repository", "--repository", str(studio.repository), *args)


def test_install_puts_the_plugin_in_custom_and_nothing_else(repository: Studio) -> None:
    before = snapshot(repository.root)
    code, out = install(repository)
    assert code == 0, out
    repo = repository.repository
    for installed, source in SHIPPED.items():
        assert file_sha256(repo / installed) == file_sha256(REPO / source), installed
    after = snapshot(repository.root)
    assert {p: h for p, h in before.items()} == {p: after[p] for p in before}  # nothing that was there changed
    new = sorted(set(after) - set(before))
    assert new == sorted([str(repo / p) for p in SHIPPED] + [
        str(repo / "custom" / "plugins" / "ComfyUI"), str(repo / "custom" / ".comfyfarm"),
        str(repo / "custom" / ".comfyfarm" / "repository.json")])
    assert out.splitlines()[:2] == [f"comfyfarm {__version__}: the repository role in {repo}",
                                    f"  Deadline repository {repo}"]
    assert [line for line in out.splitlines() if line.startswith("installed")] == [
        f"installed     {repo / p}" for p in sorted(SHIPPED)]
    assert f"4 new, 0 unchanged file(s); manifest {repo}/custom/.comfyfarm/repository.json" in out.splitlines()
    manifest = json.loads((repo / "custom" / ".comfyfarm" / "repository.json").read_text())
    assert manifest["version"] == __version__ and manifest["role"] == "repository"
    assert sorted(manifest["files"]) == sorted(str(repo / p) for p in SHIPPED)


def test_a_second_run_changes_nothing(repository: Studio) -> None:
    assert install(repository)[0] == 0
    before = snapshot(repository.root)
    code, out = install(repository)
    assert code == 0
    assert snapshot(repository.root) == before
    assert (f"nothing to do: comfyfarm {__version__} is installed as it should be (4 files checked, "
            f"{repository.repository}/custom/.comfyfarm/repository.json)") in out.splitlines()


def test_dry_run_says_what_it_would_do_and_changes_nothing(repository: Studio) -> None:
    before = snapshot(repository.root)
    code, out = install(repository, "--dry-run")
    assert code == 0
    assert snapshot(repository.root) == before
    plugin = repository.repository / "custom" / "plugins" / "ComfyUI" / "ComfyUI.py"
    assert f"would install {plugin}" in out.splitlines()
    assert out.splitlines()[-3] == "would be: 4 new, 0 unchanged file(s); nothing was changed"


def test_another_vendors_comfyui_plugin_is_backed_up_and_put_back_by_uninstall(repository: Studio) -> None:
    theirs = repository.repository / "custom" / "plugins" / "ComfyUI"
    theirs.mkdir()
    (theirs / "ComfyUI.py").write_text("# doubletwisted's ComfyUI plugin\n")
    (theirs / "notes.txt").write_text("ours, not comfyfarm's\n")
    before = snapshot(repository.root)
    code, out = install(repository)
    assert code == 0
    backup = repository.repository / "custom/.comfyfarm/backup/original/custom/plugins/ComfyUI/ComfyUI.py"
    assert (f"replaced      {theirs / 'ComfyUI.py'} (it was not comfyfarm's: kept in {backup}, put back by "
            "uninstall)") in out.splitlines()
    assert backup.read_text() == "# doubletwisted's ComfyUI plugin\n"
    assert (theirs / "notes.txt").read_text() == "ours, not comfyfarm's\n"
    code, out = run_installer("uninstall", "repository", "--repository", str(repository.repository))
    assert code == 0, out
    assert snapshot(repository.root) == before  # the machine as it was, their plugin included


def test_a_plugin_copied_by_hand_is_adopted_and_removed_by_uninstall(repository: Studio) -> None:
    before = snapshot(repository.root)
    copied = repository.repository / "custom" / "plugins" / "ComfyUI"
    copied.mkdir()
    (copied / "ComfyUI.py").write_bytes((REPO / SHIPPED["custom/plugins/ComfyUI/ComfyUI.py"]).read_bytes())
    code, out = install(repository)
    assert code == 0
    assert f"adopted       {copied / 'ComfyUI.py'}" in out.splitlines()
    assert "3 new, 1 adopted (already there, identical), 0 unchanged file(s)" in out
    assert not (repository.repository / "custom" / ".comfyfarm" / "backup").exists()
    assert run_installer("uninstall", "repository", "--repository", str(repository.repository))[0] == 0
    assert snapshot(repository.root) == {**before, str(copied): "folder"}  # the folder was there before


def test_upgrade_over_an_older_install_keeps_a_hand_edit(repository: Studio) -> None:
    assert install(repository)[0] == 0
    repo = repository.repository
    # comfyfarm 0.0.9 was installed: its plugin file differed, and someone edited the .param since.
    manifest_file = repo / "custom" / ".comfyfarm" / "repository.json"
    manifest = json.loads(manifest_file.read_text())
    plugin = repo / "custom" / "plugins" / "ComfyUI" / "ComfyUI.py"
    plugin.write_text('COMFYFARM_VERSION = "0.0.9"\n')
    manifest["version"] = "0.0.9"
    manifest["files"][str(plugin)]["sha256"] = file_sha256(plugin)
    manifest_file.write_text(json.dumps(manifest))
    param = repo / "custom" / "plugins" / "ComfyUI" / "ComfyUI.param"
    param.write_text(param.read_text() + "\n[StudioSetting]\nType=string\n")
    edited = param.read_text()

    code, out = install(repository)
    assert code == 0, out
    assert out.splitlines()[0] == f"comfyfarm {__version__}: the repository role in {repo} over comfyfarm 0.0.9"
    assert f"upgraded      {plugin}" in out.splitlines()
    assert file_sha256(plugin) == file_sha256(REPO / SHIPPED["custom/plugins/ComfyUI/ComfyUI.py"])
    (kept_line,) = [line for line in out.splitlines() if line.startswith(f"replaced      {param}")]
    backup = Path(kept_line.split("your copy is kept in ")[1].rstrip(")"))
    assert backup.read_text() == edited  # the hand edit is not lost
    assert file_sha256(param) == file_sha256(REPO / SHIPPED["custom/plugins/ComfyUI/ComfyUI.param"])
    assert "3 unchanged" not in out and "1 upgraded, 1 replaced with a backup, 2 unchanged file(s)" in out

    code, out = run_installer("uninstall", "repository", "--repository", str(repo))
    assert code == 0
    assert f"kept          {backup} (your copy of a file changed by hand; comfyfarm never deletes those)" in out
    assert not (repo / "custom" / "plugins" / "ComfyUI").exists()
    assert not (repo / "custom" / "events" / "ComfyUIRelink").exists()
    assert backup.read_text() == edited


def test_an_upgrade_takes_away_the_event_an_older_install_put_there(repository: Studio) -> None:
    """comfyfarm 0.1.0 installed the ComfyUIRelink event; hand-back jobs replace it, so the upgrade removes it
    (it is in the older manifest), and the doctor has nothing to warn about."""
    assert install(repository)[0] == 0
    repo = repository.repository
    manifest_file = repo / "custom" / ".comfyfarm" / "repository.json"
    manifest = json.loads(manifest_file.read_text())
    for name in RETIRED_EVENT:
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# comfyfarm 0.0.9's {path.name}\n")
        manifest["files"][str(path)] = {"sha256": file_sha256(path), "backup": None}
    manifest["version"] = "0.0.9"
    manifest["dirs"] = manifest.get("dirs", []) + [str(repo / "custom" / "events" / "ComfyUIRelink")]
    manifest_file.write_text(json.dumps(manifest))
    code, out = install(repository)
    assert code == 0, out
    assert [line for line in out.splitlines() if line.startswith("removed ")] == [
        f"removed       {repo / name} (no longer part of comfyfarm)" for name in sorted(RETIRED_EVENT)]
    assert not (repo / "custom" / "events" / "ComfyUIRelink").exists()
    assert sorted(json.loads(manifest_file.read_text())["files"]) == sorted(str(repo / p) for p in SHIPPED)


def test_an_event_copied_there_by_hand_is_named_and_left_alone(repository: Studio) -> None:
    event = repository.repository / "custom" / "events" / "ComfyUIRelink"
    event.mkdir(parents=True)
    (event / "ComfyUIRelink.py").write_text("# copied by hand\n")
    code, out = install(repository)
    assert code == 0, out
    assert (f"  {event} (an older comfyfarm's event, not installed by this installer) is no longer used: hand-back "
            "jobs bring results back to Flame; delete the folder") in out.splitlines()
    assert (event / "ComfyUIRelink.py").read_text() == "# copied by hand\n"


def test_an_upgrade_cut_short_is_carried_on_by_the_next_run(repository: Studio, monkeypatch) -> None:
    from comfyfarm_install import files

    assert install(repository)[0] == 0
    repo = repository.repository
    manifest_file = repo / "custom" / ".comfyfarm" / "repository.json"
    manifest = json.loads(manifest_file.read_text())
    older = [repo / "custom/plugins/ComfyUI/ComfyUI.options", repo / "custom/plugins/ComfyUI/ComfyUI.py"]
    for path in older:  # comfyfarm 0.0.9's files
        path.write_text(f"# comfyfarm 0.0.9's {path.name}\n")
        manifest["files"][str(path)]["sha256"] = file_sha256(path)
    manifest["version"] = "0.0.9"
    manifest_file.write_text(json.dumps(manifest))
    write = files.Source.write
    written = []

    def disk_full_at_the_second_file(source, target):
        if written:
            raise OSError(28, "No space left on device", str(target))
        written.append(target)
        write(source, target)

    monkeypatch.setattr(files.Source, "write", disk_full_at_the_second_file)
    code, out = install(repository)
    assert code == 1
    assert out.splitlines()[-1] == (f"install.sh repository: {older[1]}: No space left on device: run it as a user who "
                                    "may write there (often root), or choose another --prefix; then run it again: it "
                                    "carries on where it stopped")
    monkeypatch.setattr(files.Source, "write", write)
    code, out = install(repository)
    assert code == 0, out
    assert [line for line in out.splitlines() if line.startswith(("upgraded", "replaced"))] == [
        f"upgraded      {older[1]}"]  # the file written before the cut is not taken for someone else's
    for installed, source in SHIPPED.items():
        assert file_sha256(repo / installed) == file_sha256(REPO / source), installed
    assert not (repo / "custom" / ".comfyfarm" / "backup").exists()


def test_the_shell_scripts_install_and_uninstall(repository: Studio) -> None:
    before = snapshot(repository.root)
    result = run_script("install.sh", "repository", "--repository", str(repository.repository))
    assert result.returncode == 0, result.stderr
    assert (repository.repository / "custom" / "plugins" / "ComfyUI" / "ComfyUI.py").is_file()
    result = run_script("uninstall.sh", "repository", "--repository", str(repository.repository))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (f"removed 4 file(s), kept 0 changed by hand; comfyfarm {__version__} "
                                              f"is no longer installed in {repository.repository}")
    assert snapshot(repository.root) == before


def test_a_folder_that_is_not_a_repository_is_refused(studio: Studio) -> None:
    folder = studio.root / "typo"
    folder.mkdir(parents=True)
    code, out = run_installer("install", "repository", "--repository", str(folder))
    assert code == 1
    assert out == (f"install.sh repository: {folder} does not look like a Deadline repository (no custom/, plugins/, "
                   "events/ or settings/ folder): pass --repository DIR\n")
    assert list(folder.iterdir()) == []


def run_one_task(studio: Studio, tmp_path: Path, record: dict):
    """The installed ComfyUI plugin, loaded from the repository by the Deadline runtime double, runs one task."""
    path = tmp_path / "job.json"
    path.write_text(json.dumps(record))
    sys.path.insert(0, str(SITE_DIR))
    store = JobStore(aux_root=studio.repository)
    host = PluginHost(WorkerSettings("gpu01", tmp_path / "gpu01"), studio.repository, StoreBackend(store))
    try:
        job = store.submit_job({"JobInfo": {"Plugin": "ComfyUI", "Frames": "1-2", "ChunkSize": 2, "Name": "sh010"},
                                "PluginInfo": {"JobRecord": str(path)}})["_id"]
        lease = store.dequeue_task("gpu01")
        return path, host.render_task(TaskSpec(job, lease.task_id, lease.frames), cancel=threading.Event())
    finally:
        host.close()
        sys.path.remove(str(SITE_DIR))


def test_the_installed_plugin_refuses_a_job_record_from_an_incompatible_comfyfarm(repository: Studio,
                                                                                   tmp_path: Path) -> None:
    assert install(repository)[0] == 0
    record, outcome = run_one_task(repository, tmp_path, {"schema": SCHEMA_VERSION + 1, "created_by": "0.2.0"})
    assert outcome.state == "failed"
    assert (f"the job record {record} was written by comfyfarm 0.2.0 (job record schema {SCHEMA_VERSION + 1}), newer "
            f"than this farm's comfyfarm {__version__} reads (schema {SCHEMA_VERSION}): upgrade the farm to comfyfarm "
            "0.2.0 (install/install.sh repository, and install/install.sh worker on each GPU node), or resubmit the "
            "job from comfyfarm "
            f"{__version__}") in outcome.error
    assert "starting ComfyUI" not in outcome.log  # refused before any ComfyUI started


def test_the_plugins_log_names_its_version_and_the_records(repository: Studio, tmp_path: Path) -> None:
    assert install(repository)[0] == 0
    _, outcome = run_one_task(repository, tmp_path, {"schema": 1, "created_by": __version__})
    assert (f"comfyfarm {__version__}: ComfyUI plugin starting job sh010 (job record written by comfyfarm "
            f"{__version__}, schema 1)") in outcome.log
