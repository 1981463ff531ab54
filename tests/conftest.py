pytest_plugins = ["tests.doubles.comfyui.fixtures", "tests.real_comfyui", "tests.doubles.deadline.fixtures"]
