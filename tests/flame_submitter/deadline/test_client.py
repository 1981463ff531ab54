"""The Deadline Web Service client against the Web Service double (and a small TLS server of its own)."""

from __future__ import annotations

import http.server
import logging
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from flame_submitter.deadline.client import DeadlineClient, JobSubmission
from flame_submitter.deadline.errors import (
    DeadlineAuthError,
    DeadlineRejected,
    DeadlineTimeout,
    DeadlineUnreachable,
)


def submission(name: str = "sh010 - blur", frames: str = "1001-1020", chunk: str = "5", **extra) -> JobSubmission:
    info = {"Plugin": "ComfyUI", "Name": name, "Frames": frames, "ChunkSize": chunk, "UserName": "ann",
            "Pool": "gpu", "Group": "gpu_24gb", "Priority": "60", "ExtraInfo0": "blur",
            "ExtraInfoKeyValue0": "comfyfarm_job_record=/mnt/jobs/j1/job.json",
            "OutputDirectory0": "/mnt/out", "OutputFilename0": "blur.####.exr", **extra}
    return JobSubmission(info, {"JobRecord": "/mnt/jobs/j1/job.json", "GPUsPerTask": "1"})


def test_submit_then_read_the_job_tasks_and_reports(fake_deadline) -> None:
    client = DeadlineClient(fake_deadline.url)
    job_id = client.submit_job(submission())
    job = client.get_job(job_id)
    props = job["Props"]
    assert (job["_id"], job["Plug"], job["Stat"]) == (job_id, "ComfyUI", 1)
    assert (props["Name"], props["Frames"], props["Chunk"], props["Pool"], props["Grp"], props["Pri"]) == (
        "sh010 - blur", "1001-1020", 5, "gpu", "gpu_24gb", 60)
    assert props["PlugInfo"]["JobRecord"] == "/mnt/jobs/j1/job.json"
    assert props["ExDic"]["comfyfarm_job_record"] == "/mnt/jobs/j1/job.json"
    assert job["OutDir"] == ["/mnt/out"] and job["OutFile"] == ["blur.####.exr"]
    tasks = client.get_job_tasks(job_id)
    assert tasks["ID"] == job_id
    assert [t["Frames"] for t in tasks["Tasks"]] == ["1001-1005", "1006-1010", "1011-1015", "1016-1020"]
    assert client.get_job_task_ids(job_id) == [0, 1, 2, 3]
    assert client.get_job_task(job_id, 2)["Frames"] == "1011-1015"
    assert client.job_reports(job_id, "error") == []
    assert job_id in client.get_job_ids()
    assert [j["_id"] for j in client.get_jobs_in_states(["Active"])] == [job_id]
    assert "Status" in client.get_job_details(job_id)["Job"]


def test_a_job_waits_for_another_named_in_its_job_info(fake_deadline) -> None:
    client = DeadlineClient(fake_deadline.url)
    first = client.submit_job(submission("preview", "1001-1020x10", "1"))
    second = client.submit_job(submission(JobDependencies=first))
    assert first != second
    assert [d["JobID"] for d in client.get_job(second)["Props"]["Dep"]] == [first]
    assert not client.get_job(first)["Props"]["Dep"]
    assert client.get_job(second)["Stat"] == 6  # Pending until the first completes
    assert [body for method, body in fake_deadline.requests_seen() if method == "POST"] == ["/api/jobs"] * 2


def test_commands_change_the_job(fake_deadline) -> None:
    client = DeadlineClient(fake_deadline.url)
    job_id = client.submit_job(submission())
    client.suspend_job(job_id)
    assert client.get_job(job_id)["Stat"] == 2
    client.resume_job(job_id)
    assert client.get_job(job_id)["Stat"] == 1
    client.fail_job(job_id)
    assert client.get_job(job_id)["Stat"] == 4
    client.requeue_tasks(job_id, [0])
    client.delete_job(job_id)
    assert client.get_jobs([job_id]) == []
    with pytest.raises(DeadlineRejected, match=f"no job {job_id}: check the id"):
        client.get_job(job_id)


def test_pools_and_groups(fake_deadline) -> None:
    client = DeadlineClient(fake_deadline.url)
    assert client.pool_names() == ["none", "gpu", "cpu"]
    assert client.group_names() == ["none", "gpu_24gb", "gpu_48gb"]
    assert "Deadline web service" in client.ping()


def test_credentials_are_checked_and_never_logged(fake_deadline_factory, caplog) -> None:
    fake = fake_deadline_factory(users={"ann": "hunter2"}, pools=("none", "gpu"), groups=("none", "gpu_24gb"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeadlineAuthError) as caught:
        DeadlineClient(fake.url, user="ann", password="wrong").pool_names()
    assert str(caught.value).startswith(f"the Deadline Web Service at {fake.url} refused the login as 'ann' "
                                        "(HTTP 401): set deadline_user and deadline_password")
    with pytest.raises(DeadlineAuthError, match="refused the login without credentials"):
        DeadlineClient(fake.url).submit_job(submission())
    client = DeadlineClient(fake.url, user="ann", password="hunter2")
    client.check_credentials()
    client.submit_job(submission())
    assert "hunter2" not in caplog.text and "wrong" not in caplog.text


def test_a_dead_web_service_is_unreachable_after_retrying_reads(fake_deadline_factory) -> None:
    fake = fake_deadline_factory()
    url = fake.url
    fake.stop()
    client = DeadlineClient(url, read_retries=2, backoff_s=0.01)
    with pytest.raises(DeadlineUnreachable) as caught:
        client.pool_names()
    assert str(caught.value) == (f"the Deadline Web Service is not reachable at {url} (connection refused): check "
                                 "deadline_url (COMFYFARM_DEADLINE_URL) and that the Web Service is running")


def test_a_slow_web_service_times_out_and_only_reads_are_retried(fake_deadline) -> None:
    fake_deadline.set_faults(delay_s=1.0)
    client = DeadlineClient(fake_deadline.url, timeout_s=0.2, read_retries=2, backoff_s=0.01)
    with pytest.raises(DeadlineTimeout, match=r"did not answer GET /api/pools within 0.2 s"):
        client.pool_names()
    with pytest.raises(DeadlineTimeout, match=r"did not answer POST /api/jobs within 0.2 s"):
        client.submit_job(submission())
    seen = fake_deadline.requests_seen()
    assert sum(1 for method, path in seen if method == "GET" and path.startswith("/api/pools")) == 3
    assert sum(1 for method, path in seen if method == "POST") == 1


def test_a_server_error_carries_the_web_services_text(fake_deadline) -> None:
    fake_deadline.set_faults(status=500, body="An exception occurred within the Deadline code.",
                             path_prefix="/api/jobs", method="POST")
    client = DeadlineClient(fake_deadline.url)
    with pytest.raises(DeadlineRejected) as caught:
        client.submit_job(submission())
    assert caught.value.status == 500
    assert str(caught.value) == ("the Deadline Web Service refused POST /api/jobs (HTTP 500): An exception occurred "
                                 "within the Deadline code.")


def test_bad_frames_are_rejected_with_the_services_text(fake_deadline) -> None:
    with pytest.raises(DeadlineRejected) as caught:
        DeadlineClient(fake_deadline.url).submit_job(submission(frames="1001-abc"))
    assert caught.value.status in (400, 500)


# -- TLS: a tiny HTTPS server with a self-signed certificate --------------------------------------


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[Tuple[str, Path]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = b'["none","gpu"]' if self.path.startswith("/api/pools") else b"This is the Deadline web service!"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


def test_tls_with_a_ca_file_or_insecure_by_choice(https_server) -> None:
    url, cert = https_server
    assert DeadlineClient(url, ca_file=str(cert)).pool_names() == ["none", "gpu"]
    with pytest.raises(DeadlineUnreachable, match="TLS: .*set deadline_ca_file"):
        DeadlineClient(url, read_retries=0).pool_names()
    assert DeadlineClient(url, insecure=True).pool_names() == ["none", "gpu"]
