"""Mock carriers and PBXs: the Docker engine, peer images, and (later) their lifecycle."""

from __future__ import annotations

from harness.peers.engine import Engine, connect
from harness.peers.images import (
    IMAGES,
    BuildEvent,
    ImageBuildError,
    ImageResult,
    ImageSpec,
    build_images,
    image_present,
    image_tag,
    select_images,
)

__all__ = [
    "IMAGES",
    "BuildEvent",
    "Engine",
    "ImageBuildError",
    "ImageResult",
    "ImageSpec",
    "build_images",
    "connect",
    "image_present",
    "image_tag",
    "select_images",
]
