"""Developer benchmarks, run from a checkout (`.venv/bin/python bench/<name>.py`); never
installed: pyproject.toml packages kumo only. A package so that tests/bench can import them."""
