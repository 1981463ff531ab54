"""Where comfyfarm is installed on each kind of machine, and the manifest of what was installed.

The contract between the installers (``install/install.sh``, ``install/uninstall.sh``) and ``comfyfarm doctor``:

- :mod:`.layout`: the folders each role installs into (Flame workstation, Deadline repository, GPU worker);
- :mod:`.manifest`: the record of every installed file with its hash, and of what it replaced;
- :mod:`.pythons`: what a Python interpreter (Flame's, or ComfyUI's environment) is and holds.

Standard library only: the installer runs this on machines where nothing else is installed yet.
"""
