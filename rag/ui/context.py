"""What every tab builder is given: the engine, the labels, the session's preferences."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..engine import Engine


@dataclass
class UIContext:
    engine: Engine
    labels: dict[str, str]
    prefs: gr.State  # a ``Prefs`` as a dict, per browser session
    lang: str = "ru"  # of the labels, and of exported conversations

    @property
    def settings(self):
        return self.engine.settings
