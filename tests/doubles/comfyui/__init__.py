"""A protocol-faithful test double of ComfyUI 0.3.64 (HTTP + WebSocket API) for comfyfarm's tests.

Run it as a subprocess, like the real server: ``python -m tests.doubles.comfyui --listen 127.0.0.1 --port N``
(it accepts ComfyUI's command-line arguments). Tests use :mod:`tests.doubles.comfyui.harness` and the pytest
fixtures in :mod:`tests.doubles.comfyui.fixtures`. Product code never imports this package.

Behaviour is taken from the real server's source at the recorded commit and from the captures in
shared/reference/comfyui/captures/; the differences are listed in harness.py's module docstring.
"""

COMFYUI_VERSION = "0.3.64"
FRONTEND_VERSION = "1.27.10"
TEMPLATES_VERSION = "0.1.95"
PYTORCH_VERSION = "2.13.0+cpu (ComfyUI test double: no torch)"
FAULTS_ENV = "COMFYFARM_FAKE_FAULTS"
