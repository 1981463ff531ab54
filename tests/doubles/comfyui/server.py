"""HTTP + WebSocket server of the ComfyUI test double (aiohttp, like the real server.py).

Routes, status codes, bodies and WebSocket message routing follow ComfyUI 0.3.64; every route is also
served under /api. Three routes exist only in the double: GET/POST /__fake__/faults and
GET /__fake__/stats.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import sys
import threading
import time
import urllib.parse
import uuid
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from aiohttp import WSMsgType, web

from . import COMFYUI_VERSION, FRONTEND_VERSION, PYTORCH_VERSION, TEMPLATES_VERSION
from .executor import INTERRUPT, Faults, PromptExecutor, PromptQueue, prompt_worker, validate_prompt
from .nodes import (
    NODE_CLASS_MAPPINGS,
    Env,
    all_node_info,
    encode_png,
    encode_with_oiio,
    guess_content_type,
    node_info,
    read_image_frames,
)

log = logging.getLogger("comfyui")

MODEL_FOLDERS = ["checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
                 "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models",
                 "custom_nodes", "hypernetworks", "photomaker", "classifiers", "model_patches", "audio_encoders"]


def _is_loopback(host: Optional[str]) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@web.middleware
async def origin_only_middleware(request: web.Request, handler):
    """A request whose Origin does not match its (loopback) Host gets 403, as in ComfyUI."""
    if "Host" in request.headers and "Origin" in request.headers:
        host_domain = request.headers["Host"].lower()
        parsed = urllib.parse.urlparse(request.headers["Origin"])
        origin_domain = parsed.netloc.lower()
        host_parsed = urllib.parse.urlsplit("//" + host_domain)
        loopback = _is_loopback(host_parsed.hostname)
        if parsed.port is None:
            host_domain = host_parsed.hostname
        if host_parsed.port is None:
            origin_domain = parsed.hostname
        if loopback and host_domain and origin_domain and host_domain != origin_domain:
            log.warning("WARNING: request with non matching host and origin %s != %s, returning 403",
                        host_domain, origin_domain)
            return web.Response(status=403)
    if request.method == "OPTIONS":
        return web.Response()
    return await handler(request)


def cors_middleware(allowed_origin: str):
    """--enable-cors-header replaces the origin check with permissive CORS headers, as in ComfyUI."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        response = web.Response() if request.method == "OPTIONS" else await handler(request)
        response.headers["Access-Control-Allow-Origin"] = allowed_origin
        response.headers["Access-Control-Allow-Methods"] = "POST, GET, DELETE, PUT, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response.headers["Access-Control-Allow-Credentials"] = "true"
        return response

    return middleware


def _memory() -> Tuple[int, int]:
    total = free = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                name, value = line.split(":", 1)
                if name == "MemTotal":
                    total = int(value.split()[0]) * 1024
                elif name == "MemAvailable":
                    free = int(value.split()[0]) * 1024
    except OSError:
        total = free = 16 * 1024 ** 3
    return total, free


class FakeComfyServer:
    def __init__(self, args, env: Env, faults: Faults, loop: asyncio.AbstractEventLoop):
        self.args = args
        self.env = env
        self.faults = faults
        self.loop = loop
        self.stats: Dict[str, int] = {"prompts_executed": 0, "nodes_executed": 0, "prompts_succeeded": 0,
                                      "prompts_failed": 0, "prompts_interrupted": 0}
        self.prompt_queue = PromptQueue(self)
        self.messages: asyncio.Queue = asyncio.Queue()
        self.sockets: Dict[str, web.WebSocketResponse] = {}
        self.sockets_metadata: Dict[str, dict] = {}
        self.client_id: Optional[str] = None
        self.last_node_id: Optional[str] = None
        self.last_prompt_id: Optional[str] = None
        self.number = 0
        self._count_lock = threading.Lock()
        self._enqueued = 0
        self._sent = 0
        self.max_upload_size = args.max_upload_size * 1024 * 1024
        middleware = cors_middleware(args.enable_cors_header) if args.enable_cors_header else origin_only_middleware
        self.app = web.Application(client_max_size=round(self.max_upload_size), middlewares=[middleware])
        self._add_routes()

    # ------------------------------------------------------------------ messages

    def get_queue_info(self) -> dict:
        return {"exec_info": {"queue_remaining": self.prompt_queue.get_tasks_remaining()}}

    def send_sync(self, event: str, data: Any, sid: Optional[str] = None) -> None:
        with self._count_lock:
            self._enqueued += 1
        try:
            self.loop.call_soon_threadsafe(self.messages.put_nowait, (event, data, sid))
        except RuntimeError:  # the loop is closed: the server is going away
            pass

    def queue_updated(self) -> None:
        self.send_sync("status", {"status": self.get_queue_info()})

    def flush_messages(self, timeout: float) -> None:
        """Wait (from a thread other than the loop's) until every queued message has been sent."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._count_lock:
                if self._sent >= self._enqueued:
                    break
            time.sleep(0.005)
        time.sleep(0.02)

    async def send(self, event: str, data: Any, sid: Optional[str] = None) -> None:
        message = {"type": event, "data": data}
        if sid is None:
            targets = list(self.sockets.values())
        elif sid in self.sockets:
            targets = [self.sockets[sid]]
        else:
            targets = []
        for ws in targets:
            try:
                await ws.send_json(message)
            except Exception as err:  # ComfyUI logs send errors and goes on
                log.warning("send error: %s", err)

    async def publish_loop(self) -> None:
        while True:
            event, data, sid = await self.messages.get()
            try:
                await self.send(event, data, sid)
            finally:
                with self._count_lock:
                    self._sent += 1

    # ------------------------------------------------------------------ routes

    def _add_routes(self) -> None:
        routes: List[Tuple[str, str, Any]] = [
            ("GET", "/ws", self.websocket_handler),
            ("GET", "/", self.get_root),
            ("GET", "/embeddings", self.get_embeddings),
            ("GET", "/models", self.get_models),
            ("GET", "/models/{folder}", self.get_models_folder),
            ("GET", "/extensions", self.get_extensions),
            ("POST", "/upload/image", self.upload_image),
            ("GET", "/view", self.view_image),
            ("GET", "/system_stats", self.system_stats),
            ("GET", "/features", self.get_features),
            ("GET", "/prompt", self.get_prompt),
            ("GET", "/object_info", self.get_object_info),
            ("GET", "/object_info/{node_class}", self.get_object_info_node),
            ("GET", "/history", self.get_history),
            ("GET", "/history/{prompt_id}", self.get_history_prompt_id),
            ("GET", "/queue", self.get_queue),
            ("POST", "/prompt", self.post_prompt),
            ("POST", "/queue", self.post_queue),
            ("POST", "/interrupt", self.post_interrupt),
            ("POST", "/free", self.post_free),
            ("POST", "/history", self.post_history),
        ]
        for method, path, handler in routes:
            self.app.router.add_route(method, "/api" + path, handler)
        for method, path, handler in routes:
            self.app.router.add_route(method, path, handler)
        self.app.router.add_route("GET", "/__fake__/faults", self.get_faults)
        self.app.router.add_route("POST", "/__fake__/faults", self.post_faults)
        self.app.router.add_route("GET", "/__fake__/stats", self.get_stats)

    async def websocket_handler(self, request: web.Request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            self.sockets.pop(sid, None)  # a second socket with the same id takes over, silently
        else:
            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        self.sockets_metadata[sid] = {"feature_flags": {}}
        try:
            await self.send("status", {"status": self.get_queue_info(), "sid": sid}, sid)
            if self.client_id == sid and self.last_node_id is not None:
                await self.send("executing", {"node": self.last_node_id}, sid)
            first_message = True
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    log.warning("ws connection closed with exception %s", ws.exception())
                elif msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                        if first_message and data.get("type") == "feature_flags":
                            self.sockets_metadata[sid]["feature_flags"] = data.get("data", {})
                            await self.send("feature_flags", self.server_features(), sid)
                        first_message = False
                    except json.JSONDecodeError:
                        log.warning("Invalid JSON received from client %s: %s", sid, msg.data)
                    except Exception as e:
                        log.error("Error processing WebSocket message: %s", e)
        finally:
            # As in ComfyUI: this also drops a newer socket that took over the same clientId.
            self.sockets.pop(sid, None)
            self.sockets_metadata.pop(sid, None)
        return ws

    def server_features(self) -> dict:
        return {"supports_preview_metadata": True, "max_upload_size": self.max_upload_size}

    async def get_root(self, request: web.Request):
        return web.Response(text="<!doctype html><title>ComfyUI</title><p>ComfyUI test double (comfyfarm tests)</p>",
                            content_type="text/html")

    async def get_embeddings(self, request: web.Request):
        return web.json_response([])

    async def get_models(self, request: web.Request):
        return web.json_response(MODEL_FOLDERS)

    async def get_models_folder(self, request: web.Request):
        if request.match_info.get("folder") not in MODEL_FOLDERS:
            return web.Response(status=404)
        return web.json_response([])

    async def get_extensions(self, request: web.Request):
        return web.json_response([])

    def _dir_by_type(self, dir_type: Optional[str]) -> Tuple[str, str]:
        if dir_type is None:
            dir_type = "input"
        type_dir = self.env.directory_by_type(dir_type)
        if type_dir is None:
            raise ValueError(f"unknown upload type {dir_type!r}")  # ComfyUI fails here too (a 500)
        return type_dir, dir_type

    async def upload_image(self, request: web.Request):
        post = await request.post()
        image = post.get("image")
        overwrite = post.get("overwrite")
        upload_dir, upload_type = self._dir_by_type(post.get("type"))
        if not (image and image.file):
            return web.Response(status=400)
        filename = image.filename
        if not filename:
            return web.Response(status=400)
        subfolder = post.get("subfolder", "")
        full_output_folder = os.path.join(upload_dir, os.path.normpath(subfolder))
        filepath = os.path.abspath(os.path.join(full_output_folder, filename))
        if os.path.commonpath((upload_dir, filepath)) != upload_dir:
            return web.Response(status=400)
        if not os.path.exists(full_output_folder):
            os.makedirs(full_output_folder)
        data = image.file.read()
        stem, ext = os.path.splitext(filename)
        duplicate = False
        if not (overwrite is not None and overwrite in ("true", "1")):
            i = 1
            while os.path.exists(filepath):
                if self._same_bytes(filepath, data):
                    duplicate = True
                    break
                filename = f"{stem} ({i}){ext}"
                filepath = os.path.join(full_output_folder, filename)
                i += 1
        if not duplicate:
            with open(filepath, "wb") as f:
                f.write(data)
        return web.json_response({"name": filename, "subfolder": subfolder, "type": upload_type})

    def _same_bytes(self, filepath: str, data: bytes) -> bool:
        import hashlib

        algo = getattr(self.args, "default_hashing_function", "sha256")
        with open(filepath, "rb") as f:
            return hashlib.new(algo, f.read()).hexdigest() == hashlib.new(algo, data).hexdigest()

    async def view_image(self, request: web.Request):
        query = request.rel_url.query
        if "filename" not in query:
            return web.Response(status=404)
        filename, output_dir = self.env.annotated_filepath(query["filename"])
        if not filename:
            return web.Response(status=400)
        if filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        if output_dir is None:
            output_dir = self.env.directory_by_type(query.get("type", "output"))
        if output_dir is None:
            return web.Response(status=400)
        if "subfolder" in query:
            full_output_dir = os.path.join(output_dir, query["subfolder"])
            if os.path.commonpath((os.path.abspath(full_output_dir), output_dir)) != output_dir:
                return web.Response(status=403)
            output_dir = full_output_dir
        filename = os.path.basename(filename)
        file = os.path.join(output_dir, filename)
        if not os.path.isfile(file):
            return web.Response(status=404)
        disposition = {"Content-Disposition": f'filename="{filename}"'}
        channel = query.get("channel", "rgba")
        if "preview" in query:
            preview_info = query["preview"].split(";")
            image_format = preview_info[0]
            if image_format not in ("webp", "jpeg") or "a" in query.get("channel", ""):
                image_format = "webp"
            quality = int(preview_info[-1]) if preview_info[-1].isdigit() else 90
            pixels = read_image_frames(file)[0]
            if image_format == "jpeg" or query.get("channel", "") == "rgb":
                pixels = pixels[:, :, :3] if pixels.shape[2] >= 3 else pixels
            body = encode_with_oiio(pixels, "jpg" if image_format == "jpeg" else "webp", quality)
            return web.Response(body=body, content_type=f"image/{image_format}", headers=disposition)
        if channel == "rgb":
            pixels = read_image_frames(file)[0]
            return web.Response(body=encode_png(pixels[:, :, :3]), content_type="image/png", headers=disposition)
        if channel == "a":
            pixels = read_image_frames(file)[0]
            out = np.zeros(pixels.shape[:2] + (4,), dtype=np.uint8)
            out[:, :, 3] = pixels[:, :, 3] if pixels.shape[2] == 4 else 255
            return web.Response(body=encode_png(out), content_type="image/png", headers=disposition)
        content_type = guess_content_type(filename) or "application/octet-stream"
        if content_type in {"text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript",
                            "text/css"}:
            content_type = "application/octet-stream"
        return web.FileResponse(file, headers={**disposition, "Content-Type": content_type})

    async def system_stats(self, request: web.Request):
        ram_total, ram_free = _memory()
        if self.args.cpu:
            device = {"name": "cpu", "type": "cpu", "index": None, "vram_total": ram_total, "vram_free": ram_free,
                      "torch_vram_total": ram_total, "torch_vram_free": ram_free}
        else:
            vram = 24 * 1024 ** 3
            device = {"name": device_name(self.args), "type": "cuda", "index": 0, "vram_total": vram,
                      "vram_free": vram - 512 * 1024 ** 2, "torch_vram_total": 0, "torch_vram_free": 0}
        return web.json_response({
            "system": {
                "os": os.name, "ram_total": ram_total, "ram_free": ram_free, "comfyui_version": COMFYUI_VERSION,
                "required_frontend_version": FRONTEND_VERSION, "installed_templates_version": TEMPLATES_VERSION,
                "required_templates_version": TEMPLATES_VERSION, "python_version": sys.version,
                "pytorch_version": PYTORCH_VERSION,
                "embedded_python": os.path.split(os.path.split(sys.executable)[0])[1] == "python_embeded",
                "argv": sys.argv,
            },
            "devices": [device],
        })

    async def get_features(self, request: web.Request):
        return web.json_response(self.server_features())

    async def get_prompt(self, request: web.Request):
        return web.json_response(self.get_queue_info())

    async def get_object_info(self, request: web.Request):
        return web.json_response(all_node_info(self.env))

    async def get_object_info_node(self, request: web.Request):
        node_class = request.match_info.get("node_class", None)
        out = {}
        if node_class is not None and node_class in NODE_CLASS_MAPPINGS:
            out[node_class] = node_info(self.env, node_class)
        return web.json_response(out)

    async def get_history(self, request: web.Request):
        max_items = request.rel_url.query.get("max_items", None)
        if max_items is not None:
            max_items = int(max_items)
        offset = request.rel_url.query.get("offset", None)
        offset = int(offset) if offset is not None else -1
        return web.json_response(self.prompt_queue.get_history(max_items=max_items, offset=offset))

    async def get_history_prompt_id(self, request: web.Request):
        return web.json_response(self.prompt_queue.get_history(prompt_id=request.match_info.get("prompt_id")))

    async def get_queue(self, request: web.Request):
        running, pending = self.prompt_queue.get_current_queue_volatile()
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def post_prompt(self, request: web.Request):
        log.info("got prompt")
        json_data = await request.json()
        if "number" in json_data:
            number = float(json_data["number"])
        else:
            number = self.number
            if "front" in json_data and json_data["front"]:
                number = -number
            self.number += 1

        if "prompt" not in json_data:
            error = {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided",
                     "extra_info": {}}
            return web.json_response({"error": error, "node_errors": {}}, status=400)

        prompt = json_data["prompt"]
        prompt_id = str(json_data.get("prompt_id", uuid.uuid4()))
        partial = json_data.get("partial_execution_targets", None)
        valid = validate_prompt(self.env, prompt, partial)
        extra_data = json_data.get("extra_data", {})
        if "client_id" in json_data:
            extra_data["client_id"] = json_data["client_id"]
        if valid[0]:
            self.prompt_queue.put((number, prompt_id, prompt, extra_data, valid[2]))
            return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": valid[3]})
        log.warning("invalid prompt: %s", valid[1])
        return web.json_response({"error": valid[1], "node_errors": valid[3]}, status=400)

    async def post_queue(self, request: web.Request):
        json_data = await request.json()
        if "clear" in json_data and json_data["clear"]:
            self.prompt_queue.wipe_queue()
        if "delete" in json_data:
            for id_to_delete in json_data["delete"]:
                self.prompt_queue.delete_queue_item(lambda a, target=id_to_delete: a[1] == target)
        return web.Response(status=200)

    async def post_interrupt(self, request: web.Request):
        try:
            json_data = await request.json()
        except json.JSONDecodeError:
            json_data = {}
        prompt_id = json_data.get("prompt_id")
        if prompt_id:
            running, _ = self.prompt_queue.get_current_queue()
            if any(item[1] == prompt_id for item in running):
                log.info("Interrupting prompt %s", prompt_id)
                INTERRUPT.set(True)
            else:
                log.info("Prompt %s is not currently running, skipping interrupt", prompt_id)
        else:
            log.info("Global interrupt (no prompt_id specified)")
            INTERRUPT.set(True)
        return web.Response(status=200)

    async def post_free(self, request: web.Request):
        json_data = await request.json()
        unload_models = json_data.get("unload_models", False)
        free_memory = json_data.get("free_memory", False)
        if unload_models:
            self.prompt_queue.set_flag("unload_models", unload_models)
        if free_memory:
            self.prompt_queue.set_flag("free_memory", free_memory)
        return web.Response(status=200)

    async def post_history(self, request: web.Request):
        json_data = await request.json()
        if "clear" in json_data and json_data["clear"]:
            self.prompt_queue.wipe_history()
        if "delete" in json_data:
            for id_to_delete in json_data["delete"]:
                self.prompt_queue.delete_history_item(id_to_delete)
        return web.Response(status=200)

    # ------------------------------------------------------------------ the double's own routes

    async def get_faults(self, request: web.Request):
        return web.json_response(self.faults.get())

    async def post_faults(self, request: web.Request):
        try:
            faults = await request.json()
            self.faults.replace(faults)
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)
        log.info("[ComfyUI test double] faults set to %s", json.dumps(faults))
        return web.json_response(self.faults.get())

    async def get_stats(self, request: web.Request):
        return web.json_response(dict(self.stats))

    # ------------------------------------------------------------------ start

    async def start(self, addresses: List[Tuple[str, int]], verbose: bool = True) -> None:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        if verbose:
            log.info("Starting server\n")
        for address, port in addresses:
            site = web.TCPSite(runner, address, port)
            await site.start()
            address_print = f"[{address}]" if ":" in address else address
            if verbose:
                log.info("To see the GUI go to: http://%s:%s", address_print, port)


def device_name(args) -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all")
    return f"cuda:0 ComfyUI test double GPU (CUDA_VISIBLE_DEVICES={visible}) : cudaMallocAsync"


def serve(args, env: Env, faults: Faults) -> None:
    """Run the server until the process is stopped."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = FakeComfyServer(args, env, faults, loop)
    cache_mode = "none" if args.cache_none else (args.cache_lru if args.cache_lru > 0 else "classic")
    executor = PromptExecutor(server, env, faults, server.stats, cache_mode)
    threading.Thread(target=prompt_worker, args=(server, executor), daemon=True, name="prompt_worker").start()
    addresses = [(address, args.port) for address in args.listen.split(",")]

    async def start_all() -> None:
        await asyncio.gather(server.start(addresses, verbose=not args.dont_print_server), server.publish_loop())

    loop.run_until_complete(start_all())
