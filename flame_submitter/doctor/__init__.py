"""``comfyfarm doctor``'s checks (the command line is cli_doctor.py): one line per check, with the fix.

- :mod:`.workstation`: the hook where Flame finds it, importable by each Flame Python, Qt, the command;
- :mod:`.studio`: the configuration, the shared storage, the Deadline Web Service and its credentials;
- :mod:`.repository`: the ComfyUI plugin and the ComfyUIRelink event in the repository, at this version;
- :mod:`.worker`: the runtime in ComfyUI's Python, ComfyUI starting on each GPU;
- :mod:`.workflows`: the workflows' requirements against one ComfyUI's node definitions;
- :mod:`.installed`: an installation's manifest (farm_plugin.installation) against this version;
- :mod:`.report`: the check lines and the exit status.
"""
