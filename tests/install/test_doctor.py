"""``comfyfarm doctor``: the studio's configuration, storage and Web Service; the repository; the workflows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml

from farm_plugin import __version__
from farm_plugin.comfyui.server import FRAME_NODES_DIR, ComfyUIServer, ServerConfig
from flame_submitter.cli import main
from flame_submitter.doctor.installed import reinstall
from flame_submitter.doctor.worker import frame_nodes_check
from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir

from .conftest import Studio, run_installer


def doctor(capsys: pytest.CaptureFixture, *args: str) -> Tuple[int, List[str], str]:
    code = main(["doctor", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def lines_for(lines: List[str], where: str) -> Dict[str, str]:
    found = {}
    for line in lines:
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] == where:
            found[parts[2].split(":")[0]] = line
    return found


def write_config(studio: Studio, **values: object) -> Path:
    path = studio.root / "home" / ".config" / "comfyfarm" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture
def shared(studio: Studio) -> Path:
    root = studio.root / "mnt" / "projects"
    for folder in ("comfyfarm/jobs", "comfyfarm/inbox"):
        (root / folder).mkdir(parents=True)
    return root


def farm_config(studio: Studio, shared: Path, url: str, **values: object) -> Path:
    settings = {"deadline_url": url, "deadline_user": "ann", "deadline_password": "s3cret",
                "jobs_root": str(shared / "comfyfarm" / "jobs"), "inbox_root": str(shared / "comfyfarm" / "inbox"),
                "shared_roots": [str(shared)]}
    settings.update(values)
    return write_config(studio, **settings)


def workstation_args(studio: Studio) -> List[str]:
    return ["--role", "workstation", "--autodesk-root", str(studio.autodesk), "--no-workflows"]


def test_a_configured_workstation_reaches_the_farm(capsys, studio: Studio, shared: Path, fake_deadline_factory,
                                                   monkeypatch) -> None:
    fake = fake_deadline_factory(users={"ann": "s3cret"})
    config = farm_config(studio, shared, fake.url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config.parents[1]))
    _, lines, _ = doctor(capsys, *workstation_args(studio))
    assert lines_for(lines, "config") == {"configuration": f"OK    config      configuration: read from {config}"}
    assert lines_for(lines, "storage") == {
        "jobs folder": f"OK    storage     jobs folder: {shared}/comfyfarm/jobs is reachable and writable",
        "inbox (finished renders)": f"OK    storage     inbox (finished renders): {shared}/comfyfarm/inbox is "
                                    "reachable and writable",
    }
    assert lines_for(lines, "deadline") == {
        "Web Service reachable": f"OK    deadline    Web Service reachable: {fake.url} answers",
        "Web Service credentials": "OK    deadline    Web Service credentials: 'ann' accepted",
    }


def test_wrong_credentials_and_a_stopped_web_service_are_named(capsys, studio: Studio, shared: Path,
                                                                fake_deadline_factory, monkeypatch) -> None:
    fake = fake_deadline_factory(users={"ann": "another password"})
    config = farm_config(studio, shared, fake.url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config.parents[1]))
    code, lines, _ = doctor(capsys, *workstation_args(studio))
    assert code == 1
    assert lines_for(lines, "deadline")["Web Service credentials"] == (
        f"FAIL  deadline    Web Service credentials: the Deadline Web Service at {fake.url} refused the login as "
        "'ann' (HTTP 401): set deadline_user and deadline_password (COMFYFARM_DEADLINE_USER / "
        "COMFYFARM_DEADLINE_PASSWORD) to your Web Service credentials (Deadline Monitor > Tools > User Settings)")
    assert "s3cret" not in "\n".join(lines)
    fake.stop()
    _, lines, _ = doctor(capsys, *workstation_args(studio))
    reachable = lines_for(lines, "deadline")["Web Service reachable"]
    assert reachable.startswith(f"FAIL  deadline    Web Service reachable: the Deadline Web Service is not reachable "
                                f"at {fake.url} (")
    assert "Web Service credentials" not in lines_for(lines, "deadline")


def test_storage_that_is_missing_or_not_shared_fails(capsys, studio: Studio, shared: Path, monkeypatch) -> None:
    local = studio.root / "local" / "jobs"
    local.mkdir(parents=True)
    config = farm_config(studio, shared, "http://127.0.0.1:9", jobs_root=str(local),
                         inbox_root=str(shared / "not-mounted"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config.parents[1]))
    code, lines, _ = doctor(capsys, *workstation_args(studio))
    assert code == 1
    assert lines_for(lines, "storage") == {
        "jobs folder": f"FAIL  storage     jobs folder: jobs_root {local} is not on shared storage the farm can reach "
                       f"(configured: {shared}): copy or render it there first -> mount the shared storage, or fix "
                       f"jobs_root in {config}",
        "inbox (finished renders)": f"FAIL  storage     inbox (finished renders): {shared}/not-mounted does not "
                                    "exist or is not mounted here -> mount the shared storage, or fix inbox_root in "
                                    f"{config}",
    }


def test_no_configuration_at_all(capsys, studio: Studio) -> None:
    code, lines, _ = doctor(capsys, *workstation_args(studio))
    assert code == 1
    assert lines_for(lines, "config")["configuration"].startswith(
        "FAIL  config      configuration: no configuration file (/etc/comfyfarm/config.yaml or "
        f"{studio.root.parent}/home/.config/comfyfarm/config.yaml) and no COMFYFARM_* variable -> create the studio "
        "file")
    assert lines_for(lines, "deadline") == {"Web Service": "FAIL  deadline    Web Service: deadline_url is not set -> "
                                                           "set deadline_url (COMFYFARM_DEADLINE_URL), e.g. "
                                                           "http://deadline:8081"}


def test_the_repository_doctor_compares_each_plugin_with_this_version(capsys, repository: Studio) -> None:
    repo = repository.repository
    code, lines, _ = doctor(capsys, "--role", "repository", "--repository", str(repo))
    assert code == 1
    assert lines == [
        f"FAIL  repository  ComfyUI plugin: ComfyUI.py, ComfyUI.param, ComfyUI.options, ComfyUI.ico missing from "
        f"{repo}/custom/plugins/ComfyUI -> run install/install.sh repository --repository {repo} from comfyfarm "
        f"{__version__}",
    ]
    assert run_installer("install", "repository", "--repository", str(repo))[0] == 0
    code, lines, err = doctor(capsys, "--role", "repository", "--repository", str(repo))
    assert code == 0
    assert lines == [f"OK    repository  ComfyUI plugin: comfyfarm {__version__} in {repo}/custom/plugins/ComfyUI"]
    assert err == "1 check(s): 1 OK, 0 failed\n"
    (repo / "custom" / "events" / "ComfyUIRelink").mkdir(parents=True)  # an older comfyfarm's, copied by hand
    code, lines, _ = doctor(capsys, "--role", "repository", "--repository", str(repo))
    assert code == 0
    assert lines[1] == (
        f"WARN  repository  ComfyUIRelink event: {repo}/custom/events/ComfyUIRelink is an older comfyfarm's: comfyfarm "
        f"{__version__} hands results back to Flame with a hand-back job per render job, and that event blocks whoever "
        "fires it (a Worker, the Web Service, Monitor) while it runs the runtime's Python -> run install/install.sh "
        f"repository --repository {repo} from comfyfarm {__version__} (it removes the copy it installed), or delete "
        "the folder")
    (repo / "custom" / "events" / "ComfyUIRelink").rmdir()
    plugin = repo / "custom" / "plugins" / "ComfyUI" / "ComfyUI.py"
    plugin.write_text(plugin.read_text().replace(f'COMFYFARM_VERSION = "{__version__}"', 'COMFYFARM_VERSION = "0.0.9"'))
    code, lines, _ = doctor(capsys, "--role", "repository", "--repository", str(repo))
    assert code == 1
    assert lines[0] == (f"FAIL  repository  ComfyUI plugin: {repo}/custom/plugins/ComfyUI holds comfyfarm 0.0.9's; "
                        f"this is comfyfarm {__version__} -> run install/install.sh repository --repository {repo} "
                        f"from comfyfarm {__version__}: the workstations, the repository and the workers must run "
                        "one version")


def test_without_a_role_the_doctor_checks_what_is_installed_here(capsys, repository: Studio, monkeypatch) -> None:
    monkeypatch.setenv("COMFYFARM_AUTODESK_ROOT", str(repository.autodesk))
    code, lines, _ = doctor(capsys, "--prefix", str(repository.worker_prefix))
    assert code == 1
    assert lines[0] == ("FAIL  comfyfarm   installation: no comfyfarm installation found on this machine -> run "
                        "install/install.sh workstation|repository|worker, or pass --role (and --prefix)")
    monkeypatch.setenv("COMFYFARM_DEADLINE_REPOSITORY", str(repository.repository))
    assert run_installer("install", "repository")[0] == 0
    code, lines, _ = doctor(capsys, "--prefix", str(repository.worker_prefix), "--no-workflows")
    assert code == 0
    assert [line.split()[1] for line in lines] == ["repository"]


def test_the_worker_doctor_checks_the_workflows_on_the_comfyui_it_starts(gpu_node: Studio) -> None:
    assert run_installer("install", "worker", "--prefix", str(gpu_node.worker_prefix), "--comfyui-dir",
                         str(gpu_node.comfyui_dir), "--skip-check")[0] == 0
    result = subprocess.run([str(gpu_node.worker_prefix / "bin" / "comfyfarm"), "doctor", "--role", "worker",
                             "--gpus", "0", "invert", "film_look_lut"], capture_output=True, text=True, timeout=300,
                            cwd=str(gpu_node.root))
    assert result.returncode == 1
    workflows = lines_for(result.stdout.splitlines(), "workflows")
    assert workflows == {
        "invert": "OK    workflows   invert: runs on the ComfyUI started on this worker",
        "film_look_lut": "FAIL  workflows   film_look_lut: cannot run on the ComfyUI started on this worker: missing "
                         "nodes from digitaljohn/comfyui-propost: ProPostApplyLUT, ProPostVignette; -> install "
                         "digitaljohn/comfyui-propost in ComfyUI/custom_nodes (git clone "
                         "https://github.com/digitaljohn/comfyui-propost); model not checked (its node is missing): "
                         "film_look.cube -> ComfyUI/models/luts",
    }
    assert result.stderr.splitlines()[-1] == "7 check(s): 6 OK, 1 failed"  # the frame nodes' and the service's too


def test_a_comfyui_without_the_frame_nodes_fails_their_check(tmp_path: Path) -> None:
    config = ServerConfig(comfyui_dir=make_fake_comfyui_dir(tmp_path / "ComfyUI"), port=free_port(),
                          python=sys.executable, scratch_dir=tmp_path / "scratch", port_in_use="next",
                          frame_nodes=False)
    server = ComfyUIServer(config)
    server.start()
    try:
        check = frame_nodes_check(server, tmp_path / "prefix")
    finally:
        server.stop()
    assert check.line() == (
        f"FAIL  worker      frame nodes (full precision): ComfyUI did not load ComfyFarmLoadFrames, "
        f"ComfyFarmSaveFrames from {FRAME_NODES_DIR}: frames would take the 8-bit path (clipped to 0..1, no "
        f"alpha) -> {reinstall('worker', tmp_path / 'prefix')}")
