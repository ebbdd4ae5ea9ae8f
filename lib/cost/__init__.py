"""What a run costs: prices per model (pricing), exact token counts offline (tokens), the quote before a run (quote)."""
