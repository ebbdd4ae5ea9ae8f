"""Lead-enrichment studio: the plain-Python API that the Streamlit pages and the command line both use."""
