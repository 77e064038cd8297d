"""Gradio app: `python ui.py` (see rag/ui_app.py for the interface itself)."""

from rag.ui_app import main

if __name__ == "__main__":
    main()
