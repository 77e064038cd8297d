"""newsrag: private, fully local question answering over a folder of news articles."""

from .engine import Engine, build_index, search
from .settings import Settings

__all__ = ["Engine", "Settings", "build_index", "search"]
