"""Prompts: {{ Column }} templates and request bodies (templates), the versioned library of files (library),
what each model family accepts (models)."""
