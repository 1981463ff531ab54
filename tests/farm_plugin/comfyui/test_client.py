"""The ComfyUI client against the test double and, when configured, a real ComfyUI."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
import websocket

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.comfyui.errors import (
    ComfyUIProtocolError,
    ComfyUITimeout,
    ComfyUIUnreachable,
    ConnectionLost,
    PromptExecutionError,
    PromptInterrupted,
    PromptValidationError,
)
from farm_plugin.comfyui.prompts import OutputFile

from .conftest import Target, decode_png, invert_graph, png_bytes, unique


def upload(client: ComfyUIClient, rgb=(200, 50, 0)) -> str:
    name = unique("plate") + ".png"
    stored = client.upload_image(png_bytes(rgb), name=name, subfolder="comfyfarm-tests")
    assert (stored.filename, stored.subfolder, stored.type) == (name, "comfyfarm-tests", "input")
    return f"{stored.subfolder}/{stored.filename}"


def test_invert_runs_and_its_output_has_comfyui_pixels(comfyui: Target, tmp_path: Path) -> None:
    client = ComfyUIClient(comfyui.url)
    assert "comfyui_version" in client.system_stats()["system"]
    events = []
    with client.session(on_event=events.append) as session:
        prompt_id = session.submit(invert_graph(upload(client), f"comfyfarm-tests/{unique('inv')}")).prompt_id
        (result,) = list(session.results([prompt_id], idle_timeout_s=60))
    assert result.ok and result.error is None
    (output,) = result.output_files("3")
    assert output.type == "output" and output.filename.endswith("_00001_.png")
    pixels = decode_png(client.view(output), tmp_path)
    assert tuple(pixels[0, 0]) == (54, 205, 255)  # ComfyUI truncates: 255 * (1 - 200/255) -> 54
    assert result.busy_seconds is not None and result.busy_seconds >= 0
    assert [e.kind for e in events][0] == "started" and events[-1].kind == "finished"
    assert [(e.node, e.class_type) for e in events if e.kind == "executing"] == [
        ("1", "LoadImage"), ("2", "ImageInvert"), ("3", "SaveImage")]


def test_identical_resubmit_is_cached_and_names_the_old_file(comfyui: Target) -> None:
    client = ComfyUIClient(comfyui.url)
    graph = invert_graph(upload(client), f"comfyfarm-tests/{unique('cache')}")
    with client.session() as session:
        first = session.submit(graph).prompt_id
        (one,) = list(session.results([first], idle_timeout_s=60))
        second = session.submit(graph).prompt_id
        (two,) = list(session.results([second], idle_timeout_s=60))
    assert one.ok and two.ok
    assert sorted(two.cached_nodes) == ["1", "2", "3"]
    assert two.output_files() == one.output_files()
    if comfyui.fake is not None:
        written = list((comfyui.fake.output_dir / "comfyfarm-tests").glob("cache-*"))
        assert len(written) == 1


def test_many_prompts_queued_at_once_all_finish(comfyui: Target) -> None:
    client = ComfyUIClient(comfyui.url)
    image = upload(client)
    with client.session() as session:
        ids = [session.submit(invert_graph(image, f"comfyfarm-tests/{unique('burst')}")).prompt_id
               for _ in range(6)]
        results = list(session.results(ids, idle_timeout_s=60))
    assert sorted(r.prompt_id for r in results) == sorted(ids)
    assert all(r.ok for r in results)


def test_missing_input_is_a_validation_error_with_node_errors(comfyui: Target) -> None:
    client = ComfyUIClient(comfyui.url)
    graph = invert_graph(upload(client), "comfyfarm-tests/x")
    del graph["2"]["inputs"]["image"]
    with pytest.raises(PromptValidationError) as caught:
        client.submit(graph)
    error = caught.value
    assert error.type == "prompt_outputs_failed_validation"
    assert error.node_errors["2"]["errors"][0]["type"] == "required_input_missing"
    assert "node 2 (ImageInvert): Required input is missing: image [required_input_missing]" in str(error)


def test_unknown_class_is_refused(comfyui: Target) -> None:
    client = ComfyUIClient(comfyui.url)
    graph = invert_graph(upload(client), "comfyfarm-tests/x")
    graph["2"]["class_type"] = "NoSuchNode"
    with pytest.raises(PromptValidationError) as caught:
        client.submit(graph)
    assert caught.value.type in ("invalid_prompt", "missing_node_type")
    assert "NoSuchNode" in str(caught.value)


def test_malformed_prompt_gets_comfyuis_500_text_as_a_protocol_error(comfyui: Target) -> None:
    client = ComfyUIClient(comfyui.url)
    with pytest.raises(ComfyUIProtocolError) as caught:
        client.submit([1, 2])  # type: ignore[arg-type]  # ComfyUI answers 500 text/plain
    assert caught.value.status == 500
    assert "Server got itself in trouble" in str(caught.value)


def test_unknown_ids_are_empty_answers(comfyui: Target) -> None:
    client = ComfyUIClient(comfyui.url)
    assert client.history("no-such-prompt") == {}
    assert client.object_info("NoSuchNode") == {}
    assert "LoadImage" in client.object_info("LoadImage")


def test_each_session_gets_its_own_events(comfyui: Target) -> None:
    client = ComfyUIClient(comfyui.url)
    image = upload(client)
    with client.session() as first, client.session() as second:
        assert first.client_id != second.client_id
        a = first.submit(invert_graph(image, f"comfyfarm-tests/{unique('a')}")).prompt_id
        b = second.submit(invert_graph(image, f"comfyfarm-tests/{unique('b')}")).prompt_id
        assert [r.prompt_id for r in first.results([a], idle_timeout_s=60)] == [a]
        assert [r.prompt_id for r in second.results([b], idle_timeout_s=60)] == [b]


def test_a_socket_that_steals_the_client_id_makes_the_wait_time_out(comfyui: Target) -> None:
    client = ComfyUIClient(comfyui.url)
    with client.session() as session:
        thief = websocket.create_connection(f"{client.websocket_url}?clientId={session.client_id}", timeout=5)
        try:
            prompt_id = session.submit(invert_graph(upload(client), f"comfyfarm-tests/{unique('s')}")).prompt_id
            with pytest.raises(ComfyUITimeout, match="another connection took over this client id"):
                list(session.results([prompt_id], idle_timeout_s=1.5))
        finally:
            thief.close()


def test_queue_free_and_upload_rename(comfyui: Target) -> None:
    client = ComfyUIClient(comfyui.url)
    queue = client.queue()
    assert set(queue) == {"queue_running", "queue_pending"}
    assert client.queue_remaining() >= 0
    client.free(unload_models=False, free_memory=False)
    name = unique("same") + ".png"
    first = client.upload_image(png_bytes((1, 2, 3)), name=name, subfolder="comfyfarm-tests", overwrite=False)
    again = client.upload_image(png_bytes((1, 2, 3)), name=name, subfolder="comfyfarm-tests", overwrite=False)
    other = client.upload_image(png_bytes((9, 9, 9)), name=name, subfolder="comfyfarm-tests", overwrite=False)
    assert first.filename == again.filename == name
    assert other.filename == name.replace(".png", " (1).png")


def test_unreachable_server_says_how_to_fix_it() -> None:
    client = ComfyUIClient("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(ComfyUIUnreachable) as caught:
        client.system_stats()
    assert str(caught.value) == (
        "ComfyUI is not reachable at http://127.0.0.1:9 (connection refused): start it, or check the URL and port"
    )
    with pytest.raises(ComfyUIUnreachable):
        client.session().connect()


# -- faults the double can script --------------------------------------------------------------


def test_node_failure_is_an_execution_error_with_node_class_and_text(fake_comfyui) -> None:
    fake_comfyui.set_faults(fail_node={"class_type": "ImageInvert", "exception_type": "RuntimeError",
                                       "message": "CUDA out of memory"})
    client = ComfyUIClient(fake_comfyui.url)
    with client.session() as session:
        prompt_id = session.submit(invert_graph(upload(client), "comfyfarm-tests/f")).prompt_id
        (result,) = list(session.results([prompt_id], idle_timeout_s=30))
    assert result.status == "error" and result.outputs == {}
    error = result.error
    assert isinstance(error, PromptExecutionError)
    assert (error.node_id, error.node_type, error.exception_type) == ("2", "ImageInvert", "RuntimeError")
    assert str(error) == "ComfyUI node 2 (ImageInvert) failed: RuntimeError: CUDA out of memory"
    assert error.traceback
    with pytest.raises(PromptExecutionError):
        result.raise_for_status()


def test_interrupt_ends_the_running_prompt(fake_comfyui) -> None:
    fake_comfyui.set_faults(node_delay_s=2.0)
    client = ComfyUIClient(fake_comfyui.url)
    started = threading.Event()
    with client.session(on_event=lambda e: e.kind == "executing" and started.set()) as session:
        prompt_id = session.submit(invert_graph(upload(client), "comfyfarm-tests/i")).prompt_id
        threading.Timer(0.5, client.interrupt).start()
        (result,) = list(session.results([prompt_id], idle_timeout_s=30))
    assert result.status == "interrupted"
    assert isinstance(result.error, PromptInterrupted)


def test_silence_beyond_the_idle_timeout_raises(fake_comfyui) -> None:
    fake_comfyui.set_faults(node_delay_s=3.0)
    client = ComfyUIClient(fake_comfyui.url)
    with client.session() as session:
        prompt_id = session.submit(invert_graph(upload(client), "comfyfarm-tests/t")).prompt_id
        with pytest.raises(ComfyUITimeout, match=r"no message for 0.5 s"):
            list(session.results([prompt_id], idle_timeout_s=0.5))
    client.interrupt()


def test_server_death_mid_prompt_is_connection_lost(fake_comfyui_factory) -> None:
    fake = fake_comfyui_factory(faults={"die_on_prompt": 2, "node_delay_s": 0.2})
    client = ComfyUIClient(fake.url)
    image = upload(client)
    with client.session() as session:
        ids = [session.submit(invert_graph(image, f"comfyfarm-tests/{unique('d')}")).prompt_id for _ in range(3)]
        finished = []
        with pytest.raises(ConnectionLost) as caught:
            for result in session.results(ids, idle_timeout_s=30):
                finished.append(result.prompt_id)
    assert finished == ids[:1]
    assert caught.value.pending == ids[1:]
    assert "ComfyUI probably stopped or crashed" in str(caught.value)
    with pytest.raises(ComfyUIUnreachable):
        client.system_stats()


def test_should_stop_ends_the_wait_early(fake_comfyui) -> None:
    fake_comfyui.set_faults(node_delay_s=1.0)
    client = ComfyUIClient(fake_comfyui.url)
    stop = threading.Event()
    with client.session() as session:
        prompt_id = session.submit(invert_graph(upload(client), "comfyfarm-tests/c")).prompt_id
        threading.Timer(0.3, stop.set).start()
        assert list(session.results([prompt_id], idle_timeout_s=30, should_stop=stop.is_set)) == []
        client.delete_queued([prompt_id])
        client.interrupt(prompt_id)


def test_a_comfyui_that_dies_while_sending_a_result_is_unreachable_not_a_disk_problem() -> None:
    """The answer's headers promise more bytes than come before the connection drops (ComfyUI killed mid-/view):
    the runner must see a lost ComfyUI (restart it, or exit 3), never a failed write into its scratch folder."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer_half() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        connection.close()

    thread = threading.Thread(target=answer_half, daemon=True)
    thread.start()
    client = ComfyUIClient(f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        with pytest.raises(ComfyUIUnreachable):
            client.view(OutputFile("frame_00001_.png", "comfyfarm", "output"))
    finally:
        thread.join(timeout=10)
        listener.close()
