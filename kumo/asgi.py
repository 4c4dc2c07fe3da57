"""ASGI entry point for `uvicorn --factory kumo.asgi:app` (used by `kumo api --workers N`)."""

from __future__ import annotations

from fastapi import FastAPI

from kumo.app import create_app
from kumo.config import get_settings
from kumo.wiring import build_runtime


def app() -> FastAPI:
    return create_app(build_runtime(get_settings()))
