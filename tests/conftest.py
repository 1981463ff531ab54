pytest_plugins = ["tests.doubles.comfyui.fixtures", "tests.real_comfyui", "tests.real_packs.plugin",
                  "tests.doubles.deadline.fixtures", "tests.farm_emulator.fixtures", "tests.doubles.flame.fixtures"]
