"""Plain helpers that turn lib objects into what the pages show (no Streamlit here)."""
