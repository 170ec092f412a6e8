"""Hardware-in-the-loop benchmarking harness for compressed edge AI models.

The public surface is small: load targets (`harness.config.target_files`), load the model manifest
(`harness.config.manifest`), and run the suites through the pytest plugin (`harness.plugin`).
"""

__version__ = "0.1.0"
