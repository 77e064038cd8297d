"""The Settings tab: this session's retrieval and answer choices, and the models in use."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .context import UIContext
from .search import MODES
from .state import Prefs


def model_names(ctx: UIContext) -> str:
    """Model names only: file and folder paths stay with whoever runs the server."""
    settings, labels = ctx.settings, ctx.labels
    llm = settings.llm_model and Path(str(settings.llm_model)).name
    llm_name = "remote" if settings.llm_url else (llm or labels["no_llm"])
    embedder = Path(str(settings.embedding_model)).name
    return (
        f"**{labels['models']}:** {labels['embeddings']} `{embedder}`, {labels['llm']} `{llm_name}`"
    )


def build_settings_tab(ctx: UIContext) -> None:
    labels, settings = ctx.labels, ctx.settings
    with gr.Tab(labels["settings"], id="settings"):
        k_slider = gr.Slider(
            1, 8, value=settings.context_passages, step=1, label=labels["passages"]
        )
        mode_pref = gr.Radio(MODES, value=settings.search_mode, label=labels["mode"])
        temp_slider = gr.Slider(
            0.0, 1.0, value=settings.temperature, step=0.05, label=labels["temperature"]
        )
        # Article sentences with the LLM's check and lead are right most often on the test
        # parts; the LLM's own wording cites more precisely; without the LLM, fastest
        # (README, *Answer quality*): let each user choose.
        answers_pref = gr.Radio(
            [
                (labels["answers_quote"], "quote"),
                (labels["answers_llm"], "llm"),
                (labels["answers_extractive"], "extractive"),
            ],
            value=settings.answer_mode,
            label=labels["answers"],
            elem_id="answers-pref",
        )
        gr.Markdown(model_names(ctx), elem_id="models")

    def set_prefs(k, m, t, answers):
        llm = answers != "extractive"
        mode = answers if llm else None
        return Prefs(int(k), m, float(t), use_llm=llm, answer_mode=mode).to_state()

    controls = [k_slider, mode_pref, temp_slider, answers_pref]
    for control in controls:
        control.change(set_prefs, controls, ctx.prefs)
