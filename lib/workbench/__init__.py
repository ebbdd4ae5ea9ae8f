"""The prompt workbench: which sample rows to try, variants run over them, and their answers side by side."""
