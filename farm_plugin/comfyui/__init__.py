"""Talking to ComfyUI: the HTTP + WebSocket client and the server's lifecycle on a worker."""
