"""Gradio interface: chat with citations, passage search, article management.

A thin shell over ``rag.engine.Engine``, one module per tab: everything per browser
session (the conversation, the citations of the last answer, the user's settings) lives
in ``gr.State``; the engine holds only the models and the index, shared read-only.
The chat event runs one at a time (the LLM has one context); other users wait in
Gradio's queue and see their position. Searches and rebuilds run beside it, and a
rebuild swaps the index in atomically, so questions keep using the old one until then.
"""

from .app import CSS, build_app, main

__all__ = ["CSS", "build_app", "main"]
