"""Gradio app: `python ui.py` (the interface itself is the package rag/ui/)."""

from rag.ui import main

if __name__ == "__main__":
    main()
